package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"hotline/ticketing/org"
)

// CSRFHeader carries the session's CSRF token on every state-changing request made with the session cookie.
const CSRFHeader = "X-CSRF-Token"

// sessionKey holds, in a request's context, the session the request was authenticated by (absent for bearer
// requests).
type sessionKey struct{}

type requestSession struct {
	id   string
	csrf string
}

// authed wraps a handler that needs an actor. Machines send a bearer token; people's browsers send the session
// cookie. A bearer header, when present, decides alone (a bad token is 401 even with a good cookie). A request
// authenticated by the cookie that changes state (any method but GET, HEAD, OPTIONS) must carry the session's
// CSRF token in X-CSRF-Token: a cookie is sent by the browser whoever made the page, the header only by our
// pages, which read the token from the session endpoints.
func (s *Server) authed(h handler) http.HandlerFunc {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		a, sess, err := s.authenticate(r)
		if err != nil {
			return err
		}
		noteActor(r, a) // for the audit row of a refusal (guard)
		ctx := org.WithActor(r.Context(), a)
		if sess != nil {
			if !safeMethod(r.Method) && !validCSRF(r.Header.Get(CSRFHeader), sess.csrf) {
				return errCSRF
			}
			ctx = context.WithValue(ctx, sessionKey{}, sess)
		}
		return h(w, r.WithContext(ctx))
	})
}

// authenticate resolves the request's bearer token or session cookie to an actor.
func (s *Server) authenticate(r *http.Request) (org.Actor, *requestSession, error) {
	if hdr := r.Header.Get("Authorization"); hdr != "" {
		token, ok := strings.CutPrefix(hdr, "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return org.Actor{}, nil, org.ErrAuth
		}
		a, err := org.ActorByToken(r.Context(), s.deps.DB, strings.TrimSpace(token))
		return a, nil, err
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return org.Actor{}, nil, org.ErrAuth
	}
	sess, err := s.sessions.Resolve(r.Context(), c.Value)
	if err != nil {
		return org.Actor{}, nil, err
	}
	return sess.Actor, &requestSession{id: c.Value, csrf: sess.CSRFToken}, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func validCSRF(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// actor returns the authenticated actor; only call it inside authed handlers.
func actor(r *http.Request) org.Actor {
	a, _ := org.ActorFrom(r.Context())
	return a
}

// currentSession returns the session a request was authenticated by, or nil for a bearer request.
func currentSession(r *http.Request) *requestSession {
	sess, _ := r.Context().Value(sessionKey{}).(*requestSession)
	return sess
}

var errNoSession = errors.Join(org.ErrAuth, errors.New("no browser session"))

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, actor(r))
}

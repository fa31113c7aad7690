package web

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"hotline/ticketing/org"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "hotline_session"

// SessionConfig configures browser sessions, the login limiter and the websocket's origin check.
type SessionConfig struct {
	Idle         time.Duration // a session unused this long ends; default 30m
	Absolute     time.Duration // no session lives longer; default 12h
	SecureCookie bool          // mark the cookie Secure even when the request did not arrive over TLS (TLS ends at a proxy)
	// ConsoleOrigins are the origins (scheme://host[:port]) whose pages may open /ws; empty: the request's own host.
	ConsoleOrigins []string
	Login          LoginLimits
}

// sessionRoutes registers sign-in (session and token), sign-out, the password change and the websocket.
//
//	POST   /api/v1/session           {"username","password"} (application/json) → 200 {"user","csrf_token"} + cookie; 401; 429 + Retry-After
//	GET    /api/v1/session           → 200 {"user","csrf_token"} or 401
//	DELETE /api/v1/session           → 204, the session ends wherever its cookie is (CSRF required)
//	DELETE /api/v1/sessions          → 204, every session of this user ends
//	POST   /api/v1/session/password  {"old_password","new_password"} → 204 or 400 with fields
//	POST   /api/v1/tokens            {"username","password"} → 201 {"token","expires_in","user"} (machines)
//	GET    /ws?last_id=…             websocket of live events (hub)
func (s *Server) sessionRoutes() {
	s.mux.HandleFunc("POST /api/v1/session", s.api(s.signIn))
	s.mux.HandleFunc("GET /api/v1/session", s.authed(s.getSession))
	s.mux.HandleFunc("DELETE /api/v1/session", s.authed(s.signOut))
	s.mux.HandleFunc("DELETE /api/v1/sessions", s.authed(s.signOutAll))
	s.mux.HandleFunc("POST /api/v1/session/password", s.authed(s.changePassword))
	s.mux.HandleFunc("POST /api/v1/tokens", s.api(s.login))
	if s.deps.Hub != nil {
		s.mux.HandleFunc("GET /ws", s.authed(s.websocket))
	}
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// checkLogin runs the limiter and the password check: the attempt is counted before the password is looked
// at, and only a right password clears the count.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request, username, password string) (org.User, error) {
	addr := clientIP(r)
	ok, wait, err := s.limiter.reserve(r.Context(), username, addr)
	if err != nil {
		s.log.Error("login limiter unavailable: refusing logins", "err", err)
		retryAfter(w, 5*time.Second)
		return org.User{}, errUnavailable
	}
	if !ok {
		s.auditLogin(r, org.AuditLoginFailed, org.Actor{}, username, "rate_limited")
		s.log.Warn("login refused by limiter", "username", username, "addr", addr, "wait", wait)
		retryAfter(w, wait)
		return org.User{}, errRateLimit
	}
	u, err := s.checkPassword(r.Context(), s.deps.DB, username, password)
	if err != nil {
		if errors.Is(err, org.ErrAuth) {
			s.auditLogin(r, org.AuditLoginFailed, org.Actor{}, username, r.URL.Path)
			s.log.Info("login failed", "username", username, "addr", addr)
		}
		return org.User{}, err
	}
	s.auditLogin(r, org.AuditLogin, u.Actor(), u.Username, r.URL.Path)
	s.limiter.succeeded(r.Context(), username, addr)
	return u, nil
}

// login exchanges a username and password for a bearer token (valid 12 hours), for machine clients.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var body credentials
	if err := decode(w, r, &body); err != nil {
		return err
	}
	u, err := s.checkLogin(w, r, body.Username, body.Password)
	if err != nil {
		return err
	}
	const ttl = 12 * time.Hour
	tok, err := org.CreateToken(r.Context(), s.deps.DB, u.ID, "login", ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_in": int(ttl / time.Second), "user": u})
}

type sessionView struct {
	User      org.Actor `json:"user"`
	CSRFToken string    `json:"csrf_token"`
}

// signIn starts a browser session. A session cookie the browser already holds is ended first, so a session id
// planted before sign-in (fixation) never becomes a signed-in one: every sign-in gets a new id.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return errNotJSON
	}
	var body credentials
	if err := decode(w, r, &body); err != nil {
		return err
	}
	u, err := s.checkLogin(w, r, body.Username, body.Password)
	if err != nil {
		return err
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := s.sessions.Delete(r.Context(), c.Value); err != nil {
			return err
		}
	}
	id, csrf, err := s.sessions.Create(r.Context(), u.ID, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	s.setCookie(w, r, id)
	s.log.Info("signed in", "user_id", u.ID, "username", u.Username, "addr", clientIP(r))
	return writeJSON(w, http.StatusOK, sessionView{User: u.Actor(), CSRFToken: csrf})
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, value string) {
	// #nosec G124 -- HttpOnly and SameSite always; Secure whenever the request came over TLS or the deployment
	// says TLS ends in front of us (Sessions.SecureCookie). `hotline up` on plain loopback HTTP needs it off.
	c := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || s.deps.Sessions.SecureCookie}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
	// The session endpoints' answers are per user: never cached by a proxy or the browser.
	w.Header().Set("Cache-Control", "no-store")
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	sess := currentSession(r)
	if sess == nil {
		return errNoSession
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, sessionView{User: actor(r), CSRFToken: sess.csrf})
}

// signOut deletes the session row: every client holding the cookie is signed out with it.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	sess := currentSession(r)
	if sess == nil {
		return errNoSession
	}
	if err := s.sessions.Delete(r.Context(), sess.id); err != nil {
		return err
	}
	s.auditLogin(r, org.AuditLogout, actor(r), actor(r).Username, "session")
	s.setCookie(w, r, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// signOutAll ends every browser session of the user (a lost laptop, a shared computer).
func (s *Server) signOutAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.sessions.DeleteUser(r.Context(), actor(r).UserID, ""); err != nil {
		return err
	}
	s.auditLogin(r, org.AuditLogout, actor(r), actor(r).Username, "all_sessions")
	s.setCookie(w, r, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// changePassword: the old password is required (a session left open must not be enough to take the account
// over); the new one follows org.CheckNewPassword. The user's other sessions and login tokens end.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a := actor(r)
	if body.Old == "" {
		return org.Invalid("old_password", "required")
	}
	if err := org.CheckNewPassword(a.Username, body.New); err != nil {
		return err
	}
	if body.New == body.Old {
		return org.Invalid("new_password", "must differ from the old password")
	}
	if _, err := s.checkLogin(w, r, a.Username, body.Old); err != nil {
		if errors.Is(err, org.ErrAuth) {
			return org.Invalid("old_password", "wrong password")
		}
		return err
	}
	keep := ""
	if sess := currentSession(r); sess != nil {
		keep = sess.id
	}
	if err := s.sessions.ChangePassword(r.Context(), s.deps.DB, a.UserID, body.New, keep); err != nil {
		return err
	}
	s.auditLogin(r, org.AuditPasswordChange, a, a.Username, "session")
	s.log.Info("password changed", "user_id", a.UserID, "username", a.Username)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// websocket hands an authenticated request from an allowed origin to the hub.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) error {
	if !s.originAllowed(r) {
		s.log.Warn("websocket refused: origin not allowed", "origin", r.Header.Get("Origin"), "host", r.Host)
		return org.ErrForbidden
	}
	s.deps.Hub.ServeWS(w, r, actor(r), r.URL.Query().Get("last_id"))
	return nil
}

// originAllowed: browsers send Origin on every websocket handshake; a page from another site must not open
// a websocket with our cookie. Without configured origins, the page must come from the host it connects to.
// A request without Origin comes from no browser (it cannot ride a user's cookie across sites) and passes.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.deps.Sessions.ConsoleOrigins) > 0 {
		for _, o := range s.deps.Sessions.ConsoleOrigins {
			if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
				return true
			}
		}
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

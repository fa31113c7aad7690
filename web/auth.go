package web

import (
	"hotline/ticketing/org"
	"net/http"
	"strings"
)

// authed wraps a handler that needs an actor: a bearer token (the API) resolves to the user. Sessions for the
// console come with the consoles.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			writeError(w, r, s.log, org.ErrAuth)
			return
		}
		actor, err := org.ActorByToken(r.Context(), s.deps.DB, strings.TrimSpace(token))
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		h(w, r.WithContext(org.WithActor(r.Context(), actor)))
	}
}

// actor returns the authenticated actor; only call it inside authed handlers.
func actor(r *http.Request) org.Actor {
	a, _ := org.ActorFrom(r.Context())
	return a
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, actor(r))
}

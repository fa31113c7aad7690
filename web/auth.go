package web

import (
	"hotline/ticketing/org"
	"net/http"
	"strings"
)

// authed wraps a handler that needs an actor: a bearer token (the API) resolves to the user. Sessions for the
// console come with the consoles.
func (s *Server) authed(h handler) http.HandlerFunc {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return org.ErrAuth
		}
		actor, err := org.ActorByToken(r.Context(), s.deps.DB, strings.TrimSpace(token))
		if err != nil {
			return err
		}
		noteActor(r, actor) // for the audit row of a refusal (guard)
		return h(w, r.WithContext(org.WithActor(r.Context(), actor)))
	})
}

// actor returns the authenticated actor; only call it inside authed handlers.
func actor(r *http.Request) org.Actor {
	a, _ := org.ActorFrom(r.Context())
	return a
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, actor(r))
}

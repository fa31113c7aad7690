package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"hotline/ticketing/org"
)

// guard is the outermost layer of the API: it refuses a NUL anywhere in the path or query (PostgreSQL text cannot
// hold one, so it would otherwise surface as a 500), and writes a security audit row for every request refused
// for role or scope (403), with the actor and the source address.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.IndexByte(r.URL.Path, 0) >= 0 || strings.IndexByte(r.URL.RawQuery, 0) >= 0 ||
			strings.Contains(r.URL.RawQuery, "%00") || strings.Contains(r.URL.RawPath, "%00") {
			writeError(w, r, s.log, errNUL)
			return
		}
		r = withClientIP(r, s.deps.Public.TrustedHops)
		ref := &refusal{}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), refusalKey{}, ref)))
		if ref.err != nil && s.deps.DB != nil {
			// Recorded after the answer, on a context of its own: the client's hang-up must not lose the row.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
			defer cancel()
			err := org.Audit(ctx, s.deps.DB, ref.actor, org.AuditEntry{Kind: org.AuditForbidden, SourceAddr: clientIP(r),
				Object: r.Method + " " + r.URL.Path, Detail: map[string]any{"error": ref.err.Error()}})
			if err != nil {
				s.log.Error("security audit", "err", err)
			}
		}
	})
}

type refusalKey struct{}

// refusal carries a 403 from writeError (deep inside a handler, where the actor is known) out to guard.
type refusal struct {
	err   error
	actor org.Actor
}

func noteRefusal(r *http.Request, err error) {
	if ref, ok := r.Context().Value(refusalKey{}).(*refusal); ok {
		ref.err = err
		if a, ok := org.ActorFrom(r.Context()); ok {
			ref.actor = a
		}
	}
}

// noteActor tells guard who is asking, once authentication knows (the error of a handler is written with the
// request as it was before the actor was added to it).
func noteActor(r *http.Request, a org.Actor) {
	if ref, ok := r.Context().Value(refusalKey{}).(*refusal); ok {
		ref.actor = a
	}
}

// methods the API answers; notFound tries each to tell a wrong method (405) from a wrong path (404).
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods lists the methods some route other than the catch-all serves for this path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range methods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/api/" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

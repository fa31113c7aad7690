package web

import (
	"net/http"
	"strings"
	"time"

	"hotline/ticketing/org"
)

// securityRoutes: the security audit log (admins) and revoking one's own bearer token.
func (s *Server) securityRoutes() {
	s.mux.HandleFunc("GET /api/v1/security-audit", s.authed(s.listAudit))
	s.mux.HandleFunc("DELETE /api/v1/tokens/current", s.authed(s.revokeToken))
}

// listAudit: ?kind=&actor_id=&username=&object=&from=&to=&before=&limit= (newest first; next page: before=<last id>).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := org.AuditFilter{Kind: org.AuditKind(q.Get("kind")), Username: q.Get("username"), Object: q.Get("object"),
		ActorID: org.UserID(q.int("actor_id")), From: q.time("from", time.Time{}), To: q.time("to", time.Time{}),
		Before: q.int("before"), Limit: int(q.int("limit"))}
	if err := q.err(); err != nil {
		return err
	}
	es, err := org.ListAudit(r.Context(), s.deps.DB, actor(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

// revokeToken ends the bearer token the request came with: at once in every process (the token cache is told
// through Redis), and audited as a sign-out.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return org.Invalid("Authorization", "no bearer token in this request: a browser session ends with DELETE /api/v1/session")
	}
	a := actor(r)
	if err := org.RevokeToken(r.Context(), s.deps.DB, s.deps.Redis, s.deps.TokenChannel, strings.TrimSpace(token)); err != nil {
		return err
	}
	if err := org.Audit(r.Context(), s.deps.DB, a, org.AuditEntry{Kind: org.AuditLogout, SourceAddr: clientIP(r),
		Detail: map[string]any{"via": "token"}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

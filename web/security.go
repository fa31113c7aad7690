package web

import (
	"net/http"
	"strings"

	"hotline/ticketing/org"
)

// securityRoutes: the security audit log (admins) and revoking one's own bearer token.
func (s *Server) securityRoutes() {
	s.mux.HandleFunc("GET /api/v1/security-audit", s.authed(s.api(s.listAudit)))
	s.mux.HandleFunc("DELETE /api/v1/tokens/current", s.authed(s.api(s.revokeToken)))
}

// listAudit: ?kind=&actor_id=&username=&object=&from=&to=&before=&limit= (newest first; next page: before=<last id>).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := org.AuditFilter{Kind: org.AuditKind(q.Get("kind")), Username: q.Get("username"), Object: q.Get("object")}
	var err error
	if f.From, err = queryTime(r, "from", f.From); err != nil {
		return err
	}
	if f.To, err = queryTime(r, "to", f.To); err != nil {
		return err
	}
	var n int64
	if n, err = queryInt(r, "actor_id"); err != nil {
		return err
	}
	f.ActorID = org.UserID(n)
	if f.Before, err = queryInt(r, "before"); err != nil {
		return err
	}
	if n, err = queryInt(r, "limit"); err != nil {
		return err
	}
	f.Limit = int(n)
	es, err := org.ListAudit(r.Context(), s.deps.DB, actor(r), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es})
	return nil
}

// revokeToken ends the bearer token the request came with: at once in every process (the token cache is told
// through Redis), and audited as a sign-out.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
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

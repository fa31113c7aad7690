package web

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"hotline/telephony"
	"hotline/telephony/sipua"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// adminRoutes: administration (系统管理) — users, units, agents' SIP accounts, the admin audit log, and the routing
// directory's dry run and rule history. Every change writes an admin_audit row in its own transaction; the one
// authorization question is org.MayAdminister (ticketing's for the routing pieces).
func (s *Server) adminRoutes() {
	s.mux.HandleFunc("GET /api/v1/admin/users", s.authed(s.adminListUsers))
	s.mux.HandleFunc("POST /api/v1/admin/users", s.authed(s.adminCreateUser))
	s.mux.HandleFunc("PUT /api/v1/admin/users/{id}", s.authed(s.adminUpdateUser))
	s.mux.HandleFunc("POST /api/v1/admin/users/{id}/password", s.authed(s.adminResetPassword))
	s.mux.HandleFunc("PUT /api/v1/admin/users/{id}/sip-account", s.authed(s.adminSetSIPAccount))
	s.mux.HandleFunc("POST /api/v1/admin/units", s.authed(s.adminCreateUnit))
	s.mux.HandleFunc("PUT /api/v1/admin/units/{id}", s.authed(s.adminUpdateUnit))
	s.mux.HandleFunc("DELETE /api/v1/admin/units/{id}", s.authed(s.adminDeleteUnit))
	s.mux.HandleFunc("GET /api/v1/admin/audit", s.authed(s.adminAudit))
	s.mux.HandleFunc("GET /api/v1/admin/trunks", s.authed(s.adminListTrunks))
	s.mux.HandleFunc("GET /api/v1/admin/holidays", s.authed(s.adminHolidayUploads))
	s.mux.HandleFunc("POST /api/v1/admin/holidays", s.authed(s.adminUploadHolidays))
	s.mux.HandleFunc("PUT /api/v1/admin/trunks/{name}", s.authed(s.adminSaveTrunk))
	s.mux.HandleFunc("DELETE /api/v1/admin/trunks/{name}", s.authed(s.adminDeleteTrunk))
	if s.deps.Tickets != nil {
		s.mux.HandleFunc("POST /api/v1/routing-rules/dry-run", s.authed(s.routingDryRun))
		s.mux.HandleFunc("GET /api/v1/routing-rules/{id}/history", s.authed(s.routingRuleHistory))
	}
}

func source(r *http.Request) org.Source { return org.Source{Addr: clientIP(r)} }

// adminListUsers: ?q=&role=&unit_id=&active=&limit=
func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := org.UserFilter{Q: q.Get("q"), Role: org.Role(q.Get("role")), UnitID: org.UnitID(q.int("unit_id")), Limit: int(q.int("limit"))}
	if q.Get("active") != "" {
		b := q.bool("active")
		f.Active = &b
	}
	if err := q.err(); err != nil {
		return err
	}
	us, err := org.ListUsers(r.Context(), s.deps.DB, actor(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

// adminUserInput is the body of a new user: the password is set by the admin and told to the user out of band.
type adminUserInput struct {
	Username    string           `json:"username"`
	DisplayName string           `json:"display_name"`
	Password    string           `json:"password"`
	Role        org.Role         `json:"role"`
	UnitID      org.UnitID       `json:"unit_id"`
	Permissions []org.Permission `json:"permissions"`
}

func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request) error {
	var in adminUserInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := org.AdminCreateUser(r.Context(), s.deps.DB, actor(r), source(r), org.NewUser{Username: in.Username,
		DisplayName: in.DisplayName, Password: in.Password, Role: in.Role, UnitID: in.UnitID, Permissions: in.Permissions})
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/admin/users/%d", u.ID))
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) adminUpdateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p org.UserPatch
	if err := decode(w, r, &p); err != nil {
		return err
	}
	u, err := org.UpdateUser(r.Context(), s.deps.DB, actor(r), source(r), org.UserID(id), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) adminResetPassword(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if err := org.ResetPassword(r.Context(), s.deps.DB, actor(r), source(r), org.UserID(id), body.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminSetSIPAccount gives an agent SIP credentials (realm HOTLINE_SIP_REALM); the audit row keeps the SIP user
// and skills, never the password.
func (s *Server) adminSetSIPAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		SIPUser  string   `json:"sip_user"`
		Password string   `json:"password"`
		Skills   []string `json:"skills"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a := actor(r)
	if err := org.MayAdminister(a); err != nil {
		return err
	}
	err = telephony.SetSIPAccountAudited(r.Context(), s.deps.DB, a, source(r), org.UserID(id), body.SIPUser, s.realm(), body.Password, body.Skills)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) adminCreateUnit(w http.ResponseWriter, r *http.Request) error {
	var in org.NewUnit
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := org.CreateUnit(r.Context(), s.deps.DB, actor(r), source(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) adminUpdateUnit(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p org.UnitPatch
	if err := decode(w, r, &p); err != nil {
		return err
	}
	u, err := org.UpdateUnit(r.Context(), s.deps.DB, actor(r), source(r), org.UnitID(id), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) adminDeleteUnit(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := org.DeleteUnit(r.Context(), s.deps.DB, actor(r), source(r), org.UnitID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminAudit: ?action=&actor_id=&username=&object=&from=&to=&before=&limit= (newest first; next page:
// before=<last id>). action "user." selects every user action.
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := org.AdminAuditFilter{Action: q.Get("action"), Username: q.Get("username"), Object: q.Get("object"),
		ActorID: org.UserID(q.int("actor_id")), From: q.time("from", time.Time{}), To: q.time("to", time.Time{}),
		Before: q.int("before"), Limit: int(q.int("limit"))}
	if err := q.err(); err != nil {
		return err
	}
	es, err := org.ListAdminAudit(r.Context(), s.deps.DB, actor(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

func (s *Server) routingDryRun(w http.ResponseWriter, r *http.Request) error {
	var q ticketing.RouteQuestion
	if err := decode(w, r, &q); err != nil {
		return err
	}
	ans, err := s.deps.Tickets.Service.DryRoute(r.Context(), actor(r), q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ans)
}

func (s *Server) routingRuleHistory(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	vs, err := s.deps.Tickets.Service.RuleHistory(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) realm() string {
	if s.deps.SIPRealm == "" {
		return "hotline"
	}
	return s.deps.SIPRealm
}

// adminListTrunks: the stored trunks, each marked when HOTLINE_SIP_TRUNKS defines one of the same name (which is
// the one in force), and the names of the environment's trunks.
func (s *Server) adminListTrunks(w http.ResponseWriter, r *http.Request) error {
	ts, err := sipua.ListStoredTrunks(r.Context(), s.deps.DB, actor(r))
	if err != nil {
		return err
	}
	for i := range ts {
		ts[i].FromEnv = slices.Contains(s.deps.EnvTrunks, ts[i].Name)
	}
	env := s.deps.EnvTrunks
	if env == nil {
		env = []string{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"trunks": ts, "env_trunks": env})
}

func (s *Server) adminSaveTrunk(w http.ResponseWriter, r *http.Request) error {
	var in sipua.TrunkInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	t, err := sipua.SaveTrunk(r.Context(), s.deps.DB, actor(r), source(r), r.PathValue("name"), in, s.realm())
	if err != nil {
		return err
	}
	t.FromEnv = slices.Contains(s.deps.EnvTrunks, t.Name)
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) adminDeleteTrunk(w http.ResponseWriter, r *http.Request) error {
	if err := sipua.DeleteTrunk(r.Context(), s.deps.DB, actor(r), source(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) adminHolidayUploads(w http.ResponseWriter, r *http.Request) error {
	us, err := ticketing.HolidayUploads(r.Context(), s.deps.DB, actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"uploads": us})
}

// adminUploadHolidays takes the holiday calendar as the request body (text/csv, the cn_holidays.csv format).
func (s *Server) adminUploadHolidays(w http.ResponseWriter, r *http.Request) error {
	if err := org.MayAdminister(actor(r)); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		return errTooLarge
	}
	u, err := ticketing.UploadHolidays(r.Context(), s.deps.DB, actor(r), source(r), string(body), s.now())
	if err != nil {
		return err
	}
	if s.deps.Tickets != nil && s.deps.Tickets.Service != nil {
		// In force here at once; other processes take it up within HOTLINE_SLA_SWEEP_INTERVAL (FollowCalendar).
		if err := s.deps.Tickets.Service.ReloadCalendar(r.Context()); err != nil {
			s.log.Warn("holiday calendar stored but not loaded here; the calendar follower will retry", "upload", u.ID, "err", err)
		}
	}
	return writeJSON(w, http.StatusCreated, u)
}

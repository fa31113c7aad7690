package web

import (
	"errors"
	"net/http"
	"strconv"

	"hotline/telephony"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// consoleRoutes registers what the consoles read beyond the resource API: the region picker, merge suggestions
// for a ticket being typed, the division console's list counts, the agent's own state with its SIP registration,
// and the calls and recordings of a ticket.
func (s *Server) consoleRoutes() {
	s.mux.HandleFunc("GET /api/v1/regions", s.authed(s.listRegions))
	s.mux.HandleFunc("GET /api/v1/units/{unit}/users", s.authed(s.unitUsers))
	if s.deps.Tickets != nil && s.deps.Tickets.Service != nil {
		s.mux.HandleFunc("GET /api/v1/ticket-suggestions", s.authed(s.ticketSuggestions))
		s.mux.HandleFunc("GET /api/v1/ticket-counts", s.authed(s.ticketCounts))
	}
	if s.deps.Telephony != nil {
		s.mux.HandleFunc("GET /api/v1/agents/me", s.authed(s.agentMe))
		s.mux.HandleFunc("GET /api/v1/tickets/{id}/calls", s.authed(s.ticketCalls))
	}
}

type regionView struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Level  string `json:"level"`
	IsLeaf bool   `json:"leaf"`
}

// listRegions: ?parent=CODE lists the divisions under CODE (default: the province's prefectures), for the
// prefecture → county → township picker.
func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) error {
	parent := r.URL.Query().Get("parent")
	if parent == "" {
		parent = "430000"
	}
	if _, ok := region.Lookup(parent); !ok {
		return org.Invalid("parent", "not a Hunan region code")
	}
	out := []regionView{}
	for _, c := range region.Children(parent) {
		if c.StatisticalOnly {
			continue
		}
		out = append(out, regionView{Code: c.Code, Name: c.Name, Level: string(c.Level), IsLeaf: c.Level == region.LevelTownship})
	}
	writeJSON(w, http.StatusOK, map[string]any{"regions": out})
	return nil
}

// ticketSuggestions: ?category=&household_id=&call_id= (or &phone= for those who hold the number) returns the
// open tickets a new ticket would duplicate, so the agent can merge instead of opening another.
func (s *Server) ticketSuggestions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	category := q.Get("category")
	if category == "" {
		return org.Invalid("category", "required")
	}
	var household *int64
	if v := q.Get("household_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return org.Invalid("household_id", "a household id")
		}
		household = &n
	}
	phone := q.Get("phone")
	if v := q.Get("call_id"); v != "" && s.deps.Telephony != nil {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return org.Invalid("call_id", "a call id")
		}
		if phone, err = s.deps.Telephony.CallerForTicket(r.Context(), actor(r), telephony.CallID(n)); err != nil {
			var se *org.StateError
			if !errors.As(err, &se) || !errors.Is(err, org.ErrState) {
				return err
			}
			phone = "" // already linked: suggestions by household only
		}
	}
	ds, err := s.tickets().Suggest(r.Context(), actor(r), phone, household, category)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"duplicates": ds})
	return nil
}

func (s *Server) ticketCounts(w http.ResponseWriter, r *http.Request) error {
	c, err := s.tickets().UnitCounts(r.Context(), actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// agentMe is the agent's own state for the state bar, with how many phones are registered for it.
func (s *Server) agentMe(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	if a.Role != org.RoleAgent {
		return &org.StateError{Action: "agent_state", State: "role", Allowed: []string{}, Reason: org.ErrForbidden}
	}
	ag, err := telephony.GetAgent(r.Context(), s.deps.DB, a.UserID)
	if err != nil {
		return err
	}
	body := map[string]any{"agent": ag, "registered": nil}
	if s.deps.SIPBindings != nil && ag.SIPUser != "" {
		n, err := s.deps.SIPBindings(r.Context(), ag.SIPUser)
		if err != nil {
			return err
		}
		body["registered"] = n
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) ticketCalls(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// Who may see the ticket may hear its calls: ask the ticket service, whatever telephony was built with.
	if s.deps.Tickets != nil && s.deps.Tickets.Service != nil {
		if _, err := s.tickets().Get(r.Context(), actor(r), org.TicketID(id)); err != nil {
			return err
		}
	}
	cs, err := s.deps.Telephony.TicketCalls(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": cs})
	return nil
}

// unitUsers lists a unit's people (id, name, role) for the head who assigns within the unit; a unit's own users,
// supervisors and admins may read it.
func (s *Server) unitUsers(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "unit")
	if err != nil {
		return err
	}
	a := actor(r)
	if a.UnitID != org.UnitID(id) && a.Role != org.RoleSupervisor && a.Role != org.RoleAdmin {
		return &org.StateError{Action: "list_unit_users", State: "other_unit", Allowed: []string{}, Reason: org.ErrForbidden}
	}
	us, err := org.UnitUsers(r.Context(), s.deps.DB, org.UnitID(id))
	if err != nil {
		return err
	}
	type person struct {
		ID   org.UserID `json:"id"`
		Name string     `json:"name"`
		Role org.Role   `json:"role"`
	}
	out := make([]person, len(us))
	for i, u := range us {
		out[i] = person{ID: u.ID, Name: u.DisplayName, Role: u.Role}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

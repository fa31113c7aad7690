package web

import (
	"net/http"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// workorderRoutes registers what the whole work order adds beyond the ticket actions (which ticketRoutes
// registers from ticketing.Actions): a unit's reply-approval setting (审核) and the holiday calendar's status.
func (s *Server) workorderRoutes() {
	if s.deps.Tickets == nil || s.deps.Tickets.Service == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/units/{unit}/reply-approval", s.authed(s.getReplyApproval))
	s.mux.HandleFunc("PUT /api/v1/units/{unit}/reply-approval", s.authed(s.putReplyApproval))
	s.mux.HandleFunc("GET /api/v1/calendar", s.authed(s.calendarStatus))
}

func (s *Server) getReplyApproval(w http.ResponseWriter, r *http.Request) error {
	unit, err := pathID(r, "unit")
	if err != nil {
		return err
	}
	on, err := s.tickets().ReplyApproval(r.Context(), actor(r), org.UnitID(unit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"unit_id": unit, "required": on})
}

// putReplyApproval turns a unit's reply approval on or off ({"required": true}); admins and the unit's heads.
func (s *Server) putReplyApproval(w http.ResponseWriter, r *http.Request) error {
	unit, err := pathID(r, "unit")
	if err != nil {
		return err
	}
	var b struct {
		Required *bool `json:"required"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := ticketing.AuthorizeReplyApproval(actor(r), org.UnitID(unit), true); err != nil {
		return err
	}
	if b.Required == nil {
		return org.Invalid("required", "true or false")
	}
	if err := s.tickets().SetReplyApproval(r.Context(), actor(r), source(r), org.UnitID(unit), *b.Required); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"unit_id": unit, "required": *b.Required})
}

// calendarStatus shows how far the holiday calendar reaches and the warning when next year is missing (admins).
func (s *Server) calendarStatus(w http.ResponseWriter, r *http.Request) error {
	if err := ticketing.AuthorizeCalendar(actor(r)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.tickets().CalendarStatus())
}

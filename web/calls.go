package web

import (
	"net/http"
	"strconv"
	"time"

	"hotline/telephony"
	"hotline/ticketing/org"
)

// Telephony endpoints: agent states, calls (CDRs) and KPIs, callback tasks, recordings.
func (s *Server) callRoutes() {
	if s.deps.Telephony == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/agents", s.authed(s.listAgents))
	s.mux.HandleFunc("PUT /api/v1/agents/{id}/state", s.authed(s.setAgentState))
	s.mux.HandleFunc("GET /api/v1/calls", s.authed(s.listCalls))
	s.mux.HandleFunc("GET /api/v1/calls/kpis", s.authed(s.callKPIs))
	s.mux.HandleFunc("GET /api/v1/calls/{id}", s.authed(s.getCall))
	s.mux.HandleFunc("PUT /api/v1/calls/{id}/ticket", s.authed(s.linkCallTicket))
	s.mux.HandleFunc("GET /api/v1/callbacks", s.authed(s.listCallbacks))
	s.mux.HandleFunc("POST /api/v1/callbacks/{id}/close", s.authed(s.closeCallback))
	s.mux.HandleFunc("GET /api/v1/recordings/{id}", s.authed(s.getRecording))
	if s.deps.Monitoring != nil {
		s.mux.HandleFunc("GET /api/v1/calls/{id}/caller-lookup", s.authed(s.callCallerLookup))
	}
}

// callCallerLookup is the agent's lookup of the caller of the call it is on: the number comes from the call, so
// no lookup_pii is needed (and none can be typed).
func (s *Server) callCallerLookup(w http.ResponseWriter, r *http.Request) error {
	id, err := callID(r)
	if err != nil {
		return err
	}
	number, err := s.deps.Telephony.LiveCaller(r.Context(), actor(r), telephony.CallID(id))
	if err != nil {
		return err
	}
	ms, err := s.deps.Monitoring.CallerLookupForCall(r.Context(), actor(r), number, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"matches": ms})
}

func callID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, org.Invalid("id", "not an id")
	}
	return id, nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) error {
	as, err := s.deps.Telephony.Agents(r.Context(), actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"agents": as})
}

// setAgentState: {"state": "ready" | "paused" | "offline", "reason": "..."}; id "me" is the caller itself.
func (s *Server) setAgentState(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	id := a.UserID
	if r.PathValue("id") != "me" {
		n, err := callID(r)
		if err != nil {
			return err
		}
		id = org.UserID(n)
	}
	var body struct {
		State  telephony.AgentState `json:"state"`
		Reason string               `json:"reason"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	ag, err := s.deps.Telephony.SetAgentState(r.Context(), a, id, body.State, body.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ag)
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := telephony.CDRFilter{From: q.time("from", time.Time{}), To: q.time("to", time.Time{}),
		AgentID: org.UserID(q.int("agent_id")), BeforeID: telephony.CallID(q.int("before_id")), Limit: int(q.int("limit")),
		Caller: q.Get("caller"), Disposition: telephony.Disposition(q.Get("disposition"))}
	if err := q.err(); err != nil {
		return err
	}
	cs, err := s.deps.Telephony.CDRs(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"calls": cs})
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) error {
	id, err := callID(r)
	if err != nil {
		return err
	}
	c, err := s.deps.Telephony.CDR(r.Context(), actor(r), telephony.CallID(id))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// linkCallTicket: {"ticket_id": N} links the call and its recording to the ticket opened for it.
func (s *Server) linkCallTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := callID(r)
	if err != nil {
		return err
	}
	var body struct {
		TicketID int64 `json:"ticket_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.deps.Telephony.LinkTicket(r.Context(), actor(r), telephony.CallID(id), body.TicketID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// callKPIs: ?per=hour|day&from=&to= (default: the last 24 hours per hour).
func (s *Server) callKPIs(w http.ResponseWriter, r *http.Request) error {
	now, q := time.Now(), query(r)
	from, to, per := q.time("from", now.Add(-24*time.Hour)), q.time("to", now), q.Get("per")
	if err := q.err(); err != nil {
		return err
	}
	if per == "" {
		per = "hour"
	}
	ks, err := s.deps.Telephony.KPIs(r.Context(), actor(r), per, from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"per": per, "kpis": ks})
}

func (s *Server) listCallbacks(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	limit := q.int("limit")
	if err := q.err(); err != nil {
		return err
	}
	cbs, err := s.deps.Telephony.Callbacks(r.Context(), actor(r), q.Get("status"), int(limit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"callbacks": cbs})
}

func (s *Server) closeCallback(w http.ResponseWriter, r *http.Request) error {
	id, err := callID(r)
	if err != nil {
		return err
	}
	var body struct {
		Note string `json:"note"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	cb, err := s.deps.Telephony.CloseCallback(r.Context(), actor(r), telephony.CallbackID(id), body.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cb)
}

// getRecording serves the WAV file (with range requests, for seeking in the console's player) to those who may
// hear it.
func (s *Server) getRecording(w http.ResponseWriter, r *http.Request) error {
	id, err := callID(r)
	if err != nil {
		return err
	}
	rec, f, err := s.deps.Telephony.OpenRecording(r.Context(), actor(r), telephony.RecordingID(id))
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="call-`+strconv.FormatInt(int64(rec.CallID), 10)+"-"+rec.Kind+`.wav"`)
	http.ServeContent(w, r, "", rec.CreatedAt.Truncate(time.Second), f)
	return nil
}

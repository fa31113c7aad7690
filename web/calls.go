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
		s.mux.HandleFunc("GET /api/v1/calls/{id}/caller-lookup", s.authed(s.api(s.callCallerLookup)))
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
	writeJSON(w, http.StatusOK, map[string]any{"matches": ms})
	return nil
}

func callID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, org.Invalid("id", "not an id")
	}
	return id, nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	as, err := s.deps.Telephony.Agents(r.Context(), actor(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": as})
}

// setAgentState: {"state": "ready" | "paused" | "offline", "reason": "..."}; id "me" is the caller itself.
func (s *Server) setAgentState(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
	id := a.UserID
	if r.PathValue("id") != "me" {
		n, err := callID(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		id = org.UserID(n)
	}
	var body struct {
		State  telephony.AgentState `json:"state"`
		Reason string               `json:"reason"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	ag, err := s.deps.Telephony.SetAgentState(r.Context(), a, id, body.State, body.Reason)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, ag)
}

func queryTime(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, org.Invalid(name, "RFC 3339 time, e.g. 2026-11-30T08:00:00+08:00")
	}
	return t, nil
}

func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, org.Invalid(name, "a whole number")
	}
	return n, nil
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	var f telephony.CDRFilter
	var err error
	q := r.URL.Query()
	f.From, err = queryTime(r, "from", time.Time{})
	if err == nil {
		f.To, err = queryTime(r, "to", time.Time{})
	}
	var agent, before, limit int64
	if err == nil {
		agent, err = queryInt(r, "agent_id")
	}
	if err == nil {
		before, err = queryInt(r, "before_id")
	}
	if err == nil {
		limit, err = queryInt(r, "limit")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	f.AgentID, f.BeforeID, f.Limit = org.UserID(agent), telephony.CallID(before), int(limit)
	f.Caller, f.Disposition = q.Get("caller"), telephony.Disposition(q.Get("disposition"))
	cs, err := s.deps.Telephony.CDRs(r.Context(), actor(r), f)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": cs})
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	id, err := callID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := s.deps.Telephony.CDR(r.Context(), actor(r), telephony.CallID(id))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// linkCallTicket: {"ticket_id": N} links the call and its recording to the ticket opened for it.
func (s *Server) linkCallTicket(w http.ResponseWriter, r *http.Request) {
	id, err := callID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var body struct {
		TicketID int64 `json:"ticket_id"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := s.deps.Telephony.LinkTicket(r.Context(), actor(r), telephony.CallID(id), body.TicketID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// callKPIs: ?per=hour|day&from=&to= (default: the last 24 hours per hour).
func (s *Server) callKPIs(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	from, err := queryTime(r, "from", now.Add(-24*time.Hour))
	var to time.Time
	if err == nil {
		to, err = queryTime(r, "to", now)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	per := r.URL.Query().Get("per")
	if per == "" {
		per = "hour"
	}
	ks, err := s.deps.Telephony.KPIs(r.Context(), actor(r), per, from, to)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"per": per, "kpis": ks})
}

func (s *Server) listCallbacks(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	cbs, err := s.deps.Telephony.Callbacks(r.Context(), actor(r), r.URL.Query().Get("status"), int(limit))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"callbacks": cbs})
}

func (s *Server) closeCallback(w http.ResponseWriter, r *http.Request) {
	id, err := callID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var body struct {
		Note string `json:"note"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	cb, err := s.deps.Telephony.CloseCallback(r.Context(), actor(r), telephony.CallbackID(id), body.Note)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, cb)
}

// getRecording serves the WAV file (with range requests, for seeking in the console's player) to those who may
// hear it.
func (s *Server) getRecording(w http.ResponseWriter, r *http.Request) {
	id, err := callID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rec, f, err := s.deps.Telephony.OpenRecording(r.Context(), actor(r), telephony.RecordingID(id))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="call-`+strconv.FormatInt(int64(rec.CallID), 10)+"-"+rec.Kind+`.wav"`)
	http.ServeContent(w, r, "", st.ModTime(), f)
}

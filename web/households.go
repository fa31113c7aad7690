package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"hotline/telephony"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// maxImport is the largest household CSV accepted over HTTP (about 500,000 rows); larger files go through
// `hotline import households FILE`.
const maxImport = 64 << 20

// householdRoutes registers the monitoring-record endpoints.
func (s *Server) householdRoutes() {
	if s.deps.Monitoring == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/households", s.authed(s.searchHouseholds))
	s.mux.HandleFunc("POST /api/v1/households", s.authed(s.createHousehold))
	s.mux.HandleFunc("GET /api/v1/households/meta", s.authed(s.householdMeta))
	s.mux.HandleFunc("POST /api/v1/households/import", s.authed(s.importHouseholds))
	s.mux.HandleFunc("GET /api/v1/households/export", s.authed(s.exportHouseholds))
	s.mux.HandleFunc("GET /api/v1/households/{id}", s.authed(s.getHousehold))
	s.mux.HandleFunc("PUT /api/v1/households/{id}", s.authed(s.updateHousehold))
	s.mux.HandleFunc("POST /api/v1/households/{id}/actions/{action}", s.authed(s.householdAction))
	s.mux.HandleFunc("GET /api/v1/households/{id}/timeline", s.authed(s.householdTimeline))
	s.mux.HandleFunc("POST /api/v1/households/{id}/contacts", s.authed(s.addHouseholdContact))
	s.mux.HandleFunc("POST /api/v1/households/{id}/reveal", s.authed(s.revealHousehold))
	s.mux.HandleFunc("GET /api/v1/households/{id}/reveals", s.authed(s.householdReveals))
	s.mux.HandleFunc("GET /api/v1/caller-lookup", s.authed(s.callerLookup))
}

func householdID(r *http.Request) (org.HouseholdID, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("household id %q: %w", r.PathValue("id"), org.ErrNotFound)
	}
	return org.HouseholdID(id), nil
}

func householdQuery(r *http.Request) (monitoring.Query, error) {
	v := query(r)
	q := monitoring.Query{Number: v.Get("number"), Name: v.Get("name"), Phone: v.Get("phone"), IDNumber: v.Get("id_number"), IDLast4: v.Get("id_last4"),
		Region: v.Get("region"), Clock: v.Get("clock"), MonitoringType: monitoring.MonitoringType(v.Get("monitoring_type")),
		RiskType: monitoring.RiskType(v.Get("risk_type")), Status: monitoring.Status(v.Get("status")),
		NoContactDays: int(v.int("no_contact_days")), After: org.HouseholdID(v.int("after")), Limit: int(v.int("limit"))}
	return q, v.err()
}

func (s *Server) searchHouseholds(w http.ResponseWriter, r *http.Request) error {
	q, err := householdQuery(r)
	if err == nil {
		var page monitoring.Page
		if page, err = s.deps.Monitoring.Search(r.Context(), actor(r), q); err == nil {
			return writeJSON(w, http.StatusOK, page)
		}
	}
	return err
}

func (s *Server) householdMeta(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"monitoring_types": monitoring.MonitoringTypes,
		"risk_types": monitoring.RiskTypes, "statuses": monitoring.Statuses})
}

func (s *Server) createHousehold(w http.ResponseWriter, r *http.Request) error {
	var in monitoring.HouseholdInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	h, err := s.deps.Monitoring.Create(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/households/%d", h.ID))
	return writeJSON(w, http.StatusCreated, h)
}

func (s *Server) getHousehold(w http.ResponseWriter, r *http.Request) error {
	id, err := householdID(r)
	if err == nil {
		var h monitoring.Household
		if h, err = s.deps.Monitoring.Read(r.Context(), actor(r), id); err == nil {
			// The loop actions of the status, and none to one who may read but not move the household (the
			// console shows exactly what the user may do; the action itself asks again).
			allowed := monitoring.AllowedActions(h.Status)
			if s.deps.Monitoring.AuthorizeID(r.Context(), s.deps.DB, actor(r), monitoring.AccessLoop, id) != nil {
				allowed = []string{}
			}
			return writeJSON(w, http.StatusOK, map[string]any{"household": h, "allowed_actions": allowed})
		}
	}
	return err
}

func (s *Server) updateHousehold(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Version int `json:"version"`
		monitoring.HouseholdInput
	}
	id, err := householdID(r)
	if err == nil {
		err = decode(w, r, &body)
	}
	if err == nil {
		var h monitoring.Household
		if h, err = s.deps.Monitoring.Update(r.Context(), actor(r), id, body.Version, body.HouseholdInput); err == nil {
			return writeJSON(w, http.StatusOK, h)
		}
	}
	return err
}

func (s *Server) householdAction(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Reason string `json:"reason"`
	}
	id, err := householdID(r)
	if err == nil {
		err = decode(w, r, &body)
	}
	if err == nil {
		var h monitoring.Household
		h, err = s.deps.Monitoring.Act(r.Context(), actor(r), id, monitoring.Action(r.PathValue("action")), body.Reason)
		if err == nil {
			return writeJSON(w, http.StatusOK, h)
		}
	}
	return err
}

func (s *Server) householdTimeline(w http.ResponseWriter, r *http.Request) error {
	id, err := householdID(r)
	if err == nil {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var tl []monitoring.TimelineEntry
		if tl, err = s.deps.Monitoring.Timeline(r.Context(), actor(r), id, limit); err == nil {
			return writeJSON(w, http.StatusOK, map[string]any{"timeline": s.withRecordings(r, tl)})
		}
	}
	return err
}

func (s *Server) addHouseholdContact(w http.ResponseWriter, r *http.Request) error {
	var c monitoring.Contact
	id, err := householdID(r)
	if err == nil {
		err = decode(w, r, &c)
	}
	if err == nil {
		c.HouseholdID = id
		if c, err = s.deps.Monitoring.AddContact(r.Context(), actor(r), c); err == nil {
			return writeJSON(w, http.StatusCreated, c)
		}
	}
	return err
}

func (s *Server) revealHousehold(w http.ResponseWriter, r *http.Request) error {
	var req monitoring.RevealRequest
	id, err := householdID(r)
	if err == nil {
		err = decode(w, r, &req)
	}
	if err == nil {
		var out monitoring.Revealed
		if out, err = s.deps.Monitoring.Reveal(r.Context(), actor(r), id, req); err == nil {
			w.Header().Set("Cache-Control", "no-store")
			return writeJSON(w, http.StatusOK, out)
		}
	}
	return err
}

func (s *Server) householdReveals(w http.ResponseWriter, r *http.Request) error {
	id, err := householdID(r)
	if err == nil && !actor(r).Can(org.PermRevealPII) {
		err = fmt.Errorf("read the personal-data audit: %w", org.ErrForbidden)
	}
	if err == nil {
		var rs []monitoring.Reveal
		if rs, err = s.deps.Monitoring.Reveals(r.Context(), id, 0); err == nil {
			return writeJSON(w, http.StatusOK, map[string]any{"reveals": rs})
		}
	}
	return err
}

// importHouseholds takes the CSV file as the request body (text/csv, UTF-8 or GBK), read as a stream, and
// answers with the report. A file with unknown columns is refused with 422 and the report (which names the
// nearest known column) unless ?accept_unknown_columns=1 confirms it.
func (s *Server) importHouseholds(w http.ResponseWriter, r *http.Request) error {
	accept := false
	if v := r.URL.Query().Get("accept_unknown_columns"); v != "" {
		var err error
		if accept, err = strconv.ParseBool(v); err != nil {
			return org.Invalid("accept_unknown_columns", "1 or 0")
		}
	}
	body := http.MaxBytesReader(w, r.Body, maxImport)
	rep, err := s.deps.Monitoring.ImportWith(r.Context(), actor(r), body, monitoring.ImportOptions{AcceptUnknownColumns: accept})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			err = errTooLarge
		case errors.Is(err, monitoring.ErrFile):
			err = org.Invalid("file", err.Error())
		}
		return err
	}
	if rep.Refused {
		cols := make([]string, len(rep.UnknownColumns))
		for i, c := range rep.UnknownColumns {
			cols[i] = fmt.Sprintf("%s (did you mean %s?)", c.Column, c.Nearest)
		}
		return writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"code": "unknown_columns",
			"message": "the file has columns the importer does not know; nothing was imported. Fix the header, or " +
				"send it again with ?accept_unknown_columns=1 to ignore them",
			"fields": map[string]string{"columns": strings.Join(cols, "; ")}, "report": rep})
	}
	return writeJSON(w, http.StatusOK, rep)
}

// exportHouseholds streams CSV; reveal=true (with reason=...) exports full values, audited; limit caps the
// number of households.
func (s *Server) exportHouseholds(w http.ResponseWriter, r *http.Request) error {
	q, err := householdQuery(r)
	if err != nil {
		return err
	}
	reveal := false
	if v := r.URL.Query().Get("reveal"); v != "" {
		if reveal, err = strconv.ParseBool(v); err != nil {
			return org.Invalid("reveal", "true or false")
		}
	}
	cw := &csvResponse{w: w}
	if _, err := s.deps.Monitoring.Export(r.Context(), actor(r), q, reveal, r.URL.Query().Get("reason"), cw); err != nil {
		if !cw.started {
			return err // refused or a bad filter: a JSON error, before any CSV
		}
		// Headers are gone; the truncated file is the signal. Log it once, here.
		s.log.Error("household export failed", "err", err, "actor", actor(r).Username)
	}
	return nil
}

// csvResponse sets the CSV headers on the first write, so an export refused before its first row can still
// answer with a JSON error.
type csvResponse struct {
	w       http.ResponseWriter
	started bool
}

func (c *csvResponse) Write(p []byte) (int, error) {
	if !c.started {
		c.started = true
		h := c.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="households.csv"`)
		h.Set("Cache-Control", "no-store")
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(p)
}

// callerLookup is the screen-pop by a typed number: the households that use a phone number (needs lookup_pii;
// agents on a call use /api/v1/calls/{id}/caller-lookup).
func (s *Server) callerLookup(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.deps.Monitoring.CallerLookup(r.Context(), actor(r), r.URL.Query().Get("phone"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"matches": ms})
}

// timelineEntry is a timeline entry with, for a call, the path of its recording when this actor may hear it.
type timelineEntry struct {
	monitoring.TimelineEntry
	Recording string `json:"recording,omitempty"`
}

// withRecordings links each call on a timeline (ref call:N) to its recording, asking telephony the same question
// the recording endpoint asks (OpenRecording), so the page offers a player only where playing is allowed.
func (s *Server) withRecordings(r *http.Request, tl []monitoring.TimelineEntry) []timelineEntry {
	out := make([]timelineEntry, len(tl))
	for i, e := range tl {
		out[i].TimelineEntry = e
		rest, ok := strings.CutPrefix(e.Ref, "call:")
		if !ok || s.deps.Telephony == nil {
			continue
		}
		callID, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue
		}
		c, err := telephony.GetCDR(r.Context(), s.deps.DB, telephony.CallID(callID))
		if err != nil || c.RecordingID == 0 {
			continue
		}
		_, f, err := s.deps.Telephony.OpenRecording(r.Context(), actor(r), c.RecordingID)
		if err != nil {
			continue
		}
		f.Close()
		out[i].Recording = fmt.Sprintf("/api/v1/recordings/%d", c.RecordingID)
	}
	return out
}

package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"hotline/telephony"
	"hotline/ticketing/org"
	"hotline/ticketing/stats"
)

// statsRoutes registers the supervisors' wallboard and the case statistics (ticketing/stats): KPIs grouped by
// unit, region, category or period, and the report downloads. Who may read what is stats.Authorize and
// stats.AuthorizeBureau.
func (s *Server) statsRoutes() {
	if s.deps.Tickets == nil || s.deps.Tickets.Service == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/stats/wallboard", s.authed(s.wallboard))
	s.mux.HandleFunc("GET /api/v1/stats/kpis", s.authed(s.statsKPIs))
	s.mux.HandleFunc("GET /api/v1/stats/reports/{period}", s.authed(s.statsReport))
}

// wallboardView is the whole wallboard: the call tiles (absent without telephony), today's call KPIs, the
// ticket tiles.
type wallboardView struct {
	At           time.Time       `json:"at"`
	Calls        *telephony.Live `json:"calls"`
	CallKPIToday *telephony.KPI  `json:"call_kpis_today"`
	Tickets      stats.Board     `json:"tickets"`
}

func (s *Server) wallboard(w http.ResponseWriter, r *http.Request) error {
	a, now := actor(r), s.now()
	if err := stats.AuthorizeBureau(a); err != nil {
		return err
	}
	v := wallboardView{At: now}
	if tel := s.deps.Telephony; tel != nil {
		live, err := tel.Live(r.Context(), a, now)
		if err != nil {
			return err
		}
		v.Calls = &live
		today := stats.StartOfDay(now)
		ks, err := tel.KPIs(r.Context(), a, "day", today, today.AddDate(0, 0, 1))
		if err != nil {
			return err
		}
		k := telephony.KPI{Bucket: today}
		if len(ks) > 0 {
			k = ks[0]
		}
		v.CallKPIToday = &k
	}
	b, err := stats.Wallboard(r.Context(), s.deps.DB, now)
	if err != nil {
		return err
	}
	v.Tickets = b
	return writeJSON(w, http.StatusOK, v)
}

// statsKPIs: ?by=unit|prefecture|county|category|day|week|month|total&from=&to= (default: this month so far)
// &unit_id=&region=&category=&repeat_days=.
func (s *Server) statsKPIs(w http.ResponseWriter, r *http.Request) error {
	a, now := actor(r), s.now()
	sc, err := stats.Authorize(r.Context(), s.deps.DB, a)
	if err != nil {
		return err
	}
	monthStart, _, _ := stats.Period(stats.Monthly, now)
	p := query(r)
	q := stats.Query{From: p.time("from", monthStart), To: p.time("to", now), UnitID: org.UnitID(p.int("unit_id")),
		Region: p.Get("region"), Category: p.Get("category"), RepeatDays: int(p.int("repeat_days")), Now: now}
	by := p.Get("by")
	if by == "" {
		by = string(stats.ByUnit)
	}
	if d, err := stats.ParseDimension(by); err != nil {
		p.bad.Add("by", "one of unit, prefecture, county, category, day, week, month, total")
	} else {
		q.By = d
	}
	for _, c := range q.Region {
		if c < '0' || c > '9' || len(q.Region) > 12 {
			p.bad.Add("region", "a region code or its prefix (digits)")
			break
		}
	}
	if err := p.err(); err != nil {
		return err
	}
	if q.UnitID != 0 && !sc.Has(q.UnitID) {
		return fmt.Errorf("statistics of unit %d: %w", q.UnitID, org.ErrForbidden)
	}
	rows, err := stats.KPIs(r.Context(), s.deps.DB, sc, q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"by": q.By, "from": q.From, "to": q.To, "rows": rows,
		"total": stats.Total(rows)})
}

// statsReport: /reports/daily|weekly|monthly?date=&unit_id=&format=xlsx|csv, and /reports/leaders?month=2026-11
// (the leaders' ranking of units, whole bureau only). The file is built whole before the first byte is sent, so
// a failure is a JSON error, never half a file.
func (s *Server) statsReport(w http.ResponseWriter, r *http.Request) error {
	a, now := actor(r), s.now()
	sc, err := stats.Authorize(r.Context(), s.deps.DB, a)
	if err != nil {
		return err
	}
	p := query(r)
	format := p.Get("format")
	if format == "" {
		format = "xlsx"
	}
	if format != "xlsx" && format != "csv" {
		p.bad.Add("format", "xlsx or csv")
	}
	var rep stats.Report
	switch kind := r.PathValue("period"); kind {
	case "leaders":
		month := now.AddDate(0, -1, 0) // the last full month by default
		if m := p.Get("month"); m != "" {
			t, err := time.ParseInLocation("2006-01", m, stats.StartOfDay(now).Location())
			if err != nil {
				p.bad.Add("month", "a month: 2026-11")
			}
			month = t
		}
		if err := p.err(); err != nil {
			return err
		}
		if err := stats.AuthorizeBureau(a); err != nil {
			return err
		}
		if rep, err = stats.LeadersReport(r.Context(), s.deps.DB, month, now); err != nil {
			return err
		}
	case string(stats.Daily), string(stats.Weekly), string(stats.Monthly):
		rq := stats.ReportRequest{Kind: stats.PeriodKind(kind), Date: p.time("date", now), UnitID: org.UnitID(p.int("unit_id")), Now: now}
		if err := p.err(); err != nil {
			return err
		}
		if !sc.All && rq.UnitID == 0 && len(sc.Units) == 1 {
			rq.UnitID = sc.Units[0] // a county head's report is its unit's
		}
		if rep, err = stats.BuildReport(r.Context(), s.deps.DB, sc, rq); err != nil {
			return err
		}
	default:
		return org.Invalid("period", "daily, weekly, monthly or leaders")
	}
	var buf bytes.Buffer
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		err = rep.WriteCSV(&buf)
	} else {
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		err = rep.WriteXLSX(&buf)
	}
	if err != nil {
		w.Header().Del("Content-Type")
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+rep.FileName(format)+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
	return nil
}

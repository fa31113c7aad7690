package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// params reads URL query parameters and collects every malformed one into one ValidationError, so a request is
// answered with all the fields at fault at once.
type params struct {
	url.Values
	bad org.ValidationError
}

func query(r *http.Request) *params { return &params{Values: r.URL.Query()} }

// int is a whole number, 0 when absent.
func (p *params) int(name string) int64 {
	s := p.Get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		p.bad.Add(name, "a whole number")
	}
	return n
}

// bool is false when absent.
func (p *params) bool(name string) bool {
	s := p.Get(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.bad.Add(name, "true or false")
	}
	return b
}

// time is an RFC 3339 time or a date (the day starts at midnight China time), def when absent.
func (p *params) time(name string, def time.Time) time.Time {
	s := p.Get(name)
	if s == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		if t, err = time.ParseInLocation("2006-01-02", s, calendar.CST); err != nil {
			p.bad.Add(name, "a date (2026-11-30) or RFC 3339 time (2026-11-30T08:00:00+08:00)")
		}
	}
	return t
}

func (p *params) err() error { return p.bad.Err() }

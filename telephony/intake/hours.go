package intake

import (
	"fmt"
	"hotline/ticketing/calendar"
	"strconv"
	"strings"
	"time"
)

// Hours are the service hours: outside them callers go straight to voicemail. The zero value is always open.
type Hours struct {
	spans []span
	loc   *time.Location
}

type span struct {
	days       [7]bool // time.Weekday order
	start, end int     // minutes after midnight, end exclusive; end may be 1440
}

var dayNames = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// ParseHours reads "HH:MM-HH:MM" (every day) or "mon-fri 08:30-17:30,sat 09:00-12:00" in loc (China Standard
// Time when nil). "" and "always" mean always open.
func ParseHours(s string, loc *time.Location) (Hours, error) {
	if loc == nil {
		loc = calendar.CST
	}
	h := Hours{loc: loc}
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || s == "always" {
		return h, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var sp span
		days, times, ok := strings.Cut(part, " ")
		if !ok {
			days, times = "sun-sat", part
		}
		d0, d1, isRange := strings.Cut(days, "-")
		a, okA := dayNames[d0]
		b := a
		okB := true
		if isRange {
			b, okB = dayNames[d1]
		}
		if !okA || !okB {
			return h, fmt.Errorf("service hours %q: days %q (use mon-fri, sat, ...)", s, days)
		}
		for d := a; ; d = (d + 1) % 7 {
			sp.days[d] = true
			if d == b {
				break
			}
		}
		t0, t1, ok := strings.Cut(strings.TrimSpace(times), "-")
		if !ok {
			return h, fmt.Errorf("service hours %q: times %q (use 08:30-17:30)", s, times)
		}
		var err error
		if sp.start, err = minutes(t0); err != nil {
			return h, fmt.Errorf("service hours %q: %v", s, err)
		}
		if sp.end, err = minutes(t1); err != nil {
			return h, fmt.Errorf("service hours %q: %v", s, err)
		}
		if sp.end <= sp.start {
			return h, fmt.Errorf("service hours %q: %s ends before it starts", s, times)
		}
		h.spans = append(h.spans, sp)
	}
	return h, nil
}

func minutes(s string) (int, error) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h*60+m > 24*60 {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return h*60 + m, nil
}

// Open reports whether t is inside the service hours.
func (h Hours) Open(t time.Time) bool {
	if len(h.spans) == 0 {
		return true
	}
	t = t.In(h.loc)
	m := t.Hour()*60 + t.Minute()
	for _, sp := range h.spans {
		if sp.days[t.Weekday()] && m >= sp.start && m < sp.end {
			return true
		}
	}
	return false
}

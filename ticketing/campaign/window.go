package campaign

import (
	"fmt"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"time"
)

// Holidays tells whether a local calendar day is a public holiday (an off day on the national calendar). The
// working-day calendar of package ticketing/calendar satisfies it; make-up working days (调休) are not holidays.
type Holidays interface {
	IsHoliday(day time.Time) bool
}

// NoHolidays is a calendar without holidays.
type NoHolidays struct{}

func (NoHolidays) IsHoliday(time.Time) bool { return false }

// Span is one calling period of a day, "09:00"–"12:00" in the campaign's time zone; End is exclusive.
type Span struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Windows are when a campaign may place calls.
type Windows struct {
	// Days of the week allowed, 0 = Sunday … 6 = Saturday; empty means every day.
	Days  []int  `json:"days,omitempty"`
	Spans []Span `json:"spans"`
	// CallOnHolidays lets a campaign call on public holidays (off by default, as the bureau asks).
	CallOnHolidays bool   `json:"call_on_holidays,omitempty"`
	TimeZone       string `json:"time_zone,omitempty"` // IANA name; default calendar.Zone (Asia/Shanghai)
}

// DefaultWindows is 09:00–12:00 and 14:00–20:00 every day except public holidays: no calls at night or at meal
// times.
func DefaultWindows() Windows {
	return Windows{Spans: []Span{{"09:00", "12:00"}, {"14:00", "20:00"}}}
}

func parseHM(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("not HH:MM")
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (w Windows) validate(v *org.ValidationError) {
	if len(w.Spans) == 0 {
		v.Add("windows.spans", "at least one calling period")
	}
	for i, s := range w.Spans {
		a, err1 := parseHM(s.Start)
		b, err2 := parseHM(s.End)
		if s.End == "24:00" {
			b, err2 = 24*60, nil
		}
		if err1 != nil || err2 != nil || a >= b {
			v.Add(fmt.Sprintf("windows.spans[%d]", i), "start and end as HH:MM, start before end")
		}
	}
	for _, d := range w.Days {
		if d < 0 || d > 6 {
			v.Add("windows.days", "0 (Sunday) to 6 (Saturday)")
		}
	}
	if _, err := w.location(); err != nil {
		v.Add("windows.time_zone", "unknown time zone")
	}
}

func (w Windows) location() (*time.Location, error) {
	if w.TimeZone == "" || w.TimeZone == calendar.Zone {
		return calendar.CST, nil
	}
	return time.LoadLocation(w.TimeZone)
}

// zone is the windows' time zone, China's when it is not a known one (validation refuses those).
func (w Windows) zone() *time.Location {
	if loc, err := w.location(); err == nil {
		return loc
	}
	return calendar.CST
}

// minutes returns the spans as [start, end) minutes of the day, sorted as given.
func (w Windows) minutes() [][2]int {
	out := make([][2]int, 0, len(w.Spans))
	for _, s := range w.Spans {
		a, err1 := parseHM(s.Start)
		b, err2 := parseHM(s.End)
		if s.End == "24:00" {
			b, err2 = 24*60, nil
		}
		if err1 == nil && err2 == nil && a < b {
			out = append(out, [2]int{a, b})
		}
	}
	return out
}

func (w Windows) dayAllowed(day time.Time, hol Holidays) bool {
	if !w.CallOnHolidays && hol != nil && hol.IsHoliday(day) {
		return false
	}
	if len(w.Days) == 0 {
		return true
	}
	wd := int(day.Weekday())
	for _, d := range w.Days {
		if d == wd {
			return true
		}
	}
	return false
}

// Open reports whether a call may be placed at t.
func (w Windows) Open(t time.Time, hol Holidays) bool {
	next, ok := w.NextOpen(t, hol)
	return ok && next.Equal(t)
}

// NextOpen returns t if the window is open at t, otherwise the next moment it opens (looking up to 60 days
// ahead; ok is false when it never opens in that time).
func (w Windows) NextOpen(t time.Time, hol Holidays) (time.Time, bool) {
	loc, err := w.location()
	if err != nil {
		return time.Time{}, false
	}
	spans := w.minutes()
	lt := t.In(loc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	for i := 0; i < 60; i++ {
		d := day.AddDate(0, 0, i)
		if !w.dayAllowed(d, hol) {
			continue
		}
		var best time.Time
		for _, s := range spans {
			start := time.Date(d.Year(), d.Month(), d.Day(), s[0]/60, s[0]%60, 0, 0, loc)
			end := time.Date(d.Year(), d.Month(), d.Day(), s[1]/60, s[1]%60, 0, 0, loc)
			if s[1] == 24*60 {
				end = d.AddDate(0, 0, 1)
			}
			if !lt.Before(end) {
				continue
			}
			cand := start
			if lt.After(start) {
				cand = t // inside the span
			}
			if best.IsZero() || cand.Before(best) {
				best = cand
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// LocalDay is the calendar day of t in the windows' time zone (the daily cap counts per local day).
func (w Windows) LocalDay(t time.Time) time.Time {
	lt := t.In(w.zone())
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
}

// StartOfNextDay is local midnight after t, the earliest moment a household at its daily cap may be called.
func (w Windows) StartOfNextDay(t time.Time) time.Time {
	loc := w.zone()
	lt := t.In(loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, 1)
}

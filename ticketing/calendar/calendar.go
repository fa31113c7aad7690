// Package calendar counts working time on the Chinese official calendar: Saturdays and Sundays are off except the
// make-up working days (调休), public holidays are off. The State Council's calendar for the years it covers is
// embedded (data/cn_holidays.csv); a newer one can be loaded from a file in the same format.
//
// Dates are taken in China Standard Time (UTC+8, no daylight saving). A working day counts as 24 hours of working
// time, so "1 working day from Friday 15:00" is Monday 15:00 and "3 hours from Sunday 10:00" is Monday 03:00.
package calendar

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

//go:embed data/cn_holidays.csv
var embedded string

// Zone is China's time zone by its IANA name, for PostgreSQL (AT TIME ZONE) and configuration; CST is the same
// zone as a Go location. It is fixed at UTC+8 rather than loaded, so no tzdata is needed: China has had no
// daylight saving time since 1991. These are the only definitions of China's time in the tree.
const Zone = "Asia/Shanghai"

var CST = time.FixedZone("CST", 8*3600)

const day = 24 * time.Hour

// Calendar knows which dates are off and which weekend dates are working days.
type Calendar struct {
	off      map[string]string // date → holiday name
	makeup   map[string]string // weekend date that is a working day → holiday name
	from, to int               // years covered by the data
}

// Default returns the embedded calendar.
func Default() *Calendar {
	c, err := Parse(strings.NewReader(embedded))
	if err != nil {
		panic("embedded holiday calendar: " + err.Error())
	}
	return c
}

// Parse reads a CSV with the header `date,name,is_off_day` (YYYY-MM-DD, holiday name, true|false).
func Parse(r io.Reader) (*Calendar, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("holiday calendar: %w", err)
	}
	c := &Calendar{off: map[string]string{}, makeup: map[string]string{}}
	for i, row := range rows {
		if i == 0 && len(row) > 0 && row[0] == "date" {
			continue
		}
		if len(row) != 3 {
			return nil, fmt.Errorf("holiday calendar line %d: want date,name,is_off_day", i+1)
		}
		d, err := time.ParseInLocation("2006-01-02", row[0], CST)
		if err != nil {
			return nil, fmt.Errorf("holiday calendar line %d: %v", i+1, err)
		}
		off, err := strconv.ParseBool(row[2])
		if err != nil {
			return nil, fmt.Errorf("holiday calendar line %d: is_off_day %q", i+1, row[2])
		}
		if off {
			c.off[row[0]] = row[1]
		} else {
			c.makeup[row[0]] = row[1]
		}
		if c.from == 0 || d.Year() < c.from {
			c.from = d.Year()
		}
		c.to = max(c.to, d.Year())
	}
	if len(c.off) == 0 {
		return nil, fmt.Errorf("holiday calendar: no holidays")
	}
	return c, nil
}

// Years returns the first and last year the data covers; outside them only weekends are off.
func (c *Calendar) Years() (int, int) { return c.from, c.to }

// IsWorkday reports whether the date of t (in CST) is a working day.
func (c *Calendar) IsWorkday(t time.Time) bool {
	d := t.In(CST).Format("2006-01-02")
	if _, ok := c.off[d]; ok {
		return false
	}
	if _, ok := c.makeup[d]; ok {
		return true
	}
	wd := t.In(CST).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.In(CST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, CST)
}

// Add returns the instant when d of working time has passed after t. Time on days off does not count; a
// start on a day off counts from the beginning of the next working day.
func (c *Calendar) Add(t time.Time, d time.Duration) time.Time {
	t = t.In(CST)
	for d > 0 {
		if !c.IsWorkday(t) {
			t = startOfDay(t).AddDate(0, 0, 1)
			continue
		}
		end := startOfDay(t).AddDate(0, 0, 1)
		left := end.Sub(t)
		if d <= left {
			return t.Add(d)
		}
		d -= left
		t = end
	}
	return t
}

// AddDays returns the instant n working days after t.
func (c *Calendar) AddDays(t time.Time, n int) time.Time { return c.Add(t, time.Duration(n)*day) }

// Between returns the working time from a to b (0 when b is not after a).
func (c *Calendar) Between(a, b time.Time) time.Duration {
	var sum time.Duration
	a, b = a.In(CST), b.In(CST)
	for a.Before(b) {
		end := startOfDay(a).AddDate(0, 0, 1)
		if end.After(b) {
			end = b
		}
		if c.IsWorkday(a) {
			sum += end.Sub(a)
		}
		a = end
	}
	return sum
}

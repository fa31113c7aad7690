package deliver

import "time"

// quietUntil returns t if it is outside the quiet hours [start, end) (times of day in China; the window may
// span midnight), else the end of the window.
func quietUntil(t time.Time, start, end time.Duration) time.Time {
	if start == end {
		return t
	}
	lt := t.In(China)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, China)
	tod := lt.Sub(day)
	if start < end { // e.g. 00:00–06:00
		if tod >= start && tod < end {
			return day.Add(end)
		}
		return t
	}
	switch { // spans midnight, e.g. 21:00–08:00
	case tod >= start:
		return day.AddDate(0, 0, 1).Add(end)
	case tod < end:
		return day.Add(end)
	}
	return t
}

// dayStart is midnight (China) of t's day.
func dayStart(t time.Time) time.Time {
	lt := t.In(China)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, China)
}

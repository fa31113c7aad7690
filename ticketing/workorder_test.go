package ticketing_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
)

// The calendar warning is logged from 1 October while next year is missing, once a day however often the sweeper
// runs. (No database: the check reads the calendar and the clock only.)
func TestCalendarWarningLoggedOnceADay(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 9, 30, 23, 0, 0, 0, calendar.CST)
	svc := ticketing.NewService(nil, ticketing.Options{Log: slog.New(slog.NewTextHandler(&buf, nil)), Now: func() time.Time { return now }})
	count := func() int { return strings.Count(buf.String(), "holiday calendar: next year missing") }
	svc.WarnCalendar()
	if count() != 0 {
		t.Fatalf("warned on 30 September: %s", buf.String())
	}
	now = time.Date(2026, 10, 1, 0, 30, 0, 0, calendar.CST)
	svc.WarnCalendar()
	svc.WarnCalendar()
	if count() != 1 || !strings.Contains(buf.String(), "calendar_until=2026") {
		t.Fatalf("on 1 October, twice: %d warnings: %s", count(), buf.String())
	}
	now = now.Add(24 * time.Hour)
	svc.WarnCalendar()
	if count() != 2 {
		t.Fatalf("next day: %d warnings", count())
	}
}

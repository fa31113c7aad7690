package campaign

import (
	"testing"
	"time"

	"hotline/ticketing/calendar"
)

func TestCalendarHolidays(t *testing.T) {
	h := CalendarHolidays{Cal: calendar.Default()}
	for _, tc := range []struct {
		day  string
		want bool
	}{
		{"2026-10-01", true},  // 国庆, Thursday
		{"2026-10-03", true},  // Saturday inside the 国庆 block
		{"2026-10-04", true},  // Sunday inside the block
		{"2026-10-07", true},  // Wednesday, last day
		{"2026-10-08", false}, // back to work
		{"2026-10-10", false}, // Saturday made a working day (调休)
		{"2026-09-19", false}, // an ordinary Saturday
		{"2026-09-20", false}, // Sunday made a working day
		{"2026-09-25", true},  // 中秋, Friday
		{"2026-09-26", true},  // Saturday of the 中秋 block
		{"2026-09-29", false}, // Tuesday
	} {
		d, _ := time.ParseInLocation("2006-01-02 15:04", tc.day+" 10:00", calendar.CST)
		if got := h.IsHoliday(d); got != tc.want {
			t.Errorf("%s: holiday %v, want %v", tc.day, got, tc.want)
		}
	}
	// The default windows skip the whole 国庆 block: the evening of 30 September → 8 October 09:00.
	next, _ := DefaultWindows().NextOpen(at("2026-09-30 20:30"), h)
	if !next.Equal(at("2026-10-08 09:00")) {
		t.Fatalf("after the holiday: %s", next)
	}
}

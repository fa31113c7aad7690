package calendar

import (
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, CST)
	if err != nil {
		panic(err)
	}
	return t
}

func TestIsWorkday(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		date string
		want bool
	}{
		{"2025-01-01 12:00", false}, // 元旦
		{"2025-01-26 12:00", true},  // Sunday, 春节 make-up day
		{"2025-01-28 12:00", false}, // 除夕, Tuesday off
		{"2025-02-04 12:00", false}, // last day of 春节
		{"2025-02-05 12:00", true},
		{"2025-02-08 12:00", true},  // Saturday, make-up day
		{"2025-09-28 12:00", true},  // Sunday, 国庆 make-up day
		{"2025-10-08 12:00", false}, // 国庆、中秋
		{"2025-10-11 12:00", true},  // Saturday, make-up day
		{"2026-01-04 12:00", true},  // Sunday, 元旦 make-up day
		{"2026-02-14 12:00", true},  // Saturday, 春节 make-up day
		{"2026-02-23 12:00", false}, // Monday, 春节
		{"2026-02-28 12:00", true},  // Saturday, make-up day
		{"2026-09-20 12:00", true},  // Sunday, 国庆 make-up day
		{"2026-09-25 12:00", false}, // 中秋, Friday
		{"2026-10-07 12:00", false}, // 国庆
		{"2026-10-10 12:00", true},  // Saturday, make-up day
		{"2026-11-28 12:00", false}, // an ordinary Saturday
		{"2026-11-30 12:00", true},  // an ordinary Monday
		// Midnight belongs to the day it starts, in China time whatever the input's zone.
		{"2026-10-08 00:00", true},
	} {
		if got := c.IsWorkday(at(tc.date)); got != tc.want {
			t.Errorf("IsWorkday(%s) = %v, want %v", tc.date, got, tc.want)
		}
	}
	if !c.IsWorkday(at("2026-10-08 00:00").UTC()) { // 2026-10-07 16:00 UTC is 10-08 in China
		t.Error("IsWorkday must judge the date in China time")
	}
}

func TestAdd(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		name  string
		start string
		days  int
		hours int
		want  string
	}{
		{"ordinary week", "2026-11-30 10:00", 1, 0, "2026-12-01 10:00"},
		{"over a weekend", "2026-11-27 15:00", 1, 0, "2026-11-30 15:00"},
		{"13 days, two weekends", "2026-11-30 10:00", 13, 0, "2026-12-17 10:00"},
		{"Friday before 春节 2025 lands on the make-up Sunday", "2025-01-24 10:00", 1, 0, "2025-01-26 10:00"},
		{"make-up Sunday to Monday", "2025-01-26 10:00", 1, 0, "2025-01-27 10:00"},
		{"over 春节 2025", "2025-01-27 10:00", 1, 0, "2025-02-05 10:00"},
		{"3 days over 春节 2025", "2025-01-27 10:00", 3, 0, "2025-02-07 10:00"},
		{"4 days: the make-up Saturday counts", "2025-01-27 10:00", 4, 0, "2025-02-08 10:00"},
		{"5 days: then Monday", "2025-01-27 10:00", 5, 0, "2025-02-10 10:00"},
		{"国庆 2025 make-up Sunday", "2025-09-26 09:00", 1, 0, "2025-09-28 09:00"},
		{"over 国庆 2025", "2025-09-30 15:00", 1, 0, "2025-10-09 15:00"},
		{"over 国庆 2025 to the make-up Saturday", "2025-09-30 15:00", 3, 0, "2025-10-11 15:00"},
		{"春节 2026 make-up Saturday", "2026-02-13 10:00", 1, 0, "2026-02-14 10:00"},
		{"over 春节 2026", "2026-02-13 10:00", 2, 0, "2026-02-24 10:00"},
		{"13 days from the 2026 make-up Saturday", "2026-02-14 12:00", 13, 0, "2026-03-11 12:00"},
		{"over 中秋 and 国庆 2026", "2026-09-24 10:00", 1, 0, "2026-09-28 10:00"},
		{"over 国庆 2026", "2026-09-30 10:00", 1, 0, "2026-10-08 10:00"},
		{"over 国庆 2026 to the make-up Saturday", "2026-09-30 10:00", 3, 0, "2026-10-10 10:00"},
		{"start on a holiday counts from the next working day", "2026-10-03 15:00", 1, 0, "2026-10-09 00:00"},
		{"hours over a weekend", "2025-12-05 22:00", 0, 4, "2025-12-08 02:00"},
		{"hours within a day", "2026-11-30 10:00", 0, 2, "2026-11-30 12:00"},
		{"24 hours over 元旦 2026", "2025-12-31 18:00", 0, 24, "2026-01-04 18:00"},
	} {
		got := c.Add(at(tc.start), time.Duration(tc.days)*24*time.Hour+time.Duration(tc.hours)*time.Hour)
		if !got.Equal(at(tc.want)) {
			t.Errorf("%s: %s + %dd%dh = %s, want %s", tc.name, tc.start, tc.days, tc.hours, got.Format("2006-01-02 15:04 Mon"), tc.want)
		}
		if tc.hours == 0 && !c.AddDays(at(tc.start), tc.days).Equal(got) {
			t.Errorf("%s: AddDays disagrees with Add", tc.name)
		}
	}
}

func TestBetween(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		a, b string
		want time.Duration
	}{
		{"2025-01-27 10:00", "2025-02-05 10:00", 24 * time.Hour},
		{"2026-09-30 10:00", "2026-10-10 10:00", 72 * time.Hour},
		{"2026-11-28 10:00", "2026-11-29 10:00", 0},
		{"2026-11-30 10:00", "2026-11-30 09:00", 0},
	} {
		if got := c.Between(at(tc.a), at(tc.b)); got != tc.want {
			t.Errorf("Between(%s, %s) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseNewerCalendar(t *testing.T) {
	c, err := Parse(strings.NewReader("date,name,is_off_day\n2027-02-06,春节,true\n2027-02-07,春节,false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.IsWorkday(at("2027-02-06 10:00")) || !c.IsWorkday(at("2027-02-07 10:00")) {
		t.Error("loaded calendar not used")
	}
	for _, bad := range []string{"date,name,is_off_day\n2027-13-01,x,true\n", "date,name,is_off_day\n2027-01-01,x,maybe\n", "date,name,is_off_day\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) accepted a bad calendar", bad)
		}
	}
}

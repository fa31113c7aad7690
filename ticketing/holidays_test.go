package ticketing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// An uploaded calendar is validated, stored with its audit row, and its years replace the base's.
func TestUploadHolidays(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	admin := org.Actor{Username: "root", Role: org.RoleAdmin}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, calendar.CST)
	next := "date,name,is_off_day\n2027-01-01,元旦,true\n2027-02-06,春节,true\n2027-02-07,春节,true\n2027-02-14,春节,false\n"
	for _, bad := range []string{"not,a,calendar\n", "date,name,is_off_day\n2025-01-01,元旦,true\n", "date,name,is_off_day\n2027-01-01,元旦,true\n2028-02-14,春节,false\n"} {
		if _, err := ticketing.UploadHolidays(ctx, db, admin, org.Source{}, bad, now); !errors.Is(err, org.ErrInvalid) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	if _, err := ticketing.UploadHolidays(ctx, db, org.Actor{Role: org.RoleHead}, org.Source{}, next, now); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a head uploaded: %v", err)
	}
	// Two instances of the service, running before the upload, with the embedded calendar.
	svc, other := ticketing.NewService(db, ticketing.Options{}), ticketing.NewService(db, ticketing.Options{})
	for _, s := range []*ticketing.Service{svc, other} {
		if err := s.ReloadCalendar(ctx); err != nil {
			t.Fatal(err)
		}
		if from, to := s.Calendar().Years(); from != 2024 || to != 2026 {
			t.Fatalf("years before the upload %d-%d", from, to)
		}
	}
	u, err := ticketing.UploadHolidays(ctx, db, admin, org.Source{}, next, now)
	if err != nil || u.YearFrom != 2027 || u.YearTo != 2027 || u.OffDays != 3 {
		t.Fatalf("upload: %+v %v", u, err)
	}
	// Each takes it up when it reloads (the upload endpoint on its own instance, the SLA sweeper on every other),
	// without a restart.
	for _, s := range []*ticketing.Service{svc, other} {
		if err := s.ReloadCalendar(ctx); err != nil {
			t.Fatal(err)
		}
		if from, to := s.Calendar().Years(); from != 2024 || to != 2027 {
			t.Fatalf("years after the upload %d-%d", from, to)
		}
	}
	cal := svc.Calendar()
	day := func(s string) time.Time { d, _ := time.ParseInLocation("2006-01-02", s, calendar.CST); return d }
	if cal.IsWorkday(day("2027-02-06")) || !cal.IsWorkday(day("2027-02-14")) || cal.IsWorkday(day("2026-10-01")) {
		t.Fatal("the merged calendar does not follow the upload and keep the base")
	}
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM admin_audit WHERE action = 'holidays.upload'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d audit rows", n)
	}
	// A newer upload replaces the last one (its years over the configured calendar, not over the last upload).
	fixed := "date,name,is_off_day\n2027-01-01,元旦,true\n2027-02-10,春节,true\n"
	if _, err := ticketing.UploadHolidays(ctx, db, admin, org.Source{}, fixed, now); err != nil {
		t.Fatal(err)
	}
	if err := svc.ReloadCalendar(ctx); err != nil {
		t.Fatal(err)
	}
	if cal := svc.Calendar(); !cal.IsWorkday(day("2027-02-08")) || cal.IsWorkday(day("2027-02-10")) {
		t.Fatal("the newer upload is not the one in force")
	}
}

package ticketing_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

type fixture struct {
	t   testing.TB
	db  *pgxpool.Pool
	svc *ticketing.Service
	ctx context.Context
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := testenv.DB(t)
	f := &fixture{t: t, db: db, ctx: context.Background(), now: time.Date(2026, 11, 30, 10, 0, 0, 0, calendar.CST)}
	f.svc = ticketing.NewService(db, ticketing.Options{Now: func() time.Time { return f.now }})
	addHouseholds(t, db, 5, 7, 9, 42)
	return f
}

// addHouseholds stores bare households with these IDs in 赫山区 (tickets.household_id must name a household).
func addHouseholds(t testing.TB, db *pgxpool.Pool, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		if _, err := db.Exec(context.Background(), `INSERT INTO households (id, number, county_code, township_code, head_name, monitoring_type)
			VALUES ($1::bigint, 'T' || $1::bigint::text, '430903', '430903001', '测试户主', 'marginal')`, id); err != nil {
			t.Fatalf("household %d: %v", id, err)
		}
	}
}

func (f *fixture) unit(code string) org.UnitID {
	f.t.Helper()
	u, err := org.UnitByCode(f.ctx, f.db, code)
	if err != nil {
		f.t.Fatalf("unit %s: %v", code, err)
	}
	return u.ID
}

var userSeq int

// actor creates a user with the role in the unit and returns it as an actor.
func (f *fixture) actor(role org.Role, unitCode string, perms ...org.Permission) org.Actor {
	f.t.Helper()
	userSeq++
	u, err := org.CreateUser(f.ctx, f.db, org.NewUser{Username: string(role) + "-" + unitCode + "-" + itoa(userSeq),
		DisplayName: string(role), Password: "password1", Role: role, UnitID: f.unit(unitCode), Permissions: perms})
	if err != nil {
		f.t.Fatalf("create user: %v", err)
	}
	return u.Actor()
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func (f *fixture) create(a org.Actor, nt ticketing.NewTicket) ticketing.Ticket {
	f.t.Helper()
	tk, err := f.svc.Create(f.ctx, a, nt)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	return tk
}

func (f *fixture) do(a org.Actor, tk ticketing.Ticket, act ticketing.Action, in ticketing.ActionInput) ticketing.Ticket {
	f.t.Helper()
	if in.Version == 0 {
		in.Version = tk.Version
	}
	n, err := f.svc.Do(f.ctx, a, tk.ID, act, in)
	if err != nil {
		f.t.Fatalf("%s: %v", act, err)
	}
	return n
}

func heshanHousehold() ticketing.NewTicket {
	hh := int64(42)
	return ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "张三", CallerPhone: "138 1234 5678",
		RegionCode: "430903", HouseholdID: &hh, Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp,
		Content: "家里老人生病住院,收入下降"}
}

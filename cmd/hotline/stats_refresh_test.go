package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
)

// `hotline stats refresh` recomputes the marked tickets' facts and day sums; --all marks every ticket first and
// recomputes them to the same day sums; anything else is a usage error.
func TestStatsRefresh(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	cfg, _, _, err := loadConfig(nil, []string{"HOTLINE_DATABASE_URL=" + url})
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var id int64
	if err := db.QueryRow(ctx, `INSERT INTO tickets (number, query_code, source, caller_phone, region_code, kind, category,
			content, status, lead_unit_id, created_at)
		SELECT 'R1', '123456', 'phone', '13900000000', '430903', 'help', 'monitoring_help', '测试', 'new', id, '2026-10-12 09:00+08'
		FROM units WHERE kind = 'county' ORDER BY id LIMIT 1 RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
		VALUES ($1, '2026-10-12 09:00+08', 'test', 'agent', 'create', '', 'new', '{}')`, id); err != nil {
		t.Fatal(err)
	}
	state := func() (marked, created int) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM ticket_kpi_dirty),
				(SELECT coalesce(sum(created), 0) FROM ticket_kpi_daily WHERE day = '2026-10-12')`).Scan(&marked, &created); err != nil {
			t.Fatal(err)
		}
		return marked, created
	}
	if m, _ := state(); m == 0 {
		t.Fatal("the new ticket is not marked")
	}
	var tickets, want int
	if err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE (created_at AT TIME ZONE 'Asia/Shanghai')::date = '2026-10-12')
		FROM tickets`).Scan(&tickets, &want); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runStats(ctx, cfg, []string{"refresh"}, &out); err != nil {
		t.Fatal(err)
	}
	if m, c := state(); m != 0 || c != want || !strings.Contains(out.String(), "case statistics up to date") {
		t.Errorf("after refresh: %d marked, %d created on the day, output %q", m, c, out.String())
	}
	out.Reset()
	if err := runStats(ctx, cfg, []string{"refresh", "--all"}, &out); err != nil {
		t.Fatal(err)
	}
	if m, c := state(); m != 0 || c != want || !strings.Contains(out.String(), fmt.Sprintf("marked %d tickets", tickets)) {
		t.Errorf("after refresh --all: %d marked, %d created on the day, output %q", m, c, out.String())
	}
	for _, args := range [][]string{nil, {"refresh", "--everything"}, {"rebuild"}} {
		if _, ok := runStats(ctx, cfg, args, &out).(usageError); !ok {
			t.Errorf("%v: want a usage error", args)
		}
	}
}

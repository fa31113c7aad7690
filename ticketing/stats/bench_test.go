package stats_test

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing/org"
	"hotline/ticketing/stats"
)

// BenchmarkKPIsMillion loads STATS_BENCH_TICKETS tickets (default 1,000,000) spread evenly over the twelve months
// from 2025-12-01, each with its events (create, dispatch, sign, reply, 回访; some returned and re-dispatched, some
// extended), all with generate_series in PostgreSQL, computes their facts (stats.Refresh), then times the KPI queries for one month of the whole
// province (2026-06) by unit, prefecture, county, category, day and in total, STATS_BENCH_ROUNDS times each
// (default 20), and reports p50 and p95 per dimension (with STATS_BENCH_DIRECT=1 also those of the direct
// aggregation of the facts the day sums replace). Run it alone:
//
//	go test -run '^$' -bench KPIsMillion -benchtime 1x -timeout 60m ./ticketing/stats/
func BenchmarkKPIsMillion(b *testing.B) {
	n := envInt("STATS_BENCH_TICKETS", 1_000_000)
	rounds := envInt("STATS_BENCH_ROUNDS", 20)
	ctx := context.Background()
	db := testenv.DBWith(b, nil)
	start := time.Now()
	for _, step := range []string{
		// Tickets: one every 365 days / n, in the county bureaus (their regions) and a tenth in the divisions;
		// callers from a pool of 0.7 n numbers, so some call again.
		`CREATE TABLE bench_units AS
			SELECT row_number() OVER (ORDER BY id) - 1 AS i, id, coalesce(region_code, '') AS region FROM units
			WHERE kind IN ('county', 'division')`,
		`INSERT INTO tickets (number, query_code, source, caller_phone, region_code, kind, category, content, status,
				lead_unit_id, sign_by, reply_by, created_at, dispatched_at, closed_at, satisfaction)
			SELECT 'B' || g, '123456', 'phone', '138' || lpad((g % ($1 * 7 / 10))::text, 8, '0'), u.region, 'help',
				(ARRAY['monitoring_help','three_guarantees','employment','rural_construction','policy_question'])[1 + g % 5],
				'基准测试工单', CASE WHEN g % 50 = 0 THEN 'signed' ELSE 'closed' END, u.id,
				c + interval '1 day', c + interval '5 days', c, c + interval '10 minutes',
				CASE WHEN g % 50 <> 0 THEN c + interval '8 days' END,
				CASE WHEN g % 10 = 0 THEN 'unsatisfied' ELSE 'satisfied' END
			FROM generate_series(1, $1) g
			CROSS JOIN LATERAL (SELECT timestamptz '2025-12-01 00:00+08' + make_interval(secs => g * 31536000.0 / $1) AS c) t
			JOIN bench_units u ON u.i = g % (SELECT count(*) FROM bench_units)`,
		// Events, in the order they happened: a 20th are returned by a first unit and re-dispatched.
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, created_at, 'bench', 'agent', 'create', '', 'new', '{}' FROM tickets`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, created_at + interval '5 minutes', 'bench', 'agent', 'dispatch', 'new', 'dispatched',
				jsonb_build_object('unit_id', lead_unit_id + 1, 'sign_by', created_at + interval '1 day', 'reply_by', created_at + interval '5 days')
			FROM tickets WHERE id % 20 = 0`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, created_at + interval '7 minutes', 'bench', 'staff', 'return', 'dispatched', 'returned',
				jsonb_build_object('from_unit_id', lead_unit_id + 1, 'reason', '非本单位')
			FROM tickets WHERE id % 20 = 0`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, dispatched_at, 'bench', 'agent', 'dispatch', 'new', 'dispatched',
				jsonb_build_object('unit_id', lead_unit_id, 'sign_by', sign_by, 'reply_by', reply_by) FROM tickets`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, dispatched_at + make_interval(hours => (id % 30)::int), 'bench', 'staff', 'sign', 'dispatched', 'signed', '{}'
			FROM tickets`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, dispatched_at + interval '2 days', 'bench', 'supervisor', 'approve_extension', 'signed', 'signed',
				jsonb_build_object('days', 2, 'old_reply_by', reply_by, 'reply_by', reply_by + interval '2 days')
			FROM tickets WHERE id % 25 = 0`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, dispatched_at + make_interval(days => (id % 7)::int), 'bench', 'staff', 'reply', 'signed', 'replied', '{}'
			FROM tickets WHERE status = 'closed'`,
		`INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
			SELECT id, closed_at, 'bench', 'agent', 'callback_result', 'replied', 'closed', jsonb_build_object('result', satisfaction)
			FROM tickets WHERE status = 'closed'`,
		`ANALYZE tickets`,
		`ANALYZE ticket_events`,
	} {
		var args []any
		if strings.Contains(step, "$1") {
			args = append(args, n)
		}
		if _, err := db.Exec(ctx, step, args...); err != nil {
			b.Fatalf("load: %v\n%s", err, step)
		}
	}
	var events int64
	db.QueryRow(ctx, `SELECT count(*) FROM ticket_events`).Scan(&events)
	b.Logf("loaded %d tickets, %d events in %s", n, events, time.Since(start).Round(time.Second))
	// The facts of every ticket, as after migrating an existing database (later calls refresh only the
	// tickets changed since).
	start = time.Now()
	done, err := stats.Refresh(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE ticket_kpi_facts`); err != nil {
		b.Fatal(err)
	}
	var facts, days int64
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM ticket_kpi_facts), (SELECT count(*) FROM ticket_kpi_daily)`).Scan(&facts, &days)
	b.Logf("facts of %d tickets computed in %s (%d facts, %d day rows)", done, time.Since(start).Round(time.Second), facts, days)

	// STATS_BENCH_DIRECT=1 also times the direct aggregation of every fact of the month (what KPIs did before
	// the day sums of migration 0020), on the same data and machine.
	paths := []struct {
		name string
		kpis func(context.Context, org.TxBeginner, stats.Scope, stats.Query) ([]stats.Row, error)
	}{{"", stats.KPIs}}
	if os.Getenv("STATS_BENCH_DIRECT") == "1" {
		paths = append(paths, struct {
			name string
			kpis func(context.Context, org.TxBeginner, stats.Scope, stats.Query) ([]stats.Row, error)
		}{"direct-", stats.KPIsFromFacts})
	}
	q := stats.Query{From: cst("2026-06-01 00:00"), To: cst("2026-07-01 00:00"), Now: cst("2026-12-01 00:00")}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, path := range paths {
			for _, by := range []stats.Dimension{stats.ByTotal, stats.ByUnit, stats.ByPrefecture, stats.ByCounty, stats.ByCategory, stats.ByDay} {
				q.By = by
				var took []time.Duration
				var rows []stats.Row
				for r := 0; r < rounds; r++ {
					t0 := time.Now()
					var err error
					if rows, err = path.kpis(ctx, db, stats.Scope{All: true}, q); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(t0))
				}
				sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
				p50, p95 := took[len(took)/2], took[(len(took)*95+99)/100-1]
				tot := stats.Total(rows)
				b.Logf("%sby %-10s %3d rows  p50 %6.1f ms  p95 %6.1f ms  (created %d, dispatched %d, replied %d, 按时办结率 %.3f)",
					path.name, by, len(rows), ms(p50), ms(p95), tot.Created, tot.Dispatched, tot.Replied, deref(tot.OnTimeReplyRate))
				b.ReportMetric(ms(p95), path.name+"p95-ms-"+string(by))
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

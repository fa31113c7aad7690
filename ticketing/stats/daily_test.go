package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing/org"
	"hotline/ticketing/stats"
)

// history writes random but reproducible ticket histories: dispatches, returns and re-dispatches, signs on time
// and late, extensions, replies, 回访 results (satisfied, unsatisfied reopening the ticket, missing), manual
// 重办, replies with no dispatch before them, repeat callers at every distance.
type history struct {
	t     *testing.T
	ctx   context.Context
	db    *pgxpool.Pool
	rng   *rand.Rand
	units []int64
	cats  []string
	n     int
	last  map[int64]time.Time // a ticket's last event
}

func (h *history) ev(id int64, at time.Time, action string, data map[string]any) {
	h.t.Helper()
	if data == nil {
		data = map[string]any{}
	}
	js, _ := json.Marshal(data)
	if _, err := h.db.Exec(h.ctx, `INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
		VALUES ($1, $2, 'fixture', 'admin', $3, '', '', $4)`, id, at, action, js); err != nil {
		h.t.Fatalf("event %s: %v", action, err)
	}
	h.last[id] = at
}

func (h *history) hours(lo, hi int) time.Duration {
	return time.Duration(lo)*time.Hour + time.Duration(h.rng.Int64N(int64(hi-lo)*int64(time.Hour)))
}

func (h *history) pick() int64 { return h.units[h.rng.IntN(len(h.units))] }

// ticket opens a ticket at created and plays a random life for it; the ticket row ends as its last event left it.
func (h *history) ticket(created time.Time) int64 {
	h.t.Helper()
	h.n++
	phone := ""
	if h.rng.IntN(10) > 0 {
		phone = fmt.Sprintf("1390000%04d", h.rng.IntN(60))
	}
	unit := h.pick()
	var region string
	if err := h.db.QueryRow(h.ctx, `SELECT coalesce(region_code, '') FROM units WHERE id = $1`, unit).Scan(&region); err != nil {
		h.t.Fatal(err)
	}
	var id int64
	err := h.db.QueryRow(h.ctx, `INSERT INTO tickets (number, query_code, source, caller_phone, region_code, kind, category,
			content, status, lead_unit_id, created_at)
		VALUES ($1, '123456', 'phone', $2, $3, 'help', $4, '测试', 'new', $5, $6) RETURNING id`,
		fmt.Sprintf("D%06d", h.n), phone, region, h.cats[h.rng.IntN(len(h.cats))], unit, created).Scan(&id)
	if err != nil {
		h.t.Fatalf("ticket: %v", err)
	}
	h.ev(id, created, "create", nil)
	h.life(id, created)
	return id
}

// life continues a ticket from at: its dispatches and what came of them.
func (h *history) life(id int64, at time.Time) {
	h.t.Helper()
	status, unit := "new", int64(0)
	var replyBy time.Time
	set := func() {
		var rb any
		if !replyBy.IsZero() {
			rb = replyBy
		}
		if _, err := h.db.Exec(h.ctx, `UPDATE tickets SET status = $2, reply_by = $3,
				lead_unit_id = CASE WHEN $4::bigint = 0 THEN lead_unit_id ELSE $4 END WHERE id = $1`,
			id, status, rb, unit); err != nil {
			h.t.Fatal(err)
		}
	}
	defer set()
	switch h.rng.IntN(20) {
	case 0: // a reply with no dispatch before it, and its 回访
		at = at.Add(h.hours(1, 30))
		h.ev(id, at, "reply", nil)
		h.ev(id, at.Add(h.hours(1, 50)), "callback_result", map[string]any{"result": "satisfied"})
		status = "closed"
		return
	case 1: // still at the desk
		return
	}
	for round := 0; round < 3; round++ {
		unit = h.pick()
		at = at.Add(h.hours(0, 5))
		signBy, rb := at.Add(h.hours(4, 40)), at.Add(h.hours(48, 200))
		h.ev(id, at, "dispatch", map[string]any{"unit_id": unit, "sign_by": signBy, "reply_by": rb})
		status, replyBy = "dispatched", rb
		if h.rng.IntN(5) == 0 { // 退单, dispatched again
			at = at.Add(h.hours(1, 20))
			h.ev(id, at, "return", map[string]any{"from_unit_id": unit, "reason": "非本单位职责"})
			status = "returned"
			round--
			if round < -2 {
				return
			}
			continue
		}
		if h.rng.IntN(8) == 0 { // never signed: overdue once its sign-by passes
			return
		}
		at = at.Add(h.hours(1, 48))
		h.ev(id, at, "sign", nil)
		status = "signed"
		if h.rng.IntN(6) == 0 {
			at = at.Add(h.hours(1, 30))
			replyBy = replyBy.Add(h.hours(24, 100))
			h.ev(id, at, "approve_extension", map[string]any{"days": 2, "reply_by": replyBy})
		}
		if h.rng.IntN(5) == 0 { // not replied (overdue if its reply-by passed)
			return
		}
		at = at.Add(h.hours(1, 180))
		h.ev(id, at, "reply", nil)
		status = "replied"
		if h.rng.IntN(10) == 0 { // manual 重办
			at = at.Add(h.hours(1, 30))
			replyBy = at.Add(h.hours(24, 100))
			h.ev(id, at, "reopen", map[string]any{"reply_by": replyBy})
			status = "signed"
			at = at.Add(h.hours(1, 100))
			h.ev(id, at, "reply", nil)
			status = "replied"
		}
		if h.rng.IntN(3) == 0 {
			return
		}
		at = at.Add(h.hours(1, 70))
		result := []string{"satisfied", "basically_satisfied", "unsatisfied", "unsatisfied", ""}[h.rng.IntN(5)]
		data := map[string]any{"result": result}
		if result == "" {
			data = nil
		}
		if result != "unsatisfied" {
			h.ev(id, at, "callback_result", data)
			status = "closed"
			return
		}
		replyBy = at.Add(h.hours(48, 120))
		data["reopened"], data["reply_by"] = true, replyBy
		h.ev(id, at, "callback_result", data)
		status = "signed"
	}
}

// sameRows fails unless the fast rows equal the direct ones: the same groups, labels and counts, averages equal up
// to the order floating-point sums were taken in.
func sameRows(t *testing.T, what string, fast, direct []stats.Row) {
	t.Helper()
	if len(fast) != len(direct) {
		t.Errorf("%s: %d rows, direct %d\nfast   %+v\ndirect %+v", what, len(fast), len(direct), fast, direct)
		return
	}
	for i := range fast {
		f, d := fast[i], direct[i]
		fa, da := []*float64{f.AvgSignHours, f.AvgReplyHours}, []*float64{d.AvgSignHours, d.AvgReplyHours}
		f.AvgSignHours, f.AvgReplyHours, d.AvgSignHours, d.AvgReplyHours = nil, nil, nil, nil
		rf, _ := json.Marshal(f)
		rd, _ := json.Marshal(d)
		if string(rf) != string(rd) {
			t.Errorf("%s: row %d\nfast   %s\ndirect %s", what, i, rf, rd)
		}
		for j := range fa {
			switch {
			case (fa[j] == nil) != (da[j] == nil):
				t.Errorf("%s: row %s average %d: fast %v, direct %v", what, f.Key, j, fa[j], da[j])
			case fa[j] != nil && math.Abs(*fa[j]-*da[j]) > 1e-9*math.Max(1, math.Abs(*da[j])):
				t.Errorf("%s: row %s average %d: fast %v, direct %v", what, f.Key, j, *fa[j], *da[j])
			}
		}
	}
}

// TestDailyMatchesFacts checks that KPIs read from the day sums (with the partial days at either end from the
// facts) give exactly what aggregating every fact of the period gives, for every dimension, aligned and unaligned
// periods, look-backs, filters and moments, on a random history; then again after a third of the tickets changed
// (new events, reopened, re-dispatched, their region, category or lead unit corrected) and new tickets came, which
// only holds if the refresh subtracts a ticket's old facts from the day sums; then that the migration's backfill
// builds the same day sums from the facts.
func TestDailyMatchesFacts(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	h := &history{t: t, ctx: ctx, db: db, rng: rand.New(rand.NewPCG(12345, 10)), last: map[int64]time.Time{}}
	rows, err := db.Query(ctx, `SELECT id FROM units WHERE kind IN ('county', 'division') ORDER BY id LIMIT 8`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		h.units = append(h.units, id)
	}
	rows.Close()
	if err := db.QueryRow(ctx, `SELECT array_agg(code ORDER BY code) FROM ticket_categories`).Scan(&h.cats); err != nil || len(h.units) < 4 || len(h.cats) < 2 {
		t.Fatalf("units %v categories %v: %v", h.units, h.cats, err)
	}
	base := cst("2026-09-20 00:00")
	var ids []int64
	for i := 0; i < 260; i++ {
		ids = append(ids, h.ticket(base.Add(time.Duration(h.rng.Int64N(int64(70*24*time.Hour))))))
	}

	type period struct{ name, from, to string }
	periods := []period{
		{"October", "2026-10-01 00:00", "2026-11-01 00:00"},
		{"all", "2026-09-01 00:00", "2027-01-01 00:00"},
		{"unaligned", "2026-10-03 13:17", "2026-11-09 08:05"},
		{"within a day", "2026-10-10 09:00", "2026-10-10 18:00"},
		{"across midnight", "2026-10-10 09:00", "2026-10-11 18:00"},
		{"one day", "2026-10-20 00:00", "2026-10-21 00:00"},
	}
	nows := []string{"2026-11-20 12:00", "2026-10-15 10:30"}
	compare := func(phase string) stats.Row {
		t.Helper()
		var all stats.Row
		k := 0
		for _, p := range periods {
			for _, by := range stats.Dimensions {
				k++
				q := stats.Query{By: by, From: cst(p.from), To: cst(p.to), Now: cst(nows[k%len(nows)]),
					RepeatDays: []int{0, 1, 7, 45, 365}[k%5]}
				sc := stats.Scope{All: true}
				switch k % 6 {
				case 1:
					sc = stats.Scope{Units: []org.UnitID{org.UnitID(h.units[0]), org.UnitID(h.units[1])}}
				case 2:
					q.UnitID = org.UnitID(h.units[2])
				case 3:
					q.Region = "43"
				case 4:
					q.Category = h.cats[1]
				}
				what := fmt.Sprintf("%s, %s by %s (now %s, repeat %d, scope %v, unit %d, region %q, category %q)",
					phase, p.name, by, q.Now.Format(time.DateTime), q.RepeatDays, sc, q.UnitID, q.Region, q.Category)
				fast, err := stats.KPIs(ctx, db, sc, q)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				direct, err := stats.KPIsFromFacts(ctx, db, sc, q)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				sameRows(t, what, fast, direct)
				if p.name == "all" && by == stats.ByTotal {
					all = stats.Total(direct)
				}
			}
		}
		var empty int
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM ticket_kpi_daily WHERE created + dispatched + replied + callbacks + reopened = 0)
				+ (SELECT count(*) FROM ticket_kpi_daily_repeat WHERE n = 0)`).Scan(&empty); err != nil || empty != 0 {
			t.Errorf("%s: %d day rows with nothing in them (%v)", phase, empty, err)
		}
		return all
	}
	first := compare("first history")
	// The history must exercise every count, or the comparison proves little.
	if first.Created == 0 || first.RepeatCalls == 0 || first.Returned == 0 || first.SignedOnTime == 0 || first.Signed == first.SignedOnTime ||
		first.Replied == 0 || first.Extended == 0 || first.Callbacks == 0 || first.Satisfied == 0 || first.Reopened == 0 {
		t.Fatalf("the random history misses some kind of fact: %+v", first)
	}

	// Changes: a third of the tickets get more events (re-dispatched, replied, 回访 …), some are corrected (region,
	// category or lead unit, with the event that records it), and new tickets come, some from earlier callers.
	for i, id := range ids {
		if i%3 != 0 {
			continue
		}
		at := h.last[id].Add(h.hours(1, 30))
		switch i % 4 {
		case 0:
			h.ev(id, at, "reopen", map[string]any{"reply_by": at.Add(72 * time.Hour)})
			h.life(id, at)
		case 1:
			if _, err := db.Exec(ctx, `UPDATE tickets SET category = $2 WHERE id = $1`, id, h.cats[(i/3)%len(h.cats)]); err != nil {
				t.Fatal(err)
			}
			h.ev(id, at, "update", map[string]any{"fields": []string{"category"}})
		case 2:
			if _, err := db.Exec(ctx, `UPDATE tickets SET region_code = '430902' WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			h.ev(id, at, "update", map[string]any{"fields": []string{"region_code"}})
		case 3:
			if _, err := db.Exec(ctx, `UPDATE tickets SET lead_unit_id = $2 WHERE id = $1`, id, h.pick()); err != nil {
				t.Fatal(err)
			}
			h.life(id, at)
		}
	}
	for i := 0; i < 60; i++ {
		h.ticket(base.Add(time.Duration(h.rng.Int64N(int64(80 * 24 * time.Hour)))))
	}
	if second := compare("after changes"); second.Created == first.Created || second.Dispatched == first.Dispatched {
		t.Errorf("the changes changed nothing: %+v", second)
	}

	// The backfill of migration 0020, run again over the same facts, gives the day sums the refreshes kept.
	sql, err := os.ReadFile("../../migrations/0020_stats_daily.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(sql)[strings.Index(string(sql), "-- Backfill"):]
	var diff int
	for _, step := range []string{
		`CREATE TABLE kept_daily AS SELECT * FROM ticket_kpi_daily`,
		`CREATE TABLE kept_repeat AS SELECT * FROM ticket_kpi_daily_repeat`,
		`TRUNCATE ticket_kpi_daily, ticket_kpi_daily_repeat`,
		backfill,
	} {
		if _, err := db.Exec(ctx, step); err != nil {
			t.Fatalf("%v\n%s", err, step)
		}
	}
	if err := db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM (SELECT * FROM kept_daily EXCEPT ALL SELECT * FROM ticket_kpi_daily) a)
			+ (SELECT count(*) FROM (SELECT * FROM ticket_kpi_daily EXCEPT ALL SELECT * FROM kept_daily) b)
			+ (SELECT count(*) FROM (SELECT * FROM kept_repeat EXCEPT ALL SELECT * FROM ticket_kpi_daily_repeat) c)
			+ (SELECT count(*) FROM (SELECT * FROM ticket_kpi_daily_repeat EXCEPT ALL SELECT * FROM kept_repeat) d)`).Scan(&diff); err != nil || diff != 0 {
		t.Errorf("the backfill differs from the day sums kept by the refreshes in %d rows (%v)", diff, err)
	}
}

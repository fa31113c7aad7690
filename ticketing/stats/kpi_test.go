package stats_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/stats"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func cst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.CST)
	if err != nil {
		panic(err)
	}
	return t
}

// book writes tickets and their events with the times given, as the ticket service would have written them
// (events are append-only, so a fixture is built forwards like the real history).
type book struct {
	t   *testing.T
	ctx context.Context
	db  *pgxpool.Pool
	n   int
}

type tk struct {
	id int64
}

func (b *book) unit(code string) int64 {
	b.t.Helper()
	u, err := org.UnitByCode(b.ctx, b.db, code)
	if err != nil {
		b.t.Fatalf("unit %s: %v", code, err)
	}
	return int64(u.ID)
}

// ticket inserts a ticket as it stands now (status, unit, deadlines), created at created.
func (b *book) ticket(created, status, region, phone string, unit int64, signBy, replyBy string) tk {
	b.t.Helper()
	b.n++
	var sb, rb any
	if signBy != "" {
		sb = cst(signBy)
	}
	if replyBy != "" {
		rb = cst(replyBy)
	}
	var id int64
	err := b.db.QueryRow(b.ctx, `INSERT INTO tickets (number, query_code, source, caller_phone, region_code, kind, category,
			content, status, lead_unit_id, sign_by, reply_by, created_at)
		VALUES ($1, '123456', 'phone', $2, $3, 'help', 'monitoring_help', '测试', $4, $5, $6, $7, $8) RETURNING id`,
		"KPI"+time.Now().Format("150405")+string(rune('A'+b.n)), phone, region, status, unit, sb, rb, cst(created)).Scan(&id)
	if err != nil {
		b.t.Fatalf("ticket: %v", err)
	}
	b.event(tk{id}, created, "create", nil)
	return tk{id}
}

func (b *book) event(t tk, at, action string, data map[string]any) {
	b.t.Helper()
	if data == nil {
		data = map[string]any{}
	}
	js, _ := json.Marshal(data)
	if _, err := b.db.Exec(b.ctx, `INSERT INTO ticket_events (ticket_id, at, actor_name, actor_role, action, from_status, to_status, data)
		VALUES ($1, $2, 'fixture', 'admin', $3, '', '', $4)`, t.id, cst(at), action, js); err != nil {
		b.t.Fatalf("event %s: %v", action, err)
	}
}

// dispatch records a 派单 with the deadlines the ticket service computes on the calendar.
func (b *book) dispatch(t tk, at string, unit int64, signBy, replyBy string) {
	b.event(t, at, "dispatch", map[string]any{"unit_id": unit, "sign_by": cst(signBy), "reply_by": cst(replyBy)})
}

func near(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-9 {
		if got == nil {
			t.Errorf("%s = nil, want %v", what, want)
		} else {
			t.Errorf("%s = %v, want %v", what, *got, want)
		}
	}
}

// fixture is the hand-computed history of TestKPIs (the comments give the arithmetic).
func fixture(t *testing.T) (*pgxpool.Pool, int64, int64, int64) {
	ctx := context.Background()
	db := testenv.DB(t)
	b := &book{t: t, ctx: ctx, db: db}
	a, bb, desk := b.unit("430903"), b.unit("430902"), b.unit(org.CodeDesk) // 赫山区, 资阳区, the desk

	// The deadlines below are what the calendar gives (checked here, so the fixture cannot drift from it):
	// National Day 2026 is 10-01..10-07 off, 10-10 (Saturday) a make-up working day.
	cal := calendar.Default()
	if got := cal.AddDays(cst("2026-09-30 09:30"), 1); !got.Equal(cst("2026-10-08 09:30")) {
		t.Fatalf("calendar: sign-by across National Day = %v", got)
	}
	if got := cal.AddDays(cst("2026-09-30 09:30"), 3); !got.Equal(cst("2026-10-10 09:30")) {
		t.Fatalf("calendar: reply-by across National Day = %v", got)
	}

	// T1 crosses the holiday: dispatched to 赫山 the day before National Day, signed 8 calendar days later but
	// within its one working day (191.5 h elapsed), replied on the make-up Saturday before its reply-by (239.5 h),
	// 回访 满意.
	t1 := b.ticket("2026-09-30 09:00", "closed", "430903", "13812345678", a, "2026-10-08 09:30", "2026-10-10 09:30")
	b.dispatch(t1, "2026-09-30 09:30", a, "2026-10-08 09:30", "2026-10-10 09:30")
	b.event(t1, "2026-10-08 09:00", "sign", nil)
	b.event(t1, "2026-10-10 09:00", "reply", map[string]any{"callback_by": cst("2026-10-12 09:00")})
	b.event(t1, "2026-10-12 10:00", "callback_result", map[string]any{"result": "satisfied"})

	// T2 was extended: reply-by 10-15 moved to 10-20 by an approved extension; replied 10-19 16:00 (late against
	// the first deadline, on time against the one in force: on time, and counted as extended; 174 h). 回访 不满意
	// reopens it with reply-by 10-23; the second reply on 10-26 is late (335 h); the second 回访 is 满意.
	t2 := b.ticket("2026-10-12 09:00", "closed", "430903", "13900000001", a, "2026-10-13 10:00", "2026-10-23 10:00")
	b.dispatch(t2, "2026-10-12 10:00", a, "2026-10-13 10:00", "2026-10-15 10:00")
	b.event(t2, "2026-10-12 11:00", "sign", nil)
	b.event(t2, "2026-10-14 09:00", "request_extension", map[string]any{"days": 3, "reason": "需现场核查"})
	b.event(t2, "2026-10-14 15:00", "approve_extension", map[string]any{"days": 3,
		"old_reply_by": cst("2026-10-15 10:00"), "reply_by": cst("2026-10-20 10:00")})
	b.event(t2, "2026-10-19 16:00", "reply", nil)
	b.event(t2, "2026-10-20 10:00", "callback_result", map[string]any{"result": "unsatisfied", "reopened": true,
		"reply_by": cst("2026-10-23 10:00")})
	b.event(t2, "2026-10-26 09:00", "reply", nil)
	b.event(t2, "2026-10-27 10:00", "callback_result", map[string]any{"result": "satisfied"})

	// T3: dispatched to 资阳, returned (退单) the same day, re-dispatched to 赫山 and signed late (49 h); its reply-by
	// 10-19 has passed unreplied (reply overdue for 赫山).
	t3 := b.ticket("2026-10-13 09:00", "signed", "430902", "13900000002", a, "2026-10-15 09:00", "2026-10-19 09:00")
	b.dispatch(t3, "2026-10-13 09:30", bb, "2026-10-14 09:30", "2026-10-16 09:30")
	b.event(t3, "2026-10-13 15:00", "return", map[string]any{"from_unit_id": bb, "reason": "非本单位职责"})
	b.dispatch(t3, "2026-10-14 09:00", a, "2026-10-15 09:00", "2026-10-19 09:00")
	b.event(t3, "2026-10-16 10:00", "sign", nil)

	// T4: dispatched to 资阳 and never signed: sign overdue and reply overdue; no caller number.
	t4 := b.ticket("2026-10-20 09:00", "dispatched", "430902", "", bb, "2026-10-21 09:30", "2026-10-23 09:30")
	b.dispatch(t4, "2026-10-20 09:30", bb, "2026-10-21 09:30", "2026-10-23 09:30")

	// T5: T1's caller again 25 days later (a repeat call within 30 days), still at the desk.
	b.ticket("2026-10-25 09:00", "new", "", "13812345678", desk, "", "")
	return db, a, bb, desk
}

var period = stats.Query{From: cst("2026-09-01 00:00"), To: cst("2026-11-01 00:00"), Now: cst("2026-10-30 12:00")}

func TestKPIs(t *testing.T) {
	db, a, bb, desk := fixture(t)
	ctx := context.Background()
	q := period
	q.By = stats.ByUnit
	rows, err := stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]stats.Row{}
	for _, r := range rows {
		by[r.Key] = r
	}
	ra, rb, rd := by[itoa(a)], by[itoa(bb)], by[itoa(desk)]
	if len(rows) != 3 {
		t.Fatalf("rows %+v, want 赫山, 资阳 and the desk", rows)
	}
	if ra.Label != "益阳市赫山区乡村振兴局" {
		t.Errorf("label %q", ra.Label)
	}
	// 赫山: three dispatches (T1, T2, T3's second), signed on time 2 of 3 (T3 late).
	if ra.Created != 3 || ra.Dispatched != 3 || ra.Signed != 3 || ra.SignedOnTime != 2 || ra.SignOverdue != 0 || ra.Returned != 0 {
		t.Errorf("赫山 counts %+v", ra)
	}
	near(t, "赫山 按时签收率", ra.OnTimeSignRate, 2.0/3)
	near(t, "赫山 平均签收用时", ra.AvgSignHours, (191.5+1+49)/3)
	// Replies: T1 on time across the holiday, T2's first on time on its extended deadline, T2's second late; T3
	// overdue unreplied: 2 of 4.
	if ra.Replied != 3 || ra.RepliedOnTime != 2 || ra.ReplyOverdue != 1 || ra.Extended != 1 {
		t.Errorf("赫山 replies %+v", ra)
	}
	near(t, "赫山 按时办结率", ra.OnTimeReplyRate, 0.5)
	near(t, "赫山 延期率", ra.ExtensionRate, 1.0/3)
	near(t, "赫山 平均答复用时", ra.AvgReplyHours, (239.5+174+335)/3)
	// 回访: 满意, 不满意 (reopens), 满意.
	if ra.Callbacks != 3 || ra.Satisfied != 2 || ra.Reopened != 1 {
		t.Errorf("赫山 callbacks %+v", ra)
	}
	near(t, "赫山 满意率", ra.SatisfactionRate, 2.0/3)
	near(t, "赫山 重办率", ra.ReopenRate, 1.0/3)
	near(t, "赫山 重复来电率", ra.RepeatCallRate, 0)
	near(t, "赫山 退单率", ra.ReturnRate, 0)

	// 资阳: T3's first dispatch returned, T4 unsigned and unreplied past both deadlines.
	if rb.Created != 1 || rb.Dispatched != 2 || rb.Returned != 1 || rb.Signed != 0 || rb.SignOverdue != 1 || rb.ReplyOverdue != 1 {
		t.Errorf("资阳 counts %+v", rb)
	}
	near(t, "资阳 退单率", rb.ReturnRate, 0.5)
	near(t, "资阳 按时签收率", rb.OnTimeSignRate, 0)
	near(t, "资阳 按时办结率", rb.OnTimeReplyRate, 0)
	if rb.RepeatCallRate != nil || rb.SatisfactionRate != nil || rb.AvgSignHours != nil {
		t.Errorf("资阳: rates without a denominator must be nil: %+v", rb)
	}
	// The desk holds T5, a repeat call of T1's caller.
	if rd.Created != 1 || rd.WithPhone != 1 || rd.RepeatCalls != 1 {
		t.Errorf("desk %+v", rd)
	}

	// The total is the sum, rates from the sums: 重复来电率 1 of 4 numbered tickets.
	tot := stats.Total(rows)
	if tot.Created != 5 || tot.Dispatched != 5 || tot.Replied != 3 {
		t.Errorf("total %+v", tot)
	}
	near(t, "合计 重复来电率", tot.RepeatCallRate, 0.25)
	near(t, "合计 按时签收率", tot.OnTimeSignRate, 2.0/4)
	q.By = stats.ByTotal
	one, err := stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if err != nil || len(one) != 1 {
		t.Fatalf("by total: %v %+v", err, one)
	}
	near(t, "by total 重复来电率", one[0].RepeatCallRate, 0.25)
	if one[0].Created != tot.Created || one[0].SignedOnTime != tot.SignedOnTime || one[0].Label != "合计" {
		t.Errorf("by total %+v, summed %+v", one[0], tot)
	}

	// A shorter look-back: T1 was 25 days before T5, so with 20 days T5 is no repeat.
	q.RepeatDays = 20
	one, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	near(t, "重复来电率 over 20 days", one[0].RepeatCallRate, 0)

	// September alone: T1's dispatch belongs to it, and so does how that dispatch ended (signed on time in
	// October, across the holiday); its reply and 回访 belong to October.
	q = stats.Query{By: stats.ByUnit, From: cst("2026-09-01 00:00"), To: cst("2026-10-01 00:00"), Now: period.Now}
	rows, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if len(rows) != 1 || rows[0].Dispatched != 1 || rows[0].SignedOnTime != 1 || rows[0].Replied != 0 || rows[0].Callbacks != 0 {
		t.Errorf("September: %+v", rows)
	}
	near(t, "September 按时签收率", rows[0].OnTimeSignRate, 1)
}

func TestKPIsByRegionAndPeriod(t *testing.T) {
	db, _, _, _ := fixture(t)
	ctx := context.Background()
	q := period
	q.By = stats.ByPrefecture
	rows, err := stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Key != "" || rows[1].Key != "430900" || rows[1].Label != "益阳市" || rows[1].Created != 4 || rows[0].Created != 1 {
		t.Errorf("by prefecture %+v", rows)
	}
	q.By = stats.ByCounty
	rows, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if len(rows) != 3 || rows[2].Key != "430903" || rows[2].Label != "赫山区" || rows[2].Created != 2 || rows[1].Key != "430902" || rows[1].Created != 2 {
		t.Errorf("by county %+v", rows)
	}
	q.By = stats.ByMonth
	rows, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if len(rows) != 2 || rows[0].Key != "2026-09" || rows[0].Created != 1 || rows[0].Dispatched != 1 || rows[1].Key != "2026-10" || rows[1].Created != 4 || rows[1].Replied != 3 {
		t.Errorf("by month %+v", rows)
	}
	q.By = stats.ByCategory
	rows, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if len(rows) != 1 || rows[0].Label != "防返贫监测求助" || rows[0].Created != 5 {
		t.Errorf("by category %+v", rows)
	}
	q.By, q.Region = stats.ByTotal, "430902"
	rows, _ = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if len(rows) != 1 || rows[0].Created != 2 {
		t.Errorf("region 430902 %+v", rows)
	}
	if _, err := stats.KPIs(ctx, db, stats.Scope{All: true}, stats.Query{By: "street", From: q.From, To: q.To}); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("unknown dimension: %v", err)
	}
	if _, err := stats.KPIs(ctx, db, stats.Scope{All: true}, stats.Query{By: stats.ByDay, From: q.To, To: q.From}); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("reversed period: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	db, a, bb, desk := fixture(t)
	ctx := context.Background()
	user := func(role org.Role, unit string) org.Actor {
		var uid org.UnitID
		if unit != "" {
			u, err := org.UnitByCode(ctx, db, unit)
			if err != nil {
				t.Fatal(err)
			}
			uid = u.ID
		}
		return org.Actor{Username: "u", Role: role, UnitID: uid}
	}
	for _, c := range []struct {
		who       org.Actor
		all, deny bool
		has, not  []int64
	}{
		{who: user(org.RoleSupervisor, ""), all: true},
		{who: user(org.RoleAdmin, ""), all: true},
		{who: user(org.RoleHead, "430900"), has: []int64{a, bb}, not: []int64{desk}}, // 益阳市: its counties
		{who: user(org.RoleHead, "430903"), has: []int64{a}, not: []int64{bb, desk}},
		{who: user(org.RoleStaff, "430903"), deny: true},
		{who: user(org.RoleAgent, "desk"), deny: true},
		{who: user(org.RoleDispatcher, "desk"), deny: true},
		{who: user(org.RoleCampaignManager, "div-monitoring"), deny: true},
	} {
		sc, err := stats.Authorize(ctx, db, c.who)
		if c.deny {
			if !errors.Is(err, org.ErrForbidden) {
				t.Errorf("%s: %v, want forbidden", c.who.Role, err)
			}
			continue
		}
		if err != nil || sc.All != c.all {
			t.Errorf("%s: %+v %v", c.who.Role, sc, err)
		}
		for _, u := range c.has {
			if !sc.Has(org.UnitID(u)) {
				t.Errorf("%s of %d: scope %+v lacks %d", c.who.Role, c.who.UnitID, sc, u)
			}
		}
		for _, u := range c.not {
			if sc.Has(org.UnitID(u)) {
				t.Errorf("%s of %d: scope %+v has %d", c.who.Role, c.who.UnitID, sc, u)
			}
		}
		if bErr := stats.AuthorizeBureau(c.who); (bErr == nil) != c.all {
			t.Errorf("%s: bureau %v", c.who.Role, bErr)
		}
	}
	// The scope limits the figures: 益阳市's head counts its counties' tickets, not the desk's.
	sc, _ := stats.Authorize(ctx, db, user(org.RoleHead, "430900"))
	q := period
	q.By = stats.ByTotal
	rows, err := stats.KPIs(ctx, db, sc, q)
	if err != nil || len(rows) != 1 || rows[0].Created != 4 || rows[0].Dispatched != 5 {
		t.Errorf("prefecture head's total %v %+v", err, rows)
	}
	sc, _ = stats.Authorize(ctx, db, user(org.RoleHead, "430903"))
	rows, _ = stats.KPIs(ctx, db, sc, q)
	if len(rows) != 1 || rows[0].Created != 3 || rows[0].Dispatched != 3 || rows[0].Returned != 0 {
		t.Errorf("county head's total %+v", rows)
	}
}

func itoa(n int64) string { return fmtInt(n) }

func fmtInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestFactsFollowNewEvents: the facts are recomputed for a ticket whose events changed since the last read — a
// dispatch counted open (and overdue) becomes signed late once its sign event is written — and nothing is left
// marked after a read.
func TestFactsFollowNewEvents(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	b := &book{t: t, ctx: ctx, db: db}
	a := b.unit("430903")
	tk := b.ticket("2026-11-02 09:00", "dispatched", "430903", "13812345678", a, "2026-11-03 09:30", "2026-11-05 09:30")
	b.dispatch(tk, "2026-11-02 09:30", a, "2026-11-03 09:30", "2026-11-05 09:30")
	q := stats.Query{By: stats.ByTotal, From: cst("2026-11-01 00:00"), To: cst("2026-12-01 00:00"), Now: cst("2026-11-04 12:00")}
	rows, err := stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if err != nil || len(rows) != 1 || rows[0].SignOverdue != 1 || rows[0].Signed != 0 {
		t.Fatalf("before the sign: %v %+v", err, rows)
	}
	b.event(tk, "2026-11-04 10:00", "sign", nil)
	rows, err = stats.KPIs(ctx, db, stats.Scope{All: true}, q)
	if err != nil || len(rows) != 1 || rows[0].SignOverdue != 0 || rows[0].Signed != 1 || rows[0].SignedOnTime != 0 {
		t.Fatalf("after the sign: %v %+v", err, rows)
	}
	near(t, "平均签收用时", rows[0].AvgSignHours, 48.5)
	var marked, facts int
	db.QueryRow(ctx, `SELECT count(*) FROM ticket_kpi_dirty`).Scan(&marked)
	db.QueryRow(ctx, `SELECT count(*) FROM ticket_kpi_facts WHERE ticket_id = $1`, tk.id).Scan(&facts)
	if marked != 0 || facts != 2 {
		t.Errorf("after a read: %d tickets still marked, %d facts of the ticket (want created and dispatch)", marked, facts)
	}
}

package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/ticketlink"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// woClock is the settable clock of the ticket service in these tests.
type woClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *woClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *woClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func cst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.CST)
	if err != nil {
		panic(err)
	}
	return t
}

type woFixture struct {
	*apiFixture
	svc   *ticketing.Service
	clock *woClock
	relay *ticketing.Relay
	// recDir is telephony's recordings directory (with telephony only).
	recDir string
}

// newWorkorderAPI is the ticket API on a service with a settable clock; setup may register hooks on it.
func newWorkorderAPI(t *testing.T, start time.Time, opt ticketing.Options, setup func(*ticketing.Service)) *woFixture {
	return newWorkorderAPIWith(t, start, opt, setup, false)
}

func newWorkorderAPIWith(t *testing.T, start time.Time, opt ticketing.Options, setup func(*ticketing.Service), tel bool) *woFixture {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	clk := &woClock{t: start}
	opt.Now = clk.now
	svc := ticketing.NewService(db, opt)
	if setup != nil {
		setup(svc)
	}
	deps := Deps{DB: db, Redis: rdb, Now: clk.now, Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix, PublicLimit: 100}}
	recDir := ""
	if tel {
		// Wired as cmd/hotline wires it: who may see the ticket may hear its recordings.
		recDir = t.TempDir()
		deps.Telephony = telephony.NewService(telephony.Options{DB: db, RecordingsDir: recDir, TicketAccess: ticketlink.Access{Svc: svc}})
	}
	h := New(deps)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if _, err := db.Exec(context.Background(), `INSERT INTO households (id, number, county_code, township_code, head_name, monitoring_type)
		VALUES (5, 'T5', '430903', '430903001', '测试户主', 'marginal')`); err != nil {
		t.Fatal(err)
	}
	return &woFixture{apiFixture: &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}, svc: svc, clock: clk,
		relay: ticketing.NewRelay(db, rdb, ticketing.RelayOptions{Prefix: prefix}), recDir: recDir}
}

func (f *woFixture) unit(code string) org.UnitID {
	f.t.Helper()
	u, err := org.UnitByCode(context.Background(), f.db, code)
	if err != nil {
		f.t.Fatal(err)
	}
	return u.ID
}

// publish runs the outbox relay until the outbox is empty, so the Redis queues show what PostgreSQL holds.
func (f *woFixture) publish() {
	f.t.Helper()
	for {
		n, err := f.relay.PublishOnce(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// act posts an action with the ticket's current version and returns the status and the view.
func (f *woFixture) act(token string, tk ticketing.Ticket, act string, body map[string]any) (int, viewResp) {
	f.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["version"] = tk.Version
	var v viewResp
	code := f.call(token, "POST", fmt.Sprintf("/api/v1/tickets/%d/%s", tk.ID, act), body, nil, &v)
	return code, v
}

// must posts an action that has to succeed.
func (f *woFixture) must(token string, tk ticketing.Ticket, act string, body map[string]any) ticketing.Ticket {
	f.t.Helper()
	code, v := f.act(token, tk, act, body)
	if code != 200 {
		f.t.Fatalf("%s ticket %d: %d", act, tk.ID, code)
	}
	return v.Ticket
}

func (f *woFixture) get(token string, id org.TicketID) (int, ticketView) {
	f.t.Helper()
	var v ticketView
	code := f.call(token, "GET", fmt.Sprintf("/api/v1/tickets/%d", id), nil, nil, &v)
	return code, v
}

func (f *woFixture) create(token string, body map[string]any) ticketing.Ticket {
	f.t.Helper()
	var v viewResp
	if code := f.call(token, "POST", "/api/v1/tickets", body, nil, &v); code != 201 {
		f.t.Fatalf("create ticket: %d", code)
	}
	return v.Ticket
}

func (f *woFixture) lastEvent(id org.TicketID) ticketing.Event {
	f.t.Helper()
	var e ticketing.Event
	err := f.db.QueryRow(context.Background(), `SELECT action, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id DESC LIMIT 1`,
		int64(id)).Scan(&e.Action, &e.Data)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *woFixture) queue(token string, unit org.UnitID) []org.TicketID {
	f.t.Helper()
	var out struct{ Entries []ticketing.QueueEntry }
	if code := f.call(token, "GET", fmt.Sprintf("/api/v1/queues/%d", unit), nil, nil, &out); code != 200 {
		f.t.Fatalf("queue of unit %d: %d", unit, code)
	}
	ids := []org.TicketID{}
	for _, e := range out.Entries {
		ids = append(ids, e.Ticket)
	}
	return ids
}

// A correction of the category re-routes a dispatched ticket through the rules: another unit gets it, the queue
// entry moves from the old unit's queue to the new one's, and the event carries before and after.
func TestCorrectionReroutesAndMovesQueueEntry(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	dev := f.user("dev1", org.RoleStaff, "div-development")
	social := f.user("social1", org.RoleStaff, "div-social")
	coord := f.user("coord1", org.RoleStaff, "div-coordination")
	devID, socialID, coordID := f.unit("div-development"), f.unit("div-social"), f.unit("div-coordination")

	tk := f.create(agent, map[string]any{"caller_name": "王五", "caller_phone": "13807370001", "region_code": "430903",
		"kind": "help", "category": "employment", "content": "想参加公益岗位", "dispatch": true})
	if tk.LeadUnitID != devID || tk.Status != ticketing.StatusDispatched {
		t.Fatalf("dispatched to %d (%s), want 开发指导处 %d", tk.LeadUnitID, tk.Status, devID)
	}
	f.publish()
	if q := f.queue(dev, devID); !slices.Contains(q, tk.ID) {
		t.Fatalf("开发指导处 queue %v lacks ticket %d", q, tk.ID)
	}

	// Nothing changed: refused with the field named.
	var e errorBody
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/correct", tk.ID),
		map[string]any{"version": tk.Version, "changes": map[string]any{"category": "employment"}}, nil, &e); code != 400 || e.Fields["changes"] == "" {
		t.Fatalf("empty correction: %d %+v", code, e)
	}

	tk = f.must(agent, tk, "correct", map[string]any{"changes": map[string]any{"category": "village_teams", "caller_name": "王武"},
		"note": "来电人实为驻村帮扶问题"})
	if tk.LeadUnitID != socialID || tk.Category != "village_teams" || tk.CallerName != "王武" || tk.Status != ticketing.StatusDispatched {
		t.Fatalf("after correction: unit %d category %s name %s status %s", tk.LeadUnitID, tk.Category, tk.CallerName, tk.Status)
	}
	ev := f.lastEvent(tk.ID)
	changes, _ := ev.Data["changes"].(map[string]any)
	cat, _ := changes["category"].(map[string]any)
	if ev.Action != "correct" || cat["before"] != "employment" || cat["after"] != "village_teams" || ev.Data["rerouted"] != true {
		t.Fatalf("correction event: %s %v", ev.Action, ev.Data)
	}
	f.publish()
	if q := f.queue(dev, devID); slices.Contains(q, tk.ID) {
		t.Fatalf("开发指导处 queue %v still holds ticket %d", q, tk.ID)
	}
	if q := f.queue(social, socialID); !slices.Contains(q, tk.ID) {
		t.Fatalf("社会帮扶处 queue %v lacks ticket %d", q, tk.ID)
	}

	// After signing, an override to a unit chosen by hand needs a reason; with one the ticket moves there as a
	// fresh dispatch (signed → dispatched, sign clock from now).
	tk = f.must(social, tk, "sign", nil)
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/correct", tk.ID),
		map[string]any{"version": tk.Version, "unit_id": coordID, "changes": map[string]any{}}, nil, &e); code != 400 || e.Fields["reason"] == "" {
		t.Fatalf("override without a reason: %d %+v", code, e)
	}
	f.clock.set(cst("2026-11-30 15:00"))
	tk = f.must(agent, tk, "correct", map[string]any{"unit_id": coordID, "reason": "涉及移风易俗，由政策协调处承办", "changes": map[string]any{}})
	if tk.LeadUnitID != coordID || tk.Status != ticketing.StatusDispatched || tk.SignBy == nil || !tk.SignBy.Equal(cst("2026-12-01 15:00")) {
		t.Fatalf("override: unit %d status %s sign_by %v", tk.LeadUnitID, tk.Status, tk.SignBy)
	}
	f.publish()
	if q := f.queue(coord, coordID); !slices.Contains(q, tk.ID) {
		t.Fatalf("政策协调处 queue %v lacks ticket %d", q, tk.ID)
	}
	// A unit's staff cannot correct (the desk does).
	if code, _ := f.act(coord, tk, "correct", map[string]any{"changes": map[string]any{"content": "改"}}); code != 403 {
		t.Fatalf("correction by the unit's staff: %d, want 403", code)
	}
}

// A co-unit signs its part and gives its opinion; until it has, the lead unit's reply is refused and not listed.
func TestCoUnitOpinionBlocksReply(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	disp := f.user("dispatch1", org.RoleDispatcher, org.CodeDesk)
	lead := f.user("heshan1", org.RoleStaff, "430903")
	co := f.user("monitor1", org.RoleStaff, "div-monitoring")
	coID := f.unit("div-monitoring")

	tk := f.create(disp, map[string]any{"caller_name": "刘建国", "caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "household_id": 5})
	tk = f.must(disp, tk, "dispatch", map[string]any{"co_unit_ids": []org.UnitID{coID}})
	if !slices.Equal(tk.CoPending, []org.UnitID{coID}) || !slices.Equal(tk.CoUnsigned, []org.UnitID{coID}) {
		t.Fatalf("co-units after dispatch: pending %v unsigned %v", tk.CoPending, tk.CoUnsigned)
	}
	tk = f.must(lead, tk, "sign", nil)
	_, v := f.get(lead, tk.ID)
	if slices.Contains(v.Allowed, "reply") {
		t.Fatalf("reply listed while the co-unit's opinion is outstanding: %v", v.Allowed)
	}
	if len(v.CoTasks) != 1 || v.CoTasks[0].UnitID != coID || !v.CoTasks[0].DueAt.Equal(cst("2026-12-02 10:00")) {
		t.Fatalf("co tasks: %+v (opinion due two working days after dispatch)", v.CoTasks)
	}
	var e errorBody
	if code := f.call(lead, "POST", fmt.Sprintf("/api/v1/tickets/%d/reply", tk.ID), map[string]any{"version": tk.Version, "reply": "已处理"}, nil, &e); code != 409 {
		t.Fatalf("reply with an opinion outstanding: %d, want 409", code)
	}

	// The co-unit: its own actions only.
	_, cv := f.get(co, tk.ID)
	if !slices.Contains(cv.Allowed, "co_sign") || !slices.Contains(cv.Allowed, "co_opinion") || slices.Contains(cv.Allowed, "reply") {
		t.Fatalf("co-unit allowed %v", cv.Allowed)
	}
	if code, _ := f.act(lead, tk, "co_opinion", map[string]any{"opinion": "x"}); code != 403 {
		t.Fatalf("the lead unit giving a co-unit's opinion: %d, want 403", code)
	}
	tk = f.must(co, tk, "co_sign", nil)
	if code, _ := f.act(co, tk, "co_opinion", map[string]any{}); code != 400 {
		t.Fatalf("opinion without text: %d, want 400", code)
	}
	tk = f.must(co, tk, "co_opinion", map[string]any{"opinion": "经查该户已纳入监测，建议落实医疗救助"})
	if len(tk.CoPending) != 0 {
		t.Fatalf("pending after the opinion: %v", tk.CoPending)
	}
	_, v = f.get(lead, tk.ID)
	if len(v.CoTasks) != 1 || v.CoTasks[0].Opinion != "经查该户已纳入监测，建议落实医疗救助" || v.CoTasks[0].SignedAt == nil || !slices.Contains(v.Allowed, "reply") {
		t.Fatalf("lead's view after the opinion: %+v allowed %v", v.CoTasks, v.Allowed)
	}
	tk = f.must(lead, tk, "reply", map[string]any{"reply": "已落实医疗救助"})
	if tk.Status != ticketing.StatusReplied {
		t.Fatalf("status %s after reply", tk.Status)
	}
}

// With the warn policy the reply goes, and its event names the opinions it went without.
func TestCoUnitOpinionWarnPolicy(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{CoOpinionWarn: true}, nil)
	disp := f.user("dispatch1", org.RoleDispatcher, org.CodeDesk)
	lead := f.user("heshan1", org.RoleStaff, "430903")
	coID := f.unit("div-monitoring")
	tk := f.create(disp, map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "household_id": 5})
	tk = f.must(disp, tk, "dispatch", map[string]any{"co_unit_ids": []org.UnitID{coID}})
	tk = f.must(lead, tk, "sign", nil)
	tk = f.must(lead, tk, "reply", map[string]any{"reply": "已处理"})
	ev := f.lastEvent(tk.ID)
	if ev.Action != "reply" || fmt.Sprint(ev.Data["co_pending"]) != fmt.Sprintf("[%d]", coID) {
		t.Fatalf("reply event under warn: %s %v", ev.Action, ev.Data)
	}
}

type progressResp struct {
	Status    ticketing.Status
	Suspended bool
	StateText string `json:"state_text"`
	Replies   []ticketing.ProgressReply
}

func (f *woFixture) progress(tk ticketing.Ticket, code string) progressResp {
	f.t.Helper()
	var p progressResp
	if c := f.call("", "GET", "/api/v1/public/tickets/"+tk.Number+"?code="+code, nil, nil, &p); c != 200 {
		f.t.Fatalf("progress query: %d", c)
	}
	return p
}

// A unit that requires approval: the clerk's reply waits (待审核), the head returns it with a comment, the clerk
// submits again, the head approves and the reply goes out. The clock stops at the approval.
func TestReplyApprovalRoundTrip(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	clerk := f.user("heshan1", org.RoleStaff, "430903")
	head := f.user("heshanhead", org.RoleHead, "430903")
	unit := f.unit("430903")
	path := fmt.Sprintf("/api/v1/units/%d/reply-approval", unit)
	if code := f.call(clerk, "PUT", path, map[string]any{"required": true}, nil, nil); code != 403 {
		t.Fatalf("a clerk turning approval on: %d, want 403", code)
	}
	if code := f.call(head, "PUT", path, map[string]any{"required": true}, nil, nil); code != 200 {
		t.Fatalf("the head turning approval on: %d", code)
	}
	// The switch is an administrative change: its admin audit row names who, the unit, before and after.
	var who, before, after string
	if err := f.db.QueryRow(context.Background(), `SELECT actor_username, before->>'reply_approval', after->>'reply_approval'
		FROM admin_audit WHERE action = 'unit.reply_approval' AND object = $1`, fmt.Sprintf("unit:%d", unit)).Scan(&who, &before, &after); err != nil ||
		who != "heshanhead" || before != "false" || after != "true" {
		t.Fatalf("admin audit of the switch: %q %q→%q (%v)", who, before, after, err)
	}
	var listed struct{ Units []org.Unit }
	if code := f.call(head, "GET", "/api/v1/units", nil, nil, &listed); code != 200 ||
		!slices.ContainsFunc(listed.Units, func(u org.Unit) bool { return u.ID == unit && u.ReplyApproval }) {
		t.Fatalf("the unit list shows the switch on: %d", code)
	}
	created := struct {
		Ticket ticketing.Ticket
	}{}
	if code := f.call(agent, "POST", "/api/v1/tickets", map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "household_id": 5, "dispatch": true}, nil, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	tk, qc := created.Ticket, created.Ticket.QueryCode
	tk = f.must(clerk, tk, "sign", nil)
	tk = f.must(clerk, tk, "reply", map[string]any{"reply": "初稿"})
	if tk.Status != ticketing.StatusSigned || tk.ReviewStatus != "pending" || tk.PendingReply != "初稿" || tk.DueKind == nil || *tk.DueKind != ticketing.DueReply {
		t.Fatalf("after the clerk's reply: %s review %s pending %q due %v", tk.Status, tk.ReviewStatus, tk.PendingReply, tk.DueKind)
	}
	if ev := f.lastEvent(tk.ID); ev.Action != "reply_submitted" {
		t.Fatalf("event %s, want reply_submitted", ev.Action)
	}
	if p := f.progress(tk, qc); len(p.Replies) != 0 {
		t.Fatalf("a reply waiting for approval is public: %+v", p.Replies)
	}
	_, cv := f.get(clerk, tk.ID)
	if slices.Contains(cv.Allowed, "reply") || slices.Contains(cv.Allowed, "approve_reply") {
		t.Fatalf("clerk's allowed while pending: %v", cv.Allowed)
	}
	if code, _ := f.act(clerk, tk, "approve_reply", nil); code != 403 {
		t.Fatalf("clerk approving: %d, want 403", code)
	}
	tk = f.must(head, tk, "return_reply", map[string]any{"reason": "请写明救助金额"})
	if tk.ReviewStatus != "returned" || tk.Status != ticketing.StatusSigned {
		t.Fatalf("after return: %s %s", tk.ReviewStatus, tk.Status)
	}
	tk = f.must(clerk, tk, "reply", map[string]any{"reply": "已落实医疗救助3000元"})
	f.clock.set(cst("2026-11-30 16:00"))
	tk = f.must(head, tk, "approve_reply", nil)
	if tk.Status != ticketing.StatusReplied || tk.ReplyText != "已落实医疗救助3000元" || tk.ReviewStatus != "none" ||
		tk.CallbackBy == nil || !tk.CallbackBy.Equal(cst("2026-12-01 16:00")) {
		t.Fatalf("after approval: %s %q review %s callback_by %v", tk.Status, tk.ReplyText, tk.ReviewStatus, tk.CallbackBy)
	}
	ev := f.lastEvent(tk.ID)
	if ev.Action != "reply" || ev.Data["approved"] != true || ev.Data["reply"] != "已落实医疗救助3000元" {
		t.Fatalf("approval event: %s %v", ev.Action, ev.Data)
	}
	if p := f.progress(tk, qc); len(p.Replies) != 1 || p.Replies[0].Text != "已落实医疗救助3000元" {
		t.Fatalf("public replies: %+v", p.Replies)
	}
}

// Suspension across the National Day holiday (2026-10-01..07, with Saturday 10-10 a make-up working day):
//
//	dispatched Mon 09-28 09:00, 求助: 3 working days → reply_by Thu 10-08 09:00
//	  (09-29 09:00, 09-30 09:00, then 10-01..07 off → 10-08 09:00).
//	suspended Tue 09-29 09:00: left = 09-29 09:00→24:00 (15 h) + 09-30 (24 h) + 10-08 00:00→09:00 (9 h) = 48 h.
//	resumed Fri 10-09 09:00: 15 h to midnight, Sat 10-10 (make-up day) 24 h = 39 h, Sun 10-11 off,
//	  Mon 10-12 9 h → reply_by Mon 10-12 09:00.
func TestSuspensionPausesClockAcrossHoliday(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-09-28 09:00"), ticketing.Options{}, nil)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	staff := f.user("heshan1", org.RoleStaff, "430903")
	super := f.user("super1", org.RoleSupervisor, "div-inspection")
	created := struct{ Ticket ticketing.Ticket }{}
	if code := f.call(agent, "POST", "/api/v1/tickets", map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "household_id": 5, "dispatch": true}, nil, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	tk, qc := created.Ticket, created.Ticket.QueryCode
	tk = f.must(staff, tk, "sign", nil)
	if !tk.ReplyBy.Equal(cst("2026-10-08 09:00")) {
		t.Fatalf("reply_by %v, want 2026-10-08 09:00 CST", tk.ReplyBy.In(calendar.CST))
	}
	tk = f.must(staff, tk, "note", map[string]any{"note": "已电话联系村委"})
	tk = f.must(staff, tk, "interim_reply", map[string]any{"reply": "已安排工作人员入户核实"})

	f.clock.set(cst("2026-09-29 09:00"))
	if code, _ := f.act(staff, tk, "request_suspend", map[string]any{}); code != 400 {
		t.Fatalf("suspension without a reason: %d, want 400", code)
	}
	tk = f.must(staff, tk, "request_suspend", map[string]any{"reason": "等待医院出具诊断证明"})
	if code, _ := f.act(staff, tk, "approve_suspend", nil); code != 403 {
		t.Fatalf("staff approving their own suspension: %d, want 403", code)
	}
	tk = f.must(super, tk, "approve_suspend", nil)
	if tk.SuspendStatus != "suspended" || tk.DueAt != nil || tk.SuspendLeftMS == nil || *tk.SuspendLeftMS != (48*time.Hour).Milliseconds() {
		t.Fatalf("suspended: %s due %v left %v", tk.SuspendStatus, tk.DueAt, tk.SuspendLeftMS)
	}
	p := f.progress(tk, qc)
	if !p.Suspended || p.StateText != "挂起中" || len(p.Replies) != 1 || !p.Replies[0].Interim || p.Replies[0].Text != "已安排工作人员入户核实" {
		t.Fatalf("public progress while suspended: %+v", p)
	}
	if code, _ := f.act(staff, tk, "reply", map[string]any{"reply": "x"}); code != 409 {
		t.Fatalf("reply while suspended: %d, want 409", code)
	}

	f.clock.set(cst("2026-10-09 09:00"))
	tk = f.must(staff, tk, "resume", nil)
	if tk.SuspendStatus != "none" || !tk.ReplyBy.Equal(cst("2026-10-12 09:00")) || tk.DueAt == nil || !tk.DueAt.Equal(*tk.ReplyBy) {
		t.Fatalf("resumed: %s reply_by %v due %v, want 2026-10-12 09:00 CST", tk.SuspendStatus, tk.ReplyBy.In(calendar.CST), tk.DueAt)
	}
	if p := f.progress(tk, qc); p.Suspended || p.StateText != "办理中" {
		t.Fatalf("public progress after resuming: %+v", p)
	}
}

// A prefecture bureau (益阳市) reads and urges the tickets of its counties (赫山区), and does nothing else to them;
// another prefecture's tickets stay out of its reach.
func TestPrefectureOversight(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	yiyang := f.user("yiyang1", org.RoleStaff, "430900")
	changsha := f.user("changsha1", org.RoleHead, "430100")
	heshan := f.create(agent, map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "dispatch": true})
	furong := f.create(agent, map[string]any{"caller_phone": "13807371235", "region_code": "430102",
		"kind": "help", "category": "monitoring_help", "content": "因灾收入下降", "dispatch": true})
	if heshan.LeadUnitID != f.unit("430903") || furong.LeadUnitID != f.unit("430102") {
		t.Fatalf("routing: %d %d", heshan.LeadUnitID, furong.LeadUnitID)
	}
	code, v := f.get(yiyang, heshan.ID)
	if code != 200 || !slices.Equal(v.Allowed, []string{"urge"}) {
		t.Fatalf("益阳市 on a 赫山区 ticket: %d allowed %v, want 200 [urge]", code, v.Allowed)
	}
	if code, _ := f.get(yiyang, furong.ID); code != 403 {
		t.Fatalf("益阳市 on a 芙蓉区 ticket: %d, want 403", code)
	}
	if code, _ := f.get(changsha, heshan.ID); code != 403 {
		t.Fatalf("长沙市 on a 赫山区 ticket: %d, want 403", code)
	}
	var list struct{ Tickets []ticketView }
	if code := f.call(yiyang, "GET", "/api/v1/tickets", nil, nil, &list); code != 200 || len(list.Tickets) != 1 || list.Tickets[0].Ticket.ID != heshan.ID {
		t.Fatalf("益阳市's list: %d %d tickets", code, len(list.Tickets))
	}
	if code := f.call(yiyang, "GET", fmt.Sprintf("/api/v1/tickets?unit=%d", f.unit("430903")), nil, nil, &list); code != 200 || len(list.Tickets) != 1 {
		t.Fatalf("益阳市 listing 赫山区: %d %d", code, len(list.Tickets))
	}
	if code, _ := f.act(yiyang, heshan, "sign", nil); code != 403 {
		t.Fatalf("益阳市 signing: %d, want 403", code)
	}
	tk := f.must(yiyang, heshan, "urge", map[string]any{"note": "请加快办理"})
	if tk.UrgeCount != 1 {
		t.Fatalf("urge count %d", tk.UrgeCount)
	}
	if code, _ := f.act(changsha, furong, "urge", map[string]any{"note": "请加快办理"}); code != 200 {
		t.Fatalf("长沙市's head urging 芙蓉区: %d", code)
	}
}

// From 1 October the missing next year is reported (readiness detail, admin API); a deadline past the calendar
// is flagged on the ticket.
func TestCalendarHorizonWarning(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-09-30 10:00"), ticketing.Options{}, nil)
	admin := f.user("admin", org.RoleAdmin, org.CodeBureau)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	var st ticketing.CalendarStatus
	if code := f.call(admin, "GET", "/api/v1/calendar", nil, nil, &st); code != 200 || st.NextYearMissing || st.LastYear != 2026 {
		t.Fatalf("30 September: %d %+v", code, st)
	}
	gauge := f.svc.CalendarCollector()
	if v := testutil.ToFloat64(gauge); v != 0 {
		t.Fatalf("hotline_calendar_next_year_missing on 30 September: %v", v)
	}
	f.clock.set(cst("2026-10-01 08:00"))
	if code := f.call(admin, "GET", "/api/v1/calendar", nil, nil, &st); code != 200 || !st.NextYearMissing || st.Warning == "" {
		t.Fatalf("1 October: %d %+v", code, st)
	}
	if v := testutil.ToFloat64(gauge); v != 1 {
		t.Fatalf("hotline_calendar_next_year_missing on 1 October: %v", v)
	}
	if code := f.call(agent, "GET", "/api/v1/calendar", nil, nil, nil); code != 403 {
		t.Fatalf("calendar status for an agent: %d, want 403", code)
	}
	var ready struct{ Checks map[string]string }
	f.call("", "GET", "/readyz", nil, nil, &ready)
	if ready.Checks["calendar"] != st.Warning {
		t.Fatalf("readyz calendar detail %q, want the warning", ready.Checks["calendar"])
	}

	// 投诉 dispatched on 2026-12-28: 13 working days run into 2027, which the calendar does not know.
	f.clock.set(cst("2026-12-28 10:00"))
	tk := f.create(agent, map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "complaint", "category": "living_environment", "content": "改厕后化粪池渗漏", "dispatch": true})
	if !tk.BeyondCalendar {
		t.Fatalf("reply_by %v past the calendar not flagged", tk.ReplyBy)
	}
	early := f.create(agent, map[string]any{"caller_phone": "13807371236", "region_code": "430903",
		"kind": "help", "category": "living_environment", "content": "厕所漏水", "dispatch": false})
	if early.BeyondCalendar {
		t.Fatal("a ticket without deadlines flagged")
	}
	var data map[string]any
	if err := f.db.QueryRow(context.Background(), `SELECT data FROM ticket_events WHERE ticket_id = $1 AND action = 'dispatch'`, int64(tk.ID)).Scan(&data); err != nil || data["beyond_calendar"] != true {
		t.Fatalf("dispatch event data %v (%v)", data, err)
	}

	// The admin uploads 2027 (系统管理 → 节假日): in force at once, without a restart.
	next := "date,name,is_off_day\n2027-01-01,元旦,true\n2027-02-06,春节,true\n2027-02-07,春节,true\n2027-02-14,春节,false\n"
	if code := f.call(admin, "POST", "/api/v1/admin/holidays", next, nil, nil); code != 201 {
		t.Fatalf("upload 2027: %d", code)
	}
	if code := f.call(admin, "GET", "/api/v1/calendar", nil, nil, &st); code != 200 || st.NextYearMissing || st.LastYear != 2027 {
		t.Fatalf("after the upload: %d %+v", code, st)
	}
	if v := testutil.ToFloat64(gauge); v != 0 {
		t.Fatalf("hotline_calendar_next_year_missing after the upload: %v", v)
	}
	later := f.create(agent, map[string]any{"caller_phone": "13807371238", "region_code": "430903",
		"kind": "complaint", "category": "living_environment", "content": "改厕后化粪池渗漏", "dispatch": true})
	if later.BeyondCalendar {
		t.Fatalf("reply_by %v flagged past the calendar after 2027 was uploaded", later.ReplyBy)
	}
}

// allowed_actions lists only what would succeed now: once the reply deadline has passed, an extension can no
// longer be asked for or approved (only refused), and the listing says so before anyone tries.
func TestAllowedActionsFollowTheClock(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	staff := f.user("heshan1", org.RoleStaff, "430903")
	super := f.user("super1", org.RoleSupervisor, "div-inspection")
	a := f.create(agent, map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "dispatch": true})
	a = f.must(staff, a, "sign", nil)
	b := f.create(agent, map[string]any{"caller_phone": "13807371239", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因灾收入下降", "dispatch": true})
	b = f.must(staff, b, "sign", nil)
	b = f.must(staff, b, "request_extension", map[string]any{"days": 2, "reason": "需要现场核查"})
	_, v := f.get(staff, a.ID)
	if !slices.Contains(v.Allowed, "request_extension") || !slices.Contains(v.Allowed, "request_suspend") {
		t.Fatalf("before the deadline: %v", v.Allowed)
	}
	_, v = f.get(super, b.ID)
	if !slices.Contains(v.Allowed, "approve_extension") {
		t.Fatalf("supervisor before the deadline: %v", v.Allowed)
	}

	f.clock.set(a.ReplyBy.Add(time.Minute))
	_, v = f.get(staff, a.ID)
	if slices.Contains(v.Allowed, "request_extension") || slices.Contains(v.Allowed, "request_suspend") || !slices.Contains(v.Allowed, "reply") {
		t.Fatalf("past the deadline: %v", v.Allowed)
	}
	var e errorBody
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/request_extension", a.ID),
		map[string]any{"version": a.Version, "days": 2, "reason": "x"}, nil, &e); code != 409 || slices.Contains(e.Allowed, "request_extension") {
		t.Fatalf("extension past the deadline: %d %+v", code, e)
	}
	_, v = f.get(super, b.ID)
	if slices.Contains(v.Allowed, "approve_extension") || !slices.Contains(v.Allowed, "refuse_extension") {
		t.Fatalf("supervisor past the deadline: %v", v.Allowed)
	}
	if code, _ := f.act(super, b, "approve_extension", nil); code != 409 {
		t.Fatalf("approval past the deadline: %d, want 409", code)
	}
	// Every action listed is one that succeeds: refuse_extension does.
	f.must(super, b, "refuse_extension", map[string]any{"reason": "逾期申请"})
}

// An agent who does the 回访 by hand cancels the automatic 回访 call still waiting for that ticket.
func TestManualCallbackCancelsAutomatic(t *testing.T) {
	var camp *campaign.Service
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, func(svc *ticketing.Service) {})
	camp = campaign.NewService(f.db, campaign.Options{})
	f.svc.OnTransition(camp.CallbackOnReply())
	f.svc.OnTransition(camp.CancelCallbackByHand())
	ctx := context.Background()
	if _, err := camp.EnsureStandingCallback(ctx, campaign.NewCampaign{Name: "工单回访", CallerID: "12345",
		Script: campaign.Script{Questions: []campaign.Question{{ID: "satisfaction", Prompt: "cb.wav", Keys: "123"}}}}); err != nil {
		t.Fatal(err)
	}
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	staff := f.user("heshan1", org.RoleStaff, "430903")
	tk := f.create(agent, map[string]any{"caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "dispatch": true})
	tk = f.must(staff, tk, "sign", nil)
	tk = f.must(staff, tk, "reply", map[string]any{"reply": "已落实"})
	state := func() string {
		var s string
		if err := f.db.QueryRow(ctx, `SELECT state FROM campaign_targets WHERE ticket_id = $1`, int64(tk.ID)).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state(); s != "pending" {
		t.Fatalf("automatic 回访 after the reply: %s, want pending", s)
	}
	tk = f.must(agent, tk, "callback_result", map[string]any{"result": "满意"})
	if tk.Status != ticketing.StatusClosed {
		t.Fatalf("status %s", tk.Status)
	}
	if s := state(); s != "cancelled" {
		t.Fatalf("automatic 回访 after the agent's: %s, want cancelled", s)
	}
}

// errorBody is the JSON error answer.
type errorBody struct {
	Code    string            `json:"code"`
	Fields  map[string]string `json:"fields"`
	Allowed []string          `json:"allowed_actions"`
}

// A ticket created for a call names it; the ticket then lists its calls with direction, times and agent, for
// those who may read the ticket.
func TestTicketListsItsCalls(t *testing.T) {
	f, agent, staff, other, agentID := newCallsFixture(t)
	ctx := context.Background()
	var callID int64
	if err := f.db.QueryRow(ctx, `INSERT INTO calls (sip_call_id, caller, offered_at, answered_at, ended_at, agent_id)
		VALUES ('wo-1', '13807371234', $1, $2, $3, $4) RETURNING id`, cst("2026-11-30 09:50"), cst("2026-11-30 09:50").Add(8*time.Second),
		cst("2026-11-30 09:55"), agentID).Scan(&callID); err != nil {
		t.Fatal(err)
	}
	tk := f.create(agent, map[string]any{"call_id": callID, "region_code": "430903", "kind": "help",
		"category": "monitoring_help", "content": "因病收入下降", "dispatch": true})
	if tk.Source != ticketing.SourcePhone {
		t.Fatalf("source %s, want phone", tk.Source)
	}
	code, v := f.get(staff, tk.ID)
	if code != 200 || len(v.Calls) != 1 {
		t.Fatalf("ticket calls: %d %+v", code, v.Calls)
	}
	c := v.Calls[0]
	if int64(c.ID) != callID || c.Direction != "inbound" || c.AgentName != "agent1" || c.EndedAt == nil || c.AnsweredAt == nil || c.Caller == "13807371234" {
		t.Fatalf("call as listed: %+v (caller must be masked)", c)
	}
	if code, _ := f.get(other, tk.ID); code != 403 {
		t.Fatalf("another county's staff: %d, want 403", code)
	}
}

// newCallsFixture is the work-order API with telephony, an agent of the desk, a clerk of 赫山区 (whose tickets
// these are) and a clerk of another county (who must see none of them), and the agent's user id for CDR rows.
func newCallsFixture(t *testing.T) (f *woFixture, agent, staff, other string, agentID int64) {
	t.Helper()
	f = newWorkorderAPIWith(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil, true)
	agent = f.user("agent1", org.RoleAgent, org.CodeDesk)
	staff = f.user("heshan1", org.RoleStaff, "430903")
	other = f.user("furong1", org.RoleStaff, "430102")
	if err := f.db.QueryRow(context.Background(), `SELECT id FROM users WHERE username = 'agent1'`).Scan(&agentID); err != nil {
		t.Fatal(err)
	}
	return f, agent, staff, other, agentID
}

package exchange_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/exchange"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

var secret = []byte("a-test-secret-of-32-bytes-length")

type fixture struct {
	t       testing.TB
	ctx     context.Context
	db      *pgxpool.Pool
	rdb     *redis.Client
	prefix  string
	tickets *ticketing.Service
	ex      *exchange.Service
	p       *testPlatform
	cfg     exchange.Config
	admin   org.Actor
	nonces  atomic.Int64
}

func newFixture(t testing.TB, tune func(*exchange.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: testenv.DB(t)}
	f.rdb, f.prefix = testenv.Redis(t)
	f.tickets = ticketing.NewService(f.db, ticketing.Options{})
	f.p = newTestPlatform(t, secret)
	f.cfg = exchange.Config{DB: f.db, Redis: f.rdb, Prefix: f.prefix, Tickets: f.tickets,
		Platforms: []exchange.Platform{{Name: "yiyang", URL: f.p.srv.URL, Secret: secret}},
		Files:     exchange.DirStore{Dir: t.TempDir()}, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 1000}
	if tune != nil {
		tune(&f.cfg)
	}
	var err error
	if f.ex, err = exchange.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.tickets.OnTransition(f.ex.Hook())
	f.admin = f.user(org.RoleAdmin, org.CodeBureau)
	if _, err := f.ex.SaveMapping(f.ctx, f.admin, "yiyang", "category", "0301", ticketing.CategoryMonitoringHelp); err != nil {
		t.Fatal(err)
	}
	return f
}

var users atomic.Int64

func (f *fixture) user(role org.Role, unitCode string) org.Actor {
	f.t.Helper()
	u, err := org.UnitByCode(f.ctx, f.db, unitCode)
	if err != nil {
		f.t.Fatal(err)
	}
	usr, err := org.CreateUser(f.ctx, f.db, org.NewUser{Username: fmt.Sprintf("u%d", users.Add(1)), DisplayName: "测试" + string(role),
		Password: "password1", Role: role, UnitID: u.ID})
	if err != nil {
		f.t.Fatal(err)
	}
	return usr.Actor()
}

func (f *fixture) nonce() string {
	return fmt.Sprintf("nonce-%016d-%d", f.nonces.Add(1), time.Now().UnixNano())
}

func orderBody(orderID, category, region string, extra map[string]any) []byte {
	order := map[string]any{"title": "收入下降求助", "content": "家中老人住院,收入明显下降,申请帮扶", "caller_name": "刘建国",
		"caller_phone": "13807371234", "category_code": category, "region_code": region, "appeal_type": "求助",
		"deadline": time.Now().Add(72 * time.Hour).Format(time.RFC3339)}
	m := map[string]any{"type": "order", "order_id": orderID, "order": order}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func updateBody(kind, orderID, updateID, note string) []byte {
	b, _ := json.Marshal(map[string]any{"type": kind, "order_id": orderID, "update_id": updateID, "note": note})
	return b
}

func (f *fixture) push(body []byte) (exchange.Result, error) {
	sr := f.p.sign("yiyang", body, time.Now(), f.nonce())
	return f.ex.Receive(f.ctx, "yiyang", http.MethodPost, sr.target, sr.header, sr.body)
}

func (f *fixture) mustPush(body []byte) exchange.Result {
	f.t.Helper()
	r, err := f.push(body)
	if err != nil {
		f.t.Fatalf("push: %v", err)
	}
	return r
}

// settle runs the exchange's rounds until nothing is pending (bounded, so a bug fails rather than hangs).
func (f *fixture) settle(ex *exchange.Service) {
	f.t.Helper()
	for i := 0; i < 500; i++ {
		ex.Round(f.ctx)
		var pending int
		if err := f.db.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM exchange_outbound WHERE state = 'pending')
			+ (SELECT count(*) FROM exchange_attachments WHERE state = 'pending')`).Scan(&pending); err != nil {
			f.t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.t.Fatal("outbound rows still pending after 500 rounds")
}

func (f *fixture) sync(id org.TicketID) *exchange.TicketSync {
	f.t.Helper()
	ts, err := f.ex.ForTicket(f.ctx, id)
	if err != nil || ts == nil {
		f.t.Fatalf("sync of ticket %d: %v %v", id, ts, err)
	}
	return ts
}

// The path: the platform pushes an order → a ticket routed to 赫山区 → the clerk signs and replies → the
// platform receives 签收 and 答复 once each, although it was down for a while in between.
func TestPushRoutesSignsRepliesOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.p.set(func(p *testPlatform) { p.files["/files/photo.jpg"] = []byte("JPEG…photo of the house") })
	body := orderBody("YY-20261201-0001", "0301", "430903", map[string]any{
		"attachments": []map[string]string{{"name": "现场照片.jpg", "url": f.p.srv.URL + "/files/photo.jpg"}}})
	r := f.mustPush(body)
	if !r.Created || r.Duplicate {
		t.Fatalf("first push: %+v", r)
	}
	tk, err := f.tickets.Get(f.ctx, org.System, r.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	heshan, _ := org.UnitByCode(f.ctx, f.db, "430903")
	if tk.LeadUnitID != heshan.ID || tk.Status != ticketing.StatusDispatched || tk.Source != ticketing.Source12345 {
		t.Fatalf("ticket: unit %d status %s source %s; want 赫山区 (%d), dispatched, 12345", tk.LeadUnitID, tk.Status, tk.Source, heshan.ID)
	}
	// The same order again (a new signature and nonce, as a platform retry sends it): the same ticket.
	r2 := f.mustPush(body)
	if r2.Created || !r2.Duplicate || r2.TicketID != r.TicketID {
		t.Fatalf("second push of the same order: %+v, first ticket %d", r2, r.TicketID)
	}
	var n int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM tickets WHERE source = '12345'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d tickets from two pushes of one order", n)
	}
	ts := f.sync(tk.ID)
	if ts.PlatformDeadline == nil || ts.PlatformClock != "green" || ts.Sync != "none" {
		t.Fatalf("platform side before any action: %+v", ts)
	}

	// The platform goes down; the clerk of 赫山区 signs and replies meanwhile.
	f.p.set(func(p *testPlatform) { p.down = true })
	clerk := f.user(org.RoleStaff, "430903")
	tk, err = f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = f.tickets.Reply(f.ctx, clerk, tk.ID, ticketing.ActionInput{Version: tk.Version, Reply: "已上门核实,纳入监测并落实帮扶措施"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		f.ex.Round(f.ctx)
		time.Sleep(5 * time.Millisecond)
	}
	ts = f.sync(tk.ID)
	if ts.Sync != "pending" || ts.SyncLabel != "同步中" || len(ts.Outbound) != 2 || ts.Outbound[0].Attempts == 0 || ts.Outbound[0].LastError == "" {
		t.Fatalf("while the platform is down: %+v", ts)
	}
	if ts.Outbound[1].Attempts != 0 {
		t.Fatalf("the reply was sent before the sign went through: %+v", ts.Outbound[1])
	}
	if got := f.p.appliedActions("YY-20261201-0001"); len(got) != 0 {
		t.Fatalf("a down platform applied %v", got)
	}

	f.p.set(func(p *testPlatform) { p.down = false })
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-20261201-0001"); !slices.Equal(got, []string{"sign", "reply"}) {
		t.Fatalf("platform applied %v, want [sign reply] once each", got)
	}
	ts = f.sync(tk.ID)
	if ts.Sync != "synced" || ts.SyncLabel != "已同步" {
		t.Fatalf("after the platform came back: %+v", ts)
	}
	if len(ts.Attachments) != 1 || ts.Attachments[0].State != "stored" || ts.Attachments[0].Size != int64(len("JPEG…photo of the house")) {
		t.Fatalf("attachments: %+v", ts.Attachments)
	}
	f.p.mu.Lock()
	reply := f.p.applied[1]
	f.p.mu.Unlock()
	if reply["reply"] != "已上门核实,纳入监测并落实帮扶措施" || !strings.Contains(fmt.Sprint(reply["unit"]), "赫山区") {
		t.Fatalf("reply as the platform got it: %v", reply)
	}
}

// The sender dies after the platform took the 签收 and before our commit: a new sender (another process, or
// this one restarted) sends it again with the same idempotency key, and the platform applies it once.
func TestSenderDiesBetweenSendAndCommit(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-KILL-1", "0301", "430903", nil))
	clerk := f.user(org.RoleStaff, "430903")
	tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
	if _, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("process killed")
	exchange.SetAfterSend(f.ex, func() error { return crash })
	f.ex.Round(f.ctx) // sends, "dies" before recording
	if got := f.p.deliveriesOf("sign", "YY-KILL-1"); got != 1 {
		t.Fatalf("wire deliveries before the restart: %d", got)
	}
	if ts := f.sync(tk.ID); ts.Outbound[0].State != "pending" {
		t.Fatalf("after the crash the row is %s, want pending", ts.Outbound[0].State)
	}
	restarted, err := exchange.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.settle(restarted)
	if got := f.p.appliedActions("YY-KILL-1"); !slices.Equal(got, []string{"sign"}) {
		t.Fatalf("platform applied %v, want one sign", got)
	}
	if got := f.p.deliveriesOf("sign", "YY-KILL-1"); got != 2 {
		t.Fatalf("wire deliveries: %d, want 2 (the second recognised by its key)", got)
	}
}

// A replayed push and a wrong signature are refused, also once Redis has forgotten the nonce.
func TestReplayAndWrongSignatureRefused(t *testing.T) {
	f := newFixture(t, nil)
	sr := f.p.sign("yiyang", orderBody("YY-R-1", "0301", "430903", nil), time.Now(), f.nonce())
	if _, err := f.ex.Receive(f.ctx, "yiyang", "POST", sr.target, sr.header, sr.body); err != nil {
		t.Fatal(err)
	}
	code := func(err error) string {
		var ae *exchange.AuthError
		if !errors.As(err, &ae) || !errors.Is(err, org.ErrAuth) {
			return fmt.Sprintf("not an auth error: %v", err)
		}
		return ae.Code
	}
	_, err := f.ex.Receive(f.ctx, "yiyang", "POST", sr.target, sr.header, sr.body)
	if c := code(err); c != "nonce_reused" {
		t.Fatalf("replay: %s", c)
	}
	// Redis flushed (our keys gone): PostgreSQL still knows the nonce.
	iter := f.rdb.Scan(f.ctx, 0, f.prefix+"*", 1000).Iterator()
	for iter.Next(f.ctx) {
		f.rdb.Del(f.ctx, iter.Val())
	}
	_, err = f.ex.Receive(f.ctx, "yiyang", "POST", sr.target, sr.header, sr.body)
	if c := code(err); c != "nonce_reused" {
		t.Fatalf("replay after Redis lost the nonce: %s", c)
	}
	// A replay of a different order's body under the old signature: the signature no longer matches.
	other := orderBody("YY-R-2", "0301", "430903", nil)
	sr2 := f.p.sign("yiyang", other, time.Now(), f.nonce())
	_, err = f.ex.Receive(f.ctx, "yiyang", "POST", sr2.target, sr2.header, orderBody("YY-R-3", "0301", "430903", nil))
	if c := code(err); c != "signature_invalid" {
		t.Fatalf("changed body: %s", c)
	}
	wrong := newTestPlatform(t, []byte("another-secret-of-32-bytes-length"))
	sr3 := wrong.sign("yiyang", other, time.Now(), f.nonce())
	_, err = f.ex.Receive(f.ctx, "yiyang", "POST", sr3.target, sr3.header, sr3.body)
	if c := code(err); c != "signature_invalid" {
		t.Fatalf("wrong secret: %s", c)
	}
	old := f.p.sign("yiyang", other, time.Now().Add(-6*time.Minute), f.nonce())
	_, err = f.ex.Receive(f.ctx, "yiyang", "POST", old.target, old.header, old.body)
	if c := code(err); c != "timestamp_out_of_window" {
		t.Fatalf("6 minutes old: %s", c)
	}
	_, err = f.ex.Receive(f.ctx, "nowhere", "POST", sr2.target, sr2.header, sr2.body)
	if c := code(err); c != "unknown_platform" {
		t.Fatalf("unknown platform: %s", c)
	}
	var n int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM tickets`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d tickets: only the first push may make one", n)
	}
}

// An order with codes we cannot map waits at the dispatch desk and its codes are reported until mapped.
func TestUnmappedCodesReported(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-U-1", "9999", "XQ-17", nil))
	f.mustPush(orderBody("YY-U-2", "9999", "430903", nil))
	tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
	desk, _ := org.UnitByCode(f.ctx, f.db, org.CodeDesk)
	if tk.Status != ticketing.StatusNew || tk.LeadUnitID != desk.ID || tk.Category != exchange.DefaultCategory || tk.RegionCode != "" {
		t.Fatalf("unmapped order's ticket: status %s unit %d category %s region %q", tk.Status, tk.LeadUnitID, tk.Category, tk.RegionCode)
	}
	rep, err := f.ex.UnmappedCodes(f.ctx, f.admin, "yiyang")
	if err != nil {
		t.Fatal(err)
	}
	got, waiting := map[string]int{}, map[string]int{}
	for _, u := range rep {
		got[u.Kind+":"+u.Code] = u.Count
		waiting[u.Kind+":"+u.Code] = u.Waiting
	}
	if len(got) != 2 || got["category:9999"] != 2 || got["region:XQ-17"] != 1 {
		t.Fatalf("unmapped report: %v", got)
	}
	// Both orders are still at the dispatch desk; once one is dispatched, one waits.
	if waiting["category:9999"] != 2 || waiting["region:XQ-17"] != 1 {
		t.Fatalf("orders waiting per code: %v", waiting)
	}
	if _, err := f.db.Exec(f.ctx, `UPDATE tickets SET status = 'dispatched' WHERE id = $1`, int64(r.TicketID)); err != nil {
		t.Fatal(err)
	}
	rep, _ = f.ex.UnmappedCodes(f.ctx, f.admin, "yiyang")
	for _, u := range rep {
		waiting[u.Kind+":"+u.Code] = u.Waiting
	}
	if waiting["category:9999"] != 1 || waiting["region:XQ-17"] != 0 {
		t.Fatalf("orders waiting after one was dispatched: %v", waiting)
	}
	if _, err := f.ex.SaveMapping(f.ctx, f.admin, "yiyang", "category", "9999", "employment"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ex.SaveMapping(f.ctx, f.admin, "yiyang", "region", "XQ-17", "430999"); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a region code that is not Hunan's: %v", err)
	}
	rep, _ = f.ex.UnmappedCodes(f.ctx, f.admin, "yiyang")
	if len(rep) != 1 || rep[0].Code != "XQ-17" {
		t.Fatalf("report after mapping 9999: %+v", rep)
	}
	if _, err := f.ex.SaveMapping(f.ctx, f.admin, "yiyang", "region", "XQ-18", "430903"); err != nil {
		t.Fatal(err)
	}
	ms, err := f.ex.Mappings(f.ctx, f.admin, "yiyang")
	names := map[string]string{}
	for _, m := range ms {
		names[m.Kind+":"+m.Code] = m.OursName
	}
	if err != nil || names["category:9999"] != "就业帮扶" || names["region:XQ-18"] != "益阳市赫山区" {
		t.Fatalf("mappings with their names: %+v %v", ms, err)
	}
	clerk := f.user(org.RoleStaff, "430903")
	if _, err := f.ex.UnmappedCodes(f.ctx, clerk, "yiyang"); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a clerk read the report: %v", err)
	}
	// The next order with the now-mapped code is routed at once.
	r3 := f.mustPush(orderBody("YY-U-3", "9999", "430903", nil))
	tk3, _ := f.tickets.Get(f.ctx, org.System, r3.TicketID)
	if tk3.Status != ticketing.StatusDispatched || tk3.Category != "employment" {
		t.Fatalf("mapped order: %s %s", tk3.Status, tk3.Category)
	}
}

// 补充材料, 催办 and 撤单 become events on the ticket, each once; after 撤单 nothing more goes to the platform.
func TestUpdatesBecomeEvents(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-E-1", "0301", "430903", nil))
	f.mustPush(updateBody("supplement", "YY-E-1", "u1", "补充:老人已出院,医药费票据已上传"))
	if again := f.mustPush(updateBody("supplement", "YY-E-1", "u1", "补充:老人已出院,医药费票据已上传")); !again.Duplicate {
		t.Fatalf("the same update twice: %+v", again)
	}
	f.mustPush(updateBody("urge", "YY-E-1", "u2", "群众再次来电,请加快办理"))
	if _, err := f.push(updateBody("urge", "YY-NOPE", "u1", "x")); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("update of an unknown order: %v", err)
	}
	f.mustPush(updateBody("withdraw", "YY-E-1", "u3", "群众撤回诉求"))
	evs, err := f.tickets.Events(f.ctx, org.System, r.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range evs {
		acts = append(acts, e.Action)
	}
	want := []string{"create", "dispatch", "platform_order", "platform_supplement", "urge", "platform_withdraw"}
	if !slices.Equal(acts, want) {
		t.Fatalf("events %v, want %v", acts, want)
	}
	tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
	if tk.UrgeCount != 1 {
		t.Fatalf("urge count %d", tk.UrgeCount)
	}
	clerk := f.user(org.RoleStaff, "430903")
	if _, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version); err != nil {
		t.Fatal(err)
	}
	ts := f.sync(tk.ID)
	if ts.OrderState != "withdrawn" || len(ts.Outbound) != 0 {
		t.Fatalf("after 撤单: %+v", ts)
	}
}

// A platform that cannot push is polled; the messages go the same way as pushes.
func TestPollerPath(t *testing.T) {
	f := newFixture(t, func(c *exchange.Config) { c.Platforms[0].Poll = time.Nanosecond })
	f.p.set(func(p *testPlatform) {
		p.messages = append(p.messages, orderBody("YY-P-1", "0301", "430903", nil),
			updateBody("supplement", "YY-P-1", "p1", "补充材料"), []byte(`{"type":"bogus"}`), orderBody("YY-P-2", "0301", "430902", nil))
	})
	n, err := f.ex.PollOnce(f.ctx, "yiyang")
	if err != nil || n != 3 {
		t.Fatalf("first poll: %d applied, %v (want 3; the malformed one skipped)", n, err)
	}
	if n, err := f.ex.PollOnce(f.ctx, "yiyang"); err != nil || n != 0 {
		t.Fatalf("second poll: %d, %v; the cursor should have moved past everything", n, err)
	}
	f.p.set(func(p *testPlatform) { p.messages = append(p.messages, orderBody("YY-P-1", "0301", "430903", nil)) })
	if n, err := f.ex.PollOnce(f.ctx, "yiyang"); err != nil || n != 1 {
		t.Fatalf("third poll: %d, %v", n, err)
	}
	var tickets, events int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM tickets`).Scan(&tickets)
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM ticket_events WHERE action = 'platform_supplement'`).Scan(&events)
	if tickets != 2 || events != 1 {
		t.Fatalf("%d tickets, %d supplements; want 2 and 1", tickets, events)
	}
	heshan, _ := org.UnitByCode(f.ctx, f.db, "430903")
	var unit int64
	f.db.QueryRow(f.ctx, `SELECT t.lead_unit_id FROM tickets t JOIN exchange_orders o ON o.ticket_id = t.id WHERE o.order_id = 'YY-P-1'`).Scan(&unit)
	if org.UnitID(unit) != heshan.ID {
		t.Fatalf("polled order went to unit %d", unit)
	}
	// And it answers like a pushed one.
	clerk := f.user(org.RoleStaff, "430903")
	var id int64
	f.db.QueryRow(f.ctx, `SELECT ticket_id FROM exchange_orders WHERE order_id = 'YY-P-1'`).Scan(&id)
	tk, _ := f.tickets.Get(f.ctx, org.System, org.TicketID(id))
	if _, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version); err != nil {
		t.Fatal(err)
	}
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-P-1"); !slices.Equal(got, []string{"sign"}) {
		t.Fatalf("platform got %v", got)
	}
}

// A platform that refuses an action for good dead-letters it at once; an admin sends it again.
func TestDeadLetterAndAdminRetry(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-D-1", "0301", "430903", nil))
	f.p.set(func(p *testPlatform) { p.refuse = true })
	clerk := f.user(org.RoleStaff, "430903")
	tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
	tk, err := f.tickets.Do(f.ctx, clerk, tk.ID, ticketing.ActReturn, ticketing.ActionInput{Version: tk.Version, Reason: "不属于本单位职责"})
	if err != nil {
		t.Fatal(err)
	}
	f.settle(f.ex)
	ts := f.sync(tk.ID)
	if ts.Sync != "failed" || ts.SyncLabel != "同步失败" || ts.Outbound[0].State != "dead" || ts.Outbound[0].Attempts != 1 {
		t.Fatalf("refused for good: %+v", ts)
	}
	if got := gauge(t, f.ex, "hotline_exchange_outbound", "dead"); got != 1 {
		t.Fatalf("hotline_exchange_outbound{state=dead} = %v", got)
	}
	dead, err := f.ex.ListOutbound(f.ctx, f.admin, "dead", 0)
	if err != nil || len(dead) != 1 || dead[0].Action != "return" || dead[0].TicketNumber != tk.Number {
		t.Fatalf("dead letters: %+v %v (want the ticket number %s for the console's link)", dead, err, tk.Number)
	}
	if _, err := f.ex.Retry(f.ctx, clerk, dead[0].ID); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a clerk retried: %v", err)
	}
	// The console's page lists the configured platforms; a clerk may not.
	if ps, err := f.ex.ListPlatforms(f.admin); err != nil || len(ps) == 0 {
		t.Fatalf("platforms for an admin: %v %v", ps, err)
	}
	if _, err := f.ex.ListPlatforms(clerk); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("platforms for a clerk: %v", err)
	}
	f.p.set(func(p *testPlatform) { p.refuse = false })
	if o, err := f.ex.Retry(f.ctx, f.admin, dead[0].ID); err != nil || o.State != "pending" || o.TicketNumber != tk.Number {
		t.Fatalf("retry: %+v %v", o, err)
	}
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-D-1"); !slices.Equal(got, []string{"return"}) {
		t.Fatalf("platform got %v", got)
	}
	f.p.mu.Lock()
	reason := f.p.applied[0]["reason"]
	f.p.mu.Unlock()
	if reason != "不属于本单位职责" {
		t.Fatalf("return reason %v", reason)
	}
	if _, err := f.ex.Retry(f.ctx, f.admin, dead[0].ID); !errors.Is(err, org.ErrState) {
		t.Fatalf("retry of a sent row: %v", err)
	}
	if ts := f.sync(tk.ID); ts.Sync != "synced" {
		t.Fatalf("after the retry: %s", ts.Sync)
	}
}

// The daily job compares open orders on both sides, once a day whatever the number of processes.
func TestReconciliation(t *testing.T) {
	f := newFixture(t, nil)
	f.mustPush(orderBody("YY-C-1", "0301", "430903", nil))
	f.mustPush(orderBody("YY-C-2", "0301", "430903", nil))
	r3 := f.mustPush(orderBody("YY-C-3", "0301", "430903", nil))
	agent := f.user(org.RoleAgent, org.CodeDesk)
	_ = agent
	// YY-C-3 is closed here (merged into YY-C-1's ticket) while the platform still has it open.
	var id1 int64
	f.db.QueryRow(f.ctx, `SELECT ticket_id FROM exchange_orders WHERE order_id = 'YY-C-1'`).Scan(&id1)
	tk3, _ := f.tickets.Get(f.ctx, org.System, r3.TicketID)
	if _, err := f.tickets.Do(f.ctx, org.System, tk3.ID, ticketing.ActMerge, ticketing.ActionInput{TargetID: org.TicketID(id1)}); err != nil {
		t.Fatal(err)
	}
	f.p.set(func(p *testPlatform) {
		p.open = []exchange.RemoteOrder{{OrderID: "YY-C-1", Status: "处理中"}, {OrderID: "YY-C-3", Status: "处理中"}, {OrderID: "YY-C-9", Status: "待签收"}}
	})
	at3 := func() time.Time {
		d := time.Now().In(calendar.CST)
		return time.Date(d.Year(), d.Month(), d.Day(), 3, 0, 0, 0, calendar.CST)
	}
	cfg := f.cfg
	cfg.Now = at3
	daily, err := exchange.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exchange.RunChores(daily, f.ctx)
	exchange.RunChores(daily, f.ctx) // a second process, or the next minute: the day's run exists
	rs, err := f.ex.Reconciliations(f.ctx, f.admin, 0)
	if err != nil || len(rs) != 1 {
		t.Fatalf("reconciliations: %d, %v", len(rs), err)
	}
	var got []string
	for _, d := range rs[0].Differences {
		got = append(got, d.Kind+":"+d.OrderID)
	}
	want := []string{"closed_here:YY-C-3", "missing_here:YY-C-9", "missing_there:YY-C-2"}
	if !slices.Equal(got, want) || rs[0].OursOpen != 2 || rs[0].TheirsOpen != 3 || rs[0].Manual {
		t.Fatalf("differences %v (ours %d, theirs %d), want %v", got, rs[0].OursOpen, rs[0].TheirsOpen, want)
	}
	if _, err := f.ex.Reconcile(f.ctx, f.admin, "yiyang"); err != nil {
		t.Fatal(err)
	}
	if rs, _ := f.ex.Reconciliations(f.ctx, f.admin, 0); len(rs) != 2 || !rs[0].Manual {
		t.Fatalf("a manual run: %+v", rs)
	}
}

// gauge reads one of the exchange's metrics for platform yiyang (and the state, for the outbound counts).
func gauge(t *testing.T, ex *exchange.Service, name, state string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ex.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["platform"] == "yiyang" && (state == "" || labels["state"] == state) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{platform=yiyang,state=%q}", name, state)
	return 0
}

// The platform's deadline is a clock of its own: yellow in its last quarter, red once passed, each alerted once
// on the ticket while we owe the platform a reply.
func TestPlatformDeadlineAlerts(t *testing.T) {
	f := newFixture(t, nil)
	order := func(id string, deadline time.Time) org.TicketID {
		b, _ := json.Marshal(map[string]any{"type": "order", "order_id": id, "order": map[string]any{"content": "求助",
			"category_code": "0301", "region_code": "430903", "appeal_type": "求助", "deadline": deadline.Format(time.RFC3339)}})
		return f.mustPush(b).TicketID
	}
	late := order("YY-DL-1", time.Now().Add(-time.Hour))
	soon := order("YY-DL-2", time.Now().Add(time.Hour))
	far := order("YY-DL-3", time.Now().Add(240*time.Hour))
	// YY-DL-2 was received ten hours ago: an hour left of eleven is its last quarter.
	f.db.Exec(f.ctx, `UPDATE exchange_orders SET received_at = now() - interval '10 hours' WHERE order_id = 'YY-DL-2'`)
	exchange.RunChores(f.ex, f.ctx)
	exchange.RunChores(f.ex, f.ctx)
	alerts := func(id org.TicketID) []string {
		evs, err := f.tickets.Events(f.ctx, org.System, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			if strings.HasPrefix(e.Action, "platform_deadline_") {
				out = append(out, e.Action)
			}
		}
		return out
	}
	if got := alerts(late); !slices.Equal(got, []string{"platform_deadline_red"}) {
		t.Errorf("past deadline: %v", got)
	}
	if got := alerts(soon); !slices.Equal(got, []string{"platform_deadline_yellow"}) {
		t.Errorf("last quarter: %v", got)
	}
	if got := alerts(far); len(got) != 0 {
		t.Errorf("far deadline: %v", got)
	}
	if c := f.sync(late).PlatformClock; c != "red" {
		t.Errorf("clock of the late order: %s", c)
	}
	if c := f.sync(soon).PlatformClock; c != "yellow" {
		t.Errorf("clock of the soon order: %s", c)
	}
}

// 延期申请 and 回访 results reach the platform with what they carry, in the order they happened.
func TestExtensionAndCallbackSent(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-X-1", "0301", "430903", nil))
	clerk := f.user(org.RoleStaff, "430903")
	agent := f.user(org.RoleAgent, org.CodeDesk)
	tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
	tk, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version)
	if err == nil {
		tk, err = f.tickets.Do(f.ctx, clerk, tk.ID, ticketing.ActRequestExtension, ticketing.ActionInput{Version: tk.Version, Days: 5, Reason: "需县乡两级联合核查"})
	}
	if err == nil {
		tk, err = f.tickets.Reply(f.ctx, clerk, tk.ID, ticketing.ActionInput{Version: tk.Version, Reply: "已核查并帮扶"})
	}
	if err == nil {
		_, err = f.tickets.CallbackResult(f.ctx, agent, tk.ID, "满意", "")
	}
	if err != nil {
		t.Fatal(err)
	}
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-X-1"); !slices.Equal(got, []string{"sign", "extension", "reply", "callback"}) {
		t.Fatalf("platform got %v", got)
	}
	f.p.mu.Lock()
	ext, cb := f.p.applied[1], f.p.applied[3]
	f.p.mu.Unlock()
	if ext["days"] != float64(5) || ext["reason"] != "需县乡两级联合核查" || cb["result"] != "satisfied" {
		t.Fatalf("extension %v, callback %v", ext, cb)
	}
}

// An attachment elsewhere than on the platform's host, or one the platform no longer has, is given up at once
// (never fetched from a host an order names); the order itself is taken.
func TestAttachmentRefused(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustPush(orderBody("YY-A-1", "0301", "430903", map[string]any{"attachments": []map[string]string{
		{"name": "内网.jpg", "url": "http://169.254.169.254/latest/meta-data"},
		{"name": "../../etc/passwd", "url": f.p.srv.URL + "/files/gone.jpg"}}}))
	f.settle(f.ex)
	as := f.sync(r.TicketID).Attachments
	if len(as) != 2 || as[0].State != "failed" || as[1].State != "failed" {
		t.Fatalf("attachments: %+v", as)
	}
	var attempts int
	f.db.QueryRow(f.ctx, `SELECT max(attempts) FROM exchange_attachments`).Scan(&attempts)
	if attempts != 1 {
		t.Fatalf("%d attempts, want 1 each", attempts)
	}
}

// Two processes' senders at once: each action goes to the platform once (rows are taken with SKIP LOCKED), and
// each order's actions still in order.
func TestTwoSendersSendOnce(t *testing.T) {
	f := newFixture(t, nil)
	clerk := f.user(org.RoleStaff, "430903")
	const orders = 15
	for i := range orders {
		r := f.mustPush(orderBody(fmt.Sprintf("YY-2-%d", i), "0301", "430903", nil))
		tk, _ := f.tickets.Get(f.ctx, org.System, r.TicketID)
		tk, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version)
		if err == nil {
			_, err = f.tickets.Reply(f.ctx, clerk, tk.ID, ticketing.ActionInput{Version: tk.Version, Reply: "已办结"})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	other, err := exchange.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			other.Round(f.ctx)
		}
	}()
	f.settle(f.ex)
	<-done
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	if len(f.p.applied) != 2*orders {
		t.Fatalf("platform applied %d actions, want %d", len(f.p.applied), 2*orders)
	}
	for key, n := range f.p.deliveries {
		if n != 1 {
			t.Errorf("%s sent %d times", key, n)
		}
	}
	signed := map[any]bool{}
	for _, a := range f.p.applied {
		switch a["action"] {
		case "sign":
			signed[a["order_id"]] = true
		case "reply":
			if !signed[a["order_id"]] {
				t.Errorf("reply of %v before its sign", a["order_id"])
			}
		}
	}
}

// 阶段性答复, an approved 挂起 and its 解除 reach the platform, each once, in the order they happened, with the
// text and the approved request's reason; a refused 挂起, a 工单修改 and a 办理过程 note stay ours, and a ticket
// no platform sent sends nothing.
func TestInterimReplyAndSuspensionSent(t *testing.T) {
	f := newFixture(t, nil)
	x := f.pushedTicket(t, "YY-S-1")
	do := x.do
	clerk := f.user(org.RoleStaff, "430903")
	agent := f.user(org.RoleAgent, org.CodeDesk)
	super := f.user(org.RoleSupervisor, org.CodeBureau)
	do(clerk, ticketing.ActSign, ticketing.ActionInput{})
	do(clerk, ticketing.ActInterimReply, ticketing.ActionInput{Reply: "已安排工作人员入户核实"})
	do(clerk, ticketing.ActRequestSuspend, ticketing.ActionInput{Reason: "等待镇政府复核材料"})
	do(super, ticketing.ActRefuseSuspend, ticketing.ActionInput{Reason: "可先行办理"})
	do(clerk, ticketing.ActNote, ticketing.ActionInput{Note: "已电话联系村委"})
	name := "刘建华"
	do(agent, ticketing.ActCorrect, ticketing.ActionInput{Changes: &ticketing.Correction{CallerName: &name}})
	do(clerk, ticketing.ActRequestSuspend, ticketing.ActionInput{Reason: "等待医院出具诊断证明"})
	do(super, ticketing.ActApproveSuspend, ticketing.ActionInput{})
	if x.tk.SuspendStatus != "suspended" {
		t.Fatalf("after approval: suspend status %q", x.tk.SuspendStatus)
	}
	do(clerk, ticketing.ActResume, ticketing.ActionInput{})
	f.settle(f.ex)

	if got := f.p.appliedActions("YY-S-1"); !slices.Equal(got, []string{"sign", "interim_reply", "suspend", "resume"}) {
		t.Fatalf("platform got %v, want [sign interim_reply suspend resume]", got)
	}
	for _, a := range []string{"sign", "interim_reply", "suspend", "resume"} {
		if n := f.p.deliveriesOf(a, "YY-S-1"); n != 1 {
			t.Errorf("%s came %d times on the wire, want once", a, n)
		}
	}
	ts := f.sync(x.tk.ID)
	if len(ts.Outbound) != 4 || ts.Sync != "synced" {
		t.Fatalf("outbound rows of the ticket: %+v (refused suspension, correction or note queued?)", ts.Outbound)
	}
	f.p.mu.Lock()
	interim, suspend, resume, badSigs := f.p.applied[1], f.p.applied[2], f.p.applied[3], f.p.badSigs
	f.p.mu.Unlock()
	if badSigs != 0 {
		t.Fatalf("%d requests with a bad signature", badSigs)
	}
	if interim["reply"] != "已安排工作人员入户核实" || !strings.Contains(fmt.Sprint(interim["unit"]), "赫山区") {
		t.Fatalf("interim reply as the platform got it: %v", interim)
	}
	if suspend["reason"] != "等待医院出具诊断证明" || suspend["handler"] != super.Name || suspend["reply"] != nil {
		t.Fatalf("suspension as the platform got it: %v (want the approved request's reason, by %q)", suspend, super.Name)
	}
	if _, ok := resume["reason"]; ok || resume["handler"] != clerk.Name {
		t.Fatalf("resumption as the platform got it: %v", resume)
	}

	// The same actions on a ticket taken by phone: the platform hears nothing of it.
	var err error
	x.tk, err = f.tickets.Create(f.ctx, agent, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerPhone: "13807375678",
		RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "因病收入下降",
		Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	do(clerk, ticketing.ActSign, ticketing.ActionInput{})
	do(clerk, ticketing.ActInterimReply, ticketing.ActionInput{Reply: "已安排入户核实"})
	do(clerk, ticketing.ActRequestSuspend, ticketing.ActionInput{Reason: "等待医院出具诊断证明"})
	do(super, ticketing.ActApproveSuspend, ticketing.ActionInput{})
	do(clerk, ticketing.ActResume, ticketing.ActionInput{})
	var n int
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM exchange_outbound WHERE ticket_id = $1`, int64(x.tk.ID)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d outbound rows for a phone ticket", n)
	}
}

// A correction that re-routes a suspended ticket to another county ends the suspension (the new unit's clock
// starts afresh): the platform, told of the 挂起, hears it end as resume, once; a correction that does not
// re-route, while suspended, sends nothing.
func TestRerouteEndsPlatformSuspension(t *testing.T) {
	f := newFixture(t, nil)
	x := f.pushedTicket(t, "YY-S-2")
	do := x.do
	clerk := f.user(org.RoleStaff, "430903")
	agent := f.user(org.RoleAgent, org.CodeDesk)
	super := f.user(org.RoleSupervisor, org.CodeBureau)
	do(clerk, ticketing.ActSign, ticketing.ActionInput{})
	do(clerk, ticketing.ActRequestSuspend, ticketing.ActionInput{Reason: "等待医院出具诊断证明"})
	do(super, ticketing.ActApproveSuspend, ticketing.ActionInput{})
	name := "刘建华"
	do(agent, ticketing.ActCorrect, ticketing.ActionInput{Changes: &ticketing.Correction{CallerName: &name}})
	if x.tk.SuspendStatus != "suspended" {
		t.Fatalf("a caller-name correction changed the suspension: %q", x.tk.SuspendStatus)
	}
	region := "430902"
	do(agent, ticketing.ActCorrect, ticketing.ActionInput{Changes: &ticketing.Correction{RegionCode: &region}})
	heshan, _ := org.UnitByCode(f.ctx, f.db, "430903")
	if x.tk.SuspendStatus != "none" || x.tk.LeadUnitID == heshan.ID {
		t.Fatalf("after re-routing: suspend status %q, unit %d", x.tk.SuspendStatus, x.tk.LeadUnitID)
	}
	// Another correction after the re-route: the platform was told already.
	name = "刘建军"
	do(agent, ticketing.ActCorrect, ticketing.ActionInput{Changes: &ticketing.Correction{CallerName: &name}})
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-S-2"); !slices.Equal(got, []string{"sign", "suspend", "resume"}) {
		t.Fatalf("platform got %v, want [sign suspend resume]", got)
	}
	f.p.mu.Lock()
	resume := f.p.applied[2]
	f.p.mu.Unlock()
	if !strings.Contains(fmt.Sprint(resume["unit"]), "赫山区") {
		t.Fatalf("resume as the platform got it: %v (want the unit that had it suspended)", resume)
	}
}

// A suspension approved before the platform heard of suspensions (here: by a ticket service without the
// exchange's hook) ends without a resume: the platform hears no end of a 挂起 it was never told of.
func TestResumeOfUnreportedSuspensionNotSent(t *testing.T) {
	f := newFixture(t, nil)
	x := f.pushedTicket(t, "YY-S-3")
	do := x.doWith
	clerk := f.user(org.RoleStaff, "430903")
	super := f.user(org.RoleSupervisor, org.CodeBureau)
	unhooked := ticketing.NewService(f.db, ticketing.Options{})
	do(f.tickets, clerk, ticketing.ActSign, ticketing.ActionInput{})
	do(unhooked, clerk, ticketing.ActRequestSuspend, ticketing.ActionInput{Reason: "等待医院出具诊断证明"})
	do(unhooked, super, ticketing.ActApproveSuspend, ticketing.ActionInput{})
	do(f.tickets, clerk, ticketing.ActResume, ticketing.ActionInput{})
	do(f.tickets, clerk, ticketing.ActInterimReply, ticketing.ActionInput{Reply: "已恢复办理"})
	f.settle(f.ex)
	if got := f.p.appliedActions("YY-S-3"); !slices.Equal(got, []string{"sign", "interim_reply"}) {
		t.Fatalf("platform got %v, want [sign interim_reply]", got)
	}
}

// stepper acts on one ticket step by step, each action with the version the last one left: what the suspension
// tests do.
type stepper struct {
	t  *testing.T
	f  *fixture
	tk ticketing.Ticket
}

// pushedTicket pushes an order (category 0301, 赫山区) and returns its ticket to act on.
func (f *fixture) pushedTicket(t *testing.T, orderID string) *stepper {
	r := f.mustPush(orderBody(orderID, "0301", "430903", nil))
	tk, err := f.tickets.Get(f.ctx, org.System, r.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	return &stepper{t: t, f: f, tk: tk}
}

// do acts through the fixture's ticket service (the exchange's hook registered).
func (s *stepper) do(a org.Actor, act ticketing.Action, in ticketing.ActionInput) {
	s.t.Helper()
	s.doWith(s.f.tickets, a, act, in)
}

// doWith acts through svc.
func (s *stepper) doWith(svc *ticketing.Service, a org.Actor, act ticketing.Action, in ticketing.ActionInput) {
	s.t.Helper()
	in.Version = s.tk.Version
	tk, err := svc.Do(s.f.ctx, a, s.tk.ID, act, in)
	if err != nil {
		s.t.Fatalf("%s: %v", act, err)
	}
	s.tk = tk
}

package deliver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/notify/sms"
	"hotline/notify/sms/smstest"
	"hotline/ticketing"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

func TestCallerSMSFailsThreeTimesThenOneMessage(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	tk := r.callTicket("139 1234 5678", nil)
	r.gw.FailNext(3)
	r.flow()
	for i := 0; i < 4; i++ {
		if n := r.sendDue(); n != 1 {
			t.Fatalf("round %d claimed %d deliveries, want 1", i, n)
		}
		r.advance(2 * time.Minute) // past any back-off of the test's 1 s base
	}
	if n := r.sendDue(); n != 0 {
		t.Fatalf("a sent delivery was claimed again (%d)", n)
	}
	msgs := r.gw.Messages()
	if len(msgs) != 1 || msgs[0].Phone != "13912345678" {
		t.Fatalf("gateway got %+v, want exactly one message", msgs)
	}
	if !strings.Contains(msgs[0].Text, tk.Number) || !strings.Contains(msgs[0].Text, tk.QueryCode) || !strings.Contains(msgs[0].Text, "https://12345.example.gov.cn/q") {
		t.Fatalf("message lacks number, query code or where to check: %q", msgs[0].Text)
	}
	d := r.only(ChannelSMS, "caller")
	if d.Status != "sent" || d.Attempts != 4 || len(d.Log) != 4 {
		t.Fatalf("delivery %s after %d attempts, %d logged; want sent, 4, 4", d.Status, d.Attempts, len(d.Log))
	}
	for i, a := range d.Log {
		ok := a.OK != nil && *a.OK
		if ok != (i == 3) || a.IdemKey != d.IdemKey || a.FinishedAt == nil {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	if msgs[0].IdemKey != d.IdemKey {
		t.Fatalf("gateway saw key %q, log has %q", msgs[0].IdemKey, d.IdemKey)
	}
	// The number is masked wherever it is shown.
	if d.To != "139****5678" || strings.Contains(d.LastError+d.Body, "13912345678") {
		t.Fatalf("delivery shows %q", d.To)
	}
	var sealed []byte
	r.db.QueryRow(r.ctx, `SELECT address_sealed FROM notify_deliveries WHERE id = $1`, d.ID).Scan(&sealed)
	if len(sealed) == 0 || strings.Contains(string(sealed), "13912345678") {
		t.Fatal("the phone number is not sealed in the delivery row")
	}
}

func TestDeadLetterThenManualRetry(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) { o.MaxAttempts = 3 })
	r.callTicket("13912345678", nil)
	r.gw.FailNext(1000)
	r.flow()
	for range 3 {
		r.sendDue()
		r.advance(2 * time.Minute)
	}
	d := r.only(ChannelSMS, "caller")
	if d.Status != "dead" || d.Attempts != 3 || !strings.Contains(d.LastError, "503") {
		t.Fatalf("after the budget: %s, %d attempts, last error %q", d.Status, d.Attempts, d.LastError)
	}
	if n := r.sendDue(); n != 0 {
		t.Fatal("a dead delivery was claimed")
	}
	dead, err := r.svc.Deliveries(r.ctx, org.System, Filter{Status: "dead"})
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead list: %v %v", dead, err)
	}
	r.gw.FailNext(0)
	if _, err := r.svc.Retry(r.ctx, org.Actor{UserID: 9, Role: org.RoleAgent}, d.ID); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("an agent retried a delivery: %v", err)
	}
	if _, err := r.svc.Retry(r.ctx, org.System, d.ID); err != nil {
		t.Fatal(err)
	}
	if n := r.sendDue(); n != 1 {
		t.Fatalf("retry claimed %d", n)
	}
	d = r.only(ChannelSMS, "caller")
	if d.Status != "sent" || d.Attempts != 4 || len(r.gw.Messages()) != 1 {
		t.Fatalf("after retry: %s, %d attempts, %d messages", d.Status, d.Attempts, len(r.gw.Messages()))
	}
	var se *org.StateError
	if _, err := r.svc.Retry(r.ctx, org.System, d.ID); !errors.As(err, &se) {
		t.Fatalf("retrying a sent delivery: %v", err)
	}
}

// A worker process is killed (SIGKILL) after the provider accepted and before the answer was recorded: after
// the lease the delivery is sent again with the same idempotency key (Alibaba's OutId), and the provider keeps
// one message.
func TestKilledAfterSendRetriesWithSameKey(t *testing.T) {
	t.Parallel()
	var ali *smstest.Server
	r := newRig(t, func(r *rig, o *Options) {
		ali = smstest.Aliyun(t, "LTAI-test", "ali-secret")
		o.Channels.SMS = &sms.Aliyun{Endpoint: ali.URL, AccessKeyID: "LTAI-test", AccessKeySecret: "ali-secret", SignName: "湖南乡村振兴"}
	})
	r.callTicket("13912345678", nil)
	r.flow()

	// The worker: this test binary in child mode (see crashChild), on the same database and provider.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "NOTIFY_CRASH_CHILD=1", "NOTIFY_CRASH_DB="+r.dbURL, "NOTIFY_CRASH_ALIYUN="+ali.URL,
		"NOTIFY_CRASH_NOW="+r.clock().Format(time.RFC3339))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "accepted" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if got := ali.Messages(); len(got) != 1 {
		t.Fatalf("provider accepted %d before the kill", len(got))
	}
	d := r.only(ChannelSMS, "caller")
	if d.Status != "pending" || len(d.Log) != 1 || d.Log[0].FinishedAt != nil {
		t.Fatalf("after the kill: %+v", d)
	}
	// A restarted process finds nothing due until the lease of the dead claim ends.
	restarted := r.service(r.opt)
	if n, _ := restarted.SendDue(r.ctx); n != 0 {
		t.Fatal("claimed during the lease")
	}
	r.advance(restarted.opt.Lease + time.Second)
	if n, err := restarted.SendDue(r.ctx); n != 1 || err != nil {
		t.Fatalf("after the lease: %d, %v", n, err)
	}
	keys := ali.Keys()
	if len(keys) != 2 || keys[0] != keys[1] || keys[0] != d.IdemKey {
		t.Fatalf("OutIds %v, delivery key %q: the retry must carry the same key", keys, d.IdemKey)
	}
	if got := ali.Messages(); len(got) != 1 {
		t.Fatalf("provider holds %d messages", len(got))
	}
	d = r.only(ChannelSMS, "caller")
	if d.Status != "sent" || len(d.Log) != 2 || d.Log[1].IdemKey != d.Log[0].IdemKey {
		t.Fatalf("after restart: %+v", d)
	}
}

// crashChild is the worker process of TestKilledAfterSendRetriesWithSameKey: it claims and sends, then says
// "accepted" and waits to be killed before recording anything.
func crashChild() int {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, os.Getenv("NOTIFY_CRASH_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	now, _ := time.Parse(time.RFC3339, os.Getenv("NOTIFY_CRASH_NOW"))
	box, _ := pii.New(make([]byte, 32))
	s, err := New(Options{DB: db, Box: box, Now: func() time.Time { return now },
		Channels: Channels{SMS: &sms.Aliyun{Endpoint: os.Getenv("NOTIFY_CRASH_ALIYUN"), AccessKeyID: "LTAI-test", AccessKeySecret: "ali-secret", SignName: "湖南乡村振兴"}},
		afterSend: func(int64) error {
			fmt.Println("accepted")
			time.Sleep(time.Hour) // killed here, between the provider's answer and the record
			return nil
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := s.SendDue(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return 1
}

func TestQuietHoursHoldPublicSMSUntilMorning(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.setNow(time.Date(2026, 12, 1, 22, 30, 0, 0, cst))
	r.callTicket("13912345678", nil)
	r.flow()
	d := r.only(ChannelSMS, "caller")
	if want := time.Date(2026, 12, 2, 8, 0, 0, 0, cst); !d.NextAt.Equal(want) {
		t.Fatalf("held until %v, want %v", d.NextAt.In(cst), want)
	}
	r.sendDue() // the unit's group message is not held
	if len(r.wc.RobotMessages()) != 0 && len(r.gw.Messages()) != 0 {
		t.Fatal("SMS sent in quiet hours")
	}
	r.setNow(time.Date(2026, 12, 2, 7, 59, 0, 0, cst))
	r.sendDue()
	if len(r.gw.Messages()) != 0 {
		t.Fatal("SMS sent before 08:00")
	}
	r.setNow(time.Date(2026, 12, 2, 8, 0, 0, 0, cst))
	if n := r.sendDue(); n != 1 || len(r.gw.Messages()) != 1 {
		t.Fatalf("at 08:00: claimed %d, %d messages", n, len(r.gw.Messages()))
	}
}

func TestConfidentialReportSendsNoSMS(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	report := func(n *ticketing.NewTicket) {
		n.Kind, n.Category, n.Confidential, n.Content = ticketing.KindReport, "funds_assets", true, "村干部截留衔接资金"
	}
	tk := r.callTicket("13912345678", report)
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(tk.LeadUnitID), UnitChannelsInput{RobotWebhook: r.wc.RobotURL("lead")}); err != nil {
		t.Fatal(err)
	}
	r.flow()
	r.sendDue()
	for _, d := range r.deliveries("") {
		if d.Channel == ChannelSMS {
			t.Fatalf("a confidential report made an SMS: %+v", d)
		}
	}
	if r.gw.Requests() != 0 {
		t.Fatal("the SMS gateway was called")
	}
	// The unit is still told, and a caller who agreed at intake gets the SMS.
	if len(r.wc.RobotMessages()) == 0 {
		t.Fatal("the unit's group heard nothing of the report")
	}
	r.callTicket("13912345679", func(n *ticketing.NewTicket) { report(n); n.SMSConsent = true })
	r.flow()
	r.sendDue()
	if got := r.gw.Messages(); len(got) != 1 || got[0].Phone != "13912345679" {
		t.Fatalf("with consent: %+v", got)
	}
}

func TestOptOutAndDailyCap(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) { o.DailyCap = 1 })
	if err := r.svc.OptOut(r.ctx, org.Actor{UserID: 3, Role: org.RoleAgent}, "13900000001", true); err != nil {
		t.Fatal(err)
	}
	r.callTicket("13900000001", nil)
	r.callTicket("13900000002", nil)
	r.callTicket("13900000002", nil)
	r.flow()
	r.sendDue()
	got := r.gw.Messages()
	if len(got) != 1 || got[0].Phone != "13900000002" {
		t.Fatalf("sent %+v; want one message to the second caller", got)
	}
	reasons := map[string]int{}
	for _, d := range r.deliveries("") {
		if d.Status == "suppressed" {
			reasons[d.Reason]++
		}
	}
	if reasons["opt-out"] != 1 || reasons["daily cap"] != 1 {
		t.Fatalf("suppressed: %v", reasons)
	}
}

// WeChat Work: the token expires while a batch is sent to many heads; it is fetched again exactly once. A
// rate-limit errcode defers that one message and it goes later.
func TestWecomTokenRefreshedOnceAndRateLimit(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	unit := r.unit("div-development")
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(unit), UnitChannelsInput{HeadWecomUser: "wangwu", RobotWebhook: r.wc.RobotURL("dev")}); err != nil {
		t.Fatal(err)
	}
	tk := r.callTicket("13912345678", nil)
	publishRed := func(n int) {
		for range n {
			if err := ticketing.Publish(r.ctx, r.db, "sla.red", "x", map[string]any{"ticket_id": tk.ID, "lead_unit_id": unit, "status": "dispatched"}); err != nil {
				t.Fatal(err)
			}
		}
		r.flow()
	}
	publishRed(1)
	r.sendDue()
	if r.wc.TokenCalls() != 1 || len(r.wc.AppMessages()) != 1 {
		t.Fatalf("warm-up: %d token calls, %d messages", r.wc.TokenCalls(), len(r.wc.AppMessages()))
	}
	r.wc.ExpireTokens()
	publishRed(20)
	if n := r.sendDue(); n != 32 {
		t.Fatalf("claimed %d in one batch, want 32", n)
	}
	r.sendDue()
	if n := r.wc.TokenCalls(); n != 2 {
		t.Fatalf("gettoken called %d times; want one refresh", n)
	}
	if n := len(r.wc.AppMessages()); n != 21 {
		t.Fatalf("%d application messages, want 21", n)
	}
	r.wc.RateLimitOnce()
	publishRed(1)
	r.sendDue()
	var limited int
	r.db.QueryRow(r.ctx, `SELECT count(*) FROM notify_deliveries WHERE status = 'pending' AND last_error LIKE '%45009%'`).Scan(&limited)
	if limited != 1 {
		t.Fatalf("%d deliveries waiting after a rate limit, want 1", limited)
	}
	r.advance(30 * time.Second)
	if n := r.sendDue(); n != 0 {
		t.Fatal("a rate-limited delivery came back before the minute")
	}
	r.advance(2 * time.Minute)
	if n := r.sendDue(); n != 1 {
		t.Fatalf("after the rate limit: %d", n)
	}
}

func TestReadTwiceMakesNoDuplicatesAndDeadConsumerIsTakenOver(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) { o.ClaimIdle = time.Millisecond })
	r.callTicket("13912345678", nil)
	if _, err := r.relay.PublishOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	// A consumer reads the events and dies before writing rows: nothing is acknowledged.
	res, err := r.rdb.XReadGroup(r.ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "died", Streams: []string{ticketing.EventsKey(r.prefix), ">"}, Count: 100, Block: -1}).Result()
	if err != nil || len(res[0].Messages) == 0 {
		t.Fatalf("read: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := r.svc.reclaim(r.ctx); err != nil {
		t.Fatal(err)
	}
	rows := len(r.deliveries(""))
	if rows == 0 {
		t.Fatal("the dead consumer's events were not taken over")
	}
	// Reading the same entries again adds nothing.
	if err := r.svc.Ingest(r.ctx, res[0].Messages); err != nil {
		t.Fatal(err)
	}
	if n := len(r.deliveries("")); n != rows {
		t.Fatalf("%d rows after a re-read, had %d", n, rows)
	}
	pending, err := r.rdb.XPending(r.ctx, ticketing.EventsKey(r.prefix), Group).Result()
	if err != nil || pending.Count != 0 {
		t.Fatalf("still pending: %+v %v", pending, err)
	}
}

func TestDailyDigestOnceByEmailAndGroup(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	unit := r.unit("div-development")
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(unit), UnitChannelsInput{Email: "head@dev.example.gov.cn", RobotWebhook: r.wc.RobotURL("dev"), HeadPhone: "13700000001"}); err != nil {
		t.Fatal(err)
	}
	r.callTicket("13912345678", nil)
	r.callTicket("13912345679", nil)
	r.setNow(time.Date(2026, 12, 2, 8, 0, 0, 0, cst))
	if n, err := r.svc.DigestOnce(r.ctx); err != nil || n != 0 {
		t.Fatalf("before 08:30: %d, %v", n, err)
	}
	r.setNow(time.Date(2026, 12, 2, 8, 31, 0, 0, cst))
	if n, err := r.svc.DigestOnce(r.ctx); err != nil || n != 2 {
		t.Fatalf("digest rows %d, %v; want email and group", n, err)
	}
	other := r.service(r.opt)
	if n, err := other.DigestOnce(r.ctx); err != nil || n != 0 {
		t.Fatalf("a second process wrote the digest again: %d %v", n, err)
	}
	r.sendDue()
	mails := r.mail.Mails()
	if len(mails) != 1 || mails[0].To[0] != "head@dev.example.gov.cn" || !mails[0].TLS {
		t.Fatalf("mails %+v", mails)
	}
	body := string(mails[0].Data)
	if !strings.Contains(body, "Subject:") {
		t.Fatalf("mail without subject:\n%s", body)
	}
	var robot []string
	for _, m := range r.wc.RobotMessages() {
		if strings.Contains(m.Content, "每日工单提醒") {
			robot = append(robot, m.Content)
		}
	}
	if len(robot) != 1 || !strings.Contains(robot[0], "待签收：**2**") {
		t.Fatalf("group digest %q", robot)
	}
}

func TestTemplatesRulesAndPreview(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	agent := org.Actor{UserID: 5, Role: org.RoleAgent}
	if _, err := r.svc.Rules(r.ctx, agent); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("agent listed rules: %v", err)
	}
	rules, err := r.svc.Rules(r.ctx, org.System)
	if err != nil || len(rules) < 10 {
		t.Fatalf("rules %d %v", len(rules), err)
	}
	p, err := r.svc.PreviewTemplate(r.ctx, org.System, "caller_created", nil, map[string]string{"number": "X-1"})
	if err != nil || !strings.Contains(p.Body, "X-1") || !strings.Contains(p.Body, "7KQ2M9XH4D") || len(p.Params) != 3 {
		t.Fatalf("preview %+v %v", p, err)
	}
	_, err = r.svc.SaveTemplate(r.ctx, org.System, Template{Name: "caller_created", Body: "工单{number}，{nonsense}"})
	var ve *org.ValidationError
	if !errors.As(err, &ve) || ve.Fields["body"] == "" {
		t.Fatalf("unknown placeholder accepted: %v", err)
	}
	if _, err := r.svc.SaveTemplate(r.ctx, org.System, Template{Name: "caller_created", Body: "工单{number}已受理，查询码{query_code}。",
		ProviderTemplate: "SMS_1", ProviderParams: []string{"number", "query_code"}}); err != nil {
		t.Fatal(err)
	}
	r.callTicket("13912345678", nil)
	r.flow()
	r.sendDue()
	if got := r.gw.Messages(); len(got) != 1 || !strings.HasSuffix(got[0].Text, "。") || strings.Contains(got[0].Text, "进度") {
		t.Fatalf("edited template not used: %+v", got)
	}
	// Disabling the rule stops the SMS.
	var id int64
	for _, rl := range rules {
		if rl.Topic == "ticket.created" && rl.Recipient == "caller" {
			id = rl.ID
		}
	}
	off := false
	if _, err := r.svc.SaveRule(r.ctx, org.System, id, RuleInput{Topic: "ticket.created", Sources: []string{"phone"}, Recipient: "caller",
		Channel: ChannelSMS, Template: "caller_created", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	r.callTicket("13912345670", nil)
	r.flow()
	r.sendDue()
	if len(r.gw.Messages()) != 1 {
		t.Fatal("a disabled rule still sent")
	}
}

// A provider that is down opens its channel's breaker: its rows stop being claimed (no attempt spent) while
// other channels go on, and intake keeps writing rows.
func TestBreakerPausesADownProvider(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) { o.BreakerFailures, o.BreakerCooldown = 3, 10*time.Minute })
	tk := r.callTicket("13900000009", nil)
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(tk.LeadUnitID), UnitChannelsInput{RobotWebhook: r.wc.RobotURL("u")}); err != nil {
		t.Fatal(err)
	}
	r.gw.FailNext(1000)
	for i := range 4 {
		r.callTicket("1390000001"+string(rune('0'+i)), nil)
	}
	r.flow()
	r.sendDue()
	before := r.gw.Requests()
	if before != 5 {
		t.Fatalf("%d gateway requests, want 5", before)
	}
	r.advance(2 * time.Minute) // past the back-off, inside the cooldown
	r.callTicket("13900000020", nil)
	r.flow()
	r.sendDue()
	if r.gw.Requests() != before {
		t.Fatal("rows of an open breaker's channel were sent")
	}
	var waiting int
	r.db.QueryRow(r.ctx, `SELECT count(*) FROM notify_deliveries WHERE channel = 'sms' AND status = 'pending'`).Scan(&waiting)
	if waiting != 6 || len(r.wc.RobotMessages()) == 0 {
		t.Fatalf("%d SMS waiting (want 6), %d robot messages (want some)", waiting, len(r.wc.RobotMessages()))
	}
	r.gw.FailNext(0)
	r.advance(10 * time.Minute)
	for r.sendDue() > 0 {
	}
	if n := len(r.gw.Messages()); n != 6 {
		t.Fatalf("after the cooldown %d messages, want 6", n)
	}
}

// Tencent through the pipeline: the registered template's parameters go in order and SessionContext carries
// the delivery's idempotency key; the local endpoint verifies the TC3 signature.
func TestTencentSMSThroughPipeline(t *testing.T) {
	t.Parallel()
	var tc *smstest.Server
	r := newRig(t, func(r *rig, o *Options) {
		tc = smstest.Tencent(t, "AKID-test", "tc-key", "1400000001")
		o.Channels.SMS = &sms.Tencent{Endpoint: tc.URL, SecretID: "AKID-test", SecretKey: "tc-key", SdkAppID: "1400000001", SignName: "湖南乡村振兴"}
	})
	tk := r.callTicket("13912345678", nil)
	r.flow()
	r.sendDue()
	got := tc.Messages()
	d := r.only(ChannelSMS, "caller")
	if len(got) != 1 || got[0].Template != "SMS_HOTLINE_CREATED" || got[0].Params["0"] != tk.Number || got[0].Params["1"] != tk.QueryCode ||
		got[0].IdemKey != d.IdemKey || d.Status != "sent" {
		t.Fatalf("tencent got %+v (rejected %v), delivery %+v", got, tc.Rejected(), d)
	}
}

// Redis loses everything (flushed or replaced) while the service runs: the group is made again and the events
// published since are notified.
func TestRedisFlushedWhileRunning(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) { o.Poll = 20 * time.Millisecond })
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); len(r.gw.Messages()) < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d messages, want %d", len(r.gw.Messages()), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.callTicket("13912345601", nil)
	if _, err := r.relay.PublishOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(1)
	if err := r.rdb.Del(r.ctx, ticketing.EventsKey(r.prefix)).Err(); err != nil { // the stream and its group are gone
		t.Fatal(err)
	}
	r.callTicket("13912345602", nil)
	if _, err := r.relay.PublishOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
}

// A refusal no retry can cure (the gateway answers 400 to a body it cannot read) is dead at the first attempt.
func TestPermanentRefusalIsDeadAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(r *rig, o *Options) {
		g, err := sms.NewGateway(sms.Gateway{URL: r.gw.URL, AuthHeader: "Authorization: Bearer gw-token", Body: `{"mobile":{{json .Phone}}}`})
		if err != nil {
			t.Fatal(err)
		}
		o.Channels.SMS = g
	})
	r.callTicket("13912345678", nil)
	r.flow()
	r.sendDue()
	d := r.only(ChannelSMS, "caller")
	if d.Status != "dead" || d.Attempts != 1 || !strings.Contains(d.LastError, "400") {
		t.Fatalf("after a 400: %s after %d attempts (%q)", d.Status, d.Attempts, d.LastError)
	}
}

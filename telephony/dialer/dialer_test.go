package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing/calendar"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) {
	// diago's media layer logs through the default logger (RTCP noise from sipp's pcap replays).
	slog.SetDefault(slog.New(slog.DiscardHandler))
	if os.Getenv("DIALER_TEST_CHILD") == "1" {
		os.Exit(runChild())
	}
	os.Exit(testenv.MainNoLeaks(m))
}

var manager = org.Actor{Username: "cm", Role: org.RoleCampaignManager}

type engineOpts struct {
	sippPort  int
	promptDir string
	workerID  string
	deadAfter time.Duration
	stale     time.Duration
	leaseTTL  time.Duration
	channels  int
	workers   int
	phones    PhoneBook
	log       *slog.Logger
	publish   Publisher
	margin    time.Duration // PaceMargin
	shared    *sharedSIP    // place calls through this SIP server's user agent (as hotline does), not the dialer's own
}

// startEngine runs a dialer engine (UA + scheduler + workers) in this process until the test ends.
func startEngine(t testing.TB, svc *campaign.Service, rdb *redis.Client, prefix string, o engineOpts) *Dialer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, done, err := runEngine(ctx, svc, rdb, prefix, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func runEngine(ctx context.Context, svc *campaign.Service, rdb *redis.Client, prefix string, o engineOpts) (*Dialer, chan struct{}, error) {
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.phones == nil {
		o.phones = schemePhones{}
	}
	if o.channels == 0 {
		o.channels = 500
	}
	var ua *UA
	uaDone := make(chan struct{})
	uaCtx, uaCancel := context.WithCancel(context.Background())
	if o.shared != nil {
		ua = SharedUA(o.shared.srv.Diago(), o.shared.srv.Digits(), o.shared.srv.FromHost(), o.promptDir, o.log)
		close(uaDone) // the test owns the shared server
	} else {
		var err error
		if ua, err = NewUA(UAConfig{BindHost: "127.0.0.1", BindPort: 0, PromptDir: o.promptDir, Log: o.log}); err != nil {
			uaCancel()
			return nil, nil, err
		}
		ready := make(chan struct{})
		go func() { defer close(uaDone); ua.Serve(uaCtx, func() { close(ready) }) }()
		<-ready
	}
	done := make(chan struct{})
	d := New(Config{Prefix: prefix, WorkerID: o.workerID, Workers: o.workers, DeadAfter: o.deadAfter, StaleQueued: o.stale,
		LeaseTTL: o.leaseTTL, DrainTimeout: 10 * time.Second, PaceMargin: o.margin,
		Trunks: map[string]Trunk{"default": {Name: "default", Host: "127.0.0.1", Port: o.sippPort, Channels: o.channels}}},
		svc, rdb, ua, o.phones, o.publish, o.log)
	go func() {
		defer close(done)
		d.Run(ctx)
		uaCancel()
		<-uaDone
	}()
	return d, done, nil
}

func prompts(t testing.TB) string {
	dir := testenv.TempDir(t)
	writePrompt(t, filepath.Join(dir, "q.wav"), 150)
	writePrompt(t, filepath.Join(dir, "bye.wav"), 100)
	return dir
}

func surveyScript(silenceMS int) campaign.Script {
	return campaign.Script{Questions: []campaign.Question{{ID: "income", Prompt: "q.wav", Keys: "12", RiskKeys: "1"}},
		Final: "bye.wav", SilenceMS: silenceMS}
}

// TestCampaignAgainstSipp: 1,000 households answered by sipp by the last digit of their number (answer with 1 or
// 2, stay silent, opt out, busy, never answer, 503); the campaign ends with every target final, the keys stored as
// sent, and the retries as configured.
func TestCampaignAgainstSipp(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port := startSipp(t, 300*time.Millisecond)
	var hl hookLog
	svc := campaign.NewService(db, campaign.Options{Directory: rangeDirectory{1, 1000}, Hooks: hl.hooks()})
	var events sync.Map
	eng := startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: prompts(t),
		publish: func(_ context.Context, topic, key string, p any) error { events.Store(key, p); return nil }})
	retry := campaign.RetryRules{NoAnswer: campaign.Retry{DelayMS: 300, MaxAttempts: 2},
		Busy: campaign.Retry{DelayMS: 300, MaxAttempts: 3}, Failed: campaign.Retry{MaxAttempts: 1}}
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "千户收入回访", Purpose: campaign.PurposeCheckin,
		CallerID: "12345", OptOutKey: "9", Windows: allDay(), Pace: 100, MaxConcurrent: 400, DailyCap: 5,
		RingTimeoutMS: 600, Retry: &retry, Script: surveyScript(700)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	p := waitFinished(t, svc, c.ID, 3*time.Minute)
	t.Logf("progress: %+v", p)

	rows, err := db.Query(ctx, `SELECT t.household_id, t.state, t.attempts, t.answers->>'income',
		array_agg(a.outcome ORDER BY a.attempt_no), array_agg(a.sip_code ORDER BY a.attempt_no)
		FROM campaign_targets t JOIN campaign_attempts a ON a.target_id = t.id
		WHERE t.campaign_id = $1 GROUP BY t.id`, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var h int64
		var state string
		var attempts int
		var answer *string
		var outcomes []string
		var codes []int32
		if err := rows.Scan(&h, &state, &attempts, &answer, &outcomes, &codes); err != nil {
			t.Fatal(err)
		}
		seen++
		ans := ""
		if answer != nil {
			ans = *answer
		}
		got := fmt.Sprintf("%s %d %q %v %v", state, attempts, ans, outcomes, codes)
		var want string
		switch d := h % 10; {
		case d == 7 && h%20 == 7: // busy first phone, second phone answers 2
			want = `completed 2 "2" [busy answered] [486 200]`
		case d == 7:
			want = `exhausted 3 "" [busy busy busy] [486 486 486]`
		case d == 8:
			want = `exhausted 2 "" [no_answer no_answer] [487 487]`
		case d == 6:
			want = `exhausted 1 "" [failed] [503]`
		case d == 9:
			want = `opted_out 1 "" [answered] [200]`
		case d == 0:
			want = `completed 1 "" [answered] [200]` // silent: asked twice, then moved on
		case d == 1:
			want = `completed 1 "1" [answered] [200]`
		case d == 3: // pressed 3, not a valid key: asked twice, then moved on
			want = `completed 1 "" [answered] [200]`
		default:
			want = `completed 1 "2" [answered] [200]`
		}
		if got != want {
			t.Errorf("household %d: %s, want %s", h, got, want)
		}
		if hl.contacts[campaign.HouseholdID(h)] != attempts {
			t.Errorf("household %d: %d timeline entries for %d attempts", h, hl.contacts[campaign.HouseholdID(h)], attempts)
		}
		if wantRisk := map[bool]int{true: 1, false: 0}[h%10 == 1]; hl.risks[campaign.HouseholdID(h)] != wantRisk {
			t.Errorf("household %d: %d risk signals", h, hl.risks[campaign.HouseholdID(h)])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != 1000 {
		t.Fatalf("%d targets with attempts, want 1000", seen)
	}
	var optouts int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_optouts WHERE purpose = 'checkin'`).Scan(&optouts)
	if optouts != 100 {
		t.Fatalf("opt-outs: %d", optouts)
	}
	if _, ok := events.Load(strconv.FormatInt(int64(c.ID), 10)); !ok {
		t.Fatal("no progress event published")
	}
	if got := testutil.ToFloat64(eng.m.attempts.WithLabelValues("answered")); got != float64(p.ByOutcome[campaign.OutcomeAnswered]) {
		t.Fatalf("answered attempts metric %v, progress %d", got, p.ByOutcome[campaign.OutcomeAnswered])
	}
	// Channels are all given back.
	if n, _ := rdb.ZCard(ctx, prefix+"dialer:chan:default").Result(); n != 0 {
		t.Fatalf("%d trunk channels still held", n)
	}
}

// settableClock is the injected campaign clock.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestWindowClosedThenOpens: outside its calling window a campaign places no call; when the (injected) clock
// reaches the window, it calls.
func TestWindowClosedThenOpens(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port := startSipp(t, 200*time.Millisecond)
	sh := calendar.CST
	clk := &settableClock{t: time.Date(2026, 9, 29, 7, 0, 0, 0, sh)} // Tuesday, before 09:00
	svc := campaign.NewService(db, campaign.Options{Directory: rangeDirectory{1, 6}, Clock: clk.Now})
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: prompts(t)})
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "窗口", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Pace: 50, Script: surveyScript(700), Retry: &campaign.RetryRules{NoAnswer: campaign.Retry{MaxAttempts: 1},
			Busy: campaign.Retry{MaxAttempts: 1}, Failed: campaign.Retry{MaxAttempts: 1}}}) // default windows 09:00–12:00, 14:00–20:00
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1`, c.ID).Scan(&n)
	if n != 0 {
		t.Fatalf("%d attempts outside the window", n)
	}
	clk.Set(time.Date(2026, 9, 29, 12, 30, 0, 0, sh)) // lunch: still closed
	time.Sleep(1500 * time.Millisecond)
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1`, c.ID).Scan(&n)
	if n != 0 {
		t.Fatalf("%d attempts at lunch time", n)
	}
	clk.Set(time.Date(2026, 9, 29, 14, 0, 0, 0, sh))
	p := waitFinished(t, svc, c.ID, time.Minute)
	if p.ByState[campaign.TargetCompleted] != 5 || p.ByState[campaign.TargetExhausted] != 1 || p.Targets != 6 {
		t.Fatalf("after the window opened: %+v", p)
	}
	var first time.Time
	db.QueryRow(ctx, `SELECT min(started_at) FROM campaign_attempts WHERE campaign_id = $1`, c.ID).Scan(&first)
	if first.Before(time.Date(2026, 9, 29, 14, 0, 0, 0, sh)) {
		t.Fatalf("first attempt stamped %s, before the window", first)
	}
}

// runChild is a dialer process for the crash test: it runs until killed.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, err := pgxpool.New(ctx, os.Getenv("DIALER_TEST_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opt, _ := redis.ParseURL(os.Getenv("DIALER_TEST_REDIS"))
	rdb := redis.NewClient(opt)
	port, _ := strconv.Atoi(os.Getenv("DIALER_TEST_SIPP"))
	svc := campaign.NewService(db, campaign.Options{})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, done, err := runEngine(ctx, svc, rdb, os.Getenv("DIALER_TEST_PREFIX"), engineOpts{sippPort: port,
		promptDir: os.Getenv("DIALER_TEST_PROMPTS"), workerID: os.Getenv("DIALER_TEST_WORKER"), deadAfter: 1500 * time.Millisecond,
		stale: 3 * time.Second, leaseTTL: 3 * time.Second, log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-done
	return 0
}

type onlyDigit2 struct{ n int }

func (d onlyDigit2) SelectHouseholds(context.Context, org.DB, campaign.TargetQuery) ([]campaign.Household, error) {
	var out []campaign.Household
	for k := 0; k < d.n; k++ {
		out = append(out, campaign.Household{ID: campaign.HouseholdID(10*k + 2), RegionCode: "430903", PhoneCount: 1})
	}
	return out, nil
}

// TestKillAndRestart: a dialer process is SIGKILLed with calls up; another one takes over. Every household ends
// answered exactly once, the calls cut off are recorded as interrupted and retried under the rules, and no
// household gets more calls than the rules allow.
func TestKillAndRestart(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, prefix := testenv.Redis(t)
	port := startSipp(t, 2*time.Second) // calls last ~2.5 s, so many are up at the kill
	promptDir := prompts(t)
	svc := campaign.NewService(db, campaign.Options{Directory: onlyDigit2{200}})
	retry := campaign.RetryRules{NoAnswer: campaign.Retry{MaxAttempts: 1}, Busy: campaign.Retry{MaxAttempts: 1},
		Failed: campaign.Retry{MaxAttempts: 1}, Interrupted: campaign.Retry{DelayMS: 200, MaxAttempts: 3}}
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "crash", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Windows: allDay(), Pace: 60, MaxConcurrent: 300, DailyCap: 3, RingTimeoutMS: 2000, Retry: &retry, Script: surveyScript(3000)})
	if err != nil {
		t.Fatal(err)
	}
	child := func(name string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DIALER_TEST_CHILD=1", "DIALER_TEST_DB="+dbURL, "DIALER_TEST_REDIS="+testenv.RedisURL(t),
			"DIALER_TEST_PREFIX="+prefix, "DIALER_TEST_SIPP="+strconv.Itoa(port), "DIALER_TEST_PROMPTS="+promptDir,
			"DIALER_TEST_WORKER="+name)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	a := child("dialer-a")
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live int
		db.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'in_progress'`, c.ID).Scan(&live)
		if live >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls up after 30 s", live)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.Process.Signal(syscall.SIGKILL)
	a.Wait()
	b := child("dialer-b")
	defer func() { b.Process.Signal(syscall.SIGTERM); b.Wait() }()
	p := waitFinished(t, svc, c.ID, 2*time.Minute)
	if p.ByState[campaign.TargetCompleted] != 200 {
		t.Fatalf("targets: %+v", p.ByState)
	}
	if p.ByOutcome[campaign.OutcomeInterrupted] == 0 {
		t.Fatalf("no attempt recorded as interrupted: %+v", p.ByOutcome)
	}
	var bad int
	db.QueryRow(ctx, `SELECT count(*) FROM (SELECT target_id FROM campaign_attempts WHERE campaign_id = $1 GROUP BY target_id
		HAVING count(*) > 3 OR count(*) FILTER (WHERE outcome = 'answered') <> 1
		OR max(attempt_no) FILTER (WHERE outcome = 'answered') <> max(attempt_no)
		OR count(*) FILTER (WHERE outcome = 'in_progress') > 0) x`, c.ID).Scan(&bad)
	if bad != 0 {
		t.Fatalf("%d targets called against their rules", bad)
	}
	var interruptedByB int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'interrupted' AND worker <> 'dialer-a'`, c.ID).Scan(&interruptedByB)
	if interruptedByB != 0 {
		t.Fatalf("%d attempts of the surviving process marked interrupted", interruptedByB)
	}
	t.Logf("outcomes after kill and restart: %+v", p.ByOutcome)
}

// TestKeysBySIPInfo: a household phone that sends its keypad answer as SIP INFO (application/dtmf-relay), which
// diago alone answers 406 (B3), has its answer stored like an RFC 4733 one.
func TestKeysBySIPInfo(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	dir := testenv.TempDir(t)
	b, err := os.ReadFile("testdata/household_info.xml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "household_info.xml"), b, 0o644)
	port := runSipp(t, dir, "-sf", "household_info.xml")
	svc := campaign.NewService(db, campaign.Options{Directory: onlyDigit2{3}})
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: prompts(t)})
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "INFO", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Windows: allDay(), Pace: 10, Script: surveyScript(1500), Retry: &campaign.RetryRules{NoAnswer: campaign.Retry{MaxAttempts: 1},
			Busy: campaign.Retry{MaxAttempts: 1}, Failed: campaign.Retry{MaxAttempts: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, svc, c.ID, time.Minute)
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state = 'completed' AND answers->>'income' = '2'`, c.ID).Scan(&n)
	if n != 3 {
		var dump string
		db.QueryRow(ctx, `SELECT string_agg(state || ' ' || answers::text, '; ') FROM campaign_targets WHERE campaign_id = $1`, c.ID).Scan(&dump)
		t.Fatalf("answers by SIP INFO: %d of 3 stored (%s)", n, dump)
	}
}

// TestTrunkCapSharedByProcesses: two dialer engines (as two processes would) share one trunk of 4 channels through
// Redis: never more than 4 calls are up at once, however many workers and however fast the pace.
func TestTrunkCapSharedByProcesses(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port := startSipp(t, 600*time.Millisecond)
	svc := campaign.NewService(db, campaign.Options{Directory: onlyDigit2{24}})
	dir := prompts(t)
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: dir, workerID: "p1", channels: 4})
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: dir, workerID: "p2", channels: 4})
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "cap", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Windows: allDay(), Pace: 100, MaxConcurrent: 100, Script: surveyScript(1500)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	peak := 0
	deadline := time.Now().Add(time.Minute)
	for {
		var live int
		var status string
		db.QueryRow(ctx, `SELECT (SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'in_progress'),
			(SELECT status FROM campaigns WHERE id = $1)`, c.ID).Scan(&live, &status)
		peak = max(peak, live)
		if status == "finished" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("campaign not finished within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var workers int
	db.QueryRow(ctx, `SELECT count(DISTINCT worker) FROM campaign_attempts WHERE campaign_id = $1`, c.ID).Scan(&workers)
	t.Logf("peak calls up %d, placed by %d processes", peak, workers)
	if peak > 4 || peak < 2 {
		t.Fatalf("peak calls up %d with a trunk of 4 channels", peak)
	}
	if workers != 2 {
		t.Fatalf("calls placed by %d engines, want both", workers)
	}
}

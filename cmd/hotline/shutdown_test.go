package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/localrt"
	"hotline/deploy/testenv"
	"hotline/migrations"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

// SIGTERM to the real binary while a caller is in the queue: readiness turns 503 at once, a new INVITE is
// refused, the call in progress goes on to its end (voicemail here), the process exits 0, and afterwards every
// call has its CDR and nothing is left in the outbox (the relay's final pass published what the drain wrote).
func TestSIGTERMMidCall(t *testing.T) {
	ctx := context.Background()
	dir, rt, db := startStore(t)
	httpPort, sipPort := testenv.FreePort(t), testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", sipPort)
	p := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + rt.DatabaseURL, "HOTLINE_REDIS_URL=" + rt.RedisURL,
		"HOTLINE_DATA_DIR=" + dir, fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", httpPort), "HOTLINE_SIP_LISTEN=udp:" + sipAddr,
		"HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		// Nobody staffed: the caller waits 1 s, then leaves a message of at most 3 s — all inside the drain.
		"HOTLINE_QUEUE_LIMIT=1s", "HOTLINE_VOICEMAIL_MAX=3s", "HOTLINE_SIP_DRAIN_TIMEOUT=30s"}, "serve")
	waitReady(t, p, base)

	citizen, err := phonetest.Start(phonetest.Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer citizen.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call, err := citizen.Dial(dctx, "sip:12345@"+sipAddr, phonetest.DialOptions{From: "13812345678"})
	if err != nil {
		t.Fatalf("call before SIGTERM: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	// Out of rotation at once, while the call is still up.
	waitFor(t, "/readyz 503 after SIGTERM", func() bool { code, _ := tryGet(base + "/readyz"); return code == 503 })
	select {
	case <-call.Done():
		t.Fatal("the call in progress was cut at SIGTERM")
	default:
	}
	late, err := phonetest.Start(phonetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	if _, err := late.Dial(lctx, "sip:12345@"+sipAddr, phonetest.DialOptions{From: "13812345679"}); err == nil {
		t.Error("a new call was answered while draining")
	}
	select {
	case <-call.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not end")
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.out.String())
	}
	var calls, open, outbox, voicemails int
	db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL OR disposition IS NULL) FROM calls`).Scan(&calls, &open)
	db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox)
	db.QueryRow(ctx, `SELECT count(*) FROM tickets WHERE source = 'voicemail'`).Scan(&voicemails)
	if calls == 0 || open != 0 {
		t.Errorf("%d calls, %d without an ended CDR", calls, open)
	}
	if voicemails != 1 {
		t.Errorf("%d voicemail tickets, want 1 (the call drained to its end)", voicemails)
	}
	if outbox != 0 {
		t.Errorf("%d outbox rows left after shutdown", outbox)
	}
}

func tryGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SIGTERM to the real binary while a campaign has calls up: readiness turns 503, the dialer places no new call
// and lets those up play to their end (none is cut and recorded as interrupted), the process exits 0 with every
// attempt closed and the outbox empty, and every household the phone was rung for has its attempt row. A second
// process then finishes the campaign: each household answered exactly once, none lost, none called twice.
func TestSIGTERMMidCampaign(t *testing.T) {
	ctx := context.Background()
	dir, rt, db := startStore(t)
	const households = 8
	piiKey := "HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	seed := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + rt.DatabaseURL, piiKey,
		fmt.Sprintf("HOTLINE_DEMO_HOUSEHOLDS=%d", households)}, "demo-data")
	if code := seed.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("demo-data exit %d:\n%s", code, seed.out.String())
	}
	mgr, err := org.CreateUser(ctx, db, org.NewUser{Username: "campaign1", DisplayName: "外呼管理", Role: org.RoleCampaignManager, Password: "secret-password"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := org.CreateToken(ctx, db, mgr.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The trunk is a test phone that answers every number after a short ring and never presses a key: each call
	// plays the question, waits, repeats it once and ends after about 5 s (a short stand-in for the 16 s
	// built-in question) — long enough to be up at SIGTERM.
	shortQuestion(t, filepath.Join(dir, "prompts", "dialer"))
	trunk, err := phonetest.Start(phonetest.Options{AnswerAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the processes start, so it runs after their cleanups killed them: Close waits for the
	// phone's calls to end, which a dialer still placing calls would never let happen.
	t.Cleanup(trunk.Close)
	env := func() []string {
		return []string{"HOTLINE_DATABASE_URL=" + rt.DatabaseURL, "HOTLINE_REDIS_URL=" + rt.RedisURL, piiKey,
			"HOTLINE_DATA_DIR=" + dir, fmt.Sprintf("HOTLINE_SIP_LISTEN=udp:127.0.0.1:%d", testenv.FreePort(t)),
			"HOTLINE_DIALER_TRUNK=" + trunk.Addr(),
			"HOTLINE_DIALER_CALLBACK=false", "HOTLINE_SIP_DRAIN_TIMEOUT=30s"}
	}
	httpPort := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	p := startHotline(t, append(env(), fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", httpPort)), "serve")
	waitReady(t, p, base)

	body := map[string]any{"name": "收入回访", "purpose": "checkin", "caller_id": "12345", "pace": 2, "max_concurrent": 3,
		"ring_timeout_ms": 5000, "target_query": map[string]any{"region_prefix": "43"},
		"windows": map[string]any{"spans": []any{map[string]any{"start": "00:00", "end": "24:00"}}, "call_on_holidays": true},
		"script":  map[string]any{"silence_ms": 1000, "questions": []any{map[string]any{"id": "income", "prompt": "income_question.wav", "keys": "12"}}}}
	// postJSON fails the test on a refused connection; say why the process went away.
	post := func(path string, body, out any) int {
		select {
		case <-p.done:
			t.Fatalf("hotline exited:\n%s", p.out.String())
		default:
		}
		return postJSON(t, base+path, token, body, out)
	}
	var m map[string]any
	if code := post("/api/v1/campaigns", body, &m); code != http.StatusCreated {
		t.Fatalf("create campaign: %d %v", code, m)
	}
	id := int64(m["id"].(float64))
	if code := post(fmt.Sprintf("/api/v1/campaigns/%d/launch", id), nil, &m); code != http.StatusOK {
		t.Fatalf("launch: %d %v", code, m)
	}
	count := func(q string) int {
		var n int
		if err := db.QueryRow(ctx, q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(90 * time.Second); count(`SELECT count(*) FROM campaign_attempts
		WHERE campaign_id = $1 AND outcome = 'in_progress'`) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			rows, _ := db.Query(ctx, `SELECT outcome || ' ' || sip_code FROM campaign_attempts WHERE campaign_id = $1`, id)
			seen, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("never two campaign calls up at once in 90 s; attempts %v; phone rang %d times; output:\n%s", seen, trunk.Rang(), p.out.String())
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "/readyz 503 after SIGTERM", func() bool { code, _ := tryGet(base + "/readyz"); return code == 503 })
	if code := p.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.out.String())
	}
	attempts := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1`)
	if open := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND (outcome = 'in_progress' OR ended_at IS NULL)`); open != 0 {
		t.Errorf("%d of %d attempts left open after the drain", open, attempts)
	}
	if cut := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'interrupted'`); cut != 0 {
		t.Errorf("%d calls were cut at SIGTERM instead of finishing", cut)
	}
	if rang := trunk.Rang(); rang != attempts {
		t.Errorf("the trunk was rung %d times but %d attempts are recorded", rang, attempts)
	}
	if left := count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state NOT IN ('pending', 'queued', 'completed')`); left != 0 {
		t.Errorf("%d targets in a state other than pending/queued/completed after the drain", left)
	}
	if pending := count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state <> 'completed'`); pending == 0 {
		t.Fatalf("the campaign finished before SIGTERM took effect (%d attempts); nothing was left to check", attempts)
	}
	var outbox int
	db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox)
	if outbox != 0 {
		t.Errorf("%d outbox rows left after shutdown", outbox)
	}

	// A new process finishes the campaign; nothing was lost and nobody is called twice.
	q := startHotline(t, append(env(), fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", testenv.FreePort(t))), "serve")
	deadline := time.Now().Add(5 * time.Minute) // calls play the question twice: ~5 s each, 3 at a time
	for count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state = 'completed'`) < households {
		if time.Now().After(deadline) {
			rows, _ := db.Query(ctx, `SELECT outcome || ' ' || sip_code || ' ' || worker FROM campaign_attempts WHERE campaign_id = $1 ORDER BY id`, id)
			seen, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("campaign not finished after restart; attempts %v; output:\n%s", seen, q.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	q.cmd.Process.Signal(syscall.SIGTERM)
	q.wait(t, 90*time.Second)
	if twice := count(`SELECT count(*) FROM (SELECT household_id FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'answered'
		GROUP BY household_id HAVING count(*) > 1) x`); twice != 0 {
		t.Errorf("%d households answered more than once", twice)
	}
	if answered := count(`SELECT count(DISTINCT household_id) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'answered'`); answered != households {
		t.Errorf("%d households answered, want %d", answered, households)
	}
	t.Logf("%d attempts before SIGTERM, all closed; %d households finished after restart", attempts, households)
}

// shortQuestion writes a 1.5 s income_question.wav into a dialer prompt directory, in place of the built-in
// 16 s recording (which the dialer leaves alone when a file of that name is there), so a campaign drill's calls
// last seconds, not half a minute: what the drills check is how calls end, not how long a prompt is.
func shortQuestion(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "income_question.wav"), media.ToneWAV(440, 1500*time.Millisecond), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startStore starts PostgreSQL and Redis of the process's own (a test that stops its hotline needs servers that
// outlive it) in a fresh directory, migrated and with the organisation seeded. They stop with the test.
func startStore(t *testing.T) (string, *localrt.Runtime, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	dir := testenv.TempDir(t)
	rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: testenv.FreePort(t), RedisPort: testenv.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	db, err := pgxpool.New(ctx, rt.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		t.Fatal(err)
	}
	return dir, rt, db
}

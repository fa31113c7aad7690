package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

// TestTopologyCampaignAcrossDialers: a campaign's calls spread over both dialer nodes of deploy/topology.sh; one
// node is SIGKILLed with calls up and the other finishes the campaign (issue 16). Every household is answered
// exactly once, none is lost, no target gets more calls than its retry rules allow, the only attempts recorded
// as interrupted are the dead node's, and none is left in progress. It logs how long the survivor took to finish.
func TestTopologyCampaignAcrossDialers(t *testing.T) {
	ctx := context.Background()
	// The carrier trunk both dialer nodes call: a test phone that answers every number after a short ring and
	// never presses a key, so each call plays the question twice and ends. Registered before the topology, so its
	// Close (which waits for its calls to end) runs after the topology is stopped.
	trunk, err := phonetest.Start(phonetest.Options{AnswerAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(trunk.Close)
	tp := startTopology(t, "HOTLINE_DIALER_TRUNK="+trunk.Addr(), "HOTLINE_DIALER_PROMPT_DIR="+shortQuestion(t, testenv.TempDir(t)))

	const households = 20
	seed := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + tp.env["DATABASE_URL"], "HOTLINE_PII_KEY_FILE=" + tp.env["PII_KEY_FILE"],
		fmt.Sprintf("HOTLINE_DEMO_HOUSEHOLDS=%d", households)}, "demo-data")
	if code := seed.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("demo-data exit %d:\n%s", code, seed.out.String())
	}
	db, err := pgxpool.New(ctx, tp.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := org.SeedUnits(ctx, db); err != nil {
		t.Fatal(err)
	}
	mgr, err := org.CreateUser(ctx, db, org.NewUser{Username: "campaign1", DisplayName: "外呼管理", Role: org.RoleCampaignManager, Password: "secret-password"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := org.CreateToken(ctx, db, mgr.ID, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Unanswered, busy or failed calls are not retried (the trunk answers all); a call cut by the kill is, up to
	// three attempts in all.
	once := map[string]any{"delay_ms": 0, "max_attempts": 1}
	body := map[string]any{"name": "跨节点回访", "purpose": "checkin", "caller_id": "12345", "pace": 4, "max_concurrent": 6,
		"ring_timeout_ms": 5000, "target_query": map[string]any{"region_prefix": "43"},
		"retry": map[string]any{"no_answer": once, "busy": once, "failed": once,
			"interrupted": map[string]any{"delay_ms": 200, "max_attempts": 3}},
		"windows": map[string]any{"spans": []any{map[string]any{"start": "00:00", "end": "24:00"}}, "call_on_holidays": true},
		"script":  map[string]any{"silence_ms": 1000, "questions": []any{map[string]any{"id": "income", "prompt": "income_question.wav", "keys": "12"}}}}
	api := "http://" + tp.env["HAPROXY"]
	var m map[string]any
	if code := postJSON(t, api+"/api/v1/campaigns", token, body, &m); code != http.StatusCreated {
		t.Fatalf("create campaign: %d %v", code, m)
	}
	id := int64(m["id"].(float64))
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/campaigns/%d/launch", api, id), token, nil, &m); code != http.StatusOK {
		t.Fatalf("launch: %d %v", code, m)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, q, append([]any{id}, args...)...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	attempts := func() []string {
		rows, _ := db.Query(ctx, `SELECT target_id || ' #' || attempt_no || ' ' || outcome || ' ' || coalesce(sip_code::text, '-') || ' ' || worker
			FROM campaign_attempts WHERE campaign_id = $1 ORDER BY id`, id)
		seen, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		return seen
	}
	if n := count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1`); n != households {
		t.Fatalf("%d targets, want %d", n, households)
	}

	// A dialer's worker ID is host-pid-nonce; the pids come from the topology's own list.
	pids := map[string]string{}
	b, err := os.ReadFile(filepath.Join(tp.dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			pids[f[0]] = f[1]
		}
	}
	workerOf := func(node string) string { return "%-" + pids[node] + "-%" } // a LIKE pattern
	const victim = "hotline1"
	// Both nodes place calls, the one to be killed has placed at least two and has a call up.
	for deadline := time.Now().Add(2 * time.Minute); count(`SELECT count(DISTINCT worker) FROM campaign_attempts WHERE campaign_id = $1`) < 2 ||
		count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND worker LIKE $2`, workerOf(victim)) < 2 ||
		count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'in_progress' AND worker LIKE $2`, workerOf(victim)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the campaign never had calls from both dialer nodes with one up on %s; attempts %v; phone rang %d times", victim, attempts(), trunk.Rang())
		}
	}
	if done := count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state = 'completed'`); done == households {
		t.Fatal("the campaign finished before the kill; nothing to check")
	}
	upOnVictim := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'in_progress' AND worker LIKE $2`, workerOf(victim))
	killed := time.Now()
	tp.kill(victim)

	// Every target final: answered (completed) — the trunk answers everything, so anything else is a failure below.
	deadline := time.Now().Add(4 * time.Minute)
	for count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state NOT IN ('pending', 'queued', 'dialing')`) < households {
		if time.Now().After(deadline) {
			t.Fatalf("campaign not finished 4 min after the kill; attempts %v", attempts())
		}
		time.Sleep(200 * time.Millisecond)
	}
	finished := time.Since(killed)

	if n := count(`SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state <> 'completed'`); n != 0 {
		t.Errorf("%d targets ended other than completed; attempts %v", n, attempts())
	}
	if twice := count(`SELECT count(*) FROM (SELECT household_id FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'answered'
		GROUP BY household_id HAVING count(*) > 1) x`); twice != 0 {
		t.Errorf("%d households answered more than once", twice)
	}
	if answered := count(`SELECT count(DISTINCT household_id) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'answered'`); answered != households {
		t.Errorf("%d households answered, want %d", answered, households)
	}
	// The rules: at most 3 attempts (the interrupted rule), exactly one answered and it the last, none still open.
	if bad := count(`SELECT count(*) FROM (SELECT target_id FROM campaign_attempts WHERE campaign_id = $1 GROUP BY target_id
		HAVING count(*) > 3 OR count(*) FILTER (WHERE outcome = 'answered') <> 1
		OR max(attempt_no) FILTER (WHERE outcome = 'answered') <> max(attempt_no)
		OR count(*) FILTER (WHERE outcome = 'in_progress') > 0) x`); bad != 0 {
		t.Errorf("%d targets called against their rules; attempts %v", bad, attempts())
	}
	if open := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND (outcome = 'in_progress' OR ended_at IS NULL)`); open != 0 {
		t.Errorf("%d attempts left open", open)
	}
	if n := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'interrupted' AND worker NOT LIKE $2`, workerOf(victim)); n != 0 {
		t.Errorf("%d attempts of the surviving node recorded as interrupted", n)
	}
	interrupted := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND outcome = 'interrupted'`)
	if interrupted < upOnVictim {
		t.Errorf("%d calls were up on %s at the kill but %d attempts are recorded interrupted", upOnVictim, victim, interrupted)
	}
	// The timeline, relative to the kill: when each attempt started, how long it lasted, how it ended.
	rows, _ := db.Query(ctx, `SELECT target_id || ' #' || attempt_no || ' ' || outcome || ' +' ||
		round(extract(epoch FROM started_at - $2::timestamptz)::numeric, 1) || 's ' ||
		coalesce(round(extract(epoch FROM ended_at - started_at)::numeric, 1) || 's', '-') || ' ' || worker
		FROM campaign_attempts WHERE campaign_id = $1 ORDER BY started_at`, id, killed)
	timeline, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	t.Logf("attempts (target #n outcome start-after-kill duration worker):\n%s", strings.Join(timeline, "\n"))
	survivor := count(`SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1 AND worker LIKE $2 AND started_at >= $3`, workerOf("hotline2"), killed)
	t.Logf("%d households over two dialer nodes; %s SIGKILLed with %d calls up (%d attempts recorded interrupted); "+
		"the survivor placed %d calls after the kill and finished the campaign %v after it",
		households, victim, upOnVictim, interrupted, survivor, finished.Round(time.Millisecond))
}

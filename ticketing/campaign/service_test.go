package campaign

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

// staticDirectory stands for the monitoring records in these tests: a fixed list of households.
type staticDirectory []Household

func (d staticDirectory) SelectHouseholds(_ context.Context, _ org.DB, q TargetQuery) ([]Household, error) {
	var out []Household
	for _, h := range d {
		if q.RegionPrefix == "" || len(h.RegionCode) >= len(q.RegionPrefix) && h.RegionCode[:len(q.RegionPrefix)] == q.RegionPrefix {
			out = append(out, h)
		}
	}
	return out, nil
}

// clock is a settable campaign clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func manager() org.Actor {
	return org.Actor{Username: "cm", Role: org.RoleCampaignManager}
}
func simpleScript() Script {
	return Script{Questions: []Question{{ID: "income", Prompt: "q.wav", Keys: "12", RiskKeys: "1"}}}
}
func newCampaign(name string) NewCampaign {
	r := RetryRules{NoAnswer: Retry{DelayMS: 60000, MaxAttempts: 3}, Busy: Retry{DelayMS: 1000, MaxAttempts: 2}, Failed: Retry{MaxAttempts: 1}}
	return NewCampaign{Name: name, Purpose: PurposeCheckin, CallerID: "12345", Script: simpleScript(), Retry: &r, OptOutKey: "9"}
}

func TestCampaignLifecycleClaimFinish(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	clk := &clock{t: at("2026-09-29 10:00")}
	dir := staticDirectory{{1, "430903", 1}, {2, "430903", 2}, {3, "430921", 1}, {4, "430102", 1}}
	var contacts []AttemptID
	var risks []HouseholdID
	svc := NewService(db, Options{Directory: dir, Clock: clk.Now, Hooks: Hooks{
		Contact: func(_ context.Context, _ pgx.Tx, _ *Campaign, _ *Target, a *Attempt) error {
			contacts = append(contacts, a.ID)
			return nil
		},
		Risk: func(_ context.Context, _ pgx.Tx, _ *Campaign, t *Target, _ *Attempt, q []string) error {
			risks = append(risks, t.HouseholdID)
			return nil
		},
	}})
	if _, err := db.Exec(ctx, `INSERT INTO campaign_optouts (household_id, purpose) VALUES (3, 'checkin')`); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, org.Actor{Role: org.RoleAgent}, newCampaign("x")); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("agent creating a campaign: %v", err)
	}
	n := newCampaign("赫山区与桃江县收入回访")
	n.Query.RegionPrefix = "4309"
	c, err := svc.Create(ctx, manager(), n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Pause(ctx, manager(), c.ID); !errors.Is(err, org.ErrState) {
		t.Fatalf("pause a draft: %v", err)
	}
	if c, err = svc.Launch(ctx, manager(), c.ID); err != nil || c.Status != StatusRunning {
		t.Fatalf("launch: %v %v", c, err)
	}
	p, err := svc.Progress(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Households 1, 2 match the query; 3 matches but opted out; 4 is elsewhere.
	if p.Targets != 2 || p.ByState[TargetPending] != 2 {
		t.Fatalf("frozen targets: %+v", p)
	}
	// A household added to the directory after launch is not called: the list is frozen.
	dir = append(dir, Household{5, "430903", 1})

	q, err := svc.Enqueue(ctx, c.ID, 10)
	if err != nil || len(q) != 2 {
		t.Fatalf("enqueue: %v %v", q, err)
	}
	job, err := svc.Claim(ctx, q[0], "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Claim(ctx, q[0], "w2"); !errors.Is(err, ErrNotClaimable) {
		t.Fatalf("second claim of one entry: %v", err)
	}
	if err := svc.Heartbeat(ctx, "w1", "test"); err != nil {
		t.Fatal(err)
	}
	// Busy: retried after 1 s (rule), then exhausted at the second busy.
	if err := svc.Finish(ctx, job.Attempt.ID, Result{Outcome: OutcomeBusy, SIPCode: 486}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Finish(ctx, job.Attempt.ID, Result{Outcome: OutcomeAnswered}); !errors.Is(err, ErrAlreadyFinished) {
		t.Fatalf("finish twice: %v", err)
	}
	if q2, _ := svc.Enqueue(ctx, c.ID, 10); len(q2) != 0 {
		t.Fatalf("retry before its delay: %v", q2)
	}
	clk.Add(time.Second)
	q2, _ := svc.Enqueue(ctx, c.ID, 10)
	if len(q2) != 1 || q2[0].Attempts != 1 {
		t.Fatalf("retry after delay: %v", q2)
	}
	job2, err := svc.Claim(ctx, q2[0], "w1")
	if err != nil {
		t.Fatal(err)
	}
	if job2.Attempt.No != 2 {
		t.Fatalf("attempt no %d", job2.Attempt.No)
	}
	if err := svc.Finish(ctx, job2.Attempt.ID, Result{Outcome: OutcomeBusy, SIPCode: 486}); err != nil {
		t.Fatal(err)
	}
	// The other target: claimed by w2, which dies (never beats) → interrupted, failed rule allows 1 → exhausted.
	job3, err := svc.Claim(ctx, q[1], "w2")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.SweepInterrupted(ctx, time.Second); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	as, _ := svc.Attempts(ctx, job3.Target.ID)
	if len(as) != 1 || as[0].Outcome != OutcomeInterrupted {
		t.Fatalf("interrupted attempt: %+v", as)
	}
	if len(contacts) != 3 {
		t.Fatalf("timeline entries: %v", contacts)
	}
	done, err := svc.FinishDone(ctx)
	if err != nil || len(done) != 1 {
		t.Fatalf("finish done: %v %v", done, err)
	}
	var csvBuf bytes.Buffer
	if err := svc.WriteResultsCSV(ctx, c.ID, &csvBuf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&csvBuf).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][7] != "q_income" || recs[1][3] != "exhausted" || recs[1][4] != "2" {
		t.Fatalf("csv: %v %v", recs, err)
	}
}

func TestClaimChecksWindowCapAndOptOut(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	clk := &clock{t: at("2026-09-29 11:59")}
	svc := NewService(db, Options{Directory: staticDirectory{{1, "430903", 1}, {2, "430903", 1}}, Clock: clk.Now})
	n := newCampaign("cap")
	n.DailyCap = 1
	n.Retry = &RetryRules{NoAnswer: Retry{MaxAttempts: 5}, Busy: Retry{MaxAttempts: 5}, Failed: Retry{MaxAttempts: 5}}
	c, err := svc.Create(ctx, manager(), n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager(), c.ID); err != nil {
		t.Fatal(err)
	}
	q, _ := svc.Enqueue(ctx, c.ID, 10)
	job, err := svc.Claim(ctx, q[0], "w")
	if err != nil {
		t.Fatal(err)
	}
	// Answered with the opt-out: never called again for this purpose.
	if err := svc.Finish(ctx, job.Attempt.ID, Result{Outcome: OutcomeAnswered, OptedOut: true}); err != nil {
		t.Fatal(err)
	}
	// The window closes between queueing and claiming: the target goes back to pending at the next opening.
	clk.Set(at("2026-09-29 12:00"))
	if _, err := svc.Claim(ctx, q[1], "w"); !errors.Is(err, ErrNotClaimable) {
		t.Fatalf("claim outside window: %v", err)
	}
	var next time.Time
	db.QueryRow(ctx, `SELECT next_at FROM campaign_targets WHERE id = $1`, q[1].Target).Scan(&next)
	if !next.Equal(at("2026-09-29 14:00")) {
		t.Fatalf("next_at after closed window = %s", next)
	}
	clk.Set(at("2026-09-29 14:00"))
	q, _ = svc.Enqueue(ctx, c.ID, 10)
	job, err = svc.Claim(ctx, q[0], "w")
	if err != nil {
		t.Fatal(err)
	}
	svc.Finish(ctx, job.Attempt.ID, Result{Outcome: OutcomeNoAnswer})
	// Second attempt the same day: over the daily cap of 1 → tomorrow 09:00.
	q, _ = svc.Enqueue(ctx, c.ID, 10)
	if _, err := svc.Claim(ctx, q[0], "w"); !errors.Is(err, ErrNotClaimable) {
		t.Fatalf("claim over daily cap: %v", err)
	}
	db.QueryRow(ctx, `SELECT next_at FROM campaign_targets WHERE id = $1`, q[0].Target).Scan(&next)
	if !next.Equal(at("2026-09-30 09:00")) {
		t.Fatalf("next_at after daily cap = %s", next)
	}
	var state string
	db.QueryRow(ctx, `SELECT state FROM campaign_targets WHERE household_id = 1`).Scan(&state)
	if state != "opted_out" {
		t.Fatalf("opted-out target state %s", state)
	}
	// A new campaign of the same purpose leaves the opted-out household out.
	c2, _ := svc.Create(ctx, manager(), newCampaign("again"))
	svc.Launch(ctx, manager(), c2.ID)
	p, _ := svc.Progress(ctx, c2.ID)
	if p.Targets != 1 {
		t.Fatalf("opted-out household in a new campaign: %+v", p)
	}
	// Pause returns queued targets to pending; cancel ends the rest.
	svc.Enqueue(ctx, c2.ID, 10)
	svc.Pause(ctx, manager(), c2.ID)
	if n, _ := svc.QueuedCount(ctx, c2.ID); n != 0 {
		t.Fatalf("queued after pause: %d", n)
	}
	svc.Resume(ctx, manager(), c2.ID)
	if c2, err = svc.Cancel(ctx, manager(), c2.ID); err != nil || c2.Status != StatusCancelled {
		t.Fatal(err)
	}
	p, _ = svc.Progress(ctx, c2.ID)
	if p.ByState[TargetCancelled] != 1 {
		t.Fatalf("after cancel: %+v", p)
	}
}

func TestCreateChecksPrompts(t *testing.T) {
	db := testenv.DB(t)
	svc := NewService(db, Options{Prompt: func(name string) error {
		if name != "q.wav" {
			return errors.New("no prompt file " + name)
		}
		return nil
	}})
	n := newCampaign("prompts")
	n.Script.Final = "missing.wav"
	_, err := svc.Create(context.Background(), manager(), n)
	var ve *org.ValidationError
	if !errors.As(err, &ve) || ve.Fields["script.final"] == "" || ve.Fields["script.questions[0].prompt"] != "" {
		t.Fatalf("missing final prompt: %v", err)
	}
	n.Script.Final = ""
	if _, err := svc.Create(context.Background(), manager(), n); err != nil {
		t.Fatal(err)
	}
}

package dialer

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// mixedDirectory alternates households that answer and stay silent (number ending in 0: a call of about a second,
// no keypad replay to keep sipp busy, so its receive timestamps stay true) with busy ones (ending in 7: over at once), so the workers are sometimes all busy and then free many at once: the moment
// queued calls used to go out in a burst above the pace.
type mixedDirectory struct{ n int }

func (d mixedDirectory) SelectHouseholds(context.Context, org.DB, campaign.TargetQuery) ([]campaign.Household, error) {
	var out []campaign.Household
	for k := 0; k < d.n; k++ {
		last := 0
		if k%2 == 1 {
			last = 7
		}
		out = append(out, campaign.Household{ID: campaign.HouseholdID(10*k + last), RegionCode: "430903", PhoneCount: 1})
	}
	return out, nil
}

// TestPaceCeilingAcrossProcesses: two dialer engines (as two processes) with few workers each run one campaign
// against sipp; sipp logs every INVITE it receives with its time, and no sliding one-second window of those
// holds more INVITEs than the pace, however the worker limit held calls back and released them. Without the
// pace gate (queueing at the pace only) the busiest window held 21 at a pace of 20.
//
// The engines run with a PaceMargin of 100 ms rather than the default 20 ms: sipp's receive timestamps on a
// machine shared with other test packages lag by up to ~40 ms at times, and the margin is what absorbs the gap
// between a call's slot and its INVITE being seen (pace.go).
func TestPaceCeilingAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port, sippDir := startSippIn(t, 300*time.Millisecond, "-trace_msg")
	const pace, targets = 20, 100
	svc := campaign.NewService(db, campaign.Options{Directory: mixedDirectory{targets}})
	dir := prompts(t)
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: dir, workerID: "p1", workers: 5, margin: 100 * time.Millisecond})
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: dir, workerID: "p2", workers: 5, margin: 100 * time.Millisecond})
	one := campaign.Retry{MaxAttempts: 1}
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "pace", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Windows: allDay(), Pace: pace, MaxConcurrent: 100, Retry: &campaign.RetryRules{NoAnswer: one, Busy: one, Failed: one},
		Script: surveyScript(200)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, svc, c.ID, time.Minute)

	invites := sippInvites(t, sippDir)
	if len(invites) != targets {
		t.Fatalf("sipp saw %d INVITEs, want %d (one per target)", len(invites), targets)
	}
	peak, at := maxInWindow(invites, time.Second)
	var engines int
	db.QueryRow(ctx, `SELECT count(DISTINCT worker) FROM campaign_attempts WHERE campaign_id = $1`, c.ID).Scan(&engines)
	t.Logf("%d INVITEs from %d engines; busiest one-second window holds %d (from %s)", len(invites), engines, peak,
		at.Format("15:04:05.000"))
	if peak > pace {
		for i := 1; i < len(invites); i++ {
			if d := invites[i].Sub(at); d >= -time.Second && d < 2*time.Second {
				t.Logf("%s +%s", invites[i].Format("05.000000"), invites[i].Sub(invites[i-1]))
			}
		}
		t.Fatalf("a one-second window held %d INVITEs at a pace of %d/s", peak, pace)
	}
	if engines != 2 {
		t.Fatalf("calls placed by %d engines, want both", engines)
	}
}

// sippInvites reads sipp's -trace_msg log and returns the time each call's first INVITE arrived, in order.
func sippInvites(t *testing.T, dir string) []time.Time {
	t.Helper()
	// A sipp that exited at start (its port taken; runSipp tries another) leaves a log too: take the largest.
	logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
	if len(logs) == 0 {
		t.Fatal("no sipp message log")
	}
	path, size := "", int64(-1)
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > size {
			path, size = l, fi.Size()
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []time.Time
	var stamp time.Time
	invite := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			// "----- 2026-12-01 05:01:04.998317": sipp's local time, the same clock for every entry.
			ts, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(strings.Trim(line, "-")), time.Local)
			if err == nil {
				stamp = ts
			}
			invite = false
		case strings.HasPrefix(line, "INVITE sip:"):
			invite = true
		case invite && strings.HasPrefix(strings.ToLower(line), "call-id:"):
			id := strings.TrimSpace(line[len("call-id:"):])
			if !seen[id] {
				seen[id] = true
				out = append(out, stamp)
			}
			invite = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// maxInWindow is the most events any half-open window [t, t+w) holds, and where that window starts.
func maxInWindow(ts []time.Time, w time.Duration) (int, time.Time) {
	best, at, j := 0, time.Time{}, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		if j-i > best {
			best, at = j-i, ts[i]
		}
	}
	return best, at
}

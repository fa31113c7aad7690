// Command loaddialer measures the outbound dialer on this machine: pacing accuracy at a configured rate, the
// highest attempt rate with zero failed calls, and the wall time of a large campaign. It starts its own PostgreSQL
// and Redis (deploy/localrt, in a temporary directory) and `sipp -sn uas` as the trunk, all on 127.0.0.1, runs
// the dialer engine in-process against synthetic targets, and stops by itself.
//
//	go run ./cmd/loaddialer -pace 50 -targets 1000                        # pacing accuracy at 50/s
//	go run ./cmd/loaddialer -sweep 200,300,400,500 -targets 3000          # failures and achieved rate per step
//	go run ./cmd/loaddialer -pace 400 -targets 10000 -prompt 1s -silence 500ms  # wall time, ~3 s calls
//	go run ./cmd/loaddialer -pace 200 -targets 3000 -workers 1000 -prompt 15s -silence 1s  # the pace as a ceiling
//
// The per-second figures are counted where the carrier counts them, on the wire: tcpdump (apt-get install
// tcpdump; needs root) captures every INVITE sent to sipp on the loopback interface with the kernel's timestamp,
// and the report gives, over the seconds in which calls were placed, the p5/median/p95/max of INVITEs per
// calendar second and the most in any sliding one-second window. Without tcpdump the times come from sipp's
// message log (-trace_msg), which stamps a message when sipp gets round to reading it: on a loaded machine
// that bunches INVITEs together and overstates the busiest second.
//
// Each answered call plays the one question (-prompt long) twice with -silence after each (sipp sends no keys),
// then hangs up: call length ≈ 2 × (prompt + silence).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/telephony/dialer"
	"hotline/telephony/media"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

var verbose bool

type synthetic struct{ n int }

func (s synthetic) SelectHouseholds(context.Context, org.DB, campaign.TargetQuery) ([]campaign.Household, error) {
	out := make([]campaign.Household, s.n)
	for i := range out {
		out[i] = campaign.Household{ID: campaign.HouseholdID(i + 1), RegionCode: "430903", PhoneCount: 1}
	}
	return out, nil
}

type phones struct{}

func (phones) Phones(_ context.Context, h campaign.HouseholdID, _ campaign.TicketID) ([]string, error) {
	return []string{fmt.Sprintf("139%08d", int64(h))}, nil
}

func main() {
	var (
		pace    = flag.Float64("pace", 50, "attempts per second of the campaign")
		sweep   = flag.String("sweep", "", "comma-separated rates: run one campaign per rate and report failures")
		targets = flag.Int("targets", 1000, "targets per campaign")
		prompt  = flag.Duration("prompt", 200*time.Millisecond, "length of the question prompt")
		silence = flag.Duration("silence", 100*time.Millisecond, "silence timeout after the prompt")
		workers = flag.Int("workers", 2000, "simultaneous calls of the dialer process")
		limit   = flag.Duration("limit", 10*time.Minute, "give up a campaign after this long")
	)
	flag.BoolVar(&verbose, "v", false, "print attempts started per second")
	flag.Parse()
	ctx := context.Background()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // diago's media layer logs through the default logger
	dir, err := os.MkdirTemp("", "loaddialer-")
	if err != nil {
		fatal(err)
	}
	os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: freePort(), RedisPort: freePort()})
	if err != nil {
		fatal(err)
	}
	defer rt.Stop()
	db, err := pgxpool.New(ctx, rt.DatabaseURL+"&pool_max_conns=40")
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db, slog.New(slog.DiscardHandler)); err != nil {
		fatal(err)
	}
	ropt, _ := redis.ParseURL(rt.RedisURL)
	ropt.PoolSize = 100
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	promptDir := filepath.Join(dir, "prompts")
	os.MkdirAll(promptDir, 0o755)
	writeTone(filepath.Join(promptDir, "q.wav"), *prompt)

	sippPort := freeUDPPort()
	sipp := exec.Command("sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(sippPort), "-mi", "127.0.0.1",
		"-mp", "40000", "-nostdin", "-max_socket", "10000", "-timeout", "3600s", "-trace_msg")
	sipp.Dir = dir
	sipp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sipp.Start(); err != nil {
		fatal(fmt.Errorf("sipp (apt-get install sip-tester): %w", err))
	}
	defer func() { sipp.Process.Kill(); sipp.Wait() }()
	if path, err := exec.LookPath("tcpdump"); err == nil {
		capFile, _ := os.Create(filepath.Join(dir, "invites.txt"))
		td := exec.Command(path, "-i", "lo", "-nn", "-tt", "-l", "-A", "-B", "8192", fmt.Sprintf("udp dst port %d", sippPort))
		td.Stdout = capFile
		td.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := td.Start(); err == nil {
			captured = capFile.Name()
			defer func() { td.Process.Kill(); td.Wait(); capFile.Close() }()
		}
	}
	time.Sleep(300 * time.Millisecond)

	ua, err := dialer.NewUA(dialer.UAConfig{BindHost: "127.0.0.1", PromptDir: promptDir})
	if err != nil {
		fatal(err)
	}
	uaCtx, stopUA := context.WithCancel(ctx)
	defer stopUA()
	ready := make(chan struct{})
	go ua.Serve(uaCtx, func() { close(ready) })
	<-ready

	rates := []float64{*pace}
	if *sweep != "" {
		rates = nil
		for _, f := range strings.Split(*sweep, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				fatal(fmt.Errorf("-sweep: %v", err))
			}
			rates = append(rates, r)
		}
	}
	fmt.Printf("loaddialer: %d targets per campaign, calls ≈ %s (prompt %s + silence %s, twice), GOMAXPROCS %d, sipp -sn uas on 127.0.0.1:%d\n",
		*targets, 2*(*prompt+*silence), *prompt, *silence, numCPU(), sippPort)
	for i, rate := range rates {
		prefix := fmt.Sprintf("ld%d:", i)
		svc := campaign.NewService(db, campaign.Options{Directory: synthetic{*targets}})
		ectx, stop := context.WithCancel(ctx)
		d := dialer.New(dialer.Config{Prefix: prefix, Workers: *workers, DrainTimeout: 30 * time.Second,
			Trunks: map[string]dialer.Trunk{"default": {Name: "default", Host: "127.0.0.1", Port: sippPort, Channels: 100000}}},
			svc, rdb, ua, phones{}, nil, slog.New(slog.DiscardHandler))
		done := make(chan struct{})
		go func() { d.Run(ectx); close(done) }()
		one := campaign.Retry{MaxAttempts: 1}
		c, err := svc.Create(ctx, org.System, campaign.NewCampaign{Name: fmt.Sprintf("load %.0f/s", rate), Purpose: campaign.PurposeNotice,
			CallerID: "12345", Pace: rate, MaxConcurrent: 10000, DailyCap: 5, RingTimeoutMS: 5000,
			Windows: &campaign.Windows{Spans: []campaign.Span{{Start: "00:00", End: "24:00"}}, CallOnHolidays: true},
			Retry:   &campaign.RetryRules{NoAnswer: one, Busy: one, Failed: one},
			Script:  campaign.Script{Questions: []campaign.Question{{ID: "q", Prompt: "q.wav", Keys: "12"}}, SilenceMS: int(silence.Milliseconds())}})
		if err != nil {
			fatal(err)
		}
		t0 := time.Now()
		if _, err := svc.Launch(ctx, org.System, c.ID); err != nil {
			fatal(err)
		}
		var p *campaign.Progress
		for {
			time.Sleep(100 * time.Millisecond)
			p, err = svc.Progress(ctx, c.ID)
			if err != nil {
				fatal(err)
			}
			if p.Status == campaign.StatusFinished || time.Since(t0) > *limit {
				break
			}
		}
		wall := time.Since(t0)
		stop()
		<-done
		report(ctx, db, c.ID, rate, wall, p)
		reportInvites(dir, rate)
	}
}

var (
	invitesSeen = map[string]bool{}
	captured    string // tcpdump's output, if it runs
	tcpdumpHead = regexp.MustCompile(`^(\d+)\.(\d{6}) IP `)
)

// reportInvites reads sipp's message log and prints the distribution of INVITEs (first per Call-ID) per second
// for the INVITEs not seen by an earlier campaign of this run (campaigns run one after the other).
func reportInvites(dir string, rate float64) {
	source, where := captured, "on the wire (tcpdump)"
	if source == "" {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
		if len(logs) != 1 {
			fmt.Println("  (no sipp message log)")
			return
		}
		source, where = logs[0], "as sipp logged them"
	}
	f, err := os.Open(source)
	if err != nil {
		fatal(err)
	}
	defer f.Close()
	var ts []time.Time
	var stamp time.Time
	invite := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := tcpdumpHead.FindStringSubmatch(line); m != nil {
			sec, _ := strconv.ParseInt(m[1], 10, 64)
			us, _ := strconv.ParseInt(m[2], 10, 64)
			stamp, invite = time.Unix(sec, us*1000), false
		}
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			if t, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(strings.Trim(line, "-")), time.Local); err == nil {
				stamp = t
			}
			invite = false
		case strings.Contains(line, "INVITE sip:"):
			invite = true
		case invite && strings.HasPrefix(strings.ToLower(line), "call-id:"):
			id := strings.TrimSpace(line[len("call-id:"):])
			if !invitesSeen[id] {
				invitesSeen[id] = true
				ts = append(ts, stamp)
			}
			invite = false
		}
	}
	if len(ts) < 2 {
		return
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	// Calendar seconds (of sipp's clock) in which INVITEs arrived; the first and last are partial.
	per := map[int64]int{}
	for _, t := range ts {
		per[t.Unix()]++
	}
	first, last := ts[0].Unix(), ts[len(ts)-1].Unix()
	var counts []int
	for sec := first + 1; sec < last; sec++ {
		if n := per[sec]; n > 0 {
			counts = append(counts, n)
		}
	}
	sliding, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < time.Second {
			j++
		}
		sliding = max(sliding, j-i)
	}
	if len(counts) == 0 {
		fmt.Printf("  INVITEs %s: %d, most in any sliding second %d\n", where, len(ts), sliding)
		return
	}
	sort.Ints(counts)
	pct := func(p float64) int { return counts[int(p*float64(len(counts)-1)+0.5)] }
	over := 0
	for _, n := range counts {
		if float64(n) > math.Ceil(rate) {
			over++
		}
	}
	fmt.Printf("  INVITEs %s: %d over %d active whole seconds: per second p5 %d, median %d, p95 %d, max %d (%d seconds above %.0f); most in any sliding second %d\n",
		where, len(ts), len(counts), pct(0.05), pct(0.5), pct(0.95), counts[len(counts)-1], over, math.Ceil(rate), sliding)
}

// report prints the achieved rate (attempt starts between the 2nd second and the last full second) and outcomes.
func report(ctx context.Context, db *pgxpool.Pool, id campaign.ID, rate float64, wall time.Duration, p *campaign.Progress) {
	rows, err := db.Query(ctx, `SELECT started_at FROM campaign_attempts WHERE campaign_id = $1 ORDER BY started_at`, id)
	if err != nil {
		fatal(err)
	}
	var starts []time.Time
	for rows.Next() {
		var t time.Time
		rows.Scan(&t)
		starts = append(starts, t)
	}
	rows.Close()
	measured, minS, maxS := 0.0, 0, 0
	if len(starts) > 2 {
		t0 := starts[0]
		// Whole seconds after the first, up to the last whole second: the steady state.
		secs := int(starts[len(starts)-1].Sub(t0).Seconds())
		perSec := make([]int, secs+1)
		for _, t := range starts {
			perSec[int(t.Sub(t0).Seconds())]++
		}
		if verbose {
			fmt.Println("attempts started per second:", perSec)
		}
		if secs >= 3 {
			steady := perSec[1:secs]
			n := 0
			for _, v := range steady {
				n += v
			}
			measured = float64(n) / float64(len(steady))
			s := append([]int(nil), steady...)
			sort.Ints(s)
			minS, maxS = s[0], s[len(s)-1]
		} else {
			measured = float64(len(starts)-1) / starts[len(starts)-1].Sub(t0).Seconds()
		}
	}
	failed := p.Attempts - p.ByOutcome[campaign.OutcomeAnswered]
	fmt.Printf("pace %6.0f/s: attempts claimed %7.1f/s (%+.1f %%, per-second min %d max %d; the pace gate comes after the claim), attempts %d, answered %d, failed %d %v, wall %s\n",
		rate, measured, (measured-rate)/rate*100, minS, maxS, p.Attempts, p.ByOutcome[campaign.OutcomeAnswered], failed,
		outcomes(p), wall.Round(10*time.Millisecond))
}

func outcomes(p *campaign.Progress) map[campaign.Outcome]int {
	out := map[campaign.Outcome]int{}
	for k, v := range p.ByOutcome {
		if k != campaign.OutcomeAnswered {
			out[k] = v
		}
	}
	return out
}

// writeTone writes an 8 kHz 16-bit mono WAV tone of length d.
func writeTone(path string, d time.Duration) {
	if err := os.WriteFile(path, media.ToneWAV(440, d), 0o644); err != nil {
		fatal(err)
	}
}

func numCPU() int { return runtime.GOMAXPROCS(0) }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort() int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loaddialer:", err)
	os.Exit(1)
}

package sipua

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Admission of new calls from measured pressure (issue 15: "fast 503s with Retry-After for the excess while
// every accepted call completes").
//
// Under overload a SIP UAS does not fail by refusing: it fails by answering late. Requests queue as runnable
// goroutines, the 100 Trying and the answers to BYE leave after the peer's T1 (500 ms), the peer retransmits,
// each retransmission is more work, and the accepted calls fail with the excess. The cure is to refuse the excess
// at the door, cheaply (a 503 costs a parse and a write; a call costs a CDR, an answer, media and a BYE), before
// the delay builds up.
//
// Over UDP the decision is taken at the door (door.go), below sipgo, as each datagram is read: there the time a
// datagram waited in the socket is measured (the kernel stamps its arrival), and a standing queue refuses new
// INVITEs at once, before the token bucket below would; a refused INVITE costs a scan of its bytes and a write.
// Over TCP and TLS the gate (server.go) asks allow() after sipgo has parsed the INVITE.
//
// Behind the door is a token bucket for new INVITEs whose rate follows the pressure measured every window:
//   - queue delay: the longest a datagram waited in a UDP socket (door.go), the signal closest to what makes
//     a peer retransmit;
//   - scheduling lag: how late a 10 ms ticker wakes (covers other processes taking the CPU, a CPU burner
//     beside us included) and the p99 of the Go scheduler's own runnable→running latency (runtime/metrics);
//   - the transaction backlog: INVITEs past the gate whose dialog is not answered yet;
//   - CPU: this process's share of the cores it may use.
//
// Besides the rate, the number of calls in setup (INVITE admitted, not answered yet: the CDR row and the answer
// are being written) is held under a limit that follows the completed setups: the best rate of setups completed
// per second lately × setupBudget (Little's law: calls in setup = rate × setup time). When hotline's own backlog
// grows — setups queueing for PostgreSQL or for the CPU faster than they complete — it fills, and the next
// INVITEs get 503 before any CDR, answer or media exists, at once rather than after the next measurement. The
// rate it is anchored on is the recent peak, decaying slowly (half in about 7 s), not the last second's: anchored
// on the last second, a stall that slows setups for reasons of its own (another process taking the CPU) would
// shrink the limit, which shrinks the completed rate, which shrinks the limit again.
//
// Lag counts only while this process is busy (another process's load is not ours to shed). When two of the last
// three 100 ms windows are under pressure, the rate drops to 90 % of the setups completed over the last second
// (multiplicative decrease anchored on measured throughput, not on a guessed capacity), at most every 500 ms;
// without pressure, while calls are being refused, it grows by 1 % per window. There is no calls/s figure to
// configure. MaxCalls stays as the hard ceiling of concurrent calls. Slow setups are measured and logged but do
// not shed: after our immediate 100 Trying they cost no retransmission.

// Thresholds of "under pressure". SIP's clock is T1 = 500 ms: an answer later than that is retransmitted. A
// process that cannot get a 10 ms timer within 150 ms, or whose goroutines wait 100 ms to run, is on its way
// there; backlog and CPU catch what the others would only show later.
const (
	admitWindow     = 100 * time.Millisecond
	lagTick         = 10 * time.Millisecond
	lagLimit        = 150 * time.Millisecond // worst ticker overshoot in a window
	schedP99Limit   = 100 * time.Millisecond // Go scheduler latency p99 in a window
	slowSetup       = 250 * time.Millisecond // a setup this slow is counted (logged with the pressure)
	cpuLimit        = 0.92                   // share of GOMAXPROCS cores
	busyCPU         = 0.3                    // below this share the lag is someone else's: shedding would not help
	admitUnlimited  = 1e6
	admitFloor      = 20.0 // calls/s never refused for pressure (a trickle keeps the measurement honest)
	admitGrowFactor = 1.01 // per calm window while refusing: back from a cut to where it was in about a second
	openFactor      = 1.1  // per calm window with nobody refused: the offered load fits, open up faster
	admitCutFactor  = 0.9
	cutCooldown     = 5                           // windows between two cuts: a cut shows in the measurements only after calls set up
	history         = 10                          // windows of completed setups the cut is anchored on (1 s: one window is too noisy)
	confirm         = 2                           // overloaded windows among the last three before a cut (one late wake-up is not overload)
	setupBudget     = time.Second                 // 2×T1: a setup slower than that has the peer retransmitting its INVITE or our 200
	setupFloor      = 200                         // calls in setup always allowed (start-up, and a trickle keeps the measurement honest)
	peakDecay       = 0.99                        // per window, of the completed-setup rate the setup limit is anchored on
	queueCut        = queueTarget + queueInterval // datagram wait in a window that counts as pressure for the rate
)

// Pressure is one window's measurement (exported for metrics and tests).
type Pressure struct {
	TickLag   time.Duration // worst lateness of the 10 ms ticker
	SchedP99  time.Duration // Go scheduler latency, 99th percentile
	Queue     time.Duration // longest wait of a datagram in a UDP socket (door.go)
	CPU       float64       // cores used / GOMAXPROCS
	Setups    int64         // INVITEs between the gate and an answer
	Completed int64         // setups finished (answered or ended) in the window
	Slow      int64         // of those, slower than slowSetup
	Admitted  int64         // INVITEs admitted in the window
	Refused   int64         // INVITEs refused for pressure in the window
	Limit     float64       // admission rate after this window (calls/s)
	SetupCap  int64         // calls in setup allowed after this window
	Overloded bool
}

type admission struct {
	maxSetups int64
	setupCap  atomic.Int64 // adaptive limit of calls in setup (≤ maxSetups)
	peak      float64      // recent best completed setups/s, decaying (run's goroutine only)
	lim       *rate.Limiter
	setups    atomic.Int64
	completed atomic.Int64
	slow      atomic.Int64
	sinceCut  int            // windows since the last cut (run's goroutine only)
	done      [history]int64 // completed setups of the last windows, a ring (run's goroutine only)
	doneAt    int
	recent    [3]bool // overloaded, last three windows
	recentAt  int
	admitted  atomic.Int64
	refused   atomic.Int64
	last      atomic.Pointer[Pressure]
	queueMax  atomic.Int64   // longest datagram wait (ns) in the window
	onWindow  func(Pressure) // tests and metrics; nil: none
	log       *slog.Logger
	shedding  bool // run's goroutine only
}

func newAdmission(maxSetups int) *admission {
	if maxSetups <= 0 {
		maxSetups = 2000
	}
	a := &admission{maxSetups: int64(maxSetups), lim: rate.NewLimiter(admitUnlimited, int(admitUnlimited)), sinceCut: cutCooldown}
	a.setupCap.Store(min(setupFloor, a.maxSetups))
	a.last.Store(&Pressure{Limit: admitUnlimited, SetupCap: a.setupCap.Load()})
	return a
}

// allow reports whether a new INVITE may become a call now.
func (a *admission) allow() bool {
	if a.full() || !a.lim.Allow() {
		a.refused.Add(1)
		return false
	}
	a.admitted.Add(1)
	return true
}

// queueDelay records how long a datagram waited in a UDP socket (the door's reader goroutines).
func (a *admission) queueDelay(d time.Duration) {
	if int64(d) > a.queueMax.Load() {
		a.queueMax.Store(int64(d)) // readers of several listeners may race here: the window's max is best effort
	}
}

// full reports whether the calls in setup are at their limit.
func (a *admission) full() bool { return a.setups.Load() >= a.setupCap.Load() }

// setupStarted counts an INVITE into the backlog; the returned func takes it out (once).
func (a *admission) setupStarted() func() {
	a.setups.Add(1)
	start := time.Now()
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			a.setups.Add(-1)
			a.completed.Add(1)
			if time.Since(start) > slowSetup {
				a.slow.Add(1)
			}
		}
	}
}

// run measures every window and adjusts the admission rate until ctx ends.
func (a *admission) run(ctx context.Context) {
	tick := time.NewTicker(lagTick)
	defer tick.Stop()
	sched := newSchedSampler()
	cpu := newCPUSampler()
	windowStart := time.Now()
	prev := windowStart
	var worstLag time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			// The ticker's time is when it fired; time.Now() is when we ran. A starved process sees both late,
			// so measure the gap between our wake-ups against the period.
			now = time.Now()
			if lag := now.Sub(prev) - lagTick; lag > worstLag {
				worstLag = lag
			}
			prev = now
			if now.Sub(windowStart) < admitWindow {
				continue
			}
			p := Pressure{TickLag: worstLag, SchedP99: sched.p99(), Queue: time.Duration(a.queueMax.Swap(0)), CPU: cpu.share(now), Setups: a.setups.Load(),
				Completed: a.completed.Swap(0), Slow: a.slow.Swap(0), Admitted: a.admitted.Swap(0), Refused: a.refused.Swap(0)}
			a.adjust(&p, now.Sub(windowStart))
			a.last.Store(&p)
			if p.Overloded != a.shedding && a.log != nil {
				// One line per change of state, not per window: the why of every 503 burst, for operators.
				a.shedding = p.Overloded
				a.log.Warn("SIP admission", "overloaded", p.Overloded, "limit_per_s", int(p.Limit), "queue", p.Queue, "tick_lag", p.TickLag,
					"sched_p99", p.SchedP99, "cpu", fmt.Sprintf("%.2f", p.CPU), "setups", p.Setups, "completed", p.Completed,
					"slow", p.Slow, "setup_cap", p.SetupCap, "admitted", p.Admitted, "refused", p.Refused)
			}
			if a.onWindow != nil {
				a.onWindow(p)
			}
			windowStart, worstLag = now, 0
		}
	}
}

// adjust applies one window's measurement to the admission rate.
func (a *admission) adjust(p *Pressure, window time.Duration) {
	// Lag counts only while this process is busy: on a machine loaded by others, a quiet hotline
	// refusing its few calls would fix nothing, and cutting on them would spiral down (fewer calls admitted, the
	// same foreign load, another cut). The backlog counts always: it is ours by definition.
	lagging := p.TickLag > lagLimit || p.SchedP99 > schedP99Limit
	// A standing queue in the socket is ours whoever takes the CPU: shedding INVITEs shortens it.
	p.Overloded = lagging && p.CPU >= busyCPU || p.CPU > cpuLimit || p.Setups >= a.maxSetups || p.Queue > queueCut
	// Slow setups alone do not cut: after our 100 Trying a slow answer costs no retransmission (measured: with
	// PostgreSQL starved by other processes, setups of 0.5–1.5 s still completed, and cutting on them halved the
	// calls completed). They are logged with the pressure, and a backlog that keeps growing hits maxSetups.
	cur := float64(a.lim.Limit())
	a.sinceCut++
	a.done[a.doneAt%history] = p.Completed
	a.doneAt++
	a.recent[a.recentAt%3] = p.Overloded
	a.recentAt++
	confirmed := 0
	for _, o := range a.recent {
		if o {
			confirmed++
		}
	}
	var sum int64
	for _, c := range a.done {
		sum += c
	}
	got := float64(sum) / (float64(min(a.doneAt, history)) * window.Seconds()) // setups completed per second
	a.peak = math.Max(got, a.peak*peakDecay)
	p.SetupCap = min(max(int64(a.peak*setupBudget.Seconds()), setupFloor), a.maxSetups)
	a.setupCap.Store(p.SetupCap)
	switch {
	case p.Overloded && confirmed >= confirm && a.sinceCut >= cutCooldown:
		// Anchor on what got through over the last second — the throughput the machine gives now — then 10 %
		// below it, so the backlog drains.
		cur = math.Max(math.Min(cur, got)*admitCutFactor, admitFloor)
		a.sinceCut = 0
	case p.Overloded:
		// Hold: not confirmed yet, or the last cut has not shown in the measurements.
	case p.Refused > 0:
		// Slowly: at 5 % a window (63 % a second) the limit overshot the capacity again within a second of each
		// cut, and the lag of each overshoot was a burst of retransmissions (measured at 1,500 calls/s offered).
		cur = math.Min(math.Max(cur*admitGrowFactor, cur+1), admitUnlimited)
	case cur < admitUnlimited:
		// No pressure and nobody refused: the offered load fits; open up faster.
		cur = math.Min(cur*openFactor, admitUnlimited)
	}
	cur = math.Round(cur)
	if cur >= admitUnlimited/2 {
		cur = admitUnlimited
	}
	// A burst of half a window at the current rate (at least a few), so an even arrival stream is not refused
	// for clumping at the millisecond scale.
	a.lim.SetLimit(rate.Limit(cur))
	a.lim.SetBurst(max(int(cur*window.Seconds()/2), 20))
	p.Limit = cur
}

// schedSampler computes the p99 of Go's scheduler latency over the last window, from the cumulative histogram
// in runtime/metrics.
type schedSampler struct {
	s    []metrics.Sample
	prev []uint64
}

func newSchedSampler() *schedSampler {
	s := &schedSampler{s: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	metrics.Read(s.s)
	if h := s.hist(); h != nil {
		s.prev = append([]uint64(nil), h.Counts...)
	}
	return s
}

func (s *schedSampler) hist() *metrics.Float64Histogram {
	if s.s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s.s[0].Value.Float64Histogram()
}

func (s *schedSampler) p99() time.Duration {
	metrics.Read(s.s)
	h := s.hist()
	if h == nil {
		return 0
	}
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - s.prev[i]
	}
	var out time.Duration
	if total > 0 {
		want := total - total/100
		var acc uint64
		for i, c := range h.Counts {
			acc += c - s.prev[i]
			if acc >= want {
				// Buckets[i+1] is the bucket's upper bound; the last one may be +Inf.
				if ub := h.Buckets[i+1]; !math.IsInf(ub, 1) {
					out = time.Duration(ub * float64(time.Second))
				} else {
					out = time.Duration(h.Buckets[i] * float64(time.Second))
				}
				break
			}
		}
	}
	copy(s.prev, h.Counts)
	return out
}

// cpuSampler measures this process's CPU use as a share of the cores it may run on.
type cpuSampler struct {
	at   time.Time
	used time.Duration
}

func newCPUSampler() *cpuSampler { return &cpuSampler{at: time.Now(), used: processCPU()} }

func (c *cpuSampler) share(now time.Time) float64 {
	used := processCPU()
	wall := now.Sub(c.at)
	var out float64
	if wall > 0 {
		out = float64(used-c.used) / float64(wall) / float64(runtime.GOMAXPROCS(0))
	}
	c.at, c.used = now, used
	return out
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

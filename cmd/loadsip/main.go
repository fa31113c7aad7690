// Command loadsip measures simultaneous calls with media against hotline's SIP intake: it places N calls from
// loopback (a minimal SIP UAC on sipgo), holds them, and for every call records when each RTP packet from hotline
// arrived, using the kernel's receive timestamps (SO_TIMESTAMPNS), so the figure is hotline's pacing and not this
// tool's scheduling. All calls offer one RTP port, read in batches (recvmmsg) by one goroutine and told apart by
// hotline's source port, so the tool itself stays light on the shared CPU. It reports calls set up/failed and the gaps
// between consecutive RTP packets (nominal 20 ms): worst gap, the 99.9th percentile of per-call worst gaps, and
// how many calls saw a gap over -max-gap, then a timeline in seconds since its start (answers, BYEs, when the gaps
// ended, the longest silences of all calls together) and what a 1 ms sleeper at real-time priority saw of the
// machine's own stalls (probe.go), so a stall can be told apart from hotline's pacing. Run it against a hotline
// whose callers wait in the queue (an agent is signed in but paused), so every call hears the greeting and then
// hold music for the whole hold. It targets loopback only and stops by itself.
//
//	go run ./cmd/loadsip -target 127.0.0.1:5060 -calls 1500 -rate 150 -hold 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadsip:", err)
		os.Exit(1)
	}
}

type result struct {
	ok            bool
	err           error
	setup         time.Duration
	packets       int
	maxGap        time.Duration
	over          int           // gaps above the threshold
	lost          int           // packets missing (sequence jumps)
	worstAt       time.Duration // when the worst gap ended, since the answer
	answered, bye time.Time
}

func run() error {
	target := flag.String("target", "127.0.0.1:5060", "hotline's SIP UDP address (loopback)")
	calls := flag.Int("calls", 500, "simultaneous calls to hold")
	rate := flag.Float64("rate", 100, "new calls per second while ramping up")
	hold := flag.Duration("hold", 20*time.Second, "how long each call is held after answer")
	skip := flag.Duration("skip", 2*time.Second, "RTP of the first part of each call not measured (greeting → hold music switch)")
	maxGap := flag.Duration("max-gap", 40*time.Millisecond, "gap threshold to count")
	service := flag.String("service", "12345", "number dialled")
	from := flag.Int64("from", 17000000000, "first caller number (incremented per call)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*target)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("target must be a loopback address")
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("loadsip"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return err
	}
	defer ua.Close()
	// A listening UDP transport, so responses and in-dialog requests (hotline's BYE) come back to one port.
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sipPort := pc.LocalAddr().(*net.UDPAddr).Port
	go srv.ServeUDP(pc)
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(sipPort))
	if err != nil {
		return err
	}
	dcache := sipgo.NewDialogClientCache(client, sip.ContactHeader{Address: sip.Uri{User: "loadsip", Host: "127.0.0.1", Port: sipPort}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { dcache.ReadBye(req, tx) })
	time.Sleep(200 * time.Millisecond)

	rx, err := newReceiver()
	if err != nil {
		return err
	}
	defer rx.conn.Close()
	start := time.Now()
	rx.start = start
	probe := startProber(start)
	rxDone := make(chan struct{})
	go func() { rx.run(); close(rxDone) }()
	fmt.Printf("run start %s (timeline below in seconds since then)\n", start.UTC().Format("15:04:05.000"))

	var uri sip.Uri
	if err := sip.ParseUri("sip:"+*service+"@"+*target, &uri); err != nil {
		return err
	}
	results := make([]result, *calls)
	var wg sync.WaitGroup
	var up atomic.Int64
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	for i := 0; i < *calls; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = call(dcache, rx, uri, strconv.FormatInt(*from+int64(i), 10), *hold, *skip, *maxGap, &up)
		}(i)
	}
	rampDone := time.Since(start)
	wg.Wait()
	rx.conn.Close()
	<-rxDone // the receiver's timeline is complete

	var ok, failed, overCalls, packets, overGaps, lost int
	var worstAts []time.Duration
	var worst time.Duration
	var setups, gaps []time.Duration
	errs := map[string]int{}
	for _, r := range results {
		if !r.ok {
			failed++
			errs[fmt.Sprint(r.err)]++
			continue
		}
		ok++
		packets += r.packets
		lost += r.lost
		setups = append(setups, r.setup)
		gaps = append(gaps, r.maxGap)
		worst = max(worst, r.maxGap)
		if r.over > 0 {
			overCalls++
			overGaps += r.over
			worstAts = append(worstAts, r.worstAt)
		}
	}
	slices.Sort(setups)
	slices.Sort(gaps)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	fmt.Printf("calls %d: ok %d, failed %d (ramp %.1fs at %.0f/s, hold %s, peak simultaneous %d)\n",
		*calls, ok, failed, rampDone.Seconds(), *rate, *hold, peak.Load())
	for e, n := range errs {
		fmt.Printf("  failure x%d: %s\n", n, e)
	}
	fmt.Printf("setup (INVITE → 200): p50 %s p99 %s max %s\n", pct(setups, .5).Round(time.Microsecond), pct(setups, .99).Round(time.Microsecond), pct(setups, 1).Round(time.Microsecond))
	fmt.Printf("RTP from hotline: %d packets measured, %d missing (sequence jumps, not counted as gaps); per-call worst gap p50 %s p99 %s p99.9 %s max %s; calls with a gap > %s: %d\n",
		packets, lost, pct(gaps, .5).Round(10*time.Microsecond), pct(gaps, .99).Round(10*time.Microsecond), pct(gaps, .999).Round(10*time.Microsecond),
		worst.Round(10*time.Microsecond), *maxGap, overCalls)
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("loadsip's own CPU: %.0f%% of one core over %s\n", 100*cpu.Seconds()/time.Since(start).Seconds(), time.Since(start).Round(time.Second))
	if overCalls > 0 {
		slices.Sort(worstAts)
		fmt.Printf("  gaps > %s: %d in all; the worst gap of those calls ended p50 %s / p90 %s after the answer\n", *maxGap, overGaps,
			pct(worstAts, .5).Round(time.Millisecond), pct(worstAts, .9).Round(time.Millisecond))
	}
	probe.end()
	rx.report(results, start)
	probe.report()
	// A gap during which the machine stood still (the prober, at real-time priority, woke late by L) would have
	// been g − L had the machine run: count the gaps over the threshold even after that is taken off.
	var own int
	var ownWorst time.Duration
	for _, g := range rx.gaps {
		if rest := g.length - probe.explained(g.at, g.at+g.length); rest > *maxGap {
			own++
			ownWorst = max(ownWorst, rest)
		}
	}
	fmt.Printf("gaps > %s with the machine's own stalls taken off: %d of %d (worst %s)\n", *maxGap, own, len(rx.gaps), ownWorst.Round(time.Millisecond))
	if failed > 0 || overCalls > 0 {
		os.Exit(2)
	}
	return nil
}

var peak atomic.Int64

func call(dc *sipgo.DialogClientCache, rx *receiver, uri sip.Uri, from string, hold, skip, maxGap time.Duration, up *atomic.Int64) result {
	sdp := fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\n"+
		"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n", time.Now().UnixNano(), rx.port)
	ctx, cancel := context.WithTimeout(context.Background(), hold+30*time.Second)
	defer cancel()
	t0 := time.Now()
	fromHdr := &sip.FromHeader{Address: sip.Uri{User: from, Host: "127.0.0.1"}, Params: sip.NewParams()}
	fromHdr.Params.Add("tag", sip.GenerateTagN(16))
	sess, err := dc.Invite(ctx, uri, []byte(sdp), fromHdr, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return result{err: err}
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return result{err: err}
	}
	setup := time.Since(t0)
	src, err := rtpSource(sess.InviteResponse.Body())
	if err != nil {
		return result{err: err}
	}
	answered := time.Now()
	st := rx.watch(src, answered, answered.Add(skip), answered.Add(hold), maxGap)
	defer rx.forget(src)
	if err := sess.Ack(ctx); err != nil {
		return result{err: err}
	}
	if n := up.Add(1); n > peak.Load() {
		peak.Store(n) // a racy max is fine for a report
	}
	defer up.Add(-1)
	select {
	case <-time.After(time.Until(answered.Add(hold))):
	case <-sess.Context().Done():
		return result{err: errors.New("hotline hung up during the hold")}
	}
	r := st.result()
	r.ok, r.setup, r.answered = true, setup, answered
	if r.packets == 0 {
		return result{err: errors.New("no RTP received")}
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer bcancel()
	r.bye = time.Now()
	if err := sess.Bye(bctx); err != nil {
		return result{err: fmt.Errorf("bye: %w", err)}
	}
	return r
}

// rtpSource reads hotline's RTP address from its SDP answer (diago sends from the port it offers).
func rtpSource(sdp []byte) (netip.AddrPort, error) {
	var host string
	var port int
	for _, l := range strings.Split(string(sdp), "\n") {
		l = strings.TrimSpace(l)
		if h, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			host = h
		}
		if m, ok := strings.CutPrefix(l, "m=audio "); ok {
			port, _ = strconv.Atoi(strings.Fields(m)[0])
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("no RTP address in the answer: %q", sdp)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// receiver reads every call's RTP on one socket.
type receiver struct {
	conn *net.UDPConn
	port int
	mu   sync.Mutex
	by   map[netip.AddrPort]*stream

	// Process-wide view, read after the run (written only by run's goroutine).
	start     time.Time       // the run's start, the zero of the timeline
	lastAny   time.Time       // kernel time of the last measured packet of any call
	silences  []silence       // the longest stretches with no packet from any call
	overAt    []int           // gaps > threshold ending in each timeline bucket
	maxAt     []time.Duration // the longest gap ending in each bucket
	lag       []time.Duration // read time - kernel time, sampled once per batch
	gaps      []silence       // every gap over the threshold: when it began, since the start, and how long
	unstamped int             // datagrams without a kernel timestamp
}

// bucket is the timeline's resolution.
const bucket = 250 * time.Millisecond

// silence is a stretch in which no call received any RTP; with hundreds of calls up a packet is due every few
// tens of microseconds, so a silence of several milliseconds means the sender as a whole stopped, not one call.
type silence struct {
	at, length time.Duration // since the run's start
}

type stream struct {
	mu            sync.Mutex
	from, to      time.Time
	maxGap        time.Duration
	threshold     time.Duration
	last          time.Time
	lastSeq       uint16
	packets, over int
	lost          int
	worstAt       time.Time
	answered      time.Time
}

func (s *stream) result() result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return result{packets: s.packets, maxGap: s.maxGap, over: s.over, lost: s.lost, worstAt: s.worstAt.Sub(s.answered)}
}

func newReceiver() (*receiver, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	// One socket takes every call's RTP: give it a large buffer (root may exceed rmem_max) so bursts are not
	// dropped here; drops that still happen show as sequence jumps and are reported apart from pacing gaps.
	if raw, err := conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20) })
	}
	if err := timestamps(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return &receiver{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, by: map[netip.AddrPort]*stream{}}, nil
}

func (r *receiver) watch(src netip.AddrPort, answered, from, to time.Time, threshold time.Duration) *stream {
	s := &stream{from: from, to: to, threshold: threshold, answered: answered}
	r.mu.Lock()
	r.by[src] = s
	r.mu.Unlock()
	return s
}

func (r *receiver) forget(src netip.AddrPort) {
	r.mu.Lock()
	delete(r.by, src)
	r.mu.Unlock()
}

// run reads batches of datagrams until the socket is closed.
func (r *receiver) run() {
	pc := ipv4.NewPacketConn(r.conn)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		msgs[i].OOB = make([]byte, 128)
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		read := time.Now()
		for i, m := range msgs[:n] {
			at, ok := kernelTime(m.OOB[:m.NN])
			if !ok {
				at = read
				r.unstamped++
			}
			if i == 0 {
				r.lag = append(r.lag, read.Sub(at))
			}
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ua.IP.To4())), uint16(ua.Port))
			r.mu.Lock()
			s := r.by[src]
			r.mu.Unlock()
			if s == nil {
				continue
			}
			if m.N < 12 {
				continue
			}
			seq := uint16(m.Buffers[0][2])<<8 | uint16(m.Buffers[0][3])
			s.mu.Lock()
			if !at.Before(s.from) && at.Before(s.to) {
				s.packets++
				switch {
				case s.last.IsZero():
				case seq == s.lastSeq+1:
					// Consecutive packets: the time between them is hotline's pacing.
					if g := at.Sub(s.last); g > s.maxGap {
						s.maxGap, s.worstAt = g, at
					}
					if g := at.Sub(s.last); g > s.threshold {
						s.over++
						r.mark(at, g)
					}
				default:
					s.lost += int(seq - s.lastSeq - 1) // lost on the way (or reordered): not a pacing gap
				}
				s.last, s.lastSeq = at, seq
				r.seen(at)
			}
			s.mu.Unlock()
		}
	}
}

// report prints the run's timeline, so a stall can be lined up with what else happened at that moment: when
// calls were answered and hung up, the buckets in which gaps over the threshold ended, the longest silences of
// all calls together, and how late this tool read the datagrams (which does not move a kernel timestamp).
func (r *receiver) report(results []result, start time.Time) {
	var ans, bye []time.Duration
	for _, x := range results {
		if x.ok {
			ans = append(ans, x.answered.Sub(start))
			bye = append(bye, x.bye.Sub(start))
		}
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
	if len(ans) > 0 {
		slices.Sort(ans)
		slices.Sort(bye)
		fmt.Printf("timeline: answers %s–%s s, BYEs sent %s–%s s\n", sec(ans[0]), sec(ans[len(ans)-1]), sec(bye[0]), sec(bye[len(bye)-1]))
	}
	var line []string
	for b, n := range r.overAt {
		if n > 0 {
			line = append(line, fmt.Sprintf("%s:%d(max %dms)", sec(time.Duration(b)*bucket), n, r.maxAt[b].Milliseconds()))
		}
	}
	if len(line) > 0 {
		fmt.Printf("timeline: gaps over the threshold by when they ended (s:count(max)): %s\n", strings.Join(line, " "))
	}
	slices.SortFunc(r.silences, func(a, b silence) int { return int(b.length - a.length) })
	line = line[:0]
	for _, x := range r.silences[:min(10, len(r.silences))] {
		line = append(line, fmt.Sprintf("%s+%dms", sec(x.at), x.length.Milliseconds()))
	}
	fmt.Printf("timeline: longest silences of all calls together (start s + length): %s\n", strings.Join(line, " "))
	slices.Sort(r.lag)
	if len(r.lag) > 0 {
		p := func(q float64) time.Duration { return r.lag[min(len(r.lag)-1, int(float64(len(r.lag))*q))] }
		fmt.Printf("receiver: read − kernel timestamp p50 %s p99 %s max %s over %d batches; %d datagrams without a kernel timestamp\n",
			p(.5).Round(time.Microsecond), p(.99).Round(time.Microsecond), p(1).Round(time.Microsecond), len(r.lag), r.unstamped)
	}
}

// mark counts a gap over the threshold in the bucket of the run's timeline in which it ended.
func (r *receiver) mark(at time.Time, g time.Duration) {
	b := int(at.Sub(r.start) / bucket)
	if b < 0 {
		return
	}
	r.gaps = append(r.gaps, silence{at: at.Sub(r.start) - g, length: g})
	for len(r.overAt) <= b {
		r.overAt = append(r.overAt, 0)
		r.maxAt = append(r.maxAt, 0)
	}
	r.overAt[b]++
	r.maxAt[b] = max(r.maxAt[b], g)
}

// seen notes a measured packet of any call and keeps the longest silences before it (at most 20).
func (r *receiver) seen(at time.Time) {
	if !r.lastAny.IsZero() && at.After(r.lastAny) {
		if g := at.Sub(r.lastAny); g > 5*time.Millisecond {
			r.silences = append(r.silences, silence{at: r.lastAny.Sub(r.start), length: g})
			if len(r.silences) > 40 {
				slices.SortFunc(r.silences, func(a, b silence) int { return int(b.length - a.length) })
				r.silences = r.silences[:20]
			}
		}
	}
	if at.After(r.lastAny) {
		r.lastAny = at
	}
}

// timestamps asks the kernel to stamp each datagram with its receive time.
func timestamps(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	return errors.Join(err, serr)
}

func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true
		}
	}
	return time.Time{}, false
}

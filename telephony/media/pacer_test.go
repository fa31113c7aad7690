package media

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dmedia "github.com/emiago/diago/media"
	"golang.org/x/sys/unix"
)

// rtpPair is a real diago RTP session on loopback writing to a UDP socket the test reads.
type rtpPair struct {
	sess *dmedia.MediaSession
	rtp  *dmedia.RTPSession
	w    *dmedia.RTPPacketWriter
	sink *net.UDPConn
}

func newRTPPair(t testing.TB) *rtpPair {
	t.Helper()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := dmedia.NewMediaSession(net.IPv4(127, 0, 0, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	sess.SetRemoteAddr(sink.LocalAddr().(*net.UDPAddr))
	rs := dmedia.NewRTPSession(sess)
	w := dmedia.NewRTPPacketWriter(rs, dmedia.CodecAudioAlaw)
	t.Cleanup(func() { sess.Close(); sink.Close() })
	return &rtpPair{sess: sess, rtp: rs, w: w, sink: sink}
}

// TestPacerWritesWithoutAllocating: the per-packet path (pacing loop → diago's RTP writer → UDP socket) allocates
// nothing. Measured on one real session, packet by packet.
func TestPacerWritesWithoutAllocating(t *testing.T) {
	pr := newRTPPair(t)
	go func() { // drain the sink so the socket never backs up
		buf := make([]byte, 1500)
		for {
			if _, err := pr.sink.Read(buf); err != nil {
				return
			}
		}
	}()
	audio := DefaultPrompts().Hold.Payload(dmedia.CodecAudioAlaw)
	if len(audio) < 8000 {
		t.Fatalf("hold music encoded to %d bytes", len(audio))
	}
	p := &Pacer{}
	l := &paceLoop{p: p}
	s := &paceStream{w: pr.w, pt: 8, ts: 160, frame: 160, audio: audio, loop: true, done: make(chan error, 1)}
	l.send(s) // first write sets diago's per-session state (stats SSRC, write buffer)
	if allocs := testing.AllocsPerRun(1000, func() {
		if !l.send(s) {
			t.Fatal("send stopped")
		}
	}); allocs != 0 {
		t.Fatalf("%.2f allocations per packet, want 0", allocs)
	}
}

// engines runs a test against the C thread (where the build has it) and the Go loops.
func engines(t *testing.T, f func(t *testing.T, goLoops bool)) {
	t.Run("c", func(t *testing.T) {
		if !strings.HasPrefix(PacerEngine, "C thread") {
			t.Skip("built without cgo: no C pacer") // the test command builds with cgo; the Go subtest still runs
		}
		f(t, false)
	})
	t.Run("go", func(t *testing.T) { f(t, true) })
}

// TestPacerWakeups: N calls cost one wake-up per packet time, not N; the calls get their packets in order, every
// one, and Play returns when the audio ends.
func TestPacerWakeups(t *testing.T) {
	engines(t, func(t *testing.T, goLoops bool) {
		const calls = 40
		p := &Pacer{PerLoop: 100, goLoops: goLoops}
		audio := make([]byte, 160*25) // 25 packets = 0.5 s; 0x00 is not the silence the C thread sends (0xD5)
		var wg sync.WaitGroup
		pairs := make([]*rtpPair, calls)
		counts := make([]int, calls)
		for i := range pairs {
			pairs[i] = newRTPPair(t)
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				buf := make([]byte, 1500)
				for {
					pairs[i].sink.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := pairs[i].sink.Read(buf)
					if err != nil {
						return
					}
					if n == 12+160 && buf[12] == 0 {
						counts[i]++
					}
				}
			}(i)
		}
		var plays sync.WaitGroup
		for i := range pairs {
			plays.Add(1)
			go func(i int) {
				defer plays.Done()
				if err := p.Play(context.Background(), pairs[i].w, dmedia.CodecAudioAlaw, audio, false); err != nil {
					t.Error(err)
				}
			}(i)
		}
		plays.Wait()
		p.Wait()
		wg.Wait()
		wakeups, packets := p.Stats()
		if packets != calls*25 {
			t.Fatalf("%d packets written, want %d", packets, calls*25)
		}
		for i, c := range counts {
			if c != 25 {
				t.Errorf("call %d received %d packets of its audio, want 25", i, c)
			}
		}
		// One loop (or the one thread) serves all 40 calls: about 25 wake-ups for the audio (the C thread also
		// wakes for the silence after it and a few idle ticks), never one per packet.
		if wakeups*10 > packets {
			t.Fatalf("%d wake-ups for %d packets of %d calls", wakeups, packets, calls)
		}
	})
}

// TestPacerStopsOnContext: Play returns soon after its context ends and nothing is written afterwards (not even
// the C thread's silence).
func TestPacerStopsOnContext(t *testing.T) {
	engines(t, func(t *testing.T, goLoops bool) {
		pr := newRTPPair(t)
		p := &Pacer{goLoops: goLoops}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Play(ctx, pr.w, dmedia.CodecAudioAlaw, make([]byte, 1600), true) }()
		buf := make([]byte, 1500)
		for range 5 {
			pr.sink.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := pr.sink.Read(buf); err != nil {
				t.Fatalf("looped audio stopped: %v", err)
			}
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Play returned %v", err)
		}
		_, before := p.Stats()
		silence, _ := p.Silence()
		p.Wait()
		_, after := p.Stats()
		silenceAfter, _ := p.Silence()
		if after != before || silenceAfter != silence {
			t.Fatalf("%d packets and %d silence packets written after Play returned", after-before, silenceAfter-silence)
		}
	})
}

func TestPromptPayload(t *testing.T) {
	pr := ShortPrompt()
	a, u := pr.Payload(dmedia.CodecAudioAlaw), pr.Payload(dmedia.CodecAudioUlaw)
	if len(a) != len(wavData(pr.WAV))/2 || len(u) != len(a) || len(a) < 8000 {
		t.Fatalf("payload %d/%d bytes from %d bytes of WAV", len(a), len(u), len(pr.WAV))
	}
	if &pr.Payload(dmedia.CodecAudioAlaw)[0] != &a[0] {
		t.Error("prompt encoded again")
	}
}

// TestPacerNextPromptOnNextTick: when a call's prompt ends and the call plays the next one at once (greeting →
// queue prompt → hold music), the next prompt's first packet goes out on the tick right after the last packet of
// the one before, from the same loop, even when another loop has room. It used to come one or two ticks later (the
// end was noticed a tick late, and the next prompt could join a loop with another phase): a 40 ms gap per switch.
func TestPacerNextPromptOnNextTick(t *testing.T) {
	var mu sync.Mutex
	type played struct {
		on          *paceLoop
		first, last int64
	}
	ends := map[*dmedia.RTPPacketWriter][]played{}
	streamEnded = func(s *paceStream) {
		mu.Lock()
		ends[s.w] = append(ends[s.w], played{on: s.on, first: s.first, last: s.last})
		mu.Unlock()
	}
	t.Cleanup(func() { streamEnded = nil })
	p := &Pacer{PerLoop: 2, goLoops: true} // the loops' own scheduling (the C thread has one grid: cpacer_test.go)
	ctx, cancel := context.WithCancel(context.Background())
	// The loops end before streamEnded is reset and the next test starts (they read it): race-detector clean.
	t.Cleanup(func() { cancel(); p.Wait() })
	play := func(w *dmedia.RTPPacketWriter, ctx context.Context, packets int, loop bool) chan error {
		done := make(chan error, 1)
		go func() { done <- p.Play(ctx, w, dmedia.CodecAudioAlaw, make([]byte, 160*packets), loop) }()
		return done
	}
	// Loop 1 gets two calls (full), loop 2 the call under test and one more.
	y1, y2, x, z := newRTPPair(t), newRTPPair(t), newRTPPair(t), newRTPPair(t)
	for _, pr := range []*rtpPair{y1, y2, x, z} {
		go func() { // drain
			buf := make([]byte, 1500)
			for {
				if _, err := pr.sink.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	streams := func() []int {
		p.mu.Lock()
		defer p.mu.Unlock()
		var n []int
		for _, l := range p.loops {
			l.mu.Lock()
			n = append(n, len(l.streams))
			l.mu.Unlock()
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for range 500 {
			if ok() {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s (streams per loop %v)", what, streams())
	}
	play(y1.w, ctx, 1, true)
	y2ctx, y2stop := context.WithCancel(ctx)
	y2done := play(y2.w, y2ctx, 1, true)
	waitFor("loop 1 full", func() bool { s := streams(); return len(s) == 1 && s[0] == 2 })
	first := play(x.w, ctx, 25, false)
	play(z.w, ctx, 1, true)
	waitFor("loop 2 full", func() bool { s := streams(); return len(s) == 2 && s[1] == 2 })
	y2stop() // loop 1 now has room: a prompt that picked the first loop with room would go there
	<-y2done
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-play(x.w, ctx, 5, false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := ends[x.w]
	if len(got) != 2 {
		t.Fatalf("%d prompts ended on the call, want 2", len(got))
	}
	a, b := got[0], got[1]
	if b.on != a.on {
		t.Errorf("the next prompt went to another loop")
	}
	if b.first != a.last+1 {
		t.Errorf("the next prompt's first packet on tick %d, the last one's last packet on tick %d: want the next tick", b.first, a.last)
	}
	if b.last-b.first != 4 || a.last-a.first != 24 {
		t.Errorf("prompts took ticks %d–%d and %d–%d, want 25 and 5 packets on consecutive ticks", a.first, a.last, b.first, b.last)
	}
}

// TestPacerThreadPriority: the pacing loops and the C thread run at real-time priority when the process may set
// it (and say so), at normal priority when asked for none, and report a refusal instead of failing the call.
func TestPacerThreadPriority(t *testing.T) {
	permitted := make(chan bool, 1)
	go func() { // can this process use SCHED_FIFO? Try on a thread of our own, then put it back.
		runtime.LockOSThread()
		ok := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil
		if unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0) == nil {
			runtime.UnlockOSThread()
		}
		permitted <- ok
	}()
	can := <-permitted
	var tid atomic.Int64 // the loop's thread, seen from the loop's goroutine
	streamEnded = func(*paceStream) { tid.Store(int64(unix.Gettid())) }
	t.Cleanup(func() { streamEnded = nil })
	engines(t, func(t *testing.T, goLoops bool) {
		for _, c := range []struct {
			prio int
			want string
		}{
			{0, map[bool]string{true: "SCHED_FIFO 10", false: "normal (SCHED_FIFO refused"}[can]},
			{-1, "normal (not asked; normal (policy 0))"},
		} {
			pr := newRTPPair(t)
			p := &Pacer{Priority: c.prio, goLoops: goLoops}
			if err := p.Play(context.Background(), pr.w, dmedia.CodecAudioAlaw, make([]byte, 160*3), false); err != nil {
				t.Fatal(err)
			}
			p.Wait()
			if got := p.Policy(); !strings.HasPrefix(got, c.want) {
				t.Errorf("priority %d: the pacer ran with %q, want %q", c.prio, got, c.want)
			}
			// A loop's thread outlives the loop (a child process started from it with a parent-death signal
			// would die with it); the C thread has ended. Every thread of the process is back at normal
			// priority.
			if goLoops {
				if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid.Load())); err != nil {
					t.Errorf("priority %d: the loop's thread ended with it: %v", c.prio, err)
				}
			}
			tasks, _ := os.ReadDir("/proc/self/task")
			for _, task := range tasks {
				id, _ := strconv.Atoi(task.Name())
				if a, err := unix.SchedGetAttr(id, 0); err == nil && a.Policy != unix.SCHED_NORMAL {
					t.Errorf("priority %d: thread %d left with scheduling policy %d", c.prio, id, a.Policy)
				}
			}
		}
	})
}

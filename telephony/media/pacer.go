package media

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/zaf/g711"
	"golang.org/x/sys/unix"
)

// Pacer sends recorded audio (greetings, hold music) to many calls from a few goroutines.
//
// diago's playback gives every call its own goroutine blocked on its own 20 ms ticker, decodes the WAV and
// encodes G.711 again on every play, and allocates on the way: at 1,500 calls that is 75,000 goroutine wake-ups a
// second and a steady stream of garbage, and when a GC cycle or a burst of runnable goroutines delays the
// scheduler, every one of those goroutines is late on its own (see the README's Performance section for the
// trace). Here one pacing loop serves up to PerLoop calls: it wakes once per packet time on a monotonic schedule
// (tick k is due at start + k×20 ms, so lateness never accumulates into drift; a late wake-up sends the packets
// that came due, at most maxCatchUp), and writes one packet to each of its calls from audio encoded once per
// prompt and codec. Writing a packet allocates nothing.
//
// Each loop runs on an OS thread of its own and sleeps in the kernel until its next tick (clock_nanosleep on the
// monotonic clock), at real-time priority (SCHED_FIFO) where the kernel allows it. A loop woken by a Go timer is
// only put in a run queue, behind whatever is runnable (call set-ups, GC workers) and behind every other process's
// threads on a busy machine: the trace of 1,500 calls showed the loops runnable but not running for up to 200 ms
// while the machine was busy, the whole process silent for up to 180 ms. The kernel wakes a real-time thread at
// once, ahead of any normal process; it then needs only a free P to run its Go code.
//
// Loops start when a call needs one and end when they serve none; Wait waits for them.
//
// Built with cgo (the normal build), the Pacer sends from a C thread instead (cpacer_linux.go), which the Go
// scheduler cannot delay; the loops here play only what that thread cannot send (sessions that are not plain
// UDP), and everything in builds without cgo.
type Pacer struct {
	PerLoop int // calls per pacing loop (default 100)
	// Priority is the SCHED_FIFO priority (1–99) of the pacing threads; 0 means DefaultPriority, negative leaves
	// them at normal priority. Without CAP_SYS_NICE or an RLIMIT_RTPRIO that covers it, the threads stay at
	// normal priority and Policy says why.
	Priority int

	mu    sync.Mutex
	loops []*paceLoop
	wg    sync.WaitGroup

	wakeups atomic.Int64 // loop wake-ups, for tests and metrics
	packets atomic.Int64 // packets written
	policy  atomic.Pointer[string]

	// recent maps a writer whose audio just ended to the loop that played it (guarded by mu): the writer's next
	// Play joins that loop, whose next tick is 20 ms after the last packet, instead of a loop with another phase.
	recent map[*dmedia.RTPPacketWriter]recentLoop
	purged time.Duration

	cmu     sync.Mutex
	c       cState // the C thread's Go side (under cmu)
	goLoops bool   // play everything with the Go loops (tests of both engines)
}

// DefaultPriority is the pacing threads' real-time priority: above every normal process, below the kernel's
// own real-time threads (which use 50 and up).
const DefaultPriority = 10

const (
	packetTime = 20 * time.Millisecond
	maxCatchUp = 3 // packets per call per wake-up when the loop was late
)

// Stats returns the pacer's wake-ups (of the C thread and the Go loops) and prompt packets written so far
// (not the silence the C thread sends between prompts: see Silence).
func (p *Pacer) Stats() (wakeups, packets int64) {
	cw, cp, _, _ := p.cStats()
	return p.wakeups.Load() + cw, p.packets.Load() + cp
}

// Silence returns the silence packets the C thread sent between prompts and the packets it dropped because a
// call's socket buffer was full.
func (p *Pacer) Silence() (silence, drops int64) {
	_, _, s, d := p.cStats()
	return s, d
}

// Policy tells how the last pacing loop started was scheduled: "SCHED_FIFO N", or "normal" with the reason.
func (p *Pacer) Policy() string {
	if s := p.policy.Load(); s != nil {
		return *s
	}
	return ""
}

// Wait returns when no pacing loop or C thread runs (every Play has returned, the loops have seen it, and the C
// thread's streams have lingered out or been released).
func (p *Pacer) Wait() { p.wg.Wait() }

type paceStream struct {
	w      *dmedia.RTPPacketWriter
	pt     uint8
	ts     uint32 // RTP clock ticks per packet
	frame  int    // payload bytes per packet
	audio  []byte
	pos    int
	loop   bool
	marker bool
	stop   atomic.Bool
	ended  bool      // the last packet of audio that does not loop has been sent (loop goroutine only)
	on     *paceLoop // the loop that sent the stream's packets, and the ticks of its first and last packet
	first  int64
	last   int64
	done   chan error // buffered 1: the loop never blocks on it
	err    error
}

type paceLoop struct {
	p       *Pacer
	mu      sync.Mutex
	streams []*paceStream
	running bool
	batch   []*paceStream // the loop's copy of streams, reused every tick
	tick    int64         // wake-ups of this loop (loop goroutine only); jumps by 2 when the loop starts again
	idle    int           // consecutive ticks with no stream (under mu)
}

// lingerTicks is how long a loop with no stream waits before it stops: a call whose prompt just ended usually
// asks for the next one at once, and finds the loop still on its schedule.
const lingerTicks = 3

type recentLoop struct {
	loop *paceLoop
	at   time.Duration // monotonic
}

// ErrNoAudio is returned by Play for audio shorter than one packet.
var ErrNoAudio = errors.New("no audio to play")

// Play sends audio, already encoded for codec (Prompt.Payload), through w at the codec's packet rate until the
// audio ends (never, with loop), ctx ends or a write fails. Like diago's playback it blocks until then; when it
// returns nothing more of this audio is written to w. The C thread then keeps the call's RTP going with silence
// for a moment, for the next Play to follow without a gap: call Release before writing to w otherwise. When
// Play returns because ctx ended, nothing more is written at all.
func (p *Pacer) Play(ctx context.Context, w *dmedia.RTPPacketWriter, codec dmedia.Codec, audio []byte, loop bool) error {
	ts := codec.SampleTimestamp()
	frame := int(ts) // G.711: one byte per sample
	if len(audio) < frame || frame == 0 {
		return ErrNoAudio
	}
	if handled, err := p.playC(ctx, w, codec, audio, loop); handled {
		return err
	}
	s := &paceStream{w: w, pt: codec.PayloadType, ts: ts, frame: frame, audio: audio, loop: loop, marker: true,
		done: make(chan error, 1)}
	p.add(s)
	select {
	case err := <-s.done:
		return err
	case <-ctx.Done():
		s.stop.Store(true)
		<-s.done // at most one packet time: the loop drops the stream at its next tick
		return ctx.Err()
	}
}

func (p *Pacer) add(s *paceStream) {
	per := p.PerLoop
	if per <= 0 {
		per = 100
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var l *paceLoop
	if r, ok := p.recent[s.w]; ok {
		delete(p.recent, s.w)
		r.loop.mu.Lock()
		if r.loop.running && len(r.loop.streams) < per {
			l = r.loop // r.loop.mu stays locked
		} else {
			r.loop.mu.Unlock()
		}
	}
	for _, c := range p.loops {
		if l != nil {
			break
		}
		c.mu.Lock()
		if len(c.streams) < per {
			l = c
			break // c.mu stays locked
		}
		c.mu.Unlock()
	}
	if l == nil {
		l = &paceLoop{p: p}
		p.loops = append(p.loops, l)
		l.mu.Lock()
	}
	l.streams = append(l.streams, s)
	if !l.running {
		l.running = true
		p.wg.Add(1)
		go l.run()
	}
	l.mu.Unlock()
}

// run is one pacing loop; it returns when it serves no stream.
func (l *paceLoop) run() {
	defer l.p.wg.Done()
	runtime.LockOSThread()
	raised := l.p.Priority >= 0
	l.p.setPolicy(raisePriority(l.p.Priority))
	defer func() {
		// Give the thread back at normal priority. It must not end with the goroutine (what Go does to a thread
		// still locked): the thread may be the one that started a child process with a parent-death signal
		// (hotline up's PostgreSQL and Redis, the tests' servers), and its end would kill that child. Only if
		// the priority cannot be lowered again does the thread stay locked and end, so that no other goroutine
		// runs at real-time priority.
		if !raised || unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0) == nil {
			runtime.UnlockOSThread()
		}
	}()
	start := monotonic()
	var sent int64 // ticks served since start
	var ended []*paceStream
	l.tick += 2 // a new schedule: no tick of it follows one of the last run
	for {
		// The next tick is due at start + (sent+1)×20 ms on the monotonic clock, however late the last one ran.
		sleepUntil(start + time.Duration(sent+1)*packetTime)
		l.p.wakeups.Add(1)
		l.tick++
		due := int64((monotonic()-start)/packetTime) - sent
		if due < 1 {
			due = 1
		}
		if due > maxCatchUp {
			// Far behind (the process was stopped or starved): send what a receiver's jitter buffer can absorb
			// and drop the rest of the backlog rather than bursting it.
			sent += due - maxCatchUp
			due = maxCatchUp
		}
		l.mu.Lock()
		l.batch = append(l.batch[:0], l.streams...)
		l.mu.Unlock()
		for _, s := range l.batch {
			for range due {
				if !l.send(s) {
					break
				}
			}
		}
		sent += due
		var running bool
		if ended, running = l.sweep(ended); !running {
			return
		}
	}
}

func (p *Pacer) setPolicy(s string) { p.policy.Store(&s) }

// raisePriority puts the calling thread in SCHED_FIFO at prio (DefaultPriority for 0; nothing for a negative
// prio) and tells what it got.
func raisePriority(prio int) string {
	if prio < 0 {
		return "normal (not asked; " + threadPolicy() + ")"
	}
	if prio == 0 {
		prio = DefaultPriority
	}
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(min(prio, 99))}, 0); err != nil {
		return "normal (SCHED_FIFO refused: " + err.Error() + ")"
	}
	return threadPolicy()
}

// threadPolicy reads back the calling thread's scheduling policy from the kernel.
func threadPolicy() string {
	a, err := unix.SchedGetAttr(0, 0)
	switch {
	case err != nil:
		return "unknown (" + err.Error() + ")"
	case a.Policy == unix.SCHED_FIFO:
		return "SCHED_FIFO " + strconv.Itoa(int(a.Priority))
	default:
		return "normal (policy " + strconv.Itoa(int(a.Policy)) + ")"
	}
}

// monotonic reads CLOCK_MONOTONIC, the clock sleepUntil sleeps on.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock
	return time.Duration(ts.Nano())
}

// sleepUntil blocks the thread in the kernel until the monotonic clock reads t. It is an ordinary (blocking)
// system call, so the thread's P is free for other goroutines meanwhile.
func sleepUntil(t time.Duration) {
	ts := unix.NsecToTimespec(int64(t))
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
		// Go's preemption signals interrupt the sleep; the deadline is absolute, so sleep on.
	}
}

// send writes the stream's next packet; false when the stream is finished (it is then removed by sweep).
func (l *paceLoop) send(s *paceStream) bool {
	if s.stop.Load() || s.err != nil || s.ended {
		return false
	}
	if s.pos+s.frame > len(s.audio) {
		s.pos = 0 // only a looped stream gets here: one that is not ends with its last packet, below
	}
	if _, err := s.w.WriteSamples(s.audio[s.pos:s.pos+s.frame], s.ts, s.marker, s.pt); err != nil {
		s.err = err
		return false
	}
	l.p.packets.Add(1)
	if s.on != l {
		s.on, s.first = l, l.tick
	}
	s.last = l.tick
	s.marker = false
	s.pos += s.frame
	if !s.loop && s.pos+s.frame > len(s.audio) {
		// The last packet went out on this tick: sweep tells Play now, so a prompt that follows (greeting → queue
		// prompt → hold music) can send its first packet on the next tick of this loop, 20 ms after this one.
		// Noticing the end one tick later, or starting the next prompt on another loop, made a 40 ms gap.
		s.ended = true
	}
	return true
}

// sweep removes finished streams and tells their Play; false when the loop has none left and has stopped. ended
// is the caller's buffer (a loop that stopped may be started again by add while this call still tells its
// streams' Play), returned for reuse.
func (l *paceLoop) sweep(ended []*paceStream) ([]*paceStream, bool) {
	l.mu.Lock()
	ended = ended[:0]
	for i := 0; i < len(l.streams); {
		s := l.streams[i]
		if s.stop.Load() || s.err != nil || s.ended {
			ended = append(ended, s)
			last := len(l.streams) - 1
			l.streams[i], l.streams[last] = l.streams[last], nil
			l.streams = l.streams[:last]
			continue
		}
		i++
	}
	running := true
	if len(l.streams) > 0 {
		l.idle = 0
	} else if l.idle++; l.idle > lingerTicks {
		l.idle = 0
		l.running = false
		running = false
	}
	l.mu.Unlock()
	if len(ended) > 0 {
		l.p.remember(l, ended) // before Play returns, so the call's next Play finds this loop
		for i, s := range ended {
			if streamEnded != nil {
				streamEnded(s)
			}
			s.done <- s.err
			ended[i] = nil
		}
	}
	return ended, running
}

// streamEnded, when set (by tests, before any loop runs), sees every stream as its loop removes it.
var streamEnded func(*paceStream)

// remember notes the loop that played each stream to its end, for the next Play on the same writer.
func (p *Pacer) remember(l *paceLoop, ended []*paceStream) {
	now := monotonic()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recent == nil {
		p.recent = map[*dmedia.RTPPacketWriter]recentLoop{}
	}
	for _, s := range ended {
		if s.ended && s.err == nil && !s.stop.Load() {
			p.recent[s.w] = recentLoop{loop: l, at: now}
		}
	}
	if now-p.purged > time.Second {
		// A call that hangs up after a prompt never asks again: forget what is older than a second.
		p.purged = now
		for w, r := range p.recent {
			if now-r.at > time.Second {
				delete(p.recent, w)
			}
		}
	}
}

// Payload returns the prompt's audio encoded for codec (PCMA or PCMU; nil for others), encoded once per prompt
// and codec and shared by every call that plays it.
func (p Prompt) Payload(codec dmedia.Codec) []byte {
	name := strings.ToUpper(codec.Name)
	if name != "PCMA" && name != "PCMU" {
		return nil
	}
	key := encKey{wav: wavID(p.WAV), codec: name}
	if v, ok := encoded.Load(key); ok {
		return v.([]byte)
	}
	pcm := wavData(p.WAV)
	var out []byte
	if name == "PCMA" {
		out = g711.EncodeAlaw(pcm)
	} else {
		out = g711.EncodeUlaw(pcm)
	}
	v, _ := encoded.LoadOrStore(key, out)
	return v.([]byte)
}

type encKey struct {
	wav   *byte
	codec string
}

// encoded caches encoded prompts by the address of their WAV bytes (prompts are loaded once and never change).
var encoded sync.Map

func wavID(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

// wavData returns the samples of a PCM WAV (the "data" chunk), or nil.
func wavData(b []byte) []byte {
	if CheckWAV(b) != nil {
		return nil
	}
	for off := 12; off+8 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		if string(b[off:off+4]) == "data" {
			end := min(off+8+size, len(b))
			return b[off+8 : end-(end-off-8)%2]
		}
		off += 8 + size + size%2
	}
	return nil
}

package media

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/zaf/g711"
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
// Loops start when a call needs one and end when they serve none; Wait waits for them.
type Pacer struct {
	PerLoop int // calls per pacing loop (default 100)

	mu    sync.Mutex
	loops []*paceLoop
	wg    sync.WaitGroup

	wakeups atomic.Int64 // loop wake-ups, for tests and metrics
	packets atomic.Int64 // packets written
}

const (
	packetTime = 20 * time.Millisecond
	maxCatchUp = 3 // packets per call per wake-up when the loop was late
)

// Stats returns the pacer's loop wake-ups and packets written so far.
func (p *Pacer) Stats() (wakeups, packets int64) { return p.wakeups.Load(), p.packets.Load() }

// Wait returns when no pacing loop runs (every Play has returned and the loops have seen it).
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
	done   chan error // buffered 1: the loop never blocks on it
	err    error
}

type paceLoop struct {
	p       *Pacer
	mu      sync.Mutex
	streams []*paceStream
	running bool
	batch   []*paceStream // the loop's copy of streams, reused every tick
}

// ErrNoAudio is returned by Play for audio shorter than one packet.
var ErrNoAudio = errors.New("no audio to play")

// Play sends audio, already encoded for codec (Prompt.Payload), through w at the codec's packet rate until the
// audio ends (never, with loop), ctx ends or a write fails. Like diago's playback it blocks until then; when it
// returns nothing more is written to w, so the caller may use w again.
func (p *Pacer) Play(ctx context.Context, w *dmedia.RTPPacketWriter, codec dmedia.Codec, audio []byte, loop bool) error {
	ts := codec.SampleTimestamp()
	frame := int(ts) // G.711: one byte per sample
	if len(audio) < frame || frame == 0 {
		return ErrNoAudio
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
	for _, c := range p.loops {
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
	start := time.Now()
	var sent int64 // ticks served since start
	t := time.NewTimer(packetTime)
	defer t.Stop()
	for {
		<-t.C
		l.p.wakeups.Add(1)
		due := int64(time.Since(start)/packetTime) - sent
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
		if !l.sweep() {
			return
		}
		// The next tick is due at start + (sent+1)×20 ms on the monotonic clock, however late this one ran.
		t.Reset(time.Until(start.Add(time.Duration(sent+1) * packetTime)))
	}
}

// send writes the stream's next packet; false when the stream is finished (it is then removed by sweep).
func (l *paceLoop) send(s *paceStream) bool {
	if s.stop.Load() || s.err != nil {
		return false
	}
	if s.pos+s.frame > len(s.audio) {
		if !s.loop {
			s.stop.Store(true)
			return false
		}
		s.pos = 0
	}
	if _, err := s.w.WriteSamples(s.audio[s.pos:s.pos+s.frame], s.ts, s.marker, s.pt); err != nil {
		s.err = err
		return false
	}
	l.p.packets.Add(1)
	s.marker = false
	s.pos += s.frame
	return true
}

// sweep removes finished streams and tells their Play; false when the loop has none left and has stopped.
func (l *paceLoop) sweep() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < len(l.streams); {
		s := l.streams[i]
		if s.stop.Load() || s.err != nil {
			s.done <- s.err
			last := len(l.streams) - 1
			l.streams[i], l.streams[last] = l.streams[last], nil
			l.streams = l.streams[:last]
			continue
		}
		i++
	}
	if len(l.streams) == 0 {
		l.running = false
		return false
	}
	return true
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

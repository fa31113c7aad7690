//go:build linux && cgo

package media

/*
#cgo CFLAGS: -O2 -Wall
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "cpacer.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	dmedia "github.com/emiago/diago/media"
	"golang.org/x/sys/unix"
)

// The C pacer. The Go pacing loops (pacer.go) sleep in the kernel at real-time priority and wake on time, but a
// woken loop must still get a P to run its Go code: while the Ps are busy (a GC mark phase, a burst of runnable
// goroutines when many calls hang up at once) the thread coming out of its system call waits on the global run
// queue, for tens of milliseconds on a loaded 2-core machine, and every call of the loop hears a gap. No Go
// setting removes that wait. So the schedule lives in one POSIX thread created in C, which the Go runtime does not
// schedule, stop for GC or preempt: it sleeps to an absolute 20 ms grid (clock_nanosleep on CLOCK_MONOTONIC) at
// SCHED_FIFO where allowed, and at each tick sendto()s every stream's packet on a dup of the call's RTP socket,
// from audio copied once into C memory. Go only adds and stops streams and hears, through an eventfd read by one
// goroutine, when a play or a stream ended; nothing on the packet path touches Go.
//
// A stream belongs to a writer (one call) and outlives one Play: when a prompt that does not loop ends, the thread
// keeps the call on schedule with silence frames until the next Play on the writer starts on the next tick (marker
// bit set), Release removes the stream, or the linger time passes. A Go stall between two prompts is then silence
// heard on time, not a gap. The stream sends with its own SSRC, kept across the writer's Plays with sequence
// number and timestamp running on; diago's own writes through the writer (bridged audio) keep the writer's SSRC
// and sequence. A change of SSRC with a change of source is ordinary RTP (RFC 3550 §8); two senders sharing one
// SSRC with sequence numbers of their own would make the receiver drop packets.
//
// A writer whose session is not plain UDP as far as we can tell (SRTP, symmetric-RTP learning, a writer that is
// not a diago RTPSession) is played by the Go loops.

// PacerEngine says which engine plays prompts in this build: the C thread, with the Go loops for what it
// cannot send.
const PacerEngine = "C thread (cgo), Go loops for non-UDP sessions"

const (
	cLinger   = 25 // silence packets (500 ms) after a prompt before a stream with nothing to play ends
	cIdle     = 10 // ticks the thread runs with no stream before it ends
	cMaxFrame = 1200
	cWatch    = 200 * time.Millisecond // how often the sessions of the streams are checked (closed, moved)
)

// cState is the C pacer's Go side, guarded by Pacer.cmu.
type cState struct {
	eng     *cEngine
	writers map[*dmedia.RTPPacketWriter]*cStream
	plays   map[uint64]*cPlay
	audio   map[audioKey]*cAudio
	ident   map[*dmedia.RTPPacketWriter]rtpIdent
	nextID  uint64
	done    C.hp_stats // counters of engines that have ended
}

type cEngine struct {
	e       *C.hp_engine
	f       *os.File // the eventfd the thread writes when it posted events
	streams map[*C.hp_stream]*cStream
}

type cStream struct {
	c     *C.hp_stream
	eng   *cEngine
	w     *dmedia.RTPPacketWriter
	t     cTarget
	ssrc  uint32
	dead  bool          // the thread removed it and Go freed it: never touch c again
	ended chan struct{} // closed when dead
}

type cPlay struct {
	done  chan C.int // buffered: the event goroutine never blocks
	audio *cAudio
	s     *cStream
}

// cAudio is a payload copied into C memory once and shared by every stream that plays it; freed when the last
// play of it ends (the thread has stopped reading it by then).
type cAudio struct {
	p    unsafe.Pointer
	n    int
	refs int
	key  audioKey
}

type audioKey struct {
	first *byte // keeps the Go slice alive while the key is in the map, so the address is not reused
	n     int
}

// rtpIdent is where a writer's C stream stopped, for the next one to continue with (kept ~10 s).
type rtpIdent struct {
	ssrc uint32
	seq  uint16
	ts   uint32
	at   time.Time
}

// cTarget is what the C thread needs of a writer's session: its RTP socket and where the packets go.
type cTarget struct {
	rs     *dmedia.RTPSession
	conn   *net.UDPConn
	family int
	ip     [16]byte
	port   int
}

// cTargetOf resolves the socket and remote address w sends to; ok is false when the session is not one the
// thread can send for (the Go loops play it), err when its socket is closed.
func cTargetOf(w *dmedia.RTPPacketWriter) (t cTarget, ok bool, err error) {
	rs, isSess := w.Writer().(*dmedia.RTPSession)
	if !isSess || rs == nil || rs.Sess == nil {
		return t, false, nil
	}
	sess := rs.Sess
	if sess.SecureRTP != 0 || sess.RTPNAT != 0 {
		return t, false, nil // SRTP needs diago's encryption; RTPNAT sends to an address diago learns
	}
	conn := rtpConnOf(sess)
	if conn == nil || sess.Raddr.Port <= 0 || sess.Raddr.Port > 65535 || sess.Raddr.IP == nil {
		return t, false, nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return t, false, nil
	}
	var dom int
	var serr error
	if err := rc.Control(func(fd uintptr) { dom, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN) }); err != nil {
		return t, true, fmt.Errorf("RTP socket: %w", err) // closed: the Go loops' write would fail the same way
	}
	if serr != nil {
		return t, false, nil
	}
	t = cTarget{rs: rs, conn: conn, family: dom, port: sess.Raddr.Port}
	switch {
	case dom == unix.AF_INET && sess.Raddr.IP.To4() != nil:
		copy(t.ip[:], sess.Raddr.IP.To4())
	case dom == unix.AF_INET6 && sess.Raddr.IP.To16() != nil:
		copy(t.ip[:], sess.Raddr.IP.To16()) // an IPv4 address becomes v4-mapped
	default:
		return t, false, nil
	}
	return t, true, nil
}

var udpConnType = reflect.TypeFor[*net.UDPConn]()

// rtpConnOf returns the session's RTP socket. diago keeps it unexported (MediaSession.rtpConn) and has no
// accessor; it is read here, never written, and only when it is the *net.UDPConn diago's listener makes. A diago
// version that renames it sends every call through the Go loops instead (TestCPacerUsesSessionSocket fails).
func rtpConnOf(sess *dmedia.MediaSession) *net.UDPConn {
	f := reflect.ValueOf(sess).Elem().FieldByName("rtpConn")
	if !f.IsValid() || f.Kind() != reflect.Interface || f.IsNil() {
		return nil
	}
	v := f.Elem()
	if v.Type() != udpConnType || v.IsNil() {
		return nil
	}
	return (*net.UDPConn)(v.UnsafePointer()) // #nosec G103 -- read-only access to a field of the documented type
}

// dupFD gives the thread a socket of its own for the call's: if the call closes its socket while the thread
// still sends, the thread writes to the same socket (kept open by the dup) rather than to whatever file the
// number was given to next. The thread closes it when the stream ends.
func dupFD(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("RTP socket: %w", err)
	}
	return nfd, derr
}

func connOpen(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	return err == nil && rc.Control(func(uintptr) {}) == nil
}

func silenceOf(codec dmedia.Codec) (byte, bool) {
	switch strings.ToUpper(codec.Name) {
	case "PCMA":
		return 0xD5, true
	case "PCMU":
		return 0xFF, true
	}
	return 0, false
}

// ErrBusy is returned by Play when another Play on the same writer is already waiting to start.
var ErrBusy = errors.New("another play is waiting on this writer")

// playC plays through the C thread; handled is false when the writer's session is not one it can send for.
func (p *Pacer) playC(ctx context.Context, w *dmedia.RTPPacketWriter, codec dmedia.Codec, audio []byte, loop bool) (handled bool, err error) {
	frame := int(codec.SampleTimestamp())
	silence, ok := silenceOf(codec)
	if p.goLoops || !ok || frame > cMaxFrame || len(audio) < frame {
		return false, nil
	}
	t, ok, err := cTargetOf(w)
	if !ok || err != nil {
		return ok, err
	}
	audio = audio[:len(audio)-len(audio)%frame] // whole packets, as the Go loops send
	p.cmu.Lock()
	c := &p.c
	if c.writers == nil {
		c.writers = map[*dmedia.RTPPacketWriter]*cStream{}
		c.plays = map[uint64]*cPlay{}
		c.audio = map[audioKey]*cAudio{}
		c.ident = map[*dmedia.RTPPacketWriter]rtpIdent{}
	}
	c.nextID++
	pl := &cPlay{done: make(chan C.int, 1), audio: p.cAudioRef(audio)}
	id := c.nextID
	s := c.writers[w]
	if s != nil && s.t.rs != t.rs {
		// The writer moved to another session since its stream started (a re-INVITE): send from there.
		p.retarget(s, t)
	}
	placed := false
	if s != nil && !s.dead {
		switch C.hp_play(s.eng.e, s.c, C.uint64_t(id), (*C.uint8_t)(pl.audio.p), C.size_t(pl.audio.n), cBool(loop)) {
		case 0:
			placed = true
		case -2:
			p.cAudioRelease(pl.audio)
			p.cmu.Unlock()
			return true, ErrBusy
		}
	}
	if !placed {
		ns, err := p.newStream(w, t, s, codec.PayloadType, silence, uint32(frame), id, pl.audio, loop)
		if err != nil || ns == nil {
			p.cAudioRelease(pl.audio)
			p.cmu.Unlock()
			return err != nil, err // no engine (thread creation refused): the Go loops play it
		}
		s = ns
	}
	pl.s = s
	c.plays[id] = pl
	p.cmu.Unlock()
	select {
	case code := <-pl.done:
		return true, playError(code)
	case <-ctx.Done():
		p.cmu.Lock()
		if !s.dead {
			C.hp_stop(s.eng.e, s.c, C.HP_STOPPED)
		}
		p.cmu.Unlock()
		<-pl.done // the thread drops the stream at its next tick
		return true, ctx.Err()
	}
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func playError(code C.int) error {
	switch {
	case code == 0:
		return nil
	case code == C.HP_STOPPED:
		return context.Canceled
	case code == C.HP_CLOSED:
		return fmt.Errorf("RTP socket: %w", net.ErrClosed)
	case code == C.HP_MOVED:
		return errors.New("the call's media session changed to one the pacer cannot send for")
	default:
		return fmt.Errorf("RTP send: %w", syscall.Errno(code))
	}
}

// newStream puts w on the thread's schedule with its first play (under cmu). It continues the RTP identity of
// the writer's last stream (prev, or one that ended in the last seconds).
func (p *Pacer) newStream(w *dmedia.RTPPacketWriter, t cTarget, prev *cStream, pt uint8, silence byte, frame uint32,
	id uint64, a *cAudio, loop bool) (*cStream, error) {
	c := &p.c
	var seq C.uint16_t
	var ts C.uint32_t
	var ssrc uint32
	switch last, ok := c.ident[w]; {
	case prev != nil:
		ssrc = prev.ssrc
		if !prev.dead {
			C.hp_position(prev.eng.e, prev.c, &seq, &ts)
		} else {
			seq, ts = C.uint16_t(last.seq), C.uint32_t(last.ts)
		}
	case ok:
		// The writer was silent since: the timestamp runs on with the clock (RFC 3550 §5.1).
		ssrc, seq = last.ssrc, C.uint16_t(last.seq)
		ts = C.uint32_t(last.ts + uint32(time.Since(last.at)/packetTime)*frame)
	default:
		ssrc, seq, ts = rand.Uint32(), C.uint16_t(rand.Uint32()), C.uint32_t(rand.Uint32()) // #nosec G404 -- RTP identifiers, not secrets
		if ssrc == w.SSRC {
			ssrc++
		}
	}
	fd, err := dupFD(t.conn)
	if err != nil {
		return nil, err
	}
	for range 2 {
		eng := p.engine()
		if eng == nil {
			unix.Close(fd)
			return nil, nil
		}
		cs := C.hp_add(eng.e, C.int(fd), C.int(t.family), (*C.uint8_t)(unsafe.Pointer(&t.ip[0])), C.int(t.port),
			C.uint8_t(pt), C.uint8_t(silence), C.uint32_t(ssrc), seq, ts, C.uint32_t(frame),
			C.uint64_t(id), (*C.uint8_t)(a.p), C.size_t(a.n), cBool(loop))
		if cs == nil {
			c.eng = nil // the thread is ending (idle): its goroutine cleans up, a new engine takes the stream
			continue
		}
		s := &cStream{c: cs, eng: eng, w: w, t: t, ssrc: ssrc, ended: make(chan struct{})}
		eng.streams[cs] = s
		c.writers[w] = s
		delete(c.ident, w)
		return s, nil
	}
	unix.Close(fd)
	return nil, errors.New("pacer thread unavailable")
}

// retarget makes s send from t's socket and address (under cmu), or ends it when that cannot be done.
func (p *Pacer) retarget(s *cStream, t cTarget) {
	if s.dead {
		return
	}
	s.t = t
	fd, err := dupFD(t.conn)
	if err != nil {
		C.hp_stop(s.eng.e, s.c, C.HP_CLOSED)
		return
	}
	if C.hp_retarget(s.eng.e, s.c, C.int(fd), C.int(t.family), (*C.uint8_t)(unsafe.Pointer(&t.ip[0])), C.int(t.port)) != 0 {
		unix.Close(fd)
	}
}

// engine returns the running engine, starting its thread and goroutine if there is none (under cmu); nil when
// the thread cannot be created.
func (p *Pacer) engine() *cEngine {
	if p.c.eng != nil {
		return p.c.eng
	}
	prio := p.Priority
	if prio == 0 {
		prio = DefaultPriority
	}
	var policy, got, errno C.int
	e := C.hp_new(C.int(min(prio, 99)), cLinger, cIdle, &policy, &got, &errno)
	if e == nil {
		p.setPolicy("normal (C pacer thread not started: " + syscall.Errno(errno).Error() + ")")
		return nil
	}
	switch {
	case policy == C.SCHED_FIFO:
		p.setPolicy("SCHED_FIFO " + strconv.Itoa(int(got)))
	case p.Priority < 0:
		p.setPolicy("normal (not asked; normal (policy " + strconv.Itoa(int(policy)) + "))")
	default:
		p.setPolicy("normal (SCHED_FIFO refused: " + syscall.Errno(errno).Error() + ")")
	}
	eng := &cEngine{e: e, f: os.NewFile(uintptr(C.hp_efd(e)), "rtp-pacer-events"), streams: map[*C.hp_stream]*cStream{}}
	p.c.eng = eng
	p.wg.Add(1)
	go p.serve(eng)
	return eng
}

// serve completes the engine's plays and frees its streams as the thread reports them, checks every cWatch that
// the streams' sessions are still there, and ends with the thread.
func (p *Pacer) serve(eng *cEngine) {
	defer p.wg.Done()
	buf := make([]byte, 8)
	evs := make([]C.hp_event, 256)
	watched := time.Now()
	for {
		_ = eng.f.SetReadDeadline(time.Now().Add(cWatch))
		_, _ = eng.f.Read(buf) // an event, or the watch time
		if p.drain(eng, evs) {
			C.hp_join_free(eng.e)
			eng.f.Close()
			return
		}
		if time.Since(watched) >= cWatch {
			watched = time.Now()
			p.watch(eng)
		}
	}
}

// drain handles the thread's events; true when the thread has ended.
func (p *Pacer) drain(eng *cEngine, evs []C.hp_event) (exited bool) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	c := &p.c
	for more := C.int(1); more != 0; {
		n := int(C.hp_drain(eng.e, &evs[0], C.int(len(evs)), &more))
		for i := range n {
			ev := &evs[i]
			switch ev.kind {
			case C.HP_EV_PLAY:
				id := uint64(ev.id)
				if pl := c.plays[id]; pl != nil {
					delete(c.plays, id)
					p.cAudioRelease(pl.audio)
					pl.done <- ev.err
				}
			case C.HP_EV_STREAM:
				s := eng.streams[ev.stream]
				delete(eng.streams, ev.stream)
				if s == nil {
					continue
				}
				s.dead = true
				if c.writers[s.w] == s {
					delete(c.writers, s.w)
					c.ident[s.w] = rtpIdent{ssrc: s.ssrc, seq: uint16(ev.seq), ts: uint32(ev.ts), at: time.Now()}
				}
				C.hp_free_stream(ev.stream)
				close(s.ended)
			case C.HP_EV_EXIT:
				exited = true
			}
		}
	}
	if exited {
		var st C.hp_stats
		C.hp_stats_read(eng.e, &st)
		c.done.wakeups += st.wakeups
		c.done.packets += st.packets
		c.done.silence += st.silence
		c.done.drops += st.drops
		c.done.late += st.late
		if c.eng == eng {
			c.eng = nil
		}
	}
	return exited
}

// watch ends the streams whose call closed its socket (a call that hung up while a prompt played ends with it,
// as a Go write would fail), follows a writer moved to another session, and forgets old RTP identities.
func (p *Pacer) watch(eng *cEngine) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	for _, s := range eng.streams {
		if s.dead {
			continue
		}
		if cur, _ := s.w.Writer().(*dmedia.RTPSession); cur != s.t.rs {
			if t, ok, err := cTargetOf(s.w); ok && err == nil {
				p.retarget(s, t)
			} else {
				C.hp_stop(eng.e, s.c, C.HP_MOVED)
			}
			continue
		}
		if !connOpen(s.t.conn) {
			C.hp_stop(eng.e, s.c, C.HP_CLOSED)
		}
	}
	for w, id := range p.c.ident {
		if time.Since(id.at) > 10*time.Second {
			delete(p.c.ident, w)
		}
	}
}

// cAudioRef returns audio copied into C memory, copying it only if no play of it is running (under cmu).
func (p *Pacer) cAudioRef(audio []byte) *cAudio {
	k := audioKey{first: &audio[0], n: len(audio)}
	a := p.c.audio[k]
	if a == nil {
		a = &cAudio{p: C.CBytes(audio), n: len(audio), key: k}
		p.c.audio[k] = a
	}
	a.refs++
	return a
}

func (p *Pacer) cAudioRelease(a *cAudio) {
	if a.refs--; a.refs == 0 {
		delete(p.c.audio, a.key)
		C.free(a.p)
	}
}

// Release takes w's stream off the C thread's schedule (the silence after its last prompt) and returns when
// nothing more is sent for it. Call it before writing to w otherwise (bridged audio) and before closing its
// session. A Play still running on w ends as if its context ended.
func (p *Pacer) Release(w *dmedia.RTPPacketWriter) {
	p.cmu.Lock()
	s := p.c.writers[w]
	if s == nil || s.dead {
		p.cmu.Unlock()
		return
	}
	C.hp_stop(s.eng.e, s.c, C.HP_STOPPED)
	p.cmu.Unlock()
	<-s.ended
}

// cStats returns the C thread's wake-ups, prompt packets, silence packets and packets dropped at a full socket.
func (p *Pacer) cStats() (wakeups, packets, silence, drops int64) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	st := p.c.done
	if p.c.eng != nil {
		var live C.hp_stats
		C.hp_stats_read(p.c.eng.e, &live)
		st.wakeups += live.wakeups
		st.packets += live.packets
		st.silence += live.silence
		st.drops += live.drops
	}
	return int64(st.wakeups), int64(st.packets), int64(st.silence), int64(st.drops)
}

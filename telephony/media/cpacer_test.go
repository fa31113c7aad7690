//go:build linux && cgo

package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

type rxPacket struct {
	rtp.Packet
	from *net.UDPAddr
}

// receive reads what has arrived at the sink until it stays quiet for quiet.
func receive(t *testing.T, sink *net.UDPConn, quiet time.Duration) []rxPacket {
	t.Helper()
	var out []rxPacket
	buf := make([]byte, 1500)
	for {
		sink.SetReadDeadline(time.Now().Add(quiet))
		n, from, err := sink.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		var pk rxPacket
		if err := pk.Unmarshal(bytes.Clone(buf[:n])); err != nil {
			t.Fatalf("not RTP: %v", err)
		}
		pk.from = from
		out = append(out, pk)
	}
}

// kinds summarises payloads as runs: "5×11 3×d5 …", by first byte.
func runs(pks []rxPacket) (out []struct {
	b byte
	n int
}) {
	for _, p := range pks {
		b := p.Payload[0]
		if len(out) > 0 && out[len(out)-1].b == b {
			out[len(out)-1].n++
			continue
		}
		out = append(out, struct {
			b byte
			n int
		}{b, 1})
	}
	return out
}

func filled(b byte, packets int) []byte { return bytes.Repeat([]byte{b}, 160*packets) }

// TestCPacerSilenceBetweenPlays: when a prompt ends and the next Play on the writer comes late (a Go stall), the
// C thread fills the wait with silence on the same schedule, so the call's RTP stays continuous: one SSRC (not the
// writer's own), sequence numbers and timestamps without a hole, the marker bit on the first packet of each
// prompt, silence frames between them, then exactly the linger time of silence before the stream ends. A Play
// after that continues the same SSRC and sequence, with the timestamp moved on by the time that passed. Every
// packet leaves from the call's own RTP socket.
func TestCPacerSilenceBetweenPlays(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr := newRTPPair(t)
	p := &Pacer{}
	ctx := context.Background()
	if err := p.Play(ctx, pr.w, dmedia.CodecAudioAlaw, filled(0x11, 5), false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * packetTime) // the caller is slow to ask for the next prompt
	if err := p.Play(ctx, pr.w, dmedia.CodecAudioAlaw, filled(0x22, 3), false); err != nil {
		t.Fatal(err)
	}
	p.Wait() // the stream lingers out and the thread ends
	first := receive(t, pr.sink, 100*time.Millisecond)
	if err := p.Play(ctx, pr.w, dmedia.CodecAudioAlaw, filled(0x33, 2), false); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	second := receive(t, pr.sink, 100*time.Millisecond)

	r := runs(first)
	if len(r) != 4 || r[0] != (struct {
		b byte
		n int
	}{0x11, 5}) || r[1].b != 0xD5 || r[2] != (struct {
		b byte
		n int
	}{0x22, 3}) || r[3] != (struct {
		b byte
		n int
	}{0xD5, cLinger}) {
		t.Fatalf("payload runs %v, want 5×0x11, silence, 3×0x22, %d×silence", r, cLinger)
	}
	ssrc := first[0].SSRC
	if ssrc == pr.w.SSRC {
		t.Errorf("the pacer sent with the writer's own SSRC %d (diago's writes use it with their own sequence)", ssrc)
	}
	for i, pk := range first {
		if pk.SSRC != ssrc || pk.PayloadType != 8 || len(pk.Payload) != 160 {
			t.Fatalf("packet %d: SSRC %d PT %d %d bytes", i, pk.SSRC, pk.PayloadType, len(pk.Payload))
		}
		if pk.from.Port != pr.sess.Laddr.Port {
			t.Fatalf("packet %d from port %d, not the call's RTP port %d", i, pk.from.Port, pr.sess.Laddr.Port)
		}
		wantMarker := i == 0 || i == 5+r[1].n
		if pk.Marker != wantMarker {
			t.Errorf("packet %d: marker %v", i, pk.Marker)
		}
		if i > 0 {
			if pk.SequenceNumber != first[i-1].SequenceNumber+1 || pk.Timestamp != first[i-1].Timestamp+160 {
				t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, pk.SequenceNumber, pk.Timestamp,
					first[i-1].SequenceNumber, first[i-1].Timestamp)
			}
		}
	}

	r = runs(second)
	if len(r) != 2 || r[0].b != 0x33 || r[0].n != 2 || r[1].b != 0xD5 || r[1].n != cLinger {
		t.Fatalf("after the stream ended: payload runs %v, want 2×0x33 then %d×silence", r, cLinger)
	}
	last, next := first[len(first)-1], second[0]
	if next.SSRC != ssrc || next.SequenceNumber != last.SequenceNumber+1 || !next.Marker {
		t.Errorf("next stream: SSRC %d seq %d marker %v, want SSRC %d seq %d with the marker", next.SSRC,
			next.SequenceNumber, next.Marker, ssrc, last.SequenceNumber+1)
	}
	if d := next.Timestamp - last.Timestamp; d <= 160 || d > 8000*60 {
		t.Errorf("next stream's timestamp moved %d ticks on after a pause, want more than one packet's", d)
	}
}

// TestCPacerSocketClosedMidPlay: a call whose RTP socket is closed while a looped prompt plays (it hung up) ends
// the Play with net.ErrClosed, as a Go write would; the thread's duplicate of the socket is closed with the stream
// (no descriptor left open), and the thread ends.
func TestCPacerSocketClosedMidPlay(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	pr := newRTPPair(t)
	before := fds() // with the call's two sockets and the sink
	p := &Pacer{}
	done := make(chan error, 1)
	go func() { done <- p.Play(context.Background(), pr.w, dmedia.CodecAudioAlaw, filled(0x11, 10), true) }()
	buf := make([]byte, 1500)
	for range 3 {
		pr.sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := pr.sink.Read(buf); err != nil {
			t.Fatalf("no audio: %v", err)
		}
	}
	pr.sess.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Play returned %v, want net.ErrClosed", err)
	}
	_, packets := p.Stats()
	p.Wait()
	if _, after := p.Stats(); after != packets {
		t.Errorf("%d packets sent after Play returned", after-packets)
	}
	pr.sink.Close()
	if n := fds(); n != before-3 {
		t.Errorf("%d descriptors open, want %d: the call's sockets and the sink closed, nothing else left", n, before-3)
	}
}

// TestCPacerRelease: Release ends the silence after a prompt at once, so the caller can write through the writer
// itself (bridged audio): once it returns, no packet of the pacer's SSRC follows.
func TestCPacerRelease(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr := newRTPPair(t)
	p := &Pacer{}
	if err := p.Play(context.Background(), pr.w, dmedia.CodecAudioAlaw, filled(0x11, 3), false); err != nil {
		t.Fatal(err)
	}
	p.Release(pr.w)
	silence, _ := p.Silence()
	if _, err := pr.w.WriteSamples(filled(0x44, 1), 160, false, 8); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if after, _ := p.Silence(); after != silence {
		t.Errorf("%d silence packets after Release", after-silence)
	}
	got := receive(t, pr.sink, 100*time.Millisecond)
	if len(got) < 4 || got[len(got)-1].SSRC != pr.w.SSRC || got[len(got)-1].Payload[0] != 0x44 {
		t.Fatalf("%d packets, the last %+v: want the writer's own packet last", len(got), got[len(got)-1].Header)
	}
	if n := len(runs(got)); n > 3 {
		t.Errorf("payload runs %v: want the prompt, a little silence, the writer's packet", runs(got))
	}
}

// otherWriter is an RTP writer that is not a diago RTPSession (a tracer, a mixer): the C thread cannot know its
// socket.
type otherWriter struct{ rs *dmedia.RTPSession }

func (o otherWriter) WriteRTP(p *rtp.Packet) error { return o.rs.WriteRTP(p) }

// TestCPacerFallsBack: a writer whose session is not plain UDP as far as the pacer can tell (SRTP, or a writer
// that is not a diago session) is played by the Go loops, through diago's writer (its SSRC), and the C thread is
// never started.
func TestCPacerFallsBack(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srtp := newRTPPair(t)
	srtp.sess.SecureRTP = 1
	wrapped := newRTPPair(t)
	wrapped.w = dmedia.NewRTPPacketWriter(otherWriter{wrapped.rtp}, dmedia.CodecAudioAlaw)
	for name, pr := range map[string]*rtpPair{"srtp": srtp, "wrapped": wrapped} {
		p := &Pacer{}
		if err := p.Play(context.Background(), pr.w, dmedia.CodecAudioAlaw, filled(0x11, 4), false); err != nil {
			t.Fatal(err)
		}
		p.Wait()
		got := receive(t, pr.sink, 100*time.Millisecond)
		if len(got) != 4 || got[0].SSRC != pr.w.SSRC {
			t.Errorf("%s: %d packets (want 4) with SSRC %v (want the writer's %d)", name, len(got), got, pr.w.SSRC)
		}
		if w, _, s, _ := p.cStats(); w != 0 || s != 0 {
			t.Errorf("%s: the C thread ran (%d wake-ups, %d silence packets)", name, w, s)
		}
	}
}

// TestCPacerFollowsSessionChange: when the writer is moved to another session mid-prompt (a re-INVITE with a new
// remote address: diago forks the session, keeping its socket), the thread sends there within a few ticks, from
// the same socket, with the same SSRC and no hole in the sequence.
func TestCPacerFollowsSessionChange(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr := newRTPPair(t)
	sink2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink2.Close()
	p := &Pacer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Play(ctx, pr.w, dmedia.CodecAudioAlaw, filled(0x11, 10), true) }()
	buf := make([]byte, 1500)
	for range 3 {
		pr.sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := pr.sink.Read(buf); err != nil {
			t.Fatalf("no audio: %v", err)
		}
	}
	fork := pr.sess.Fork()
	fork.SetRemoteAddr(sink2.LocalAddr().(*net.UDPAddr))
	pr.w.UpdateRTPSession(dmedia.NewRTPSession(fork))
	var moved []rxPacket
	for len(moved) < 5 {
		sink2.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := sink2.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("nothing at the new address: %v", err)
		}
		var pk rxPacket
		if err := pk.Unmarshal(bytes.Clone(buf[:n])); err != nil {
			t.Fatal(err)
		}
		pk.from = from
		moved = append(moved, pk)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Play returned %v", err)
	}
	p.Wait()
	before := receive(t, pr.sink, 50*time.Millisecond) // what was sent to the old address, after the 3 read
	if len(before) == 0 {
		t.Fatal("no packets to the old address after the first three")
	}
	last := before[len(before)-1]
	if moved[0].SSRC != last.SSRC || moved[0].SequenceNumber != last.SequenceNumber+1 || moved[0].from.Port != pr.sess.Laddr.Port {
		t.Errorf("first packet at the new address: SSRC %d seq %d from port %d; last at the old one SSRC %d seq %d; call's port %d",
			moved[0].SSRC, moved[0].SequenceNumber, moved[0].from.Port, last.SSRC, last.SequenceNumber, pr.sess.Laddr.Port)
	}
}

// TestDiagoLogHandler: diago's warning about a receiver report on another SSRC (every report on the pacer's SSRC)
// is dropped; its other lines pass.
func TestDiagoLogHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(DiagoLogHandler(slog.NewTextHandler(&b, nil))).With("call", 1)
	log.Warn(rrForeignSSRC, "ssrc", 1, "expected", 0)
	log.Warn("something else")
	if out := b.String(); strings.Contains(out, rrForeignSSRC) || !strings.Contains(out, "something else") || !strings.Contains(out, "call=1") {
		t.Fatalf("logged %q", out)
	}
}

package media

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	dmedia "github.com/emiago/diago/media"
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

// TestPacerWakeups: N calls on one loop cost one wake-up per packet time, not N; the calls get their packets in
// order, every one, and Play returns when the audio ends.
func TestPacerWakeups(t *testing.T) {
	const calls = 40
	p := &Pacer{PerLoop: 100}
	audio := make([]byte, 160*25) // 25 packets = 0.5 s
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
				if _, err := pairs[i].sink.Read(buf); err != nil {
					return
				}
				counts[i]++
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
			t.Errorf("call %d received %d packets, want 25", i, c)
		}
	}
	// One loop serves all 40 calls: about 25 wake-ups (a few more if calls joined across ticks, fewer if a late
	// loop caught up), never one per packet.
	if wakeups > 40 || wakeups*int64(calls)/2 > packets {
		t.Fatalf("%d wake-ups for %d packets of %d calls", wakeups, packets, calls)
	}
}

// TestPacerStopsOnContext: Play returns soon after its context ends and nothing is written afterwards.
func TestPacerStopsOnContext(t *testing.T) {
	pr := newRTPPair(t)
	p := &Pacer{}
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
	p.Wait()
	_, before := p.Stats()
	time.Sleep(3 * packetTime)
	if _, after := p.Stats(); after != before {
		t.Fatalf("%d packets written after Play returned", after-before)
	}
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

package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/zaf/g711"
)

// ev builds an RFC 4733 payload: event, end bit, duration.
func ev(event byte, end bool, dur uint16) []byte {
	b := []byte{event, 10, 0, 0}
	if end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], dur)
	return b
}

type pkt struct {
	pt      uint8
	ts      uint32
	marker  bool
	payload []byte
}

func TestDTMFDetector(t *testing.T) {
	audio := make([]byte, 160)
	tests := []struct {
		name string
		pkts []pkt
		want string
	}{
		{"one digit, three end packets", []pkt{{101, 100, true, ev(5, false, 160)}, {101, 100, false, ev(5, false, 320)},
			{101, 100, false, ev(5, true, 480)}, {101, 100, false, ev(5, true, 480)}, {101, 100, false, ev(5, true, 480)}}, "5"},
		// B1: SIPp's pcaps start an event with Duration 0; diago's reader drops such digits.
		{"start with duration 0", []pkt{{101, 200, true, ev(11, false, 0)}, {101, 200, false, ev(11, true, 800)}, {101, 200, false, ev(11, true, 800)}}, "#"},
		// B2: diago's writer reuses one timestamp for back-to-back digits; the event code tells them apart.
		{"same timestamp, different digits", []pkt{{101, 0, true, ev(1, false, 160)}, {101, 0, false, ev(1, true, 800)},
			{101, 0, true, ev(2, false, 160)}, {101, 0, false, ev(2, true, 800)}}, "12"},
		{"same digit twice, new timestamp", []pkt{{101, 0, true, ev(7, true, 800)}, {101, 0, false, ev(7, true, 800)},
			{101, 1600, true, ev(7, true, 800)}}, "77"},
		{"audio and other payload types ignored", []pkt{{8, 0, false, audio}, {0, 160, false, audio}, {100, 5, true, ev(3, true, 800)}}, ""},
		{"no end packet, no digit", []pkt{{101, 0, true, ev(4, false, 160)}, {101, 0, false, ev(4, false, 320)}}, ""},
		{"short payload", []pkt{{101, 0, true, []byte{1, 2}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []rune
			d := &DTMFDetector{PT: 101, OnDigit: func(r rune) { got = append(got, r) }}
			for _, p := range tc.pkts {
				isEvent := d.Observe(p.pt, p.ts, p.marker, p.payload)
				if isEvent != (p.pt == 101) {
					t.Errorf("Observe(pt %d) reported event=%v", p.pt, isEvent)
				}
			}
			if string(got) != tc.want {
				t.Errorf("digits %q, want %q", string(got), tc.want)
			}
		})
	}
}

func TestParseINFODigit(t *testing.T) {
	tests := []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay; charset=x", "signal = #\r\n", '#', true},
		{"Application/DTMF-Relay", "Duration=100\r\nSignal=*", '*', true},
		{"application/dtmf", "9", '9', true},
		{"application/dtmf", "a", 'A', true},
		{"application/dtmf-relay", "Signal=55", 0, false},
		{"application/dtmf-relay", "Signal=x", 0, false},
		{"application/dtmf-relay", "", 0, false},
		{"text/plain", "5", 0, false},
	}
	for _, tc := range tests {
		got, ok := ParseINFODigit(tc.ct, []byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseINFODigit(%q, %q) = %q %v, want %q %v", tc.ct, tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPrompts(t *testing.T) {
	p := DefaultPrompts()
	for _, pr := range []Prompt{p.Greeting, p.Queue, p.Hold, p.Voicemail, p.Closed, p.Beep, p.Thanks, ShortPrompt()} {
		if err := CheckWAV(pr.WAV); err != nil || pr.Duration() <= 0 {
			t.Errorf("prompt %s: %v (%.1f s)", pr.Name, err, pr.Duration())
		}
	}
	stereo := append([]byte(nil), p.Beep.WAV...)
	binary.LittleEndian.PutUint16(stereo[22:], 2)
	if CheckWAV(stereo) == nil {
		t.Error("stereo WAV accepted")
	}
	if CheckWAV([]byte("RIFF....WAVEjunk")) == nil {
		t.Error("junk accepted")
	}
	dir := t.TempDir()
	if err := WriteDefaults(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadPrompts(dir)
	if err != nil || len(loaded.Greeting.WAV) != len(p.Greeting.WAV) {
		t.Fatalf("LoadPrompts: %v", err)
	}
}

// tone returns one 20 ms G.711 A-law frame of a sine-ish square wave (loud enough to measure).
func frame(level int16) []byte {
	pcm := make([]byte, 320)
	for i := 0; i < 160; i++ {
		v := level
		if i%20 < 10 {
			v = -level
		}
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return g711.EncodeAlaw(pcm)
}

func TestRecorderAlignsChannelsOnTheClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "rec.wav")
	r, err := NewRecorder(path, 2, dmedia.CodecAudioAlaw)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	r.Write(0, frame(8000), t0) // before Start: ignored
	r.Start(t0)
	// Left talks for the first second, right only in the second half of it.
	for i := 1; i <= 50; i++ {
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		r.Write(0, frame(8000), at)
		if i > 25 {
			r.Write(1, frame(8000), at)
		}
	}
	size, dur, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if dur < 990*time.Millisecond || dur > 1010*time.Millisecond || size != 44+int64(dur.Seconds()*8000)*4 {
		t.Errorf("duration %s size %d", dur, size)
	}
	lv, err := Levels(path)
	if err != nil || len(lv) != 2 {
		t.Fatal(err)
	}
	// The right channel is silent for half the time: its RMS is ~1/sqrt(2) of the left's.
	if ratio := lv[1] / lv[0]; lv[0] < 0.1 || ratio < 0.6 || ratio > 0.8 {
		t.Errorf("levels %v (ratio %.2f): right channel not aligned", lv, ratio)
	}
	if _, _, err := r.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	unstarted, _ := NewRecorder(filepath.Join(t.TempDir(), "b.wav"), 1, dmedia.CodecAudioUlaw)
	if _, _, err := unstarted.Close(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unstarted recorder: %v", err)
	}
	if _, err := NewRecorder(path+"x", 1, dmedia.CodecAudioOpus); err == nil {
		t.Error("opus accepted")
	}
}

func TestRingEndsWithTheRightCause(t *testing.T) {
	// No provisional response: the ring must force the INVITE to return (no CANCEL possible, B4).
	r := NewRing(context.Background(), 10*time.Millisecond)
	<-r.Ctx.Done()
	if context.Cause(r.Ctx) != sipgo.WaitAnswerForceCancelErr || !r.RangOut() {
		t.Errorf("without 1xx: cause %v rangOut %v", context.Cause(r.Ctx), r.RangOut())
	}
	r.Stop()
	// After a 180 the ring ends with DeadlineExceeded, so sipgo sends CANCEL.
	r = NewRing(context.Background(), 10*time.Millisecond)
	r.OnResponse(&sip.Response{StatusCode: 180})
	<-r.Ctx.Done()
	if context.Cause(r.Ctx) != context.DeadlineExceeded {
		t.Errorf("with 1xx: cause %v", context.Cause(r.Ctx))
	}
	r.Stop()
	// The caller leaving aborts the ring (forced without 1xx) and does not count as ringing out.
	parent, cancel := context.WithCancel(context.Background())
	r = NewRing(parent, time.Hour)
	cancel()
	<-r.Ctx.Done()
	if context.Cause(r.Ctx) != sipgo.WaitAnswerForceCancelErr || r.RangOut() {
		t.Errorf("parent cancelled: cause %v rangOut %v", context.Cause(r.Ctx), r.RangOut())
	}
	r.Stop()
}

// TestWriteDefaultsUpdatesUntouchedOldDefaults: a prompt still byte-identical to a superseded default (the long
// greeting) is replaced by the current one; a prompt the operator recorded is left alone.
func TestWriteDefaultsUpdatesUntouchedOldDefaults(t *testing.T) {
	old, own := ToneWAV(300, 200*time.Millisecond), ToneWAV(500, 200*time.Millisecond)
	sum := sha256.Sum256(old)
	was := superseded["greeting"]
	superseded["greeting"] = hex.EncodeToString(sum[:])
	defer func() { superseded["greeting"] = was }()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "greeting.wav"), old, 0o644)
	os.WriteFile(filepath.Join(dir, "queue.wav"), own, 0o644)
	if err := WriteDefaults(dir); err != nil {
		t.Fatal(err)
	}
	g, _ := os.ReadFile(filepath.Join(dir, "greeting.wav"))
	q, _ := os.ReadFile(filepath.Join(dir, "queue.wav"))
	if !bytes.Equal(g, DefaultPrompts().Greeting.WAV) {
		t.Error("the untouched old greeting was not updated")
	}
	if !bytes.Equal(q, own) {
		t.Error("the operator's own queue prompt was overwritten")
	}
}

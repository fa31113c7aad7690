package phonetest

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"
)

// TestPhoneToPhone: two test phones call each other on loopback: the callee answers, audio flows both ways
// (each hears the other's tone), keypad digits arrive in order (the B2 timestamp fix), either side can hang up,
// and nothing is left running.
func TestPhoneToPhone(t *testing.T) {
	before := runtime.NumGoroutine()
	a, err := Start(Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{ToneHz: 1000, AnswerAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := a.Dial(ctx, "sip:agent@"+b.Addr(), DialOptions{From: "13812345678"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	var in *Call
	select {
	case in = <-b.Answered():
	case <-ctx.Done():
		t.Fatal("not answered")
	}
	if in.From != "13812345678" {
		t.Errorf("callee sees %q", in.From)
	}
	wait(t, func() bool { return call.Stats().Seconds > 1 && in.Stats().Seconds > 1 })
	if s := in.Stats(); s.RMS < 0.1 || math.Abs(s.FreqHz-440) > 40 {
		t.Errorf("callee hears %+v", s)
	}
	if s := call.Stats(); s.RMS < 0.1 || math.Abs(s.FreqHz-1000) > 60 {
		t.Errorf("caller hears %+v", s)
	}
	if err := call.SendDigits("159#"); err != nil {
		t.Fatal(err)
	}
	wait(t, func() bool { return len(in.Digits()) >= 4 })
	if got := in.Digits(); got != "159#" {
		t.Errorf("callee got digits %q", got)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatalf("callee hang-up: %v", err)
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("caller did not see the hang-up")
	}
	call.Hangup(ctx)
	a.Close()
	b.Close()
	wait(t, func() bool { return runtime.NumGoroutine() <= before+2 }) // +2: the sip/diago package-level helpers
}

func TestIgnoreAndReject(t *testing.T) {
	a, _ := Start(Options{})
	defer a.Close()
	b, _ := Start(Options{Mode: Reject})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Dial(ctx, "sip:x@"+b.Addr(), DialOptions{}); err == nil {
		t.Fatal("rejecting phone answered")
	}
	b.SetMode(Ignore)
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := a.Dial(short, "sip:x@"+b.Addr(), DialOptions{}); err == nil {
		t.Fatal("ignoring phone answered")
	}
	if b.Rang() != 2 {
		t.Errorf("rang %d times", b.Rang())
	}
}

func wait(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met")
}

package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Components stop stage by stage, each stage only after the one before has returned, after readiness is
// withdrawn; a component's final step runs after it returned; one without a stage stops with HTTP.
func TestStagedStop(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	comp := func(name string, st stage, linger time.Duration) component {
		return component{name: name, stage: st, run: func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(linger) // finishing its work: the next stage must wait for it
			note(name)
			return nil
		}}
	}
	relay := comp("relay", stageRelay, 0)
	relay.after = func(context.Context) error { note("relay final pass"); return nil }
	comps := []component{relay, comp("http", stageHTTP, 0), comp("hub", stageUnset, 0), comp("sweeper", stageSweepers, 0),
		comp("dialer", stageDialer, 50*time.Millisecond), comp("dialer sip", stageDialerSIP, 0), comp("sip", stageCalls, 100*time.Millisecond)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runComponents(ctx, comps, 10*time.Second, func() { note("readiness 503") }, slog.New(slog.DiscardHandler))
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"readiness 503", "sip", "dialer", "dialer sip", "http|hub", "http|hub", "sweeper", "relay", "relay final pass"}
	if len(order) != len(want) {
		t.Fatalf("order %v", order)
	}
	for i, w := range want {
		if w == "http|hub" {
			if order[i] != "http" && order[i] != "hub" {
				t.Fatalf("order %v, want %v", order, want)
			}
			continue
		}
		if order[i] != w {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

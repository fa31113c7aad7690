package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// stage orders the shutdown. On SIGTERM (or when a component fails) the process first answers 503 on /readyz,
// then stops the stages in this order, each only after every component of the one before has returned:
//
//	stageCalls     SIP intake stops taking INVITEs (503) and lets calls up finish (HOTLINE_SIP_DRAIN_TIMEOUT)
//	stageDialer    the dialer stops placing calls and finishes those up; click-to-call likewise
//	stageDialerSIP the process's SIP user agent closes, once no call (in or out) uses it
//	stageHTTP      the HTTP server stops accepting and finishes requests; websockets close
//	stageSweepers  SLA and after-call-work sweepers stop
//	stageRelay     the outbox relay stops, then makes a final pass so what the stages before wrote is published
//	stageLast      watchers of the embedded servers (hotline up)
//
// After the last stage the pools close (App.close). Components start in the reverse order, so a component's
// dependencies run before it. A new component picks the stage whose work it must finish before or after: e.g.
// a websocket hub belongs to stageHTTP, a notification sender that reads the event stream to stageSweepers.
type stage int

const (
	// stageUnset is a component added without a stage: it stops with HTTP (a websocket hub, an API helper),
	// the safe middle — after calls and the dialer have drained, before sweepers, the relay and the pools.
	stageUnset stage = iota
	stageCalls
	stageDialer
	stageDialerSIP
	stageHTTP
	stageSweepers
	stageRelay
	stageLast
	numStages
)

// component is a long-running part of the process. run serves until its ctx ends, then finishes its work and
// returns; after, if set, runs once run has returned, with the time left of the shutdown.
type component struct {
	name  string
	stage stage
	run   func(ctx context.Context) error
	after func(ctx context.Context) error
	// role, when set, runs the component only in processes that have it (HOTLINE_ROLES); unset: every process.
	role string
}

func (a *App) add(c component) {
	if c.role != "" && !a.cfg.Scale.has(c.role) {
		return
	}
	a.components = append(a.components, c)
}

func (c component) stopStage() stage {
	if c.stage == stageUnset {
		return stageHTTP
	}
	return c.stage
}

// runComponents starts every component and returns once ctx ends or one fails, after stopping them stage by
// stage (see stage). onStop runs first (readiness → 503). Stopping is bounded by timeout in all; a component
// still running then is abandoned with its error logged (the process is about to exit).
func runComponents(ctx context.Context, comps []component, timeout time.Duration, onStop func(), log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) error {
	type running struct {
		c      component
		cancel context.CancelFunc
		done   chan struct{}
		err    error
	}
	failed := make(chan struct{})
	var failOnce sync.Once
	var rs []*running
	for s := numStages - 1; s > stageUnset; s-- { // start in reverse order of stopping
		for _, c := range comps {
			if c.stopStage() != s {
				continue
			}
			cctx, cancel := context.WithCancel(context.Background())
			r := &running{c: c, cancel: cancel, done: make(chan struct{})}
			rs = append(rs, r)
			go func() {
				defer close(r.done)
				r.err = c.run(cctx)
				if cctx.Err() == nil { // returned before it was asked to stop
					if r.err == nil {
						r.err = errors.New("stopped by itself")
					}
					failOnce.Do(func() { close(failed) })
				}
			}()
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case <-failed:
		runErr = errors.New("a component stopped")
	}
	if onStop != nil {
		onStop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for s := stageCalls; s < numStages; s++ {
		var inStage []*running
		for _, r := range rs {
			if r.c.stopStage() == s {
				r.cancel()
				inStage = append(inStage, r)
			}
		}
		for _, r := range inStage {
			select {
			case <-r.done:
			case <-sctx.Done():
				log.Warn("shutdown timeout: component still running", "component", r.c.name)
				continue
			}
			if r.err != nil && !errors.Is(r.err, context.Canceled) {
				log.Warn("component ended with an error", "component", r.c.name, "err", r.err)
				if runErr != nil {
					runErr = fmt.Errorf("%s: %w", r.c.name, r.err)
				}
			}
			if r.c.after != nil {
				if err := r.c.after(sctx); err != nil {
					log.Warn("component's final step failed", "component", r.c.name, "err", err)
				}
			}
		}
	}
	return runErr
}

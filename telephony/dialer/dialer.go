// Package dialer runs outbound campaign calls. Any number of processes may run it against one PostgreSQL and
// one Redis:
//
//   - the scheduler (one process at a time holds a Redis lease to be it) puts due targets of running campaigns on
//     a Redis stream at each campaign's pace, only inside its calling windows; once a second it also closes the
//     attempts of dead processes as interrupted, re-adds stream entries that were lost, finishes campaigns whose
//     targets are all final, and publishes progress;
//   - workers in every process read the stream (one consumer group), take a channel of the trunk and of the
//     campaign (leases in Redis sorted sets, so caps hold across processes and a dead process's channels expire),
//     claim the target in PostgreSQL (one transaction re-checks window, opt-out and daily cap and writes the
//     attempt row), wait for the campaign's next pace slot (a schedule in Redis shared by all processes, so the
//     pace is a ceiling on the wire in every second: pace.go), place the call, and record its result (one transaction: attempt, target, household timeline,
//     tickets);
//   - a heartbeat row per process in PostgreSQL tells the scheduler which attempts in progress are still alive.
//
// What stays true when a process is killed at any moment: a target is called only after its attempt row is
// committed, so every call is counted against the retry rules and the daily cap; an attempt whose process stopped
// beating is recorded as interrupted and the retry rules decide about the next call; a stream entry that was lost
// leaves its target queued in PostgreSQL and is re-added; a duplicate entry is harmless because a target is
// claimed only from state queued with the attempt count it was queued with.
//
// Run(ctx) starts everything and returns when ctx ends, after the calls in progress have ended (each is bounded
// by DrainTimeout).
package dialer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing/campaign"
)

// PhoneBook resolves a target's phone numbers at dial time, so that numbers are never copied into campaign
// tables; the monitoring records (decrypting) and tickets satisfy it.
type PhoneBook interface {
	Phones(ctx context.Context, household campaign.HouseholdID, ticket campaign.TicketID) ([]string, error)
}

// Placer places one campaign call (the SIP UA; tests may use another peer).
type Placer interface {
	Place(ctx context.Context, p CallPlan) campaign.Result
}

// Publisher publishes progress events (ticketing's outbox → Redis event stream → consoles).
type Publisher func(ctx context.Context, topic, key string, payload any) error

// Config of the dialer engine.
type Config struct {
	Prefix            string // Redis key prefix
	WorkerID          string // unique per process; default host-pid-random
	Workers           int    // simultaneous calls this process may place
	Trunks            map[string]Trunk
	Tick              time.Duration // scheduler tick (default 20 ms)
	HeartbeatInterval time.Duration // default 1 s
	DeadAfter         time.Duration // a process silent this long is dead (default 5 s)
	StaleQueued       time.Duration // re-add queued targets after this (default 30 s)
	LeaseTTL          time.Duration // channel lease, renewed while the call lasts (default 10 s)
	DrainTimeout      time.Duration // how long calls may finish after ctx ends (default 30 s)
	Backlog           int           // queued targets per campaign at most (default: a second of pace, ≥ 10)
	PaceMargin        time.Duration // a campaign's pace holds over any window of 1 s + this (default 20 ms; pace.go)
}

func (c *Config) defaults() {
	if c.WorkerID == "" {
		h, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d-%d", h, os.Getpid(), time.Now().UnixNano()%1e6)
	}
	if c.Workers <= 0 {
		c.Workers = 200
	}
	if c.Tick <= 0 {
		c.Tick = 20 * time.Millisecond
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 5 * time.Second
	}
	if c.StaleQueued <= 0 {
		c.StaleQueued = 30 * time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.PaceMargin <= 0 {
		c.PaceMargin = 20 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
}

// Dialer is the engine of one process.
type Dialer struct {
	cfg     Config
	svc     *campaign.Service
	rdb     *redis.Client
	placer  Placer
	phones  PhoneBook
	publish Publisher
	log     *slog.Logger

	stream, group string

	mu        sync.Mutex
	leases    map[string][]string // lease member → keys it is held in
	camps     map[campaign.ID]*campaign.Campaign
	published map[campaign.ID]string // last progress published, to skip repeats
	m         *metrics
}

// New returns a dialer engine.
func New(cfg Config, svc *campaign.Service, rdb *redis.Client, placer Placer, phones PhoneBook, publish Publisher, log *slog.Logger) *Dialer {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dialer{cfg: cfg, svc: svc, rdb: rdb, placer: placer, phones: phones, publish: publish, log: log,
		stream: cfg.Prefix + "dialer:jobs", group: "dialers", leases: map[string][]string{}, camps: map[campaign.ID]*campaign.Campaign{},
		published: map[campaign.ID]string{}}
	d.m = newMetrics(d)
	return d
}

// WorkerID names this process in attempt rows.
func (d *Dialer) WorkerID() string { return d.cfg.WorkerID }

// Run runs heartbeat, scheduler and workers until ctx ends.
func (d *Dialer) Run(ctx context.Context) error {
	if err := d.rdb.XGroupCreateMkStream(ctx, d.stream, d.group, "0").Err(); err != nil && !isBusyGroup(err) {
		return fmt.Errorf("dialer stream: %w", err)
	}
	host, _ := os.Hostname()
	if err := d.svc.Heartbeat(ctx, d.cfg.WorkerID, host); err != nil {
		return err
	}
	// Calls get a context that outlives ctx by DrainTimeout, so SIGTERM lets them finish.
	callCtx, stopCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCalls()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); d.heartbeat(ctx, callCtx, host) }()
	go func() { defer wg.Done(); d.schedule(ctx) }()
	go func() { defer wg.Done(); d.renewLeases(callCtx) }()
	var workers sync.WaitGroup
	d.read(ctx, callCtx, &workers)
	<-ctx.Done()
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.DrainTimeout):
		d.log.Warn("dialer drain timeout: hanging up calls in progress")
		stopCalls()
		<-done
	}
	stopCalls()
	wg.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = d.svc.Retire(rctx, d.cfg.WorkerID)
	return nil
}

func isBusyGroup(err error) bool {
	return err != nil && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP"
}

// heartbeat keeps this process's row fresh until the calls have drained.
func (d *Dialer) heartbeat(ctx, callCtx context.Context, host string) {
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-callCtx.Done():
			return
		case <-t.C:
			hctx, cancel := context.WithTimeout(callCtx, d.cfg.HeartbeatInterval)
			if err := d.svc.Heartbeat(hctx, d.cfg.WorkerID, host); err != nil && callCtx.Err() == nil {
				d.log.Warn("dialer heartbeat failed", "err", err)
			}
			cancel()
		}
		if ctx.Err() != nil && d.inFlight() == 0 {
			return
		}
	}
}

func (d *Dialer) inFlight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.leases)
}

// campaignCached returns a campaign's settings, refreshed by the scheduler's loop or loaded on first use.
func (d *Dialer) campaignCached(ctx context.Context, id campaign.ID) (*campaign.Campaign, error) {
	d.mu.Lock()
	c, ok := d.camps[id]
	d.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := d.svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.camps[id] = c
	d.mu.Unlock()
	return c, nil
}

func (d *Dialer) forgetCampaigns() {
	d.mu.Lock()
	d.camps = map[campaign.ID]*campaign.Campaign{}
	d.mu.Unlock()
}

// read takes entries from the stream as long as this process has free workers, and runs each attempt in a
// goroutine of its own (tracked by workers). One reader per process: blocking reads hold a Redis connection.
func (d *Dialer) read(ctx, callCtx context.Context, workers *sync.WaitGroup) {
	free := make(chan struct{}, d.cfg.Workers)
	for i := 0; i < d.cfg.Workers; i++ {
		free <- struct{}{}
	}
	for ctx.Err() == nil {
		// Wait for at least one free worker, then read as many entries as are free (up to 50).
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		n := 1
		for n < 50 {
			select {
			case <-free:
				n++
				continue
			default:
			}
			break
		}
		res, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: d.group, Consumer: d.cfg.WorkerID,
			Streams: []string{d.stream, ">"}, Count: int64(n), Block: 500 * time.Millisecond}).Result()
		if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
			if isNoGroup(err) {
				_ = d.rdb.XGroupCreateMkStream(ctx, d.stream, d.group, "0").Err()
			} else {
				d.log.Warn("dialer stream read", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
		}
		var ids []string
		var qs []campaign.Queued
		for _, s := range res {
			for _, m := range s.Messages {
				ids = append(ids, m.ID)
				if q, ok := parseEntry(m.Values); ok {
					qs = append(qs, q)
				}
			}
		}
		if len(ids) > 0 {
			// PostgreSQL, not the stream, keeps the target: an entry lost from here on is re-added by the scheduler.
			pipe := d.rdb.Pipeline()
			pipe.XAck(ctx, d.stream, d.group, ids...)
			pipe.XDel(ctx, d.stream, ids...)
			_, _ = pipe.Exec(ctx)
		}
		for i := len(qs); i < n; i++ {
			free <- struct{}{}
		}
		for _, q := range qs {
			workers.Add(1)
			go func() {
				defer workers.Done()
				defer func() { free <- struct{}{} }()
				d.attempt(ctx, callCtx, q)
			}()
		}
	}
}

func isNoGroup(err error) bool {
	return err != nil && len(err.Error()) >= 7 && err.Error()[:7] == "NOGROUP"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func parseEntry(v map[string]any) (campaign.Queued, bool) {
	num := func(k string) (int64, bool) {
		s, ok := v[k].(string)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	c, ok1 := num("c")
	t, ok2 := num("t")
	a, ok3 := num("a")
	return campaign.Queued{Campaign: campaign.ID(c), Target: campaign.TargetID(t), Attempts: int(a)}, ok1 && ok2 && ok3
}

// attempt runs one queued target through claim, call and result.
func (d *Dialer) attempt(ctx, callCtx context.Context, q campaign.Queued) {
	c, err := d.campaignCached(ctx, q.Campaign)
	if err != nil {
		d.log.Warn("dialer: campaign of entry", "campaign_id", q.Campaign, "err", err)
		return
	}
	trunk, ok := d.cfg.Trunks[c.Trunk]
	if !ok {
		d.log.Error("dialer: campaign names an unknown trunk", "campaign_id", c.ID, "trunk", c.Trunk)
		return
	}
	member := "t" + strconv.FormatInt(int64(q.Target), 10)
	keys := []string{d.cfg.Prefix + "dialer:chan:" + trunk.Name, d.cfg.Prefix + "dialer:camp:" + strconv.FormatInt(int64(c.ID), 10)}
	caps := []int{trunk.Channels, c.MaxConcurrent}
	// Wait for a channel; the target stays queued meanwhile (the scheduler keeps queued + dialing within the
	// campaign's cap, so this wait is for the trunk shared with other campaigns, and short).
	wait := 5 * time.Millisecond
	for {
		got, err := d.acquire(ctx, keys, caps, member)
		if err != nil {
			d.log.Warn("dialer: channel lease", "err", err)
		}
		if got {
			break
		}
		if ctx.Err() != nil {
			return
		}
		sleep(ctx, wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
	defer d.release(member)
	job, err := d.svc.Claim(ctx, q, d.cfg.WorkerID)
	if errors.Is(err, campaign.ErrNotClaimable) {
		return
	}
	if err != nil {
		d.log.Error("dialer: claim", "target_id", q.Target, "err", err)
		return
	}
	log := d.log.With("campaign_id", c.ID, "target_id", job.Target.ID, "attempt_id", job.Attempt.ID)
	var result campaign.Result
	phones, err := d.phones.Phones(callCtx, job.Target.HouseholdID, job.Target.TicketID)
	if err != nil || len(phones) == 0 {
		log.Warn("dialer: no phone for target", "err", err)
		result = campaign.Result{Outcome: campaign.OutcomeFailed, EndedAt: time.Now()}
	} else if err := d.waitPace(ctx, c); err != nil {
		// Shutting down (or Redis gone) before the call's slot: no call was placed, so the claim is undone and
		// the target goes back to the queue unspent (if even that fails, the sweeper records the attempt as
		// interrupted once this process has retired).
		if ctx.Err() == nil {
			log.Warn("dialer: pace", "err", err)
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(callCtx), 5*time.Second)
		defer cancel()
		if err := d.svc.Unclaim(uctx, job.Attempt.ID); err != nil {
			log.Error("dialer: unclaim", "err", err)
		}
		return
	} else {
		number := phones[job.Attempt.PhoneIndex%len(phones)]
		result = d.placer.Place(callCtx, CallPlan{Trunk: trunk, Number: number, CallerID: job.Campaign.CallerID,
			RingTimeout: job.Campaign.RingTimeout(), Script: job.Campaign.Script, OptOutKey: job.Campaign.OptOutKey})
	}
	if result.Outcome == campaign.OutcomeInterrupted {
		return // hard stop: leave the attempt in progress; the sweeper records it once this process stops beating
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(callCtx), 10*time.Second)
	defer cancel()
	if err := d.svc.Finish(fctx, job.Attempt.ID, result); err != nil && !errors.Is(err, campaign.ErrAlreadyFinished) {
		log.Error("dialer: record result", "err", err)
		return
	}
	d.m.attempts.WithLabelValues(string(result.Outcome)).Inc()
}

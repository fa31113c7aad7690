// Package deliver turns events into SMS, WeChat Work and email messages and delivers each once per (event,
// recipient, channel), never losing one.
//
// How it runs (Service.Run, in every process):
//
//   - intake: a Redis consumer group ("notify") on the event stream <prefix>events. Each read batch becomes
//     delivery rows in one PostgreSQL transaction (unique on event, recipient and channel, so a re-read adds
//     nothing), and only after the commit are the entries acknowledged (XACK). A process that dies in between
//     leaves them pending in the group; another process claims them (XAUTOCLAIM) after ClaimIdle and reads them
//     again. The consumer group, rather than a position kept in PostgreSQL, lets any number of processes share
//     the stream without each reading every event, and keeps the stream's own at-least-once bookkeeping.
//   - workers: claim due rows with FOR UPDATE SKIP LOCKED, push each claim's due time a lease ahead and log an
//     attempt, send without holding a transaction, then record the answer. A process that dies after the
//     provider accepted and before the answer was recorded leaves the row due again when the lease ends; the
//     retry carries the same idempotency key (OutId, SessionContext, Idempotency-Key, Message-ID), derived
//     from (event, recipient, channel) and kept on the row. Failures back off exponentially with jitter; after
//     MaxAttempts the row is dead with its last error, and an admin may retry it.
//   - digest: once a day (DigestAt, China time) one process writes each unit's digest rows.
//
// A provider that is down costs only its own rows: sends time out, a circuit breaker per channel stops
// claiming its rows for a while, and intake never waits on a provider. Phone numbers are sealed in the rows
// (pii) and opened only to send; logs, the API and the delivery log show them masked.
package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"hotline/notify/mail"
	"hotline/notify/sms"
	"hotline/notify/wecom"
	"hotline/ticketing/calendar"
	"hotline/ticketing/monitoring/pii"
)

// Channel names.
const (
	ChannelSMS        = "sms"
	ChannelWecomRobot = "wecom_robot"
	ChannelWecomApp   = "wecom_app"
	ChannelEmail      = "email"
)

// Channels are the senders; a nil one means the channel is not configured and its rules make no rows.
type Channels struct {
	SMS   sms.Provider
	Robot *wecom.Robot
	App   *wecom.App
	Mail  *mail.Sender
}

func (c Channels) has(ch string) bool {
	switch ch {
	case ChannelSMS:
		return c.SMS != nil
	case ChannelWecomRobot:
		return c.Robot != nil
	case ChannelWecomApp:
		return c.App != nil
	case ChannelEmail:
		return c.Mail != nil
	}
	return false
}

// Options configure the service; zero values give the documented defaults.
type Options struct {
	DB       *pgxpool.Pool
	Redis    *redis.Client
	Prefix   string // Redis key prefix
	Box      *pii.Box
	Channels Channels
	Log      *slog.Logger

	Concurrency int           // sends in flight per process; default 64
	Batch       int           // rows per claim; default 32
	MaxAttempts int           // retry budget; default 10
	BackoffBase time.Duration // first retry after about this; default 10s
	BackoffMax  time.Duration // default 30m
	Lease       time.Duration // a claimed row is due again after this if never recorded; default 2m
	SendTimeout time.Duration // per send; default 10s
	Poll        time.Duration // how often idle workers look for due rows; default 500ms
	ClaimIdle   time.Duration // stream entries pending this long in a dead consumer are taken over; default 30s

	QuietStart, QuietEnd time.Duration // public SMS quiet hours as time of day, China time; default 21:00–08:00
	NoQuietHours         bool          // send public SMS at any hour
	DailyCap             int           // SMS to one caller's number per day; default 5 (0 in config means default)
	DigestAt             time.Duration // time of day of the daily digest, China time; default 08:30; <0 disables
	QueryURL             string        // where callers check progress (in SMS templates as {query_url})

	BreakerFailures int           // consecutive failures that open a channel's breaker; default 5
	BreakerCooldown time.Duration // default 30s

	Now func() time.Time // clock (tests); default time.Now

	afterSend func(id int64) error // test hook: runs between the provider's answer and recording it
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Batch <= 0 {
		o.Batch = 32
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 10 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.Lease < 2*o.SendTimeout {
		// A claim must outlive its send, or a slow answer would let another worker send the row again.
		o.Lease = 2 * o.SendTimeout
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 30 * time.Second
	}
	if o.NoQuietHours {
		o.QuietStart, o.QuietEnd = 0, 0
	} else if o.QuietStart == 0 && o.QuietEnd == 0 {
		o.QuietStart, o.QuietEnd = 21*time.Hour, 8*time.Hour
	}
	if o.DailyCap <= 0 {
		o.DailyCap = 5
	}
	if o.DigestAt == 0 {
		o.DigestAt = 8*time.Hour + 30*time.Minute
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = 5
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// China is the time zone of quiet hours, digests and the dates in messages (the project's one definition).
var China = calendar.CST

// Service is the notification pipeline of one process.
type Service struct {
	opt      Options
	db       *pgxpool.Pool
	log      *slog.Logger
	now      func() time.Time
	kick     chan struct{}
	breakers map[string]*breaker
	m        *metrics
	consumer string
}

// New returns the service; call Run to start it.
func New(opt Options) (*Service, error) {
	opt.defaults()
	if opt.DB == nil || opt.Box == nil {
		return nil, fmt.Errorf("notify: a database and a personal-data box are required")
	}
	lanes := (opt.Concurrency + opt.Batch - 1) / opt.Batch
	s := &Service{opt: opt, db: opt.DB, log: opt.Log, now: opt.Now, kick: make(chan struct{}, lanes),
		breakers: map[string]*breaker{}, m: newMetrics(), consumer: consumerName()}
	for _, ch := range []string{ChannelSMS, ChannelWecomRobot, ChannelWecomApp, ChannelEmail} {
		s.breakers[ch] = &breaker{threshold: opt.BreakerFailures, cooldown: opt.BreakerCooldown}
	}
	return s, nil
}

// Run runs intake, the workers and the digest until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.opt.Redis != nil {
		g.Go(func() error { return s.runIntake(ctx) })
	}
	g.Go(func() error { return s.runWorkers(ctx) })
	if s.opt.DigestAt > 0 {
		g.Go(func() error { return s.runDigest(ctx) })
	}
	return g.Wait()
}

// Kick wakes the idle workers of this process (new rows are due).
func (s *Service) Kick() {
	for range cap(s.kick) {
		select {
		case s.kick <- struct{}{}:
		default:
			return
		}
	}
}

// Collectors returns the service's metrics.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.m.sent, s.m.failed, s.m.retried, s.m.dead, s.m.suppressed, s.m.lag, &backlog{db: s.db, now: s.now, log: s.log}}
}

package ticketing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RelayOptions configure the outbox relay.
type RelayOptions struct {
	Prefix       string        // Redis key prefix
	Batch        int           // rows per round; default 500
	PollInterval time.Duration // how often to look when not kicked; default 100ms
	EventsMaxLen int64         // approximate cap of the event stream; default 100000
	// WaitReplicas, when above 0, keeps outbox rows until that many Redis replicas have acknowledged their
	// publication (WAIT, on the connection that wrote them). Redis replicates asynchronously: without it, a
	// primary killed just after a publish loses those events in the failover, and the rows are already deleted.
	WaitReplicas int
	WaitTimeout  time.Duration // how long WAIT blocks; default 1s (then the round fails and is retried)
	Log          *slog.Logger
}

// Relay publishes outbox rows to Redis: the event stream and the unit queues. Run it in as many processes as
// you like: each round locks a batch of rows (FOR UPDATE SKIP LOCKED), publishes them with one Lua call per row,
// and deletes them in the same transaction. A crash after publishing and before the delete leaves the rows to be
// published again; each row's marker key makes the replay a no-op, so no queue entry or event is doubled.
//
// Run blocks until ctx ends. Kick wakes it at once (the service calls it after a commit).
type Relay struct {
	db   org.TxBeginner
	rdb  *redis.Client
	opt  RelayOptions
	log  *slog.Logger
	kick chan struct{}
	pubs prometheus.Counter
	errs prometheus.Counter

	afterPublish func() error // test hook: runs between publishing and deleting
}

// NewRelay returns a relay; call Run to start it.
func NewRelay(db org.TxBeginner, rdb *redis.Client, opt RelayOptions) *Relay {
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = 100 * time.Millisecond
	}
	if opt.EventsMaxLen <= 0 {
		opt.EventsMaxLen = 100000
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.WaitTimeout <= 0 {
		opt.WaitTimeout = time.Second
	}
	return &Relay{db: db, rdb: rdb, opt: opt, log: opt.Log, kick: make(chan struct{}, 1),
		pubs: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_outbox_published_total", Help: "Outbox rows published to Redis."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_outbox_relay_errors_total", Help: "Failed relay rounds."}),
	}
}

// Kick wakes the relay without waiting.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends. Errors of one round are logged and retried after a pause.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := r.PublishOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.opt.PollInterval
		if err != nil {
			r.errs.Inc()
			r.log.Warn("outbox relay round failed", "err", err)
			wait = time.Second
		} else if n == r.opt.Batch {
			continue // more waiting
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

type outboxRow struct {
	id      int64
	topic   string
	key     string
	payload []byte
	queue   *queueOps
}

// PublishOnce publishes one batch and returns how many rows it handled.
func (r *Relay) PublishOnce(ctx context.Context) (int, error) {
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, topic, key, payload, queue FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.opt.Batch)
	if err != nil {
		return 0, fmt.Errorf("relay: read outbox: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		var q []byte
		if err := row.Scan(&o.id, &o.topic, &o.key, &o.payload, &q); err != nil {
			return o, err
		}
		if q != nil {
			o.queue = &queueOps{}
			if err := json.Unmarshal(q, o.queue); err != nil {
				return o, fmt.Errorf("outbox row %d: queue: %w", o.id, err)
			}
		}
		return o, nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay: read outbox: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	if err := r.publish(ctx, batch); err != nil {
		return 0, err
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(); err != nil {
			return 0, err
		}
	}
	ids := make([]int64, len(batch))
	for i, o := range batch {
		ids[i] = o.id
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("relay: delete published rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("relay: commit: %w", err)
	}
	r.pubs.Add(float64(len(batch)))
	return len(batch), nil
}

// markerTTL is how long a published row is remembered: far longer than any relay crash and restart.
const markerTTL = 24 * time.Hour

func (r *Relay) publish(ctx context.Context, batch []outboxRow) error {
	var wait *redis.Cmd
	err := runScripts(ctx, r.rdb, len(batch), func(pipe redis.Pipeliner, i int) {
		o := batch[i]
		args := queueArgs(fmt.Sprintf("%soutbox:%d", r.opt.Prefix, o.id), markerTTL, EventsKey(r.opt.Prefix),
			r.opt.EventsMaxLen, o.topic, o.key, o.payload, r.opt.Prefix, o.queue)
		pipe.EvalSha(ctx, queueScript.Hash(), nil, args...)
		if i == len(batch)-1 && r.opt.WaitReplicas > 0 {
			// In the same pipeline: WAIT counts the acknowledgements of this connection's writes.
			wait = pipe.Do(ctx, "WAIT", r.opt.WaitReplicas, r.opt.WaitTimeout.Milliseconds())
		}
	})
	if err != nil {
		return err
	}
	if wait != nil {
		if n, err := wait.Int64(); err != nil || n < int64(r.opt.WaitReplicas) {
			return fmt.Errorf("publish to redis: %d of %d replicas acknowledged within %v (%v); the rows stay in the outbox",
				n, r.opt.WaitReplicas, r.opt.WaitTimeout, err)
		}
	}
	return nil
}

// runScripts sends n queueScript calls in one pipeline, loading the script first when Redis does not have it
// (a restarted or flushed server); every call is idempotent, so the batch can simply be sent again.
func runScripts(ctx context.Context, rdb *redis.Client, n int, add func(pipe redis.Pipeliner, i int)) error {
	for attempt := 0; ; attempt++ {
		pipe := rdb.Pipeline()
		for i := range n {
			add(pipe, i)
		}
		cmds, err := pipe.Exec(ctx)
		if err == nil {
			return nil
		}
		noScript := false
		for _, c := range cmds {
			if c.Err() != nil && strings.HasPrefix(c.Err().Error(), "NOSCRIPT") {
				noScript = true
			}
		}
		if !noScript || attempt > 0 {
			return fmt.Errorf("publish to redis: %w", err)
		}
		if err := queueScript.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("publish to redis: load script: %w", err)
		}
	}
}

// Collectors returns the relay's metrics.
func (r *Relay) Collectors() []prometheus.Collector { return []prometheus.Collector{r.pubs, r.errs} }

// metrics reads queue depth from Redis and outbox lag from PostgreSQL at scrape time.
type metrics struct {
	q       *Queues
	db      org.DB
	depth   *prometheus.Desc
	lag     *prometheus.Desc
	backlog *prometheus.Desc
	log     *slog.Logger
}

// RegisterMetrics registers hotline_queue_depth{unit} (tickets waiting in each unit queue),
// hotline_outbox_lag_seconds (age of the oldest unpublished outbox row) and hotline_outbox_backlog (rows waiting).
func RegisterMetrics(reg prometheus.Registerer, db org.DB, q *Queues, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{q: q, db: db, log: log,
		depth:   prometheus.NewDesc("hotline_queue_depth", "Tickets waiting in a unit's Redis queue.", []string{"unit"}, nil),
		lag:     prometheus.NewDesc("hotline_outbox_lag_seconds", "Age of the oldest outbox row not yet published to Redis.", nil, nil),
		backlog: prometheus.NewDesc("hotline_outbox_backlog", "Outbox rows not yet published to Redis.", nil, nil),
	}
	return reg.Register(m)
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.lag
	ch <- m.backlog
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if d, err := m.q.Depth(ctx); err == nil {
		for u, n := range d {
			ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(n), fmt.Sprint(u))
		}
	} else {
		m.log.Warn("metrics: queue depth", "err", err)
	}
	var lag float64
	var n int64
	err := m.db.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8, count(*) FROM outbox`).Scan(&lag, &n)
	if err != nil && !errors.Is(err, context.Canceled) {
		m.log.Warn("metrics: outbox lag", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, lag)
	ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(n))
}

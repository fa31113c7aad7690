package deliver

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sent, failed, retried, dead *prometheus.CounterVec
	suppressed                  *prometheus.CounterVec
	lag                         *prometheus.HistogramVec
}

func newMetrics() *metrics {
	cv := func(name, help string, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	}
	return &metrics{
		sent:       cv("hotline_notify_sent_total", "Messages the provider accepted.", "channel"),
		failed:     cv("hotline_notify_failed_total", "Attempts that failed.", "channel"),
		retried:    cv("hotline_notify_retried_total", "Failed attempts scheduled for a retry.", "channel"),
		dead:       cv("hotline_notify_dead_total", "Deliveries that used up their retry budget or failed for good.", "channel"),
		suppressed: cv("hotline_notify_suppressed_total", "Deliveries not sent by rule (opt-out, daily cap).", "reason"),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hotline_notify_lag_seconds",
			Help:    "Time from the event to the provider's acceptance.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600, 43200}}, []string{"channel"}),
	}
}

// backlog reports the due rows and the age of the oldest at scrape time.
type backlog struct {
	db  *pgxpool.Pool
	now func() time.Time
	log *slog.Logger
}

var (
	dueDesc    = prometheus.NewDesc("hotline_notify_due", "Deliveries due and not yet sent.", nil, nil)
	oldestDesc = prometheus.NewDesc("hotline_notify_oldest_due_seconds", "How long the oldest due delivery has waited.", nil, nil)
)

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- dueDesc
	ch <- oldestDesc
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	var age float64
	err := b.db.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM $1 - min(next_at)), 0)::float8
		FROM notify_deliveries WHERE status = 'pending' AND next_at <= $1`, b.now()).Scan(&n, &age)
	if err != nil {
		b.log.Warn("metrics: notify backlog", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(dueDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}

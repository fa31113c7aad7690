package exchange

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the exchange's queue at scrape time, so every process reports the shared truth.
type collector struct {
	s       *Service
	rows    *prometheus.Desc
	oldest  *prometheus.Desc
	pending *prometheus.Desc
}

// Collector returns the exchange's metrics: hotline_exchange_outbound{platform,state} (rows queued for, sent to
// and dead-lettered at each platform), hotline_exchange_outbound_oldest_pending_seconds{platform} (how long the
// platform has been waiting for our oldest unsent action) and hotline_exchange_attachments_pending{platform}.
func (s *Service) Collector() prometheus.Collector {
	return &collector{s: s,
		rows:    prometheus.NewDesc("hotline_exchange_outbound", "Actions for a 12345 platform by state (pending, sent, dead).", []string{"platform", "state"}, nil),
		oldest:  prometheus.NewDesc("hotline_exchange_outbound_oldest_pending_seconds", "Age of the oldest action not yet accepted by the platform.", []string{"platform"}, nil),
		pending: prometheus.NewDesc("hotline_exchange_attachments_pending", "Attachments not yet fetched from the platform.", []string{"platform"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rows
	ch <- c.oldest
	ch <- c.pending
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := c.s.now()
	for _, name := range c.s.Platforms() {
		counts := map[string]float64{"pending": 0, "sent": 0, "dead": 0}
		var oldest *time.Time
		var attachments int64
		rows, err := c.s.db.Query(ctx, `SELECT state, count(*) FROM exchange_outbound WHERE platform = $1 GROUP BY state`, name)
		if err == nil {
			for rows.Next() {
				var st string
				var n int64
				if rows.Scan(&st, &n) == nil {
					counts[st] = float64(n)
				}
			}
			rows.Close()
			err = rows.Err()
		}
		if err == nil {
			err = c.s.db.QueryRow(ctx, `SELECT min(created_at) FROM exchange_outbound WHERE platform = $1 AND state = 'pending'`, name).Scan(&oldest)
		}
		if err == nil {
			err = c.s.db.QueryRow(ctx, `SELECT count(*) FROM exchange_attachments WHERE platform = $1 AND state = 'pending'`, name).Scan(&attachments)
		}
		if err != nil {
			c.s.log.Warn("exchange: metrics", "platform", name, "err", err)
			return
		}
		for st, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, n, name, st)
		}
		age := 0.0
		if oldest != nil {
			age = now.Sub(*oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, name)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(attachments), name)
	}
}

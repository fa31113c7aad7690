package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
)

// BenchmarkPipeline measures the whole pipeline — event stream → delivery rows → claim → SMS gateway (a local
// server answering after 50 ms) → recorded — at a steady offered rate, and reports the rate achieved and the
// lag from event to the gateway's acceptance. It runs once whatever b.N is:
//
//	go test ./notify/deliver -run '^$' -bench Pipeline -benchtime 1x
//
// NOTIFY_BENCH_RATE (events/s, default 600), NOTIFY_BENCH_SECONDS (default 10) and NOTIFY_BENCH_CONCURRENCY
// (default 64, the production default) and
// NOTIFY_BENCH_BATCH (rows per claim, default 32) change the load.
func BenchmarkPipeline(b *testing.B) {
	rate := envInt("NOTIFY_BENCH_RATE", 600)
	secs := envInt("NOTIFY_BENCH_SECONDS", 10)
	conc := envInt("NOTIFY_BENCH_CONCURRENCY", 64)
	r := newRig(b, func(r *rig, o *Options) {
		o.Now = time.Now
		o.NoQuietHours = true
		o.DailyCap = 1 << 30
		o.Concurrency = conc
		o.Batch = envInt("NOTIFY_BENCH_BATCH", 0)
		o.DigestAt = -1
	})
	r.gw.SetLatency(50 * time.Millisecond)
	// Callers: distinct numbers, so the per-number cap queries stay small as they do in production.
	const callers = 200
	ids := make([]int64, callers)
	for i := range callers {
		ids[i] = int64(r.callTicket(fmt.Sprintf("139%08d", i), func(n *ticketing.NewTicket) { n.Dispatch = false }).ID)
	}
	r.flow() // their own created events
	for r.sendDue() > 0 {
	}
	base := len(r.gw.Messages())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.svc.Run(ctx) }()

	total := rate * secs
	key := ticketing.EventsKey(r.prefix)
	start := time.Now()
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond)
	sent := 0
	for sent < total {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		pipe := r.rdb.Pipeline()
		for ; sent < due; sent++ {
			p, _ := json.Marshal(map[string]any{"ticket_id": ids[sent%callers], "lead_unit_id": 1, "status": "new",
				"action": "create", "at": time.Now().UTC().Format(time.RFC3339Nano)})
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: map[string]any{"topic": "ticket.created", "key": "x", "payload": string(p)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	deadline := time.Now().Add(2 * time.Minute)
	for len(r.gw.Messages())-base < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	got := len(r.gw.Messages()) - base
	var p50, p99, max float64
	err := r.db.QueryRow(context.Background(), `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY s), max(s)
		FROM (SELECT extract(epoch FROM sent_at - event_at)::float8 AS s FROM notify_deliveries
			WHERE status = 'sent' AND event_at >= $1) x`, start).Scan(&p50, &p99, &max)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(got)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(p50, "lag-p50-s")
	b.ReportMetric(p99, "lag-p99-s")
	b.ReportMetric(max, "lag-max-s")
	b.Logf("offered %d events at %d/s; %d messages accepted in %.2fs; lag p50 %.3fs p99 %.3fs max %.3fs", total, rate, got, elapsed.Seconds(), p50, p99, max)
	if got != total {
		b.Errorf("%d of %d messages delivered", got, total)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

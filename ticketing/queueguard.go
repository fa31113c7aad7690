package ticketing

import (
	"context"
	"log/slog"
	"time"
)

// GuardKey marks, in Redis, that the unit queues have been built from PostgreSQL. It is set when a rebuild
// starts; when Redis loses its data (flushed, replaced, restarted without persistence) the key is gone.
func GuardKey(prefix string) string { return prefix + "queues:built" }

// RunGuard keeps the unit queues whole across the loss of Redis's data: every interval it checks GuardKey and,
// when the key is missing, rebuilds the queues from PostgreSQL (RebuildQueues) — at most one process does, the
// one whose SET NX succeeds. It runs until ctx ends. Redis carries work, not truth (DESIGN.md): this is what
// makes "flush Redis and carry on" true without an operator running `hotline queues rebuild`.
func (q *Queues) RunGuard(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		took, err := q.rdb.SetNX(ctx, GuardKey(q.prefix), time.Now().UTC().Format(time.RFC3339), 0).Result()
		if err == nil && took {
			n, err := q.RebuildQueues(ctx)
			if err != nil {
				q.rdb.Del(context.WithoutCancel(ctx), GuardKey(q.prefix)) // try again next round
				if ctx.Err() == nil {
					log.Warn("rebuilding the unit queues failed", "err", err)
				}
			} else {
				log.Info("unit queues built from PostgreSQL", "tickets", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

package deliver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// runDigest checks every minute whether today's digest is due and, if no process wrote it yet, writes it.
func (s *Service) runDigest(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := s.DigestOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("notify: daily digest", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DigestOnce writes today's digest deliveries if the time has come and no process has written them: the
// notify_digests row for the day and every unit's rows commit together. It returns the number of rows.
func (s *Service) DigestOnce(ctx context.Context) (int, error) {
	now := s.now()
	day := dayStart(now)
	if now.Sub(day) < s.opt.DigestAt {
		return 0, nil
	}
	rules, err := loadRules(ctx, s.db, true)
	if err != nil {
		return 0, err
	}
	n := 0
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO notify_digests (day) VALUES ($1) ON CONFLICT DO NOTHING`, day.Format("2006-01-02"))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		// Only units someone can be told about; counts over the units' open tickets.
		rows, err := tx.Query(ctx, `SELECT c.unit_id,
				count(*) FILTER (WHERE t.status = 'dispatched'),
				count(*) FILTER (WHERE t.due_at >= $1 AND t.due_at < $2),
				count(*) FILTER (WHERE t.due_at < $3)
			FROM notify_unit_channels c
			LEFT JOIN tickets t ON t.lead_unit_id = c.unit_id AND t.status <> 'closed'
			GROUP BY c.unit_id ORDER BY c.unit_id`, day, day.AddDate(0, 0, 1), now)
		if err != nil {
			return err
		}
		type counts struct{ unit, pending, dueToday, overdue int64 }
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (counts, error) {
			var c counts
			return c, r.Scan(&c.unit, &c.pending, &c.dueToday, &c.overdue)
		})
		if err != nil {
			return err
		}
		evs := make([]event, 0, len(list))
		for _, c := range list {
			evs = append(evs, event{ID: fmt.Sprintf("digest:%d:%s", c.unit, day.Format("2006-01-02")), Topic: "digest.daily", At: now,
				UnitID: c.unit, Vars: map[string]string{"date": day.Format("2006-01-02"), "time": now.In(China).Format("15:04"),
					"pending": strconv.FormatInt(c.pending, 10), "due_today": strconv.FormatInt(c.dueToday, 10),
					"overdue": strconv.FormatInt(c.overdue, 10)}})
		}
		n, err = s.plan(ctx, tx, evs, rules)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("notify: daily digest: %w", err)
	}
	if n > 0 {
		s.Kick()
	}
	return n, nil
}

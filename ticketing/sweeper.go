package ticketing

import (
	"context"
	"fmt"
	"hotline/ticketing/org"
	"time"

	"github.com/jackc/pgx/v5"
)

// SLAAlert is one yellow or red alert the sweeper emitted.
type SLAAlert struct {
	TicketID org.TicketID `json:"ticket_id"`
	DueKind  DueKind      `json:"due_kind"`
	DueAt    time.Time    `json:"due_at"`
	Level    string       `json:"level"`
}

// Sweep emits sla.yellow and sla.red for running clocks that turned yellow or red: an event row on the ticket
// and an outbox row (topic sla.yellow / sla.red) in one transaction. The sla_alerts key (ticket, clock, deadline,
// level) makes each alert exactly-once even with several sweepers at once: the second waits for the first's
// insert and then finds the row there. A moved deadline (extension, reopen) is a new deadline and alerts again.
func (s *Service) Sweep(ctx context.Context) ([]SLAAlert, error) {
	now := s.now()
	var alerts []SLAAlert
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT id, due_kind, due_at, 'red' AS level FROM tickets
				WHERE due_at IS NOT NULL AND yellow_at <= $1 AND due_at <= $1 -- yellow_at is never after due_at: the index serves both
				UNION ALL
				SELECT id, due_kind, due_at, 'yellow' FROM tickets
				WHERE due_at IS NOT NULL AND yellow_at <= $1 AND due_at > $1
			)
			INSERT INTO sla_alerts (ticket_id, due_kind, due_at, level)
			SELECT id, due_kind, due_at, level FROM due ORDER BY id
			ON CONFLICT DO NOTHING
			RETURNING ticket_id, due_kind, due_at, level`, now)
		if err != nil {
			return err
		}
		alerts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SLAAlert, error) {
			var a SLAAlert
			err := row.Scan(&a.TicketID, &a.DueKind, &a.DueAt, &a.Level)
			return a, err
		})
		if err != nil {
			return err
		}
		for _, al := range alerts {
			t, err := getTicket(ctx, tx, al.TicketID, false)
			if err != nil {
				return err
			}
			_, err = s.record(ctx, tx, org.System, t, pendingEvent{action: "sla_" + al.Level, from: t.Status, to: t.Status,
				topic: "sla." + al.Level, data: map[string]any{"due_kind": al.DueKind, "due_at": al.DueAt, "level": al.Level}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sla sweep: %w", err)
	}
	if len(alerts) > 0 {
		s.kick()
	}
	return alerts, nil
}

// RunSweeper sweeps every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.warnCalendar()
		if alerts, err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("sla sweep failed", "err", err)
		} else if len(alerts) > 0 {
			s.log.Info("sla alerts", "count", len(alerts))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

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
	// UnitID is the co-unit of a co-opinion alert (DueKind co_opinion).
	UnitID org.UnitID `json:"unit_id,omitempty"`
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
	co, err := s.sweepCoOpinions(ctx, now)
	if err != nil {
		return alerts, fmt.Errorf("sla sweep: %w", err)
	}
	alerts = append(alerts, co...)
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

// coAlertKind is the sla_alerts clock of a co-unit's opinion: one per co-unit, so that two co-units with the same
// deadline each get their alert.
func coAlertKind(unit org.UnitID) string { return fmt.Sprintf("%s:%d", DueCoOpinion, unit) }

// sweepCoOpinions raises the co-units' own alerts: a co-unit whose opinion (协办意见) is outstanding while the lead
// still handles the ticket gets sla.yellow when YellowShare of its working time is left and sla.red at its
// deadline, once each per deadline (a re-dispatch sets a new one), exactly once through the same sla_alerts key
// as the ticket's clocks. The alert is an event on the ticket (the lead sees it in the timeline and on the event
// stream) whose outbox message is addressed to the co-unit, with its deadline. The yellow time needs the
// calendar, so the open co-tasks are read and judged here; they are few (one partial index covers them).
func (s *Service) sweepCoOpinions(ctx context.Context, now time.Time) ([]SLAAlert, error) {
	var alerts []SLAAlert
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.ticket_id, c.unit_id, c.assigned_at, c.due_at,
				EXISTS (SELECT 1 FROM sla_alerts a WHERE a.ticket_id = c.ticket_id AND a.due_kind = $1 || ':' || c.unit_id
					AND a.due_at = c.due_at AND a.level = 'yellow')
			FROM ticket_co_units c JOIN tickets t ON t.id = c.ticket_id
			WHERE c.opinion_at IS NULL AND t.status IN ('dispatched', 'signed') AND c.unit_id = ANY (t.co_pending)
				AND NOT EXISTS (SELECT 1 FROM sla_alerts a WHERE a.ticket_id = c.ticket_id AND a.due_kind = $1 || ':' || c.unit_id
					AND a.due_at = c.due_at AND a.level = 'red')
			ORDER BY c.ticket_id, c.unit_id`, string(DueCoOpinion))
		if err != nil {
			return err
		}
		var tids []int64
		var kinds, levels []string
		var dues []time.Time
		var tid int64
		var unit org.UnitID
		var assigned, due time.Time
		var yellowDone bool
		_, err = pgx.ForEachRow(rows, []any{&tid, &unit, &assigned, &due, &yellowDone}, func() error {
			level := ""
			switch {
			case !due.After(now):
				level = "red"
			case !yellowDone && !s.yellow(assigned, due).After(now):
				level = "yellow"
			}
			if level != "" {
				tids, kinds, dues, levels = append(tids, tid), append(kinds, coAlertKind(unit)), append(dues, due), append(levels, level)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(tids) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `INSERT INTO sla_alerts (ticket_id, due_kind, due_at, level)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[])
			ON CONFLICT DO NOTHING
			RETURNING ticket_id, due_kind, due_at, level`, tids, kinds, dues, levels)
		if err != nil {
			return err
		}
		var kind string
		alerts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SLAAlert, error) {
			a := SLAAlert{DueKind: DueCoOpinion}
			if err := row.Scan(&a.TicketID, &kind, &a.DueAt, &a.Level); err != nil {
				return a, err
			}
			_, err := fmt.Sscanf(kind, string(DueCoOpinion)+":%d", &a.UnitID)
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
			dueAt := al.DueAt
			_, err = s.record(ctx, tx, org.System, t, pendingEvent{action: "sla_" + al.Level, from: t.Status, to: t.Status,
				topic: "sla." + al.Level, notifyUnit: al.UnitID, coDue: &dueAt,
				data: map[string]any{"due_kind": DueCoOpinion, "due_at": al.DueAt, "level": al.Level, "unit_id": al.UnitID}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("co-opinion alerts: %w", err)
	}
	return alerts, nil
}

package exchange

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// yellowShare: the platform's clock turns yellow in the last quarter of its time (as ours do by default); the
// query in alertDeadlines says the same.
const yellowShare = 4

// platformClock is the colour of the platform's deadline at now: red once passed, yellow in its last quarter
// (counted from when we received the order).
func platformClock(deadline, received, now time.Time) string {
	switch {
	case !now.Before(deadline):
		return "red"
	case deadline.Sub(now) < deadline.Sub(received)/yellowShare:
		return "yellow"
	}
	return "green"
}

// alertDeadlines writes a platform_deadline_yellow / _red event on each ticket whose platform deadline turned
// yellow or red while we still owe the platform a reply (not replied, not withdrawn), once per order, deadline and
// level: the event stream carries it to consoles and notifications like our own SLA alerts.
func (s *Service) alertDeadlines(ctx context.Context) error {
	now := s.now()
	rows, err := s.db.Query(ctx, `SELECT o.platform, o.order_id, o.ticket_id, o.platform_deadline, o.received_at
		FROM exchange_orders o JOIN tickets t ON t.id = o.ticket_id
		WHERE o.state = 'open' AND o.platform_deadline IS NOT NULL AND t.status IN ('new', 'dispatched', 'signed', 'returned')
		  AND o.platform_deadline - (o.platform_deadline - o.received_at) / 4 <= $1
		  AND NOT EXISTS (SELECT 1 FROM exchange_deadline_alerts a WHERE a.platform = o.platform AND a.order_id = o.order_id
		                  AND a.deadline = o.platform_deadline AND a.level = CASE WHEN o.platform_deadline <= $1 THEN 'red' ELSE 'yellow' END)
		ORDER BY o.platform_deadline LIMIT 500`, now)
	if err != nil {
		return fmt.Errorf("exchange: deadlines: %w", err)
	}
	type due struct {
		platform, order    string
		ticket             int64
		deadline, received time.Time
	}
	dues, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var d due
		return d, r.Scan(&d.platform, &d.order, &d.ticket, &d.deadline, &d.received)
	})
	if err != nil {
		return fmt.Errorf("exchange: deadlines: %w", err)
	}
	for _, d := range dues {
		level := platformClock(d.deadline, d.received, now)
		if level == "green" {
			continue
		}
		p, ok := s.platforms[d.platform]
		if !ok {
			continue
		}
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO exchange_deadline_alerts (platform, order_id, deadline, level, at) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT DO NOTHING`, d.platform, d.order, d.deadline, level, now)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			_, err = s.tickets.RecordTx(ctx, tx, p.actor(), org.TicketID(d.ticket), "platform_deadline_"+level, "",
				map[string]any{"platform": d.platform, "order_id": d.order, "platform_deadline": d.deadline})
			return err
		})
		if err != nil {
			return fmt.Errorf("exchange: deadline alert of %s: %w", d.order, err)
		}
	}
	if len(dues) > 0 {
		s.kick()
	}
	return nil
}

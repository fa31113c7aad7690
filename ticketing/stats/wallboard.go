package stats

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// Board is the ticket side of the supervisors' wallboard (监控大屏) at one moment: today's flow (China time) and
// the deadlines now yellow and red, with the tickets behind them (most urgent first).
type Board struct {
	At              time.Time   `json:"at"`
	CreatedToday    int         `json:"created_today"`
	DispatchedToday int         `json:"dispatched_today"`
	OverdueToday    int         `json:"overdue_today"` // running deadlines that passed today
	Yellow          int         `json:"yellow"`        // open tickets close to their running deadline
	Red             int         `json:"red"`           // open tickets past it
	YellowTickets   []SLATicket `json:"yellow_tickets"`
	RedTickets      []SLATicket `json:"red_tickets"`
}

// SLATicket is one ticket behind a yellow or red count.
type SLATicket struct {
	ID       int64     `json:"id"`
	Number   string    `json:"number"`
	Category string    `json:"category"`
	Unit     string    `json:"unit"`
	Status   string    `json:"status"`
	DueKind  string    `json:"due_kind"`
	DueAt    time.Time `json:"due_at"`
}

// BoardListLimit is how many tickets each of the yellow and red lists carries.
const BoardListLimit = 20

// StartOfDay is midnight China time of the day of t.
func StartOfDay(t time.Time) time.Time {
	y, m, d := t.In(calendar.CST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, calendar.CST)
}

// Wallboard reads the ticket tiles at now (callers check AuthorizeBureau first). A ticket's colour is its running
// clock (due_at, yellow_at), the one the SLA sweeper alerts on, so the board and the alerts agree.
func Wallboard(ctx context.Context, db org.DB, now time.Time) (Board, error) {
	b := Board{At: now, YellowTickets: []SLATicket{}, RedTickets: []SLATicket{}}
	today := StartOfDay(now)
	err := db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM tickets WHERE created_at >= $1 AND created_at <= $2),
			(SELECT count(*) FROM ticket_events WHERE action = 'dispatch' AND at >= $1 AND at <= $2),
			(SELECT count(*) FROM tickets WHERE due_at IS NOT NULL AND due_at >= $1 AND due_at <= $2),
			(SELECT count(*) FROM tickets WHERE due_at IS NOT NULL AND yellow_at <= $2 AND due_at > $2),
			(SELECT count(*) FROM tickets WHERE due_at IS NOT NULL AND due_at <= $2)`, today, now).
		Scan(&b.CreatedToday, &b.DispatchedToday, &b.OverdueToday, &b.Yellow, &b.Red)
	if err != nil {
		return Board{}, fmt.Errorf("wallboard counts: %w", err)
	}
	list := func(cond, order string) ([]SLATicket, error) {
		rows, err := db.Query(ctx, `
			SELECT t.id, t.number, coalesce(c.name, t.category), u.name, t.status, t.due_kind, t.due_at
			FROM tickets t JOIN units u ON u.id = t.lead_unit_id LEFT JOIN ticket_categories c ON c.code = t.category
			WHERE t.due_at IS NOT NULL AND `+cond+` ORDER BY `+order+` LIMIT $2`, now, BoardListLimit)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowToStructByPos[SLATicket])
	}
	if b.RedTickets, err = list(`t.due_at <= $1`, `t.due_at, t.id`); err != nil {
		return Board{}, fmt.Errorf("wallboard red tickets: %w", err)
	}
	if b.YellowTickets, err = list(`t.yellow_at <= $1 AND t.due_at > $1`, `t.due_at, t.id`); err != nil {
		return Board{}, fmt.Errorf("wallboard yellow tickets: %w", err)
	}
	return b, nil
}

package telephony

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// CallForTicket returns the call an agent opens a ticket from, with the caller's number in full: the ticket
// stores it (and masks it again on every read), so the console never has to show or send it — the screen-pop
// carries it masked. Only the agent the call rang (while it rings or talks, or after it ended with that agent)
// or a supervisor may; a call already linked to a ticket is refused.
func (s *Service) CallForTicket(ctx context.Context, actor org.Actor, id CallID) (CDR, error) {
	c, err := GetCDR(ctx, s.db, id)
	if err != nil {
		return CDR{}, err
	}
	mine := actor.Role == org.RoleAgent && c.AgentID == actor.UserID
	if !mine && actor.Role == org.RoleAgent {
		var cur *int64
		err := s.db.QueryRow(ctx, `SELECT call_id FROM agent_status WHERE user_id = $1`, int64(actor.UserID)).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return CDR{}, fmt.Errorf("call %d for a ticket: %w", id, err)
		}
		mine = cur != nil && CallID(*cur) == id
	}
	if !mine && !supervising(actor) {
		return CDR{}, forbidden("ticket_from_call")
	}
	if c.TicketID != 0 {
		return CDR{}, &org.StateError{Action: "ticket_from_call", State: "linked", Allowed: []string{}, Reason: org.ErrState}
	}
	return c, nil
}

// LinkTicketTx links a call and its recordings to a ticket in the caller's transaction (the ticket made from
// the call commits with its link).
func LinkTicketTx(ctx context.Context, tx org.DB, id CallID, ticket int64) error {
	if _, err := tx.Exec(ctx, `UPDATE calls SET ticket_id = $2 WHERE id = $1`, id, ticket); err != nil {
		return fmt.Errorf("link call %d to ticket %d: %w", id, ticket, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE recordings SET ticket_id = $2 WHERE call_id = $1 AND ticket_id IS NULL`, id, ticket); err != nil {
		return fmt.Errorf("link recordings of call %d to ticket %d: %w", id, ticket, err)
	}
	return nil
}

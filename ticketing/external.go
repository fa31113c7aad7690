package ticketing

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// RecordTx appends an event to a ticket inside the caller's transaction without changing the ticket's state:
// what an outside system says about the ticket (the 12345 platform's 补充材料 or 撤单) goes on its history and the
// event stream like any action. The action name is the caller's (it must not be one of the state machine's).
func (s *Service) RecordTx(ctx context.Context, tx pgx.Tx, a org.Actor, id org.TicketID, action, note string, data map[string]any) (Event, error) {
	if _, ok := actionRules[Action(action)]; ok || action == "" {
		return Event{}, fmt.Errorf("record on ticket %d: %w", id, org.Invalid("action", "not a state-machine action"))
	}
	t, err := getTicket(ctx, tx, id, true)
	if err != nil {
		return Event{}, err
	}
	evs, err := s.record(ctx, tx, a, t, pendingEvent{action: action, from: t.Status, to: t.Status,
		note: strings.TrimSpace(note), data: data, topic: "ticket." + action})
	if err != nil {
		return Event{}, err
	}
	if err := s.runHooks(ctx, tx, t, evs[0]); err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// GetTx reads a ticket inside the caller's transaction, without authorization (for adapters acting as the
// system, which decide themselves what they may do).
func (s *Service) GetTx(ctx context.Context, tx pgx.Tx, id org.TicketID) (Ticket, error) {
	return getTicket(ctx, tx, id, false)
}

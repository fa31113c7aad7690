package telephony

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Callback is a missed call to ring back (漏接回拨).
type Callback struct {
	ID        CallbackID `json:"id"`
	Caller    string     `json:"caller"`
	Reason    string     `json:"reason"` // voicemail | abandoned
	CallID    CallID     `json:"call_id"`
	TicketID  int64      `json:"ticket_id,omitempty"`
	Misses    int        `json:"misses"`
	Status    string     `json:"status"` // open | done
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	ClosedAt  *time.Time `json:"closed_at"`
	ClosedBy  org.UserID `json:"closed_by,omitempty"`
	Note      string     `json:"note"`
}

// masked is the task as published on the event stream: the number masked like every read path, since the
// stream feeds consoles of every role (the full number stays in PostgreSQL; agents call back by task id).
func (c Callback) masked() Callback {
	c.Caller = phone.Mask(c.Caller)
	return c
}

const callbackCols = `id, caller, reason, call_id, coalesce(ticket_id, 0), misses, status, created_at, updated_at, closed_at,
	coalesce(closed_by, 0), closed_note`

func scanCallback(row pgx.CollectableRow) (Callback, error) {
	var c Callback
	err := row.Scan(&c.ID, &c.Caller, &c.Reason, &c.CallID, &c.TicketID, &c.Misses, &c.Status, &c.CreatedAt, &c.UpdatedAt,
		&c.ClosedAt, &c.ClosedBy, &c.Note)
	return c, err
}

// openCallbackTx opens the caller's callback task, or counts one more miss on the open one.
func (s *Service) openCallbackTx(ctx context.Context, tx pgx.Tx, caller, reason string, call CallID, ticket int64) (CallbackID, error) {
	rows, err := tx.Query(ctx, `
		INSERT INTO callback_tasks (caller, reason, call_id, ticket_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (caller) WHERE status = 'open' DO UPDATE SET misses = callback_tasks.misses + 1, call_id = EXCLUDED.call_id,
			reason = CASE WHEN EXCLUDED.reason = 'voicemail' THEN 'voicemail' ELSE callback_tasks.reason END,
			ticket_id = coalesce(EXCLUDED.ticket_id, callback_tasks.ticket_id), updated_at = now()
		RETURNING `+callbackCols, caller, reason, call, nz(ticket))
	if err != nil {
		return 0, fmt.Errorf("open callback task for call %d: %w", call, err)
	}
	cb, err := pgx.CollectExactlyOneRow(rows, scanCallback)
	if err != nil {
		return 0, fmt.Errorf("open callback task for call %d: %w", call, err)
	}
	return cb.ID, s.publish(ctx, tx, TopicCallback, strconv.FormatInt(int64(cb.ID), 10), cb.masked())
}

// closeCallbacksTx closes the caller's open task (if any).
func (s *Service) closeCallbacksTx(ctx context.Context, tx pgx.Tx, caller string, by org.UserID, note string) error {
	rows, err := tx.Query(ctx, `UPDATE callback_tasks SET status = 'done', closed_at = now(), closed_by = $2, closed_note = $3,
		updated_at = now() WHERE caller = $1 AND status = 'open' RETURNING `+callbackCols, caller, nz(by), note)
	if err != nil {
		return fmt.Errorf("close callback tasks: %w", err)
	}
	cbs, err := pgx.CollectRows(rows, scanCallback)
	if err != nil {
		return err
	}
	for _, cb := range cbs {
		if err := s.publish(ctx, tx, TopicCallback, strconv.FormatInt(int64(cb.ID), 10), cb.masked()); err != nil {
			return err
		}
	}
	return nil
}

// CallbackReached closes the open callback task of a number: a call-back (by the dialer or an agent's
// click-to-call) reached the caller. It is a no-op when there is none.
func (s *Service) CallbackReached(ctx context.Context, phone string, by org.UserID, note string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return s.closeCallbacksTx(ctx, tx, phone, by, note) })
}

// CloseCallback closes one task by id, by an agent who rang the caller back.
func (s *Service) CloseCallback(ctx context.Context, actor org.Actor, id CallbackID, note string) (Callback, error) {
	if actor.Role != org.RoleAgent && actor.Role != org.RoleSupervisor && actor.Role != org.RoleAdmin {
		return Callback{}, &org.StateError{Action: "close_callback", State: "open", Allowed: []string{}, Reason: org.ErrForbidden}
	}
	if len(note) > 500 {
		return Callback{}, org.Invalid("note", "at most 500 characters")
	}
	var cb Callback
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+callbackCols+` FROM callback_tasks WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		cur, err := pgx.CollectExactlyOneRow(rows, scanCallback)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("callback task %d: %w", id, org.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur.Status != "open" {
			return &org.StateError{Action: "close_callback", State: cur.Status, Allowed: []string{}, Reason: org.ErrState}
		}
		rows, err = tx.Query(ctx, `UPDATE callback_tasks SET status = 'done', closed_at = now(), closed_by = $2, closed_note = $3,
			updated_at = now() WHERE id = $1 RETURNING `+callbackCols, id, nz(actor.UserID), note)
		if err != nil {
			return err
		}
		cb, err = pgx.CollectExactlyOneRow(rows, scanCallback)
		if err != nil {
			return err
		}
		return s.publish(ctx, tx, TopicCallback, strconv.FormatInt(int64(id), 10), cb.masked())
	})
	return cb, err
}

// ListCallbacks returns tasks of a status ("open" by default), oldest first, so the longest-waiting caller is
// rung back first.
func ListCallbacks(ctx context.Context, db org.DB, status string, limit int) ([]Callback, error) {
	if status == "" {
		status = "open"
	}
	if status != "open" && status != "done" {
		return nil, org.Invalid("status", "open or done")
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	order := "created_at"
	if status == "done" {
		order = "closed_at DESC"
	}
	rows, err := db.Query(ctx, `SELECT `+callbackCols+` FROM callback_tasks WHERE status = $1 ORDER BY `+order+` LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("list callback tasks: %w", err)
	}
	return pgx.CollectRows(rows, scanCallback)
}

// CallbackNumber is the caller's number of an open callback task, for the dialer's click-to-call only: the number
// stays in the process and is never answered to the agent. The actor must be one who works the callback list.
func (s *Service) CallbackNumber(ctx context.Context, actor org.Actor, id CallbackID) (string, error) {
	if !CanSeeCallbacks(actor) {
		return "", forbidden("call_back")
	}
	var caller, status string
	err := s.db.QueryRow(ctx, `SELECT caller, status FROM callback_tasks WHERE id = $1`, id).Scan(&caller, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("callback task %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("callback task %d: %w", id, err)
	}
	if status != "open" {
		return "", &org.StateError{Action: "call_back", State: status, Allowed: []string{}, Reason: org.ErrState}
	}
	return caller, nil
}

// CallbackCalled closes a callback task whose caller a click-to-call reached, as CloseCallback does for an agent
// who rang back by hand (status done, closed by the agent), with the CDR named in the note. A task already closed
// (the caller rang in again meanwhile) is left as it is.
func (s *Service) CallbackCalled(ctx context.Context, id CallbackID, by org.UserID, cdr CallID) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE callback_tasks SET status = 'done', closed_at = now(), closed_by = $2, closed_note = $3,
			updated_at = now() WHERE id = $1 AND status = 'open' RETURNING `+callbackCols, id, nz(by), fmt.Sprintf("click-to-call (call %d)", cdr))
		if err != nil {
			return fmt.Errorf("close callback task %d: %w", id, err)
		}
		cbs, err := pgx.CollectRows(rows, scanCallback)
		if err != nil {
			return fmt.Errorf("close callback task %d: %w", id, err)
		}
		for _, cb := range cbs {
			if err := s.publish(ctx, tx, TopicCallback, strconv.FormatInt(int64(cb.ID), 10), cb.masked()); err != nil {
				return err
			}
		}
		return nil
	})
}

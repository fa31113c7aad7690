package campaign

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClickID names an agent's click-to-call.
type ClickID int64

// ClickRequest is an agent asking to be connected to a household (or a ticket's caller) without seeing the
// number: which of the household's phones, by position. Or a callback task (漏接回拨, CallbackID alone): the
// missed caller's number is read by the dialer from the task.
type ClickRequest struct {
	HouseholdID HouseholdID `json:"household_id,omitempty"`
	TicketID    TicketID    `json:"ticket_id,omitempty"`
	PhoneIndex  int         `json:"phone_index,omitempty"`
	CallbackID  int64       `json:"callback_id,omitempty"`
}

// ClickState is where a click-to-call stands.
type ClickState string

const (
	ClickRingingAgent     ClickState = "ringing_agent"
	ClickRingingHousehold ClickState = "ringing_household"
	ClickBridged          ClickState = "bridged"
	ClickEnded            ClickState = "ended"
	ClickFailed           ClickState = "failed"
)

// ClickCall is one click-to-call as the API shows it.
type ClickCall struct {
	ID          ClickID     `json:"id"`
	AgentID     org.UserID  `json:"agent_id"`
	HouseholdID HouseholdID `json:"household_id,omitempty"`
	TicketID    TicketID    `json:"ticket_id,omitempty"`
	CallbackID  int64       `json:"callback_id,omitempty"`
	PhoneIndex  int         `json:"phone_index"`
	PhoneMasked string      `json:"phone_masked"`
	State       ClickState  `json:"state"`
	SIPCode     int         `json:"sip_code,omitempty"`
	Reason      string      `json:"reason,omitempty"`
	CDRID       int64       `json:"cdr_id,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	BridgedAt   *time.Time  `json:"bridged_at,omitempty"`
	EndedAt     *time.Time  `json:"ended_at,omitempty"`
}

// Validate checks a request against the actor: only agents (and admins) place calls to households for
// themselves. A call-back of a callback task is checked by telephony's rule (CanSeeCallbacks) where the task is
// read, so here only its shape is.
func (r ClickRequest) Validate(a org.Actor) error {
	if r.CallbackID != 0 {
		v := &org.ValidationError{}
		if r.CallbackID < 0 {
			v.Add("callback_id", "not a callback task id")
		}
		if r.HouseholdID != 0 || r.TicketID != 0 || r.PhoneIndex != 0 {
			v.Add("callback_id", "a callback task alone, without a household, ticket or phone index")
		}
		return v.Err()
	}
	if a.Role != org.RoleAgent && a.Role != org.RoleAdmin {
		return fmt.Errorf("click-to-call is for agents: %w", org.ErrForbidden)
	}
	v := &org.ValidationError{}
	if r.HouseholdID <= 0 && r.TicketID <= 0 {
		v.Add("household_id", "a household or a ticket is required")
	}
	if r.PhoneIndex < 0 || r.PhoneIndex > 20 {
		v.Add("phone_index", "0 to 20")
	}
	return v.Err()
}

const clickCols = `id, agent_id, coalesce(household_id, 0), coalesce(ticket_id, 0), coalesce(callback_id, 0), phone_index, phone_masked, state, sip_code,
	reason, coalesce(cdr_id, 0), created_at, bridged_at, ended_at`

func scanClick(row pgx.Row) (*ClickCall, error) {
	var c ClickCall
	err := row.Scan(&c.ID, &c.AgentID, &c.HouseholdID, &c.TicketID, &c.CallbackID, &c.PhoneIndex, &c.PhoneMasked, &c.State, &c.SIPCode,
		&c.Reason, &c.CDRID, &c.CreatedAt, &c.BridgedAt, &c.EndedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, org.ErrNotFound
	}
	return &c, err
}

func nullable[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// StartClick records a new click-to-call.
func (s *Service) StartClick(ctx context.Context, agent org.UserID, r ClickRequest, masked string) (*ClickCall, error) {
	c, err := scanClick(s.db.QueryRow(ctx, `INSERT INTO click_calls (agent_id, household_id, ticket_id, callback_id, phone_index, phone_masked)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+clickCols, agent, nullable(r.HouseholdID), nullable(r.TicketID), nullable(r.CallbackID),
		r.PhoneIndex, masked))
	if err != nil {
		return nil, fmt.Errorf("start click-to-call: %w", err)
	}
	return c, nil
}

// ClickUpdate is a change of a click-to-call's state.
type ClickUpdate struct {
	State   ClickState
	SIPCode int
	Reason  string
	CDRID   int64
}

// UpdateClick moves a click-to-call on.
func (s *Service) UpdateClick(ctx context.Context, id ClickID, u ClickUpdate) error {
	_, err := s.db.Exec(ctx, `UPDATE click_calls SET state = $2, sip_code = CASE WHEN $3 = 0 THEN sip_code ELSE $3 END,
		reason = CASE WHEN $4 = '' THEN reason ELSE $4 END, cdr_id = coalesce($5, cdr_id),
		bridged_at = CASE WHEN $2 = 'bridged' THEN now() ELSE bridged_at END,
		ended_at = CASE WHEN $2 IN ('ended', 'failed') THEN now() ELSE ended_at END
		WHERE id = $1`, id, u.State, u.SIPCode, u.Reason, nullable(u.CDRID))
	if err != nil {
		return fmt.Errorf("update click-to-call %d: %w", id, err)
	}
	return nil
}

// GetClick returns a click-to-call; agents see their own only.
func (s *Service) GetClick(ctx context.Context, a org.Actor, id ClickID) (*ClickCall, error) {
	c, err := scanClick(s.db.QueryRow(ctx, `SELECT `+clickCols+` FROM click_calls WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("click-to-call %d: %w", id, err)
	}
	if a.Role == org.RoleAgent && c.AgentID != a.UserID {
		return nil, fmt.Errorf("click-to-call %d: %w", id, org.ErrNotFound)
	}
	return c, nil
}

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

// CallStart is what is known when an INVITE is accepted.
type CallStart struct {
	Direction string // "inbound" (default) or "outbound" (dialer, click-to-call); KPIs count inbound calls only
	SIPCallID string
	Trunk     string
	Caller    string // normalised, '' when the number is unusable
	CallerRaw string
	Dialled   string
	OfferedAt time.Time
	// CallbackID is the callback task (漏接回拨) an outbound click-to-call rings back; 0 for other calls.
	CallbackID CallbackID
}

// CallEnd is how a call ended.
type CallEnd struct {
	Caller          string // the normalised number, as in CallStart ('' when unusable)
	Disposition     Disposition
	Reason          string // free text: caller_hangup, agent_hangup, queue_timeout, closed, ...
	SIPStatus       int    // final status we sent when the call was refused
	AnsweredAt      time.Time
	AgentID         org.UserID
	AgentAnsweredAt time.Time
	AgentsTried     int
	EndedAt         time.Time
	RecordingID     RecordingID
	TicketID        int64
	HouseholdID     int64
}

// CDR is one call as the API shows it.
type CDR struct {
	ID              CallID       `json:"id"`
	SIPCallID       string       `json:"sip_call_id"`
	Trunk           string       `json:"trunk"`
	Caller          string       `json:"caller"`
	Dialled         string       `json:"dialled"`
	OfferedAt       time.Time    `json:"offered_at"`
	AnsweredAt      *time.Time   `json:"answered_at"`
	AgentAnsweredAt *time.Time   `json:"agent_answered_at"`
	EndedAt         *time.Time   `json:"ended_at"`
	Disposition     *Disposition `json:"disposition"`
	EndReason       string       `json:"end_reason"`
	SIPStatus       *int         `json:"sip_status"`
	AgentID         org.UserID   `json:"agent_id,omitempty"`
	AgentsTried     int          `json:"agents_tried"`
	RecordingID     RecordingID  `json:"recording_id,omitempty"`
	TicketID        int64        `json:"ticket_id,omitempty"`
	HouseholdID     int64        `json:"household_id,omitempty"`
	WaitSeconds     *float64     `json:"wait_seconds"`
	TalkSeconds     *float64     `json:"talk_seconds"`
}

func nz[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

func nzTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// StartCall writes the CDR row of an offered call. It shares a commit with the other calls starting or ending at
// the same moment (cdrwriter.go) and returns once the row is committed.
func (s *Service) StartCall(ctx context.Context, c CallStart) (CallID, error) {
	if c.Direction == "" {
		c.Direction = "inbound"
	}
	id, err := s.cdr.exec(ctx, true, `INSERT INTO calls (sip_call_id, trunk, caller, caller_raw, dialled, offered_at, direction, callback_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		c.SIPCallID, c.Trunk, c.Caller, c.CallerRaw, c.Dialled, c.OfferedAt, c.Direction, nz(c.CallbackID))
	if err != nil {
		return 0, cdrErr("start CDR of", c.SIPCallID, err)
	}
	return id, nil
}

// RejectCall writes the CDR of a call refused before answer, in one statement (sharing its commit, cdrwriter.go).
func (s *Service) RejectCall(ctx context.Context, c CallStart, status int, reason string) (CallID, error) {
	id, err := s.cdr.exec(ctx, true, `INSERT INTO calls (sip_call_id, trunk, caller, caller_raw, dialled, offered_at, ended_at,
		disposition, end_reason, sip_status, wait_seconds) VALUES ($1, $2, $3, $4, $5, $6, now(), 'rejected', $7, $8, 0) RETURNING id`,
		c.SIPCallID, c.Trunk, c.Caller, c.CallerRaw, c.Dialled, c.OfferedAt, reason, status)
	if err != nil {
		return 0, cdrErr("reject CDR of", c.SIPCallID, err)
	}
	return id, nil
}

// CallEndedEvent is the payload of TopicCallEnded.
type CallEndedEvent struct {
	CallID      CallID      `json:"call_id"`
	Caller      string      `json:"caller"` // masked (138****5678): events reach consoles of every role
	Disposition Disposition `json:"disposition"`
	AgentID     org.UserID  `json:"agent_id,omitempty"`
	TicketID    int64       `json:"ticket_id,omitempty"`
}

// endCallTx completes the CDR in tx: times, wait and talk, links, and the household timeline entry. It returns
// the caller's number.
func (s *Service) endCallTx(ctx context.Context, tx pgx.Tx, id CallID, e CallEnd) (string, error) {
	if e.EndedAt.IsZero() {
		e.EndedAt = time.Now()
	}
	var caller string
	var offered time.Time
	err := tx.QueryRow(ctx, `
		UPDATE calls SET answered_at = $2, agent_answered_at = $3::timestamptz, ended_at = $4::timestamptz, disposition = $5, end_reason = $6,
			sip_status = $7, agent_id = $8, agents_tried = $9, recording_id = $10, ticket_id = coalesce($11, ticket_id), household_id = $12,
			wait_seconds = extract(epoch FROM coalesce($3::timestamptz, $4::timestamptz) - offered_at),
			talk_seconds = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE extract(epoch FROM $4::timestamptz - $3::timestamptz) END
		WHERE id = $1 RETURNING caller, offered_at`,
		id, nzTime(e.AnsweredAt), nzTime(e.AgentAnsweredAt), e.EndedAt, e.Disposition, e.Reason, nz(e.SIPStatus),
		nz(e.AgentID), e.AgentsTried, nz(e.RecordingID), nz(e.TicketID), nz(e.HouseholdID)).Scan(&caller, &offered)
	if err != nil {
		return "", fmt.Errorf("end CDR %d: %w", id, err)
	}
	if e.Disposition == DispAnswered && caller != "" {
		// A conversation with the caller is what a callback task waits for.
		if err := s.closeCallbacksTx(ctx, tx, caller, 0, fmt.Sprintf("caller reached on call %d", id)); err != nil {
			return "", err
		}
	}
	if s.contacts != nil && e.HouseholdID != 0 {
		c := CallContact{CallID: id, HouseholdID: e.HouseholdID, Phone: caller, Disposition: e.Disposition,
			AgentID: e.AgentID, TicketID: e.TicketID, At: offered}
		if !e.AgentAnsweredAt.IsZero() {
			c.Talk = e.EndedAt.Sub(e.AgentAnsweredAt)
		}
		if err := s.contacts.RecordCallContact(ctx, tx, c); err != nil {
			return "", fmt.Errorf("call %d on household %d timeline: %w", id, e.HouseholdID, err)
		}
	}
	if e.Disposition == DispAnswered || e.AgentID != 0 {
		return caller, s.publish(ctx, tx, TopicCallEnded, strconv.FormatInt(int64(id), 10),
			CallEndedEvent{CallID: id, Caller: phone.Mask(caller), Disposition: e.Disposition, AgentID: e.AgentID, TicketID: e.TicketID})
	}
	return caller, nil
}

// EndCall completes a CDR; an abandoned call from a usable number also leaves a callback task. e.Caller must be
// the number the call started with.
func (s *Service) EndCall(ctx context.Context, id CallID, e CallEnd) error {
	if e.Caller == "" && e.HouseholdID == 0 && e.AgentID == 0 && e.Disposition != DispAnswered {
		// Nothing to write but the CDR (no number to ring back, no timeline, no event): one statement, sharing its
		// commit with the other calls' (cdrwriter.go). This is the common case of calls from withheld or odd
		// numbers under load.
		if e.EndedAt.IsZero() {
			e.EndedAt = time.Now()
		}
		_, err := s.cdr.exec(ctx, false, `UPDATE calls SET answered_at = $2, ended_at = $3::timestamptz, disposition = $4, end_reason = $5,
			sip_status = $6, agents_tried = $7, wait_seconds = extract(epoch FROM $3::timestamptz - offered_at) WHERE id = $1`,
			id, nzTime(e.AnsweredAt), e.EndedAt, e.Disposition, e.Reason, nz(e.SIPStatus), e.AgentsTried)
		if err != nil {
			return cdrErr("end CDR", id, err)
		}
		return nil
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		caller, err := s.endCallTx(ctx, tx, id, e)
		if err != nil {
			return err
		}
		if e.Disposition == DispAbandoned && caller != "" {
			if _, err := s.openCallbackTx(ctx, tx, caller, "abandoned", id, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetCDR returns one call.
func GetCDR(ctx context.Context, db org.DB, id CallID) (CDR, error) {
	rows, err := db.Query(ctx, `SELECT `+cdrCols+` FROM calls WHERE id = $1`, id)
	if err != nil {
		return CDR{}, err
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCDR)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("call %d: %w", id, org.ErrNotFound)
	}
	return c, err
}

const cdrCols = `id, sip_call_id, trunk, caller, dialled, offered_at, answered_at, agent_answered_at, ended_at, disposition,
	end_reason, sip_status, coalesce(agent_id, 0), agents_tried, coalesce(recording_id, 0), coalesce(ticket_id, 0),
	coalesce(household_id, 0), wait_seconds, talk_seconds`

func scanCDR(row pgx.CollectableRow) (CDR, error) {
	var c CDR
	err := row.Scan(&c.ID, &c.SIPCallID, &c.Trunk, &c.Caller, &c.Dialled, &c.OfferedAt, &c.AnsweredAt, &c.AgentAnsweredAt,
		&c.EndedAt, &c.Disposition, &c.EndReason, &c.SIPStatus, &c.AgentID, &c.AgentsTried, &c.RecordingID, &c.TicketID,
		&c.HouseholdID, &c.WaitSeconds, &c.TalkSeconds)
	return c, err
}

// CDRFilter selects calls for the API.
type CDRFilter struct {
	From, To    time.Time
	Caller      string
	AgentID     org.UserID
	Disposition Disposition
	Limit       int
	BeforeID    CallID // keyset paging: calls with a smaller id
}

// ListCDRs returns calls, newest first.
func ListCDRs(ctx context.Context, db org.DB, f CDRFilter) ([]CDR, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := db.Query(ctx, `SELECT `+cdrCols+` FROM calls
		WHERE ($1::timestamptz IS NULL OR offered_at >= $1) AND ($2::timestamptz IS NULL OR offered_at < $2)
		  AND ($3 = '' OR caller = $3) AND ($4 = 0 OR agent_id = $4) AND ($5 = '' OR disposition = $5)
		  AND ($6 = 0 OR id < $6)
		ORDER BY id DESC LIMIT $7`,
		nzTime(f.From), nzTime(f.To), f.Caller, int64(f.AgentID), string(f.Disposition), int64(f.BeforeID), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list CDRs: %w", err)
	}
	return pgx.CollectRows(rows, scanCDR)
}

// ScreenPop is the payload of TopicScreenPop: what the agent's console shows while the phone rings.
type ScreenPop struct {
	CallID     CallID      `json:"call_id"`
	AgentID    org.UserID  `json:"agent_id"`
	Caller     string      `json:"caller"`     // masked on the event stream (PublishScreenPop); full in the CDR
	CallerRaw  string      `json:"caller_raw"` // masked the same way
	Trunk      string      `json:"trunk"`
	Dialled    string      `json:"dialled"`
	OfferedAt  time.Time   `json:"offered_at"`
	Households []Household `json:"households"`
}

// PublishScreenPop sends the screen-pop to the agent's console (key: the agent's user id).
func (s *Service) PublishScreenPop(ctx context.Context, p ScreenPop) error {
	if p.Households == nil {
		p.Households = []Household{}
	}
	// Personal data leaves masked, like every read path: the console shows the full number only through the
	// API to those allowed to reveal it (GET /api/v1/calls/{id}).
	p.Caller, p.CallerRaw = phone.Mask(p.Caller), phone.Mask(p.CallerRaw)
	return s.publish(ctx, s.db, TopicScreenPop, strconv.FormatInt(int64(p.AgentID), 10), p)
}

package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// outboundActions are the ticket actions the platform hears of, with the contract's name for each: what the
// platform's own 办理时限 and its public progress page need, and nothing of our internal handling.
//
// Not sent, and why:
//   - request_suspend, refuse_suspend: a 挂起 is our supervisor's decision; the platform's clock stops only once
//     it is approved (suspend, carrying the request's reason), and a refused request changes nothing there.
//   - approve_extension, refuse_extension: the platform heard of the 延期申请 itself (extension, with days and
//     reason) when it was made; our approval is internal, as the contract has always had it.
//   - correct (工单修改): corrects our own classification (kind, category, region, household, caller, content);
//     the platform keeps its order as it wrote it. One exception, in Hook: a correction that re-routes a
//     suspended ticket ends the suspension, and the platform hears that end as resume.
//   - note (办理过程), co_sign, co_opinion (协办), assign, return_reply (审核退回): internal handling. approve_reply
//     (审核通过) records its event as a reply, so the approved reply is sent as reply.
//   - urge, supervise (催办/督办): ours, or the platform's own urge coming in (inbound.go); nothing to answer.
//   - dispatch, merge, close_first_contact: our desk's own steps (a platform's order arrives dispatched; a
//     re-dispatch after 退单 happens here). start_callback, reopen: the platform hears the callback's result
//     (callback), and a 重办 is what follows an unsatisfied one.
var outboundActions = map[string]string{
	string(ticketing.ActSign):             "sign",          // 签收
	string(ticketing.ActReply):            "reply",         // 办结答复
	string(ticketing.ActReturn):           "return",        // 退单 (with reason)
	string(ticketing.ActRequestExtension): "extension",     // 延期申请
	string(ticketing.ActCallbackResult):   "callback",      // 回访结果
	string(ticketing.ActInterimReply):     "interim_reply", // 阶段性答复 (the text the caller sees)
	string(ticketing.ActApproveSuspend):   "suspend",       // 挂起 approved: the reply clock stops (with the request's reason)
	string(ticketing.ActResume):           "resume",        // 解除挂起: the clock runs on with the time that was left
}

// Hook returns the TransitionHook that queues, in the action's own transaction, what the platform must hear of
// a ticket it sent us. Register it with tickets.OnTransition at wiring time.
func (s *Service) Hook() ticketing.TransitionHook {
	return func(ctx context.Context, tx pgx.Tx, t ticketing.Ticket, ev ticketing.Event) error {
		action, ok := outboundActions[ev.Action]
		// A correction that re-routes the ticket to another unit ends its suspension without a 解除挂起 of its
		// own (the new unit's clock starts afresh); the platform, told of the suspension, hears it end.
		rerouted := ev.Action == string(ticketing.ActCorrect) && ev.Data["rerouted"] == true
		if (!ok && !rerouted) || t.Source != ticketing.Source12345 {
			return nil
		}
		var platform, orderID, state string
		err := tx.QueryRow(ctx, `SELECT platform, order_id, state FROM exchange_orders WHERE ticket_id = $1`, int64(t.ID)).
			Scan(&platform, &orderID, &state)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && state != "open") {
			return nil // a 12345 ticket typed in by hand, or an order the platform withdrew
		}
		if err != nil {
			return fmt.Errorf("exchange: order of ticket %d: %w", t.ID, err)
		}
		if !ok {
			action = "resume"
		}
		if action == "resume" {
			// Only the end of a suspension the platform was told of: one approved before this release was
			// not, and a resume out of nowhere would only puzzle it.
			if suspended, err := platformSuspended(ctx, tx, t.ID); err != nil || !suspended {
				return err
			}
		}
		o := Outbound{OrderID: orderID, Action: action, IdempotencyKey: "hotline-event-" + strconv.FormatInt(ev.ID, 10),
			At: ev.At, Handler: ev.ActorName}
		unit := t.LeadUnitID
		switch action {
		case "reply":
			o.Reply = t.ReplyText
		case "return":
			o.Reason, _ = ev.Data["reason"].(string)
			if from, ok := ev.Data["from_unit_id"].(org.UnitID); ok {
				unit = from
			}
		case "extension":
			o.Reason, _ = ev.Data["reason"].(string)
			o.Days, _ = ev.Data["days"].(int)
		case "resume":
			if from, ok := ev.Data["from_unit_id"].(org.UnitID); ok && rerouted {
				unit = from // the unit that had it suspended
			}
		case "callback":
			o.Result, _ = ev.Data["result"].(string)
		case "interim_reply":
			o.Reply, _ = ev.Data["reply"].(string)
		case "suspend":
			// The approval's event holds the clock (reply_by_was, left_ms), not the reason: that is on the
			// request it approves, the ticket's last 挂起申请 (a ticket has one request open at a time).
			if err := tx.QueryRow(ctx, `SELECT coalesce(data->>'reason', '') FROM ticket_events
				WHERE ticket_id = $1 AND action = $2 AND id < $3 ORDER BY id DESC LIMIT 1`,
				int64(t.ID), string(ticketing.ActRequestSuspend), ev.ID).Scan(&o.Reason); err != nil {
				return fmt.Errorf("exchange: suspension request of ticket %d: %w", t.ID, err)
			}
		}
		if u, err := org.GetUnit(ctx, tx, unit); err == nil {
			o.Unit = u.Name
		}
		payload, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO exchange_outbound (platform, order_id, ticket_id, event_id, action, idempotency_key, payload, next_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING`,
			platform, orderID, int64(t.ID), ev.ID, action, o.IdempotencyKey, payload, s.now()); err != nil {
			return fmt.Errorf("exchange: queue %s of ticket %d: %w", action, t.ID, err)
		}
		return nil
	}
}

// platformSuspended reports whether the last suspension word the platform was sent for a ticket is suspend (not
// yet resume): what it believes of the ticket's clock.
func platformSuspended(ctx context.Context, tx pgx.Tx, id org.TicketID) (bool, error) {
	var last string
	err := tx.QueryRow(ctx, `SELECT action FROM exchange_outbound WHERE ticket_id = $1 AND action IN ('suspend', 'resume')
		ORDER BY id DESC LIMIT 1`, int64(id)).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("exchange: suspension of ticket %d: %w", id, err)
	}
	return last == "suspend", nil
}

// sendDue sends due outbound rows one at a time until none is due; it returns how many it tried.
func (s *Service) sendDue(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		ok, err := s.sendOne(ctx)
		if err != nil || !ok {
			return n, err
		}
		n++
	}
	return n, nil
}

// sendOne takes the oldest due row whose order has nothing earlier unsent (the platform hears of one order's
// actions in order: 签收 before 答复), sends it and records the answer, in one transaction that holds the row:
// another process skips it meanwhile. A crash after the platform answered and before the commit leaves the row
// pending; it is sent again with the same Idempotency-Key.
func (s *Service) sendOne(ctx context.Context) (bool, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("exchange: send: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var id int64
	var platform, key string
	var payload []byte
	var attempts int
	err = tx.QueryRow(ctx, `SELECT o.id, o.platform, o.idempotency_key, o.payload, o.attempts FROM exchange_outbound o
		WHERE o.state = 'pending' AND o.next_at <= $1
		  AND NOT EXISTS (SELECT 1 FROM exchange_outbound e WHERE e.platform = o.platform AND e.order_id = o.order_id
		                  AND e.id < o.id AND e.state <> 'sent')
		ORDER BY o.next_at, o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`, s.now()).Scan(&id, &platform, &key, &payload, &attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("exchange: send: pick: %w", err)
	}
	var o Outbound
	if err := json.Unmarshal(payload, &o); err != nil {
		return false, fmt.Errorf("exchange: outbound %d: %w", id, err)
	}
	permanent, sendErr := s.send(ctx, platform, o)
	if s.afterSend != nil {
		if err := s.afterSend(); err != nil {
			return false, err
		}
	}
	attempts++
	switch {
	case sendErr == nil:
		_, err = tx.Exec(ctx, `UPDATE exchange_outbound SET state = 'sent', attempts = $2, sent_at = $3, last_error = '' WHERE id = $1`,
			id, attempts, s.now())
	case permanent || attempts >= s.cfg.MaxAttempts:
		s.log.Error("exchange: outbound dead-lettered", "platform", platform, "order_id", o.OrderID, "action", o.Action,
			"attempts", attempts, "err", sendErr)
		_, err = tx.Exec(ctx, `UPDATE exchange_outbound SET state = 'dead', attempts = $2, last_error = $3 WHERE id = $1`,
			id, attempts, truncate(sendErr.Error(), 1000))
	default:
		s.log.Warn("exchange: outbound send failed; will retry", "platform", platform, "order_id", o.OrderID, "action", o.Action,
			"attempts", attempts, "err", sendErr)
		_, err = tx.Exec(ctx, `UPDATE exchange_outbound SET attempts = $2, last_error = $3, next_at = $4 WHERE id = $1`,
			id, attempts, truncate(sendErr.Error(), 1000), s.now().Add(s.backoff(id, attempts)))
	}
	if err != nil {
		return false, fmt.Errorf("exchange: outbound %d: record: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("exchange: outbound %d: commit: %w", id, err)
	}
	return true, nil
}

// backoff doubles from BaseDelay per attempt up to MaxDelay, spread by ±20% by the row's id so rows that failed
// together do not come back together.
func (s *Service) backoff(id int64, attempts int) time.Duration {
	d := s.cfg.BaseDelay
	for i := 1; i < attempts && d < s.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxDelay)
	spread := float64(id%41)/100 - 0.2 // -0.20 … +0.20
	return d + time.Duration(float64(d)*spread)
}

// send posts one action to the platform. permanent: the platform refused it for good (a 4xx other than 408, 409
// and 429), so retrying cannot help; a 409 means the platform has it already (same idempotency key).
func (s *Service) send(ctx context.Context, name string, o Outbound) (permanent bool, err error) {
	p, ok := s.platforms[name]
	if !ok {
		return false, fmt.Errorf("platform %q is not configured", name)
	}
	path, body, err := p.d.Feedback(o)
	if err != nil {
		return true, err
	}
	resp, err := s.do(ctx, p, http.MethodPost, path, body, o.IdempotencyKey)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300, c == http.StatusConflict:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return false, fmt.Errorf("platform answered %d: %s", c, msg)
	default:
		return true, fmt.Errorf("platform refused with %d: %s", c, msg)
	}
}

// do sends a signed request to the platform.
func (s *Service) do(ctx context.Context, p *platform, method, target string, body []byte, idemKey string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL+target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", p.Name, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	Sign(req, p.Secret, body, s.now())
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", p.Name, err)
	}
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// OutboundRow is one action queued for a platform, as admins and the ticket API see it.
type OutboundRow struct {
	ID       int64  `json:"id"`
	Platform string `json:"platform"`
	OrderID  string `json:"order_id"`
	TicketID int64  `json:"ticket_id"`
	// TicketNumber is our ticket's number, filled by the admins' list and retry (the console links it).
	TicketNumber string     `json:"ticket_number,omitempty"`
	Action       string     `json:"action"`
	Key          string     `json:"idempotency_key"`
	State        string     `json:"state"` // pending, sent, dead
	Attempts     int        `json:"attempts"`
	NextAt       time.Time  `json:"next_at"`
	LastError    string     `json:"last_error,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	SentAt       *time.Time `json:"sent_at,omitempty"`
}

const outboundColumns = `id, platform, order_id, ticket_id, action, idempotency_key, state, attempts, next_at, last_error, created_at, sent_at`

// outboundAdminColumns adds the ticket's number for the admins' list and retry.
const outboundAdminColumns = outboundColumns + `, (SELECT t.number FROM tickets t WHERE t.id = exchange_outbound.ticket_id)`

func scanOutboundAdmin(r pgx.CollectableRow) (OutboundRow, error) {
	var o OutboundRow
	var number *string
	err := r.Scan(&o.ID, &o.Platform, &o.OrderID, &o.TicketID, &o.Action, &o.Key, &o.State, &o.Attempts, &o.NextAt,
		&o.LastError, &o.CreatedAt, &o.SentAt, &number)
	if number != nil {
		o.TicketNumber = *number
	}
	return o, err
}

func scanOutbound(r pgx.CollectableRow) (OutboundRow, error) {
	var o OutboundRow
	return o, r.Scan(&o.ID, &o.Platform, &o.OrderID, &o.TicketID, &o.Action, &o.Key, &o.State, &o.Attempts, &o.NextAt,
		&o.LastError, &o.CreatedAt, &o.SentAt)
}

// ListOutbound lists outbound rows, newest first; state "" lists every state (admins; "dead" is the dead letter).
func (s *Service) ListOutbound(ctx context.Context, a org.Actor, state string, limit int) ([]OutboundRow, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return nil, err
	}
	if state != "" && state != "pending" && state != "sent" && state != "dead" {
		return nil, org.Invalid("state", "pending, sent or dead")
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+outboundAdminColumns+` FROM exchange_outbound WHERE ($1 = '' OR state = $1)
		ORDER BY id DESC LIMIT $2`, state, limit)
	if err != nil {
		return nil, fmt.Errorf("exchange: list outbound: %w", err)
	}
	return pgx.CollectRows(rows, scanOutboundAdmin)
}

// Retry sends a dead-lettered row again from its first attempt (admins).
func (s *Service) Retry(ctx context.Context, a org.Actor, id int64) (OutboundRow, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return OutboundRow{}, err
	}
	rows, err := s.db.Query(ctx, `UPDATE exchange_outbound SET state = 'pending', attempts = 0, next_at = $2
		WHERE id = $1 AND state = 'dead' RETURNING `+outboundAdminColumns, id, s.now())
	if err != nil {
		return OutboundRow{}, fmt.Errorf("exchange: retry %d: %w", id, err)
	}
	o, err := pgx.CollectExactlyOneRow(rows, scanOutboundAdmin)
	if errors.Is(err, pgx.ErrNoRows) {
		var state string
		if err := s.db.QueryRow(ctx, `SELECT state FROM exchange_outbound WHERE id = $1`, id).Scan(&state); err != nil {
			return OutboundRow{}, fmt.Errorf("outbound %d: %w", id, org.ErrNotFound)
		}
		return OutboundRow{}, &org.StateError{Action: "retry", State: state, Allowed: []string{}, Reason: org.ErrState}
	}
	if err != nil {
		return OutboundRow{}, fmt.Errorf("exchange: retry %d: %w", id, err)
	}
	s.Wake()
	return o, nil
}

// TicketSync is the platform side of a ticket, shown with it by the ticket API.
type TicketSync struct {
	Platform         string           `json:"platform"`
	OrderID          string           `json:"order_id"`
	OrderState       string           `json:"order_state"` // open, withdrawn
	PlatformDeadline *time.Time       `json:"platform_deadline,omitempty"`
	PlatformClock    string           `json:"platform_clock,omitempty"` // green, yellow, red: the platform's own deadline
	Sync             string           `json:"sync"`                     // synced, pending, failed, none
	SyncLabel        string           `json:"sync_label"`               // 已同步, 同步中, 同步失败, 无需同步
	Outbound         []OutboundRow    `json:"outbound"`
	Attachments      []AttachmentInfo `json:"attachments"`
}

var syncLabels = map[string]string{"synced": "已同步", "pending": "同步中", "failed": "同步失败", "none": "无需同步"}

// ForTicket returns the platform side of a ticket, or nil when no platform sent it. The caller has checked that
// the actor may read the ticket.
func (s *Service) ForTicket(ctx context.Context, id org.TicketID) (*TicketSync, error) {
	ts := &TicketSync{}
	var received time.Time
	err := s.db.QueryRow(ctx, `SELECT platform, order_id, state, platform_deadline, received_at FROM exchange_orders WHERE ticket_id = $1`,
		int64(id)).Scan(&ts.Platform, &ts.OrderID, &ts.OrderState, &ts.PlatformDeadline, &received)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exchange: order of ticket %d: %w", id, err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+outboundColumns+` FROM exchange_outbound WHERE ticket_id = $1 ORDER BY id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("exchange: outbound of ticket %d: %w", id, err)
	}
	if ts.Outbound, err = pgx.CollectRows(rows, scanOutbound); err != nil {
		return nil, fmt.Errorf("exchange: outbound of ticket %d: %w", id, err)
	}
	if ts.Attachments, err = s.attachments(ctx, id); err != nil {
		return nil, err
	}
	ts.Sync = "none"
	for _, o := range ts.Outbound {
		switch {
		case o.State == "dead":
			ts.Sync = "failed"
		case o.State == "pending" && ts.Sync != "failed":
			ts.Sync = "pending"
		case o.State == "sent" && ts.Sync == "none":
			ts.Sync = "synced"
		}
	}
	ts.SyncLabel = syncLabels[ts.Sync]
	if d := ts.PlatformDeadline; d != nil {
		ts.PlatformClock = platformClock(*d, received, s.now())
	}
	return ts, nil
}

package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// Result is what Receive did with a message.
type Result struct {
	Ack       any  // the dialect's answer body
	Created   bool // a new ticket was made
	Duplicate bool // the order or update was known: nothing changed
	TicketID  org.TicketID
}

// Receive takes one pushed request: platform from the path, the request's method and target (path and query as
// sent), its headers and body. It refuses what is not signed by the platform (an *AuthError, 401), a timestamp
// outside ±Skew, a nonce seen before; then applies the message in one transaction.
func (s *Service) Receive(ctx context.Context, name, method, target string, h http.Header, body []byte) (Result, error) {
	p, ok := s.platforms[name]
	if !ok {
		return Result{}, &AuthError{Code: "unknown_platform", Detail: fmt.Sprintf("no platform %q is configured", name)}
	}
	nonce, err := verify(p.Secret, method, target, h, body, s.now())
	if err != nil {
		return Result{}, err
	}
	m, err := p.d.ParseMessage(body)
	if err != nil {
		return Result{}, err
	}
	// Redis refuses a replay before any database work; the nonce row written in the transaction below refuses it
	// when Redis has forgotten (flushed, restarted without persistence).
	key := s.cfg.Prefix + "exchange:nonce:" + p.Name + ":" + nonce
	fresh, rerr := s.rdb.SetNX(ctx, key, 1, 2*Skew+time.Minute).Result()
	if rerr != nil {
		s.log.Warn("exchange: nonce check in Redis failed; PostgreSQL decides alone", "platform", p.Name, "err", rerr)
	} else if !fresh {
		return Result{}, &AuthError{Code: "nonce_reused", Detail: "this nonce was used before"}
	}
	res, err := s.apply(ctx, p, m, nonce)
	if err != nil && rerr == nil && fresh {
		// Nothing was applied: a corrected request may come again with the same nonce within the window.
		var ae *AuthError
		if !errors.As(err, &ae) {
			s.rdb.Del(context.WithoutCancel(ctx), key)
		}
	}
	return res, err
}

// apply applies one message in a transaction: the nonce (if any), the order or update, the ticket's change.
func (s *Service) apply(ctx context.Context, p *platform, m Message, nonce string) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if nonce != "" {
			tag, err := tx.Exec(ctx, `INSERT INTO exchange_nonces (platform, nonce, expires_at) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, p.Name, nonce, s.now().Add(2*Skew+time.Minute))
			if err != nil {
				return fmt.Errorf("exchange: nonce: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return &AuthError{Code: "nonce_reused", Detail: "this nonce was used before"}
			}
		}
		// One order at a time: a second push of the same order waits here and then finds the first one's row.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('exchange:' || $1 || ':' || $2, 0))`, p.Name, m.OrderID); err != nil {
			return fmt.Errorf("exchange: lock order: %w", err)
		}
		var err error
		if m.Type == MsgOrder {
			res, err = s.applyOrder(ctx, tx, p, m)
		} else {
			res, err = s.applyUpdate(ctx, tx, p, m)
		}
		return err
	})
	if err != nil {
		return Result{}, err
	}
	if !res.Duplicate {
		s.kick()
	}
	return res, nil
}

func (s *Service) applyOrder(ctx context.Context, tx pgx.Tx, p *platform, m Message) (Result, error) {
	var id int64
	var number string
	err := tx.QueryRow(ctx, `SELECT o.ticket_id, t.number FROM exchange_orders o JOIN tickets t ON t.id = o.ticket_id
		WHERE o.platform = $1 AND o.order_id = $2`, p.Name, m.OrderID).Scan(&id, &number)
	if err == nil {
		return Result{Ack: p.d.Ack(m, number, true), Duplicate: true, TicketID: org.TicketID(id)}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Result{}, fmt.Errorf("exchange: find order %s: %w", m.OrderID, err)
	}
	o := m.Order
	cat, catOK, err := mapCategory(ctx, tx, p.Name, o.CategoryCode)
	if err != nil {
		return Result{}, err
	}
	reg, regOK, err := mapRegion(ctx, tx, p.Name, o.RegionCode)
	if err != nil {
		return Result{}, err
	}
	if !catOK {
		if err := noteUnmapped(ctx, tx, p.Name, "category", o.CategoryCode, m.OrderID); err != nil {
			return Result{}, err
		}
	}
	if !regOK && o.RegionCode != "" {
		if err := noteUnmapped(ctx, tx, p.Name, "region", o.RegionCode, m.OrderID); err != nil {
			return Result{}, err
		}
	}
	content := o.Content
	if o.Title != "" && !strings.HasPrefix(content, o.Title) {
		content = "【" + o.Title + "】" + content
	}
	urgency := ticketing.UrgencyNormal
	if o.Urgent {
		urgency = ticketing.UrgencyUrgent
	}
	// An order whose category we could not map waits at the dispatch desk under the default category, for a
	// dispatcher to look at; a mapped one is routed and dispatched at once, like any 12345 import.
	t, err := s.tickets.CreateTx(ctx, tx, p.actor(), ticketing.NewTicket{Source: ticketing.Source12345,
		CallerName: o.CallerName, CallerPhone: o.CallerPhone, RegionCode: reg, Kind: ticketing.Kind(o.Kind),
		Category: cat, Urgency: urgency, Content: content,
		IdempotencyKey: "exchange:" + p.Name + ":" + m.OrderID, Dispatch: catOK})
	if err != nil {
		return Result{}, fmt.Errorf("exchange: order %s: %w", m.OrderID, orderFields(err))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO exchange_orders (platform, order_id, ticket_id, category_code, region_code,
			platform_deadline, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.Name, m.OrderID, int64(t.ID), o.CategoryCode, o.RegionCode, o.Deadline, s.now()); err != nil {
		return Result{}, fmt.Errorf("exchange: store order %s: %w", m.OrderID, err)
	}
	data := map[string]any{"platform": p.Name, "order_id": m.OrderID, "category_code": o.CategoryCode,
		"region_code": o.RegionCode, "category_mapped": catOK, "region_mapped": regOK, "attachments": len(m.Attachments)}
	if o.Deadline != nil {
		data["platform_deadline"] = o.Deadline
	}
	if _, err := s.tickets.RecordTx(ctx, tx, p.actor(), t.ID, "platform_order", "", data); err != nil {
		return Result{}, err
	}
	if err := s.addAttachments(ctx, tx, p.Name, m.OrderID, t.ID, m.Attachments); err != nil {
		return Result{}, err
	}
	return Result{Ack: p.d.Ack(m, t.Number, false), Created: true, TicketID: t.ID}, nil
}

// orderFields names a ticket's field at fault as the order's field, so the platform's integrator sees its own name.
func orderFields(err error) error {
	var v *org.ValidationError
	if !errors.As(err, &v) {
		return err
	}
	out := &org.ValidationError{}
	for k, r := range v.Fields {
		out.Add("order."+k, r)
	}
	return out
}

// updateActions are the ticket events the platform's updates become.
var updateActions = map[string]string{MsgSupplement: "platform_supplement", MsgUrge: "platform_urge", MsgWithdraw: "platform_withdraw"}

func (s *Service) applyUpdate(ctx context.Context, tx pgx.Tx, p *platform, m Message) (Result, error) {
	var id int64
	var number, state string
	err := tx.QueryRow(ctx, `SELECT o.ticket_id, t.number, o.state FROM exchange_orders o JOIN tickets t ON t.id = o.ticket_id
		WHERE o.platform = $1 AND o.order_id = $2 FOR UPDATE OF o`, p.Name, m.OrderID).Scan(&id, &number, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, fmt.Errorf("exchange: order %s: %w", m.OrderID, org.ErrNotFound)
	}
	if err != nil {
		return Result{}, fmt.Errorf("exchange: find order %s: %w", m.OrderID, err)
	}
	tid := org.TicketID(id)
	tag, err := tx.Exec(ctx, `INSERT INTO exchange_updates (platform, order_id, update_id, kind, received_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, p.Name, m.OrderID, m.UpdateID, m.Type, s.now())
	if err != nil {
		return Result{}, fmt.Errorf("exchange: update %s/%s: %w", m.OrderID, m.UpdateID, err)
	}
	if tag.RowsAffected() == 0 {
		return Result{Ack: p.d.Ack(m, number, true), Duplicate: true, TicketID: tid}, nil
	}
	data := map[string]any{"platform": p.Name, "order_id": m.OrderID, "update_id": m.UpdateID}
	if len(m.Attachments) > 0 {
		data["attachments"] = len(m.Attachments)
	}
	var eventID int64
	t, err := s.tickets.GetTx(ctx, tx, tid)
	if err != nil {
		return Result{}, err
	}
	if m.Type == MsgUrge && t.Status.Open() && state == "open" {
		// 催办 from the platform is our urge action: it counts on the ticket like a supervisor's.
		if _, err := s.tickets.DoTx(ctx, tx, p.actor(), tid, ticketing.ActUrge, ticketing.ActionInput{Note: m.Note}); err != nil {
			return Result{}, err
		}
		if err := tx.QueryRow(ctx, `SELECT max(id) FROM ticket_events WHERE ticket_id = $1`, id).Scan(&eventID); err != nil {
			return Result{}, fmt.Errorf("exchange: urge event: %w", err)
		}
	} else {
		ev, err := s.tickets.RecordTx(ctx, tx, p.actor(), tid, updateActions[m.Type], m.Note, data)
		if err != nil {
			return Result{}, err
		}
		eventID = ev.ID
	}
	if m.Type == MsgWithdraw {
		// 撤单: the platform no longer wants answers; the ticket stays for our own handling and history.
		if _, err := tx.Exec(ctx, `UPDATE exchange_orders SET state = 'withdrawn' WHERE platform = $1 AND order_id = $2`, p.Name, m.OrderID); err != nil {
			return Result{}, fmt.Errorf("exchange: withdraw %s: %w", m.OrderID, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE exchange_updates SET event_id = $4 WHERE platform = $1 AND order_id = $2 AND update_id = $3`,
		p.Name, m.OrderID, m.UpdateID, eventID); err != nil {
		return Result{}, fmt.Errorf("exchange: update %s/%s: %w", m.OrderID, m.UpdateID, err)
	}
	if err := s.addAttachments(ctx, tx, p.Name, m.OrderID, tid, m.Attachments); err != nil {
		return Result{}, err
	}
	return Result{Ack: p.d.Ack(m, number, false), TicketID: tid}, nil
}

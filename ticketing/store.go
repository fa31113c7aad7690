package ticketing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// ticketColumns and ticketFields are the one row mapping of a ticket: every reader selects ticketColumns and
// scans with scanTicket (or ticketFields followed by columns of its own).
const ticketColumns = `id, number, query_code, source, caller_name, caller_phone, region_code, household_id, kind,
	category, urgency, content, confidential, status, lead_unit_id, co_unit_ids, assignee_id, route_unit_id,
	route_rule_id, route_rule_version, sign_by, reply_by, callback_by, due_kind, due_at, yellow_at,
	extension_status, extension_days, urge_count, supervised, reply_text, outcome, satisfaction, reopen_count,
	merged_into, coalesce(created_by, 0), created_at, updated_at, dispatched_at, closed_at, version,
	review_status, pending_reply, pending_outcome, suspend_status, suspended_at, suspend_left_ms, co_unsigned, co_pending,
	beyond_calendar`

func ticketFields(t *Ticket) []any {
	return []any{&t.ID, &t.Number, &t.QueryCode, &t.Source, &t.CallerName, &t.CallerPhone, &t.RegionCode,
		&t.HouseholdID, &t.Kind, &t.Category, &t.Urgency, &t.Content, &t.Confidential, &t.Status, &t.LeadUnitID,
		&t.CoUnitIDs, &t.AssigneeID, &t.RouteUnitID, &t.RouteRuleID, &t.RouteRuleVersion, &t.SignBy, &t.ReplyBy,
		&t.CallbackBy, &t.DueKind, &t.DueAt, &t.YellowAt, &t.ExtensionStatus, &t.ExtensionDays, &t.UrgeCount,
		&t.Supervised, &t.ReplyText, &t.Outcome, &t.Satisfaction, &t.ReopenCount, &t.MergedInto, &t.CreatedBy,
		&t.CreatedAt, &t.UpdatedAt, &t.DispatchedAt, &t.ClosedAt, &t.Version,
		&t.ReviewStatus, &t.PendingReply, &t.PendingOutcome, &t.SuspendStatus, &t.SuspendedAt, &t.SuspendLeftMS,
		&t.CoUnsigned, &t.CoPending, &t.BeyondCalendar}
}

func scanTicket(row pgx.CollectableRow) (Ticket, error) {
	var t Ticket
	err := row.Scan(ticketFields(&t)...)
	return t, err
}

func getTicket(ctx context.Context, db org.DB, id org.TicketID, lock bool) (Ticket, error) {
	q := `SELECT ` + ticketColumns + ` FROM tickets WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	rows, err := db.Query(ctx, q, int64(id))
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket %d: %w", id, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTicket)
	if errors.Is(err, pgx.ErrNoRows) {
		return Ticket{}, fmt.Errorf("ticket %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket %d: %w", id, err)
	}
	return t, nil
}

// pendingEvent is an event to append and publish for a change.
type pendingEvent struct {
	action   string
	from, to Status
	note     string
	data     map[string]any
	topic    string
	q        *queueOps
	// notifyUnit, with coDue, addresses the outbox message to a co-unit about its own deadline (a 协办意见 alert)
	// instead of the lead unit about the ticket's clock.
	notifyUnit org.UnitID
	coDue      *time.Time
}

// errNoRow: the statement of a change wrote no ticket row (a stale version, a replayed idempotency key).
var errNoRow = errors.New("no ticket row written")

// change is a statement that writes (or reads) one ticket row, with its arguments: INSERT … RETURNING *,
// UPDATE … RETURNING *, or SELECT * for an event alone. dups, if set, is the query of merge suggestions to run
// in the same statement, from the snapshot before it.
type change struct {
	row  string
	args []any
	dups string
}

// write is the one writer of ticket changes: the row, every event of the change and their outbox rows in one
// statement (data-modifying CTEs), so it is atomic even outside a transaction block and costs one round trip.
// t is the ticket as written (its ID may still be unknown); the row as stored is returned, with the events.
func (s *Service) write(ctx context.Context, db org.DB, a org.Actor, t Ticket, c change, pes ...pendingEvent) (Ticket, []Event, error) {
	args := c.args
	p := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	name := a.Name
	if name == "" {
		name = a.Username
	}
	var actorID any
	if a.UserID != 0 {
		actorID = int64(a.UserID)
	}
	at := s.now().UTC().Format(time.RFC3339Nano)
	var evVals, obVals []string
	evs := make([]Event, len(pes))
	for i, pe := range pes {
		if pe.data == nil {
			pe.data = map[string]any{}
		}
		evs[i] = Event{ActorID: a.UserID, ActorName: name, ActorRole: a.Role, Action: pe.action, From: pe.from, To: pe.to, Note: pe.note, Data: pe.data}
		evVals = append(evVals, fmt.Sprintf("(%d, %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::jsonb)",
			i, p(actorID), p(name), p(string(a.Role)), p(pe.action), p(string(pe.from)), p(string(pe.to)), p(pe.note), p(pe.data)))
		// The ticket's id joins the payload and the queue operation in SQL: a new ticket has none before.
		payload, err := json.Marshal(ticketMessage{Number: t.Number, Action: pe.action, From: pe.from, Status: pe.to,
			Kind: t.Kind, Category: t.Category, Urgency: t.Urgency, LeadUnitID: t.LeadUnitID, CoUnitIDs: t.CoUnitIDs,
			Confidential: t.Confidential, RegionCode: t.RegionCode, Household: t.HouseholdID, Version: t.Version, ActorID: a.UserID, At: at,
			NotifyUnitID: pe.notifyUnit, CoDueAt: pe.coDue})
		if err != nil {
			return Ticket{}, nil, err
		}
		var q any
		if pe.q != nil {
			if q, err = json.Marshal(pe.q); err != nil {
				return Ticket{}, nil, err
			}
		}
		obVals = append(obVals, fmt.Sprintf("(%d, %s::text, %s::jsonb, %s::jsonb)", i, p(pe.topic), p(payload), p(q)))
	}
	dups := `SELECT NULL::bigint AS id WHERE false`
	if c.dups != "" {
		dups = c.dups
	}
	rows, err := db.Query(ctx, `WITH t AS (`+c.row+`), e AS (
			INSERT INTO ticket_events (ticket_id, actor_id, actor_name, actor_role, action, from_status, to_status, note, data)
			SELECT t.id, v.actor_id, v.actor_name, v.actor_role, v.action, v.from_status, v.to_status, v.note, v.data
			FROM t CROSS JOIN (VALUES `+strings.Join(evVals, ", ")+`) AS v(ord, actor_id, actor_name, actor_role, action, from_status, to_status, note, data)
			ORDER BY v.ord
			RETURNING id, at
		), o AS (
			INSERT INTO outbox (topic, key, payload, queue)
			SELECT v.topic, t.id::text, v.payload || jsonb_build_object('ticket_id', t.id),
				CASE WHEN v.queue IS NULL THEN NULL ELSE v.queue || jsonb_build_object('ticket', t.id) END
			FROM t CROSS JOIN (VALUES `+strings.Join(obVals, ", ")+`) AS v(ord, topic, payload, queue)
			ORDER BY v.ord
		), dup AS (`+dups+`)
		SELECT `+ticketColumns+`, (SELECT array_agg(id ORDER BY id) FROM e), (SELECT array_agg(at ORDER BY id) FROM e),
			(SELECT coalesce(array_agg(id), '{}') FROM dup) FROM t`, args...)
	if err != nil {
		return Ticket{}, nil, err
	}
	var ids []int64
	var ats []time.Time
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Ticket, error) {
		var t Ticket
		err := row.Scan(append(ticketFields(&t), &ids, &ats, &t.DuplicateIDs)...)
		return t, err
	})
	if err != nil {
		return Ticket{}, nil, err
	}
	if len(ts) == 0 {
		return Ticket{}, nil, errNoRow
	}
	if len(ids) != len(evs) || len(ats) != len(evs) {
		return Ticket{}, nil, fmt.Errorf("ticket %d: %d events written, want %d", ts[0].ID, len(ids), len(evs))
	}
	for i := range evs {
		evs[i].ID, evs[i].At, evs[i].TicketID = ids[i], ats[i], ts[0].ID
	}
	return ts[0], evs, nil
}

// record appends events to a ticket without changing its row (SLA alerts, the target of a merge).
func (s *Service) record(ctx context.Context, db org.DB, a org.Actor, t Ticket, pes ...pendingEvent) ([]Event, error) {
	_, evs, err := s.write(ctx, db, a, t, change{row: `SELECT * FROM tickets WHERE id = $1`, args: []any{int64(t.ID)}}, pes...)
	if err != nil {
		return nil, fmt.Errorf("ticket %d: record %s: %w", t.ID, pes[0].action, err)
	}
	return evs, nil
}

// ticketMessage is the payload of ticket.* and sla.* events on the event stream: enough for consoles to refresh
// and notifications to decide, without personal data.
type ticketMessage struct {
	TicketID   org.TicketID `json:"ticket_id"`
	Number     string       `json:"number"`
	Action     string       `json:"action"`
	From       Status       `json:"from_status"`
	Status     Status       `json:"status"`
	Kind       Kind         `json:"kind"`
	Category   string       `json:"category"`
	Urgency    Urgency      `json:"urgency"`
	LeadUnitID org.UnitID   `json:"lead_unit_id"`
	CoUnitIDs  []org.UnitID `json:"co_unit_ids"`
	// Confidential and the units above let a consumer (the websocket hub) decide who may see the event with
	// CanSee, without reading the ticket.
	Confidential bool       `json:"confidential"`
	RegionCode   string     `json:"region_code"`
	Household    *int64     `json:"household_id,omitempty"`
	Version      int        `json:"version"`
	ActorID      org.UserID `json:"actor_id"`
	At           string     `json:"at"`
	// NotifyUnitID is the unit to notify when it is not the lead (a co-unit whose opinion is late), and CoDueAt
	// that co-unit's own deadline.
	NotifyUnitID org.UnitID `json:"notify_unit_id,omitempty"`
	CoDueAt      *time.Time `json:"co_due_at,omitempty"`
}

// Publish writes an event to the outbox in db (pass your transaction to publish atomically with your change).
// The relay puts it on the Redis event stream `<prefix>events` as fields topic, key and payload (JSON).
func Publish(ctx context.Context, db org.DB, topic, key string, payload any) error {
	if topic == "" {
		return org.Invalid("topic", "required")
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)`, topic, key, b); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// queueOps tell the relay how a change moves a ticket between unit queues.
type queueOps struct {
	Ticket org.TicketID `json:"ticket"`
	Add    *queueAdd    `json:"add,omitempty"`
	Remove []org.UnitID `json:"remove,omitempty"`
}

type queueAdd struct {
	Unit   org.UnitID `json:"unit"`
	Urgent bool       `json:"urgent"`
	Seq    int        `json:"seq"` // ticket version when queued: the same entry published twice is recognised
}

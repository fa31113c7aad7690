package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"hotline/ticketing/org"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ContactKind is how the household was reached.
type ContactKind string

const (
	ContactInboundCall     ContactKind = "inbound_call"     // the household called the hotline
	ContactOutboundCall    ContactKind = "outbound_call"    // an agent or campaign reached the household
	ContactOutboundAttempt ContactKind = "outbound_attempt" // a call that did not reach anyone (no answer, busy...)
	ContactVisit           ContactKind = "visit"            // 入户走访
	ContactSMS             ContactKind = "sms"
	ContactNote            ContactKind = "note"
)

var contactKinds = []ContactKind{ContactInboundCall, ContactOutboundCall, ContactOutboundAttempt, ContactVisit, ContactSMS, ContactNote}

// Contact is one contact with a household. Ref links to what it came from (call:123, campaign:4/target:56);
// Answers holds keypad answers of a campaign call (question → key pressed).
type Contact struct {
	ID          int64             `json:"id,omitempty"`
	HouseholdID org.HouseholdID   `json:"household_id"`
	Kind        ContactKind       `json:"kind"`
	At          time.Time         `json:"at"`
	Summary     string            `json:"summary"`
	Ref         string            `json:"ref,omitempty"`
	Answers     map[string]string `json:"answers,omitempty"`
	ActorName   string            `json:"actor_name,omitempty"`
}

// AddContactTx appends a contact to the household's timeline inside the caller's transaction (telephony records
// a call and its contact together) and moves the household's last-contact time forward.
func (s *Service) AddContactTx(ctx context.Context, tx org.DB, c Contact) (int64, error) {
	v := &org.ValidationError{}
	found := false
	for _, k := range contactKinds {
		found = found || k == c.Kind
	}
	if !found {
		v.Add("kind", fmt.Sprintf("%q is not a contact kind", c.Kind))
	}
	if c.HouseholdID == 0 {
		v.Add("household_id", "required")
	}
	if len(c.Summary) > 4000 {
		v.Add("summary", "at most 4000 bytes")
	}
	if err := v.Err(); err != nil {
		return 0, err
	}
	if c.At.IsZero() {
		c.At = s.now()
	}
	var answers []byte
	if len(c.Answers) > 0 {
		answers, _ = json.Marshal(c.Answers)
	}
	var id int64
	err := tx.QueryRow(ctx, `WITH h AS (
			UPDATE households SET last_contact_at = greatest(coalesce(last_contact_at, $2), $2) WHERE id = $1 RETURNING id)
		INSERT INTO household_contacts (household_id, at, kind, summary, ref, answers, actor_name)
		SELECT h.id, $2, $3, $4, $5, $6, $7 FROM h RETURNING id`,
		c.HouseholdID, c.At, c.Kind, strings.TrimSpace(c.Summary), c.Ref, answers, c.ActorName).Scan(&id)
	if isNoRows(err) {
		return 0, notFound(c.HouseholdID)
	}
	if err != nil {
		return 0, fmt.Errorf("add contact to household %d: %w", c.HouseholdID, err)
	}
	return id, nil
}

// AddContact records a contact (a visit, a note) made by an actor to a household in the actor's scope. A contact
// cannot be dated in the future: its time moves the household's last contact, which campaigns select on.
func (s *Service) AddContact(ctx context.Context, actor org.Actor, c Contact) (Contact, error) {
	if c.ActorName == "" {
		c.ActorName = actor.Name
	}
	now := s.now()
	if c.At.IsZero() {
		c.At = now
	}
	if c.At.After(now.Add(maxClockSkew)) {
		return Contact{}, org.Invalid("at", "must not be in the future")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.AuthorizeID(ctx, tx, actor, AccessContact, c.HouseholdID); err != nil {
			return err
		}
		id, err := s.AddContactTx(ctx, tx, c)
		c.ID = id
		return err
	})
	return c, err
}

// maxClockSkew is how far ahead of the server's clock a contact's time may be (a client's clock runs fast).
const maxClockSkew = 5 * time.Minute

// TimelineEntry is one item of a household's timeline: a contact, a status event, or a ticket.
type TimelineEntry struct {
	At       time.Time       `json:"at"`
	Type     string          `json:"type"` // contact, event, ticket
	Kind     string          `json:"kind"` // contact kind, event action, or ticket category
	Summary  string          `json:"summary"`
	Actor    string          `json:"actor,omitempty"`
	Ref      string          `json:"ref,omitempty"`
	Link     string          `json:"link,omitempty"` // API path of the linked object
	Answers  json.RawMessage `json:"answers,omitempty"`
	Status   string          `json:"status,omitempty"` // event: the status after; ticket: its status
	TicketID *int64          `json:"ticket_id,omitempty"`
}

// Timeline returns the household's contacts, status events and tickets, newest first, to an actor whose scope
// covers the household; tickets the actor may not see (another unit's, a confidential report) are left out.
func (s *Service) Timeline(ctx context.Context, actor org.Actor, id org.HouseholdID, limit int) ([]TimelineEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	if err := s.AuthorizeID(ctx, s.db, actor, AccessRead, id); err != nil {
		return nil, err
	}
	rows, _ := s.db.Query(ctx, `
		SELECT at, 'contact', kind, summary, actor_name, ref, answers, '', NULL::bigint
		  FROM household_contacts WHERE household_id = $1
		UNION ALL
		SELECT at, 'event', action, reason, actor_name, '', NULL, coalesce(to_status, ''), ticket_id
		  FROM household_events WHERE household_id = $1
		`+timelineTickets+`
		ORDER BY 1 DESC LIMIT $2`, id, limit)
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TimelineEntry, error) {
		var e TimelineEntry
		var answers []byte
		err := r.Scan(&e.At, &e.Type, &e.Kind, &e.Summary, &e.Actor, &e.Ref, &answers, &e.Status, &e.TicketID)
		if len(answers) > 0 {
			e.Answers = answers
		}
		if e.TicketID != nil {
			e.Link = fmt.Sprintf("/api/v1/tickets/%d", *e.TicketID)
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("timeline of household %d: %w", id, err)
	}
	out := all[:0]
	seen := map[int64]bool{} // ticket id → may see
	for _, e := range all {
		if e.TicketID != nil {
			ok, known := seen[*e.TicketID]
			if !known {
				ok = s.mayReadTicket(ctx, actor, org.TicketID(*e.TicketID))
				seen[*e.TicketID] = ok
			}
			if !ok {
				if e.Type == "ticket" {
					continue
				}
				// A status event caused by a ticket the actor may not see keeps its place but not the link or
				// the ticket's words.
				e.TicketID, e.Link = nil, ""
				if strings.HasPrefix(e.Kind, "verify_outcome:") || e.Kind == "lead" {
					e.Summary = ""
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// mayReadTicket asks the ticket service; without one (tools, tests of this package alone) only admins and
// supervisors see tickets on a timeline.
func (s *Service) mayReadTicket(ctx context.Context, a org.Actor, id org.TicketID) bool {
	if s.ticketAuth == nil {
		return a.Role == org.RoleAdmin || a.Role == org.RoleSupervisor
	}
	return s.ticketAuth.MayRead(ctx, a, id) == nil
}

// timelineTickets adds the household's tickets to the timeline (tickets.household_id).
const timelineTickets = `UNION ALL
		SELECT created_at, 'ticket', category,
		       number || ' ' || CASE WHEN confidential THEN '(保密)' ELSE left(content, 200) END, '', '', NULL, status, id
		  FROM tickets WHERE household_id = $1`

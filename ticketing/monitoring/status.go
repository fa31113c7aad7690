package monitoring

import (
	"context"
	"fmt"
	"hotline/ticketing/org"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Action moves a household along the loop.
type Action string

const (
	ActVerify               Action = "verify"                // 排查 → 核实
	ActPublicizeIdentify    Action = "publicize_identify"    // 核实: start the identification publicity (公示)
	ActIdentify             Action = "identify"              // 核实 → 认定, after the publicity
	ActAssist               Action = "assist"                // 认定 → 帮扶, once a measure is recorded
	ActPublicizeElimination Action = "publicize_elimination" // 帮扶: start the risk-elimination publicity
	ActEliminate            Action = "eliminate"             // 帮扶 → 风险消除, after the publicity
	ActNotInclude           Action = "not_include"           // 排查/核实 → 不纳入
	ActRescreen             Action = "rescreen"              // 不纳入/风险消除 → 排查: a new risk
)

// transitions: action → the statuses it is allowed from, and the status it leads to ("" keeps the status).
var transitions = map[Action]struct {
	from []Status
	to   Status
}{
	ActVerify:               {[]Status{StatusScreened}, StatusVerified},
	ActPublicizeIdentify:    {[]Status{StatusVerified}, ""},
	ActIdentify:             {[]Status{StatusVerified}, StatusIdentified},
	ActAssist:               {[]Status{StatusIdentified}, StatusAssisted},
	ActPublicizeElimination: {[]Status{StatusAssisted}, ""},
	ActEliminate:            {[]Status{StatusAssisted}, StatusRiskEliminated},
	ActNotInclude:           {[]Status{StatusScreened, StatusVerified}, StatusNotIncluded},
	ActRescreen:             {[]Status{StatusNotIncluded, StatusRiskEliminated}, StatusScreened},
}

// AllowedActions lists the actions allowed from a status, in a stable order.
func AllowedActions(st Status) []string {
	var out []string
	for a, t := range transitions {
		if slices.Contains(t.from, st) {
			out = append(out, string(a))
		}
	}
	slices.Sort(out)
	return out
}

// Event is a change of a household's record or status.
type Event struct {
	ID          int64           `json:"id"`
	HouseholdID org.HouseholdID `json:"household_id"`
	At          time.Time       `json:"at"`
	ActorID     *int64          `json:"actor_id,omitempty"`
	ActorName   string          `json:"actor_name"`
	Action      string          `json:"action"`
	FromStatus  Status          `json:"from_status,omitempty"`
	ToStatus    Status          `json:"to_status,omitempty"`
	Reason      string          `json:"reason"`
	TicketID    *int64          `json:"ticket_id,omitempty"`
}

func addEvent(ctx context.Context, tx org.DB, ev Event, actor org.Actor) error {
	var actorID *int64
	if actor.UserID != 0 {
		id := int64(actor.UserID)
		actorID = &id
	}
	name := actor.Name
	if name == "" {
		name = actor.Username
	}
	var from, to *string
	if ev.FromStatus != "" {
		s := string(ev.FromStatus)
		from = &s
	}
	if ev.ToStatus != "" {
		s := string(ev.ToStatus)
		to = &s
	}
	_, err := tx.Exec(ctx, `INSERT INTO household_events (household_id, at, actor_id, actor_name, action, from_status,
		to_status, reason, ticket_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
		ev.HouseholdID, ev.At, actorID, name, ev.Action, from, to, ev.Reason, ev.TicketID)
	if err != nil {
		return fmt.Errorf("household %d event %s: %w", ev.HouseholdID, ev.Action, err)
	}
	return nil
}

// Act performs a status action with a stated reason, as one transaction with its event.
func (s *Service) Act(ctx context.Context, actor org.Actor, id org.HouseholdID, action Action, reason string) (Household, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return s.ActTx(ctx, tx, actor, id, action, reason, nil)
	})
	if err != nil {
		return Household{}, err
	}
	return s.Get(ctx, id)
}

// ActTx performs a status action inside the caller's transaction (the verification loop uses it from the ticket
// hook). ticketID links the event to the ticket that caused it.
func (s *Service) ActTx(ctx context.Context, tx pgx.Tx, actor org.Actor, id org.HouseholdID, action Action, reason string, ticketID *int64) error {
	t, ok := transitions[action]
	if !ok {
		return org.Invalid("action", fmt.Sprintf("%q is not a household action", action))
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return org.Invalid("reason", "required: say why")
	}
	var st Status
	var pubKind *string
	var pubUntil *time.Time
	var measures int
	err := tx.QueryRow(ctx, `SELECT status, publicity_kind, publicity_until,
		(SELECT count(*) FROM household_measures m WHERE m.household_id = h.id)
		FROM households h WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&st, &pubKind, &pubUntil, &measures)
	if isNoRows(err) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("household %d %s: %w", id, action, err)
	}
	if err := s.AuthorizeID(ctx, tx, actor, AccessLoop, id); err != nil {
		return err
	}
	if !slices.Contains(t.from, st) {
		return &org.StateError{Action: string(action), State: string(st), Allowed: AllowedActions(st), Reason: org.ErrState}
	}
	now := s.now()
	publicityDone := func(kind string) error {
		if pubKind == nil || *pubKind != kind || pubUntil == nil {
			return &org.StateError{Action: string(action), State: string(st), Allowed: AllowedActions(st),
				Reason: fmt.Errorf("%w: the %s publicity (公示) has not been held", org.ErrState, kind)}
		}
		if now.Before(*pubUntil) {
			return &org.StateError{Action: string(action), State: string(st), Allowed: AllowedActions(st),
				Reason: fmt.Errorf("%w: the %s publicity runs until %s", org.ErrState, kind, pubUntil.Format(time.RFC3339))}
		}
		return nil
	}
	to := t.to
	if to == "" {
		to = st
	}
	set := `status = $2, status_at = CASE WHEN status = $2 THEN status_at ELSE $3 END`
	args := []any{id, to, now}
	switch action {
	case ActPublicizeIdentify:
		set += `, publicity_kind = 'identification', publicity_until = $4`
		args = append(args, now.Add(s.clocks.IdentifyPublicity))
	case ActPublicizeElimination:
		set += `, publicity_kind = 'elimination', publicity_until = $4`
		args = append(args, now.Add(s.clocks.EliminationPublicity))
	case ActIdentify:
		if err := publicityDone("identification"); err != nil {
			return err
		}
		set += `, publicity_kind = NULL, publicity_until = NULL, lead_at = NULL`
	case ActEliminate:
		if err := publicityDone("elimination"); err != nil {
			return err
		}
		set += `, publicity_kind = NULL, publicity_until = NULL`
	case ActAssist:
		if measures == 0 {
			return &org.StateError{Action: string(action), State: string(st), Allowed: AllowedActions(st),
				Reason: fmt.Errorf("%w: record an assistance measure (帮扶措施) first", org.ErrState)}
		}
	case ActNotInclude:
		set += `, lead_at = NULL, publicity_kind = NULL, publicity_until = NULL`
	}
	if _, err := tx.Exec(ctx, `UPDATE households SET `+set+`, version = version + 1, updated_at = $3 WHERE id = $1`, args...); err != nil {
		return fmt.Errorf("household %d %s: %w", id, action, err)
	}
	ev := Event{HouseholdID: id, At: now, Action: string(action), FromStatus: st, ToStatus: t.to, Reason: reason, TicketID: ticketID}
	return addEvent(ctx, tx, ev, actor)
}

// Clock is the running statutory clock of a household, if any.
type Clock struct {
	Kind  string    `json:"kind"` // identify_by (deadline) or publicity (earliest completion)
	Due   time.Time `json:"due"`
	Level string    `json:"level"` // identify_by: green, yellow, red; publicity: running, complete
}

func (s *Service) clock(h Household) *Clock {
	now := s.now()
	switch {
	case h.PublicityUntil != nil:
		c := &Clock{Kind: "publicity", Due: *h.PublicityUntil, Level: "running"}
		if !now.Before(c.Due) {
			c.Level = "complete"
		}
		return c
	case h.LeadAt != nil && (h.Status == StatusScreened || h.Status == StatusVerified):
		c := &Clock{Kind: "identify_by", Due: h.LeadAt.Add(s.clocks.LeadToIdentify), Level: "green"}
		switch {
		case !now.Before(c.Due):
			c.Level = "red"
		case !now.Before(c.Due.Add(-s.clocks.YellowBefore)):
			c.Level = "yellow"
		}
		return c
	}
	return nil
}

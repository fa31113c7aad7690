package telephony

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// What the API may read, by role. Call-centre figures are for agents (their own calls), supervisors, heads and
// admins; personal numbers are masked for anyone without reveal_pii, callback tasks included (an agent rings a
// caller back by click-to-call on the task's ticket, which never shows the number). Filtering calls by a full
// caller number is a look-up of personal data: it needs lookup_pii.

func forbidden(action string) error {
	return &org.StateError{Action: action, State: "role", Allowed: []string{}, Reason: org.ErrForbidden}
}

func staff(a org.Actor) bool {
	switch a.Role {
	case org.RoleAgent, org.RoleSupervisor, org.RoleHead, org.RoleAdmin:
		return true
	}
	return false
}

func supervising(a org.Actor) bool {
	return a.Role == org.RoleSupervisor || a.Role == org.RoleHead || a.Role == org.RoleAdmin
}

// Agents lists agents and their states (the wallboard).
func (s *Service) Agents(ctx context.Context, actor org.Actor) ([]Agent, error) {
	if !staff(actor) {
		return nil, forbidden("list_agents")
	}
	return ListAgents(ctx, s.db)
}

// CDRs lists calls: supervisors see all, an agent only the calls it took.
func (s *Service) CDRs(ctx context.Context, actor org.Actor, f CDRFilter) ([]CDR, error) {
	switch {
	case supervising(actor):
	case actor.Role == org.RoleAgent:
		f.AgentID = actor.UserID
	default:
		return nil, forbidden("list_calls")
	}
	if f.Caller != "" {
		if !actor.Can(org.PermLookupPII) {
			return nil, fmt.Errorf("filter calls by caller number: %w: needs the %s permission", org.ErrForbidden, org.PermLookupPII)
		}
		if s.lookups != nil {
			if err := s.lookups.Allow(ctx, fmt.Sprintf("pii_lookup:%d", actor.UserID)); err != nil {
				return nil, err
			}
		}
		n, _, err := phone.Normalize(f.Caller)
		if err != nil {
			return nil, org.Invalid("caller", "not a phone number")
		}
		f.Caller = n
	}
	cs, err := ListCDRs(ctx, s.db, f)
	if err != nil {
		return nil, err
	}
	if f.Caller != "" {
		ids := make([]CallID, len(cs))
		for i, c := range cs {
			ids[i] = c.ID
		}
		if err := org.Audit(ctx, s.db, actor, org.AuditEntry{Kind: org.AuditLookup, Object: "calls",
			Detail: map[string]any{"phone": phone.Mask(f.Caller), "calls": ids}}); err != nil {
			return nil, err
		}
	}
	if !actor.Can(org.PermRevealPII) {
		for i := range cs {
			cs[i].Caller = phone.Mask(cs[i].Caller)
		}
	}
	return cs, nil
}

// CDR returns one call, under the same rules as CDRs.
func (s *Service) CDR(ctx context.Context, actor org.Actor, id CallID) (CDR, error) {
	c, err := GetCDR(ctx, s.db, id)
	if err != nil {
		return c, err
	}
	if !supervising(actor) && !(actor.Role == org.RoleAgent && c.AgentID == actor.UserID) {
		return CDR{}, forbidden("get_call")
	}
	if !actor.Can(org.PermRevealPII) {
		c.Caller = phone.Mask(c.Caller)
	}
	return c, nil
}

// KPIs returns call-centre KPIs per hour or day (supervisors, heads, admins).
func (s *Service) KPIs(ctx context.Context, actor org.Actor, per string, from, to time.Time) ([]KPI, error) {
	if !supervising(actor) {
		return nil, forbidden("kpis")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return nil, org.Invalid("from", "at most 400 days")
	}
	return KPIs(ctx, s.db, per, from, to)
}

// Callbacks lists callback tasks for agents and supervisors.
func (s *Service) Callbacks(ctx context.Context, actor org.Actor, status string, limit int) ([]Callback, error) {
	if !staff(actor) {
		return nil, forbidden("list_callbacks")
	}
	cbs, err := ListCallbacks(ctx, s.db, status, limit)
	if err != nil {
		return nil, err
	}
	if !actor.Can(org.PermRevealPII) {
		for i := range cbs {
			cbs[i].Caller = phone.Mask(cbs[i].Caller)
		}
	}
	return cbs, nil
}

// MaySeeCall is the one question about a call: admins and supervisors see every call, an agent the calls it
// took, a head the call-centre figures (but not, through this, another unit's calls: heads are not asked here).
func MaySeeCall(actor org.Actor, c CDR) error {
	switch {
	case actor.Role == org.RoleAdmin || actor.Role == org.RoleSupervisor:
		return nil
	case actor.Role == org.RoleAgent && c.AgentID != 0 && c.AgentID == actor.UserID:
		return nil
	}
	return forbidden("see_call")
}

// LiveCaller returns the full number of the caller of a call the actor (an agent) is on right now, for the
// caller lookup: the number comes from the call, not from what someone typed.
func (s *Service) LiveCaller(ctx context.Context, actor org.Actor, id CallID) (string, error) {
	c, err := GetCDR(ctx, s.db, id)
	if err != nil {
		return "", err
	}
	if actor.Role != org.RoleAgent || c.AgentID != actor.UserID {
		return "", forbidden("caller_lookup")
	}
	if c.EndedAt != nil {
		return "", &org.StateError{Action: "caller_lookup", State: "ended", Allowed: []string{}, Reason: org.ErrState}
	}
	if c.Caller == "" {
		return "", fmt.Errorf("call %d has no usable caller number: %w", id, org.ErrNotFound)
	}
	return c.Caller, nil
}

// LinkTicket links a call (and its recording) to the ticket the agent opened for it, so the recording is served
// with the ticket, to those who may see the ticket. The agent who took the call or a supervisor may link it,
// once, to a ticket they can see.
func (s *Service) LinkTicket(ctx context.Context, actor org.Actor, id CallID, ticket int64) (CDR, error) {
	c, err := GetCDR(ctx, s.db, id)
	if err != nil {
		return c, err
	}
	// Linking hands the call's recording to the ticket's readers: only someone who may see the call may do it
	// (a county head may read KPIs but not link other people's calls to his tickets).
	if MaySeeCall(actor, c) != nil && !(actor.Role == org.RoleAgent && s.onCall(ctx, actor.UserID, id)) {
		return CDR{}, forbidden("link_ticket")
	}
	if ticket <= 0 {
		return CDR{}, org.Invalid("ticket_id", "required")
	}
	if c.TicketID != 0 && c.TicketID != ticket {
		return CDR{}, &org.StateError{Action: "link_ticket", State: "linked", Allowed: []string{}, Reason: org.ErrState}
	}
	if s.access != nil {
		if err := s.access.CanSeeTicket(ctx, actor, ticket); err != nil {
			return CDR{}, err
		}
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE calls SET ticket_id = $2 WHERE id = $1`, id, ticket); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE recordings SET ticket_id = $2 WHERE call_id = $1 AND ticket_id IS NULL`, id, ticket)
		return err
	})
	if err != nil {
		return CDR{}, fmt.Errorf("link call %d to ticket %d: %w", id, ticket, err)
	}
	return s.CDR(ctx, actor, id)
}

// CallerForTicket returns the full number of a call the actor is opening a ticket for, so the ticket carries the
// caller's number without the console ever holding it: the agent who took the call or a supervisor, and only
// while the call is not linked to another ticket.
func (s *Service) CallerForTicket(ctx context.Context, actor org.Actor, id CallID) (string, error) {
	c, err := GetCDR(ctx, s.db, id)
	if err != nil {
		return "", err
	}
	if !supervising(actor) && !(actor.Role == org.RoleAgent && (c.AgentID == actor.UserID || s.onCall(ctx, actor.UserID, id))) {
		return "", forbidden("link_ticket")
	}
	if c.TicketID != 0 {
		return "", &org.StateError{Action: "link_ticket", State: "linked", Allowed: []string{}, Reason: org.ErrState}
	}
	return c.Caller, nil
}

// LinkTicketTx links a call and its recordings to the ticket created for it in the same transaction (the ticket
// API's create with call_id); CallerForTicket has checked the actor. A call linked meanwhile is a conflict.
func (s *Service) LinkTicketTx(ctx context.Context, tx pgx.Tx, id CallID, ticket int64) error {
	tag, err := tx.Exec(ctx, `UPDATE calls SET ticket_id = $2 WHERE id = $1 AND (ticket_id IS NULL OR ticket_id = $2)`, id, ticket)
	if err != nil {
		return fmt.Errorf("link call %d to ticket %d: %w", id, ticket, err)
	}
	if tag.RowsAffected() == 0 {
		return &org.StateError{Action: "link_ticket", State: "linked", Allowed: []string{}, Reason: org.ErrState}
	}
	if _, err := tx.Exec(ctx, `UPDATE recordings SET ticket_id = $2 WHERE call_id = $1 AND ticket_id IS NULL`, id, ticket); err != nil {
		return fmt.Errorf("link recordings of call %d to ticket %d: %w", id, ticket, err)
	}
	return nil
}

// Kinds of a ticket's calls, as the ticket page labels them.
const (
	CallKindInbound      = "inbound"         // the caller rang the hotline (the call the ticket came from, a voicemail)
	CallKindClickToCall  = "click_to_call"   // an agent rang the caller back from the ticket (or its callback task)
	CallKindCallbackSurv = "callback_survey" // the standing 回访 campaign's automatic call about the ticket
)

// TicketCall is a call of a ticket as its page shows it: when, how long, and its recordings to play.
type TicketCall struct {
	ID          CallID       `json:"id"`     // the CDR; 0 for a click-to-call that never reached the trunk and for 回访 attempts
	Caller      string       `json:"caller"` // masked without reveal_pii; 回访 attempts keep only the masked number
	OfferedAt   time.Time    `json:"offered_at"`
	Disposition *Disposition `json:"disposition"`
	TalkSeconds *float64     `json:"talk_seconds"`
	Recordings  []Recording  `json:"recordings"`
	// Direction (inbound, outbound), when it was answered and ended, and the agent who took it.
	Direction  string     `json:"direction,omitempty"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	AgentID    org.UserID `json:"agent_id,omitempty"`
	AgentName  string     `json:"agent_name,omitempty"`
	// Kind (CallKind*), its outcome (a CDR's disposition; a 回访 attempt's answered, no_answer, busy, failed,
	// interrupted or in_progress) and why it ended, and the click-to-call or 回访 attempt it was.
	Kind        string `json:"kind"`
	Outcome     string `json:"outcome,omitempty"`
	Reason      string `json:"reason,omitempty"`
	ClickCallID int64  `json:"click_call_id,omitempty"`
	AttemptID   int64  `json:"attempt_id,omitempty"`
}

// TicketCalls lists the calls and recordings linked to a ticket, for those who may see the ticket, in time order:
// the calls that came in, the agents' click-to-calls back to the caller (those that failed before a CDR was
// written too) and the 回访 campaign's automatic calls. A recording carries its play link when the actor may hear it.
func (s *Service) TicketCalls(ctx context.Context, actor org.Actor, ticket int64) ([]TicketCall, error) {
	if s.access != nil {
		if err := s.access.CanSeeTicket(ctx, actor, ticket); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.Query(ctx, `SELECT `+cdrCols+` FROM calls WHERE ticket_id = $1 ORDER BY id`, ticket)
	if err != nil {
		return nil, fmt.Errorf("calls of ticket %d: %w", ticket, err)
	}
	cdrs, err := pgx.CollectRows(rows, scanCDR)
	if err != nil {
		return nil, fmt.Errorf("calls of ticket %d: %w", ticket, err)
	}
	rows, err = s.db.Query(ctx, `SELECT id, call_id, kind, path, channels, bytes, duration_ms, coalesce(ticket_id, 0), created_at
		FROM recordings WHERE ticket_id = $1 ORDER BY id`, ticket)
	if err != nil {
		return nil, fmt.Errorf("recordings of ticket %d: %w", ticket, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recording, error) {
		var r Recording
		var ms int64
		err := row.Scan(&r.ID, &r.CallID, &r.Kind, &r.Path, &r.Channels, &r.Bytes, &ms, &r.TicketID, &r.CreatedAt)
		r.Duration = float64(ms) / 1000
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("recordings of ticket %d: %w", ticket, err)
	}
	// The click-to-call that made a CDR is found through the ticket (click_calls is indexed by ticket, not CDR).
	type extra struct {
		direction, agent string
		click            int64
	}
	rows, err = s.db.Query(ctx, `SELECT c.id, c.direction, coalesce(u.display_name, ''), coalesce(k.id, 0) FROM calls c
		LEFT JOIN users u ON u.id = c.agent_id LEFT JOIN click_calls k ON k.ticket_id = $1 AND k.cdr_id = c.id WHERE c.ticket_id = $1`, ticket)
	if err != nil {
		return nil, fmt.Errorf("calls of ticket %d: %w", ticket, err)
	}
	extras := map[CallID]extra{}
	var xid CallID
	var x extra
	if _, err := pgx.ForEachRow(rows, []any{&xid, &x.direction, &x.agent, &x.click}, func() error { extras[xid] = x; return nil }); err != nil {
		return nil, fmt.Errorf("calls of ticket %d: %w", ticket, err)
	}
	out := make([]TicketCall, 0, len(cdrs))
	byCall := map[CallID]int{}
	for _, c := range cdrs {
		if !actor.Can(org.PermRevealPII) {
			c.Caller = phone.Mask(c.Caller)
		}
		byCall[c.ID] = len(out)
		x := extras[c.ID]
		tc := TicketCall{ID: c.ID, Caller: c.Caller, OfferedAt: c.OfferedAt, Disposition: c.Disposition,
			TalkSeconds: c.TalkSeconds, Recordings: []Recording{}, Direction: x.direction, AnsweredAt: c.AnsweredAt,
			EndedAt: c.EndedAt, AgentID: c.AgentID, AgentName: x.agent, Kind: CallKindInbound, Reason: c.EndReason,
			ClickCallID: x.click}
		if c.Disposition != nil {
			tc.Outcome = string(*c.Disposition)
		}
		if x.click != 0 || x.direction == "outbound" {
			// The dialer's campaign calls write no CDR: an outbound CDR is an agent's click-to-call.
			tc.Kind = CallKindClickToCall
		}
		if c.Dialled != "" && tc.Kind == CallKindClickToCall {
			tc.Caller = c.Dialled // the number rung, stored masked
		}
		out = append(out, tc)
	}
	// Every recording here is linked to this ticket: the rule answers the same for all of them, so ask it once.
	hear := len(recs) > 0 && s.mayHear(ctx, actor, recs[0]) == nil
	for _, r := range recs {
		if hear {
			r.URL = fmt.Sprintf("/api/v1/recordings/%d", r.ID)
		}
		if i, ok := byCall[r.CallID]; ok {
			out[i].Recordings = append(out[i].Recordings, r)
		} else {
			// A voicemail's recording is linked to its ticket even where the call row is not.
			out = append(out, TicketCall{ID: r.CallID, OfferedAt: r.CreatedAt, Recordings: []Recording{r}, Kind: CallKindInbound})
		}
	}
	more, err := s.outboundTicketCalls(ctx, ticket)
	if err != nil {
		return nil, err
	}
	out = append(out, more...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].OfferedAt.Before(out[j].OfferedAt) })
	return out, nil
}

// outboundTicketCalls are the ticket's outbound calls that have no CDR of their own: click-to-calls that failed
// before the caller's leg was placed (the agent did not answer, no usable number) and the 回访 campaign's
// attempts (the dialer records each attempt, not a CDR). Numbers are stored masked in both.
func (s *Service) outboundTicketCalls(ctx context.Context, ticket int64) ([]TicketCall, error) {
	var out []TicketCall
	rows, err := s.db.Query(ctx, `SELECT k.id, k.phone_masked, k.created_at, k.ended_at, k.state, k.reason, k.agent_id,
			coalesce(u.display_name, '')
		FROM click_calls k LEFT JOIN users u ON u.id = k.agent_id WHERE k.ticket_id = $1 AND k.cdr_id IS NULL ORDER BY k.id`, ticket)
	if err != nil {
		return nil, fmt.Errorf("click-to-calls of ticket %d: %w", ticket, err)
	}
	var c TicketCall
	var state string
	_, err = pgx.ForEachRow(rows, []any{&c.ClickCallID, &c.Caller, &c.OfferedAt, &c.EndedAt, &state, &c.Reason, &c.AgentID, &c.AgentName}, func() error {
		c.Kind, c.Direction, c.Recordings, c.Outcome = CallKindClickToCall, "outbound", []Recording{}, string(DispFailed)
		if state != "failed" && state != "ended" {
			c.Outcome = "in_progress"
		}
		out = append(out, c)
		c = TicketCall{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("click-to-calls of ticket %d: %w", ticket, err)
	}
	rows, err = s.db.Query(ctx, `SELECT a.id, a.phone_masked, a.started_at, a.answered_at, a.ended_at, a.outcome,
			CASE WHEN a.sip_code > 0 THEN 'sip ' || a.sip_code ELSE '' END
		FROM campaigns g JOIN campaign_targets t ON t.campaign_id = g.id AND t.ticket_id = $1
		JOIN campaign_attempts a ON a.target_id = t.id
		WHERE g.purpose = 'callback' ORDER BY a.started_at, a.id`, ticket)
	if err != nil {
		return nil, fmt.Errorf("回访 calls of ticket %d: %w", ticket, err)
	}
	_, err = pgx.ForEachRow(rows, []any{&c.AttemptID, &c.Caller, &c.OfferedAt, &c.AnsweredAt, &c.EndedAt, &c.Outcome, &c.Reason}, func() error {
		c.Kind, c.Direction, c.Recordings = CallKindCallbackSurv, "outbound", []Recording{}
		if c.AnsweredAt != nil && c.EndedAt != nil {
			talk := c.EndedAt.Sub(*c.AnsweredAt).Seconds()
			c.TalkSeconds = &talk
		}
		out = append(out, c)
		c = TicketCall{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("回访 calls of ticket %d: %w", ticket, err)
	}
	return out, nil
}

// onCall reports whether the agent is taking the call now: the CDR names its agent only when the call ends, and the
// agent saves the call's ticket while still talking.
func (s *Service) onCall(ctx context.Context, agent org.UserID, id CallID) bool {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM agent_status WHERE user_id = $1 AND call_id = $2`, agent, id).Scan(&n)
	return err == nil && n > 0
}

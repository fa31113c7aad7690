package monitoring

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// Outcomes of a monitoring_verify ticket, given with its reply. They are this package's words: it registers
// them with the ticket service (AttachTickets) and acts on them (ApplyOutcomeTx).
const (
	OutcomeIdentified       = "identified"        // 认定为监测对象
	OutcomeNotIncluded      = "not_included"      // 不纳入
	OutcomeAlreadyMonitored = "already_monitored" // 已是监测对象
)

// VerifyOutcomes lists the outcomes a verification reply may carry.
var VerifyOutcomes = []string{OutcomeIdentified, OutcomeNotIncluded, OutcomeAlreadyMonitored}

// TicketService is what the verification loop needs of the ticketing service.
type TicketService interface {
	CreateTx(ctx context.Context, tx pgx.Tx, a org.Actor, nt ticketing.NewTicket) (ticketing.Ticket, error)
	OnTransition(h ticketing.TransitionHook)
	RequireOutcome(category string, words []string)
	MayRead(ctx context.Context, a org.Actor, id org.TicketID) error
}

// LeadOpener is the part of TicketService that opens verification tickets.
type LeadOpener interface {
	CreateTx(ctx context.Context, tx pgx.Tx, a org.Actor, nt ticketing.NewTicket) (ticketing.Ticket, error)
}

// AttachTickets joins the loop to the ticketing service: a new 防返贫监测求助 (monitoring_help) ticket about a
// household opens a verification ticket for the county bureau of the household's region, and the reply to a
// verification ticket moves the household's status by its outcome — each in the transaction of the ticket
// action that caused it. Call it once, at wiring time.
func (s *Service) AttachTickets(ts TicketService) {
	s.leads = ts
	s.ticketAuth = ts
	ts.RequireOutcome(ticketing.CategoryMonitoringVerify, VerifyOutcomes)
	ts.OnTransition(s.onTicket)
}

func (s *Service) onTicket(ctx context.Context, tx pgx.Tx, t ticketing.Ticket, ev ticketing.Event) error {
	if t.HouseholdID == nil {
		return nil
	}
	hid := org.HouseholdID(*t.HouseholdID)
	actor := org.Actor{UserID: ev.ActorID, Name: ev.ActorName, Role: ev.ActorRole}
	switch {
	case ev.Action == "create" && t.Category == ticketing.CategoryMonitoringHelp:
		_, err := s.RaiseLeadTx(ctx, tx, actor, Lead{HouseholdID: hid, Source: t.Source,
			Summary: fmt.Sprintf("求助工单 %s：%s", t.Number, t.Content), Ref: fmt.Sprintf("ticket:%d", t.ID),
			CallerPhone: t.CallerPhone})
		return err
	case ev.Action == "reply" && t.Category == ticketing.CategoryMonitoringVerify:
		return s.ApplyOutcomeTx(ctx, tx, actor, hid, t.Outcome, int64(t.ID), t.ReplyText)
	}
	return nil
}

// Lead is a risk signal about a household: a help ticket, a risky campaign answer, a report from a visit.
type Lead struct {
	HouseholdID org.HouseholdID
	Source      ticketing.Source // campaign, phone, ...
	Summary     string           // what was said or answered
	Ref         string           // where it came from: ticket:12, campaign:4/target:56
	CallerPhone string
}

// RaiseLeadTx records a risk lead inside the caller's transaction and opens a verification ticket
// (防返贫监测核实) for the county bureau of the household's region, dispatched at once. If the household already
// has a verification ticket not yet replied to, that one is returned and no second ticket is opened (a campaign may hear the
// same risk twice). A household that had left the loop (不纳入 or 风险消除) goes back to 排查.
func (s *Service) RaiseLeadTx(ctx context.Context, tx pgx.Tx, actor org.Actor, l Lead) (ticketing.Ticket, error) {
	if s.leads == nil {
		return ticketing.Ticket{}, errors.New("raise lead: the ticketing service is not attached")
	}
	var st Status
	var township, number string
	// NO KEY UPDATE, not UPDATE: tickets hold KEY SHARE on their household (tickets_household_fk), and two help
	// tickets of one household created at once would otherwise deadlock, each waiting for the other's key lock.
	err := tx.QueryRow(ctx, `SELECT status, township_code, number FROM households WHERE id = $1 FOR NO KEY UPDATE`, l.HouseholdID).
		Scan(&st, &township, &number)
	if isNoRows(err) {
		return ticketing.Ticket{}, org.Invalid("household_id", fmt.Sprintf("household %d does not exist", l.HouseholdID))
	}
	if err != nil {
		return ticketing.Ticket{}, fmt.Errorf("raise lead for household %d: %w", l.HouseholdID, err)
	}
	var open int64
	// Still being verified: not yet replied to (a replied ticket waits only for its callback).
	err = tx.QueryRow(ctx, `SELECT id FROM tickets WHERE household_id = $1 AND category = $2
		AND status IN ('new', 'dispatched', 'signed', 'returned') ORDER BY id LIMIT 1`, int64(l.HouseholdID), ticketing.CategoryMonitoringVerify).Scan(&open)
	if err == nil {
		// Already being verified: note the new signal on the household, do not open a second ticket.
		tid := open
		if err := addEvent(ctx, tx, Event{HouseholdID: l.HouseholdID, At: s.now(), Action: "lead", Reason: l.Summary,
			TicketID: &tid}, actor); err != nil {
			return ticketing.Ticket{}, err
		}
		return ticketing.Ticket{ID: org.TicketID(open)}, nil
	}
	if !isNoRows(err) {
		return ticketing.Ticket{}, fmt.Errorf("raise lead for household %d: %w", l.HouseholdID, err)
	}
	now := s.now()
	if st == StatusNotIncluded || st == StatusRiskEliminated {
		if _, err := tx.Exec(ctx, `UPDATE households SET status = 'screened', status_at = $2, version = version + 1,
			updated_at = $2 WHERE id = $1`, l.HouseholdID, now); err != nil {
			return ticketing.Ticket{}, err
		}
		if err := addEvent(ctx, tx, Event{HouseholdID: l.HouseholdID, At: now, Action: string(ActRescreen),
			FromStatus: st, ToStatus: StatusScreened, Reason: "新的风险线索"}, actor); err != nil {
			return ticketing.Ticket{}, err
		}
		st = StatusScreened
	}
	if st == StatusScreened || st == StatusVerified {
		if _, err := tx.Exec(ctx, `UPDATE households SET lead_at = coalesce(lead_at, $2) WHERE id = $1`, l.HouseholdID, now); err != nil {
			return ticketing.Ticket{}, err
		}
	}
	summary := strings.TrimSpace(l.Summary)
	source := l.Source
	if source == "" {
		source = ticketing.SourceAPI
	}
	// The platform opens the verification ticket, whoever raised the lead (an agent's help ticket, a campaign
	// answer): raising a lead is not a right to open and dispatch tickets.
	t, err := s.leads.CreateTx(ctx, tx, org.System, ticketing.NewTicket{
		Source: source, CallerPhone: l.CallerPhone, RegionCode: township, HouseholdID: ptr(int64(l.HouseholdID)),
		Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringVerify, Dispatch: true,
		Content: fmt.Sprintf("请核实监测户 %s（%s）的风险情况并答复核实结果（认定/不纳入/已是监测对象）。线索：%s", number,
			region.FullName(township), summary),
	})
	if err != nil {
		return ticketing.Ticket{}, fmt.Errorf("open verification ticket for household %d: %w", l.HouseholdID, err)
	}
	tid := int64(t.ID)
	if err := addEvent(ctx, tx, Event{HouseholdID: l.HouseholdID, At: now, Action: "lead", Reason: summary, TicketID: &tid}, actor); err != nil {
		return ticketing.Ticket{}, err
	}
	return t, nil
}

// ApplyOutcomeTx moves a household by the outcome of its verification ticket: identified → 认定 (from 排查 or
// 核实; the county's verification includes its publicity), not_included → 不纳入, already_monitored → no change.
// Every outcome closes the running lead clock and leaves an event linked to the ticket.
func (s *Service) ApplyOutcomeTx(ctx context.Context, tx pgx.Tx, actor org.Actor, id org.HouseholdID, outcome string, ticketID int64, reply string) error {
	var st Status
	err := tx.QueryRow(ctx, `SELECT status FROM households WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&st)
	if isNoRows(err) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("verification outcome for household %d: %w", id, err)
	}
	to := st
	switch outcome {
	case OutcomeIdentified:
		if st == StatusScreened || st == StatusVerified {
			to = StatusIdentified
		}
	case OutcomeNotIncluded:
		if st == StatusScreened || st == StatusVerified {
			to = StatusNotIncluded
		}
	case OutcomeAlreadyMonitored:
	default:
		return org.Invalid("outcome", fmt.Sprintf("%q is not a verification outcome", outcome))
	}
	now := s.now()
	if _, err := tx.Exec(ctx, `UPDATE households SET status = $2,
			status_at = CASE WHEN status = $2 THEN status_at ELSE $3 END, lead_at = NULL,
			publicity_kind = CASE WHEN status = $2 THEN publicity_kind END,
			publicity_until = CASE WHEN status = $2 THEN publicity_until END,
			version = version + 1, updated_at = $3 WHERE id = $1`, id, to, now); err != nil {
		return fmt.Errorf("verification outcome for household %d: %w", id, err)
	}
	ev := Event{HouseholdID: id, At: now, Action: "verify_outcome:" + outcome, FromStatus: st, Reason: reply, TicketID: &ticketID}
	if to != st {
		ev.ToStatus = to
	}
	return addEvent(ctx, tx, ev, actor)
}

func ptr[T any](v T) *T { return &v }

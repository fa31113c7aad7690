package ticketing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"hotline/ticketing/org"
)

// Access words beyond the work-order actions, for Authorize.
const (
	ActRead   Action = "read"   // see the ticket, its events, its duplicates, its recording
	ActCreate Action = "create" // open a ticket (with Dispatch: and dispatch it at once)
)

// ErrIdempotencyKeyReused: an Idempotency-Key sent again with a different request (IETF idempotency-key draft:
// 422).
// errNotYours is ErrForbidden for a ticket outside the actor's reach; doTx tells it apart from a role refusal so
// that it adds nothing about the ticket to the error.
var errNotYours = fmt.Errorf("%w: outside your unit's tickets", org.ErrForbidden)

var ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different request")

// creators may open tickets: the hotline (agents, the dispatch desk), supervision, admins and the platform itself
// (org.System, the 12345 adapter's machine user).
var creators = []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleSupervisor, org.RoleAdmin}

// monitoringCategories are what campaign managers (the monitoring division's outbound work) may read.
var monitoringCategories = []string{CategoryMonitoringHelp, CategoryMonitoringVerify}

// Authorize answers "may this actor do act to this ticket": the one question the web API, the console pages, the
// websocket hub and the 12345 adapter ask. A ticket the actor may not read is a bare ErrForbidden (no status,
// version or allowed actions leak); an action the actor's role or unit may not take is ErrForbidden; an action
// the ticket's state does not allow is ErrState.
func (s *Service) Authorize(ctx context.Context, a org.Actor, act Action, t Ticket) error {
	if !s.mayRead(ctx, a, t) {
		return fmt.Errorf("ticket %d: %w", t.ID, errNotYours)
	}
	if act == ActRead {
		return nil
	}
	return allowed(t, a, act, s.facts(ctx, s.db, a, t))
}

// AuthorizeCreate answers whether the actor may open a ticket, and dispatch it at intake.
func AuthorizeCreate(a org.Actor, dispatch bool) error {
	if !slices.Contains(creators, a.Role) {
		return fmt.Errorf("create ticket: %w: role %s", org.ErrForbidden, a.Role)
	}
	if dispatch {
		if _, roleOK := Permitted(StatusNew, ActDispatch, a.Role); !roleOK {
			return fmt.Errorf("dispatch at intake: %w: role %s", org.ErrForbidden, a.Role)
		}
	}
	return nil
}

// MayRead is Authorize(ActRead) for a ticket by ID (the websocket hub and telephony ask this).
func (s *Service) MayRead(ctx context.Context, a org.Actor, id org.TicketID) error {
	t, err := getTicket(ctx, s.db, id, false)
	if err != nil {
		return err
	}
	return s.Authorize(ctx, a, ActRead, t)
}

// mayRead: admins and supervisors read every ticket; division and county staff and heads the tickets their unit
// leads or co-handles; campaign managers the monitoring tickets; agents and dispatchers the rest. A confidential
// report (举报) is further kept from agents and dispatchers who neither took it nor hold it at the desk, and from
// everyone outside its units unless they may see confidential reports.
func (s *Service) mayRead(ctx context.Context, a org.Actor, t Ticket) bool {
	return s.mayReadIn(ctx, s.db, a, t)
}

// mayReadIn is mayRead with the unit tree read through db (the caller's transaction, if it holds one).
func (s *Service) mayReadIn(ctx context.Context, db org.DB, a org.Actor, t Ticket) bool {
	inUnit := a.UnitID != 0 && (t.LeadUnitID == a.UnitID || slices.Contains(t.CoUnitIDs, a.UnitID))
	switch a.Role {
	case org.RoleAdmin, org.RoleSupervisor:
		return true
	case org.RoleStaff, org.RoleHead:
		// A prefecture bureau (市州) also reads its counties' tickets (and urges them: allowed).
		return inUnit || (a.UnitID != 0 && s.oversees(ctx, db, a.UnitID, t.LeadUnitID))
	case org.RoleCampaignManager:
		return slices.Contains(monitoringCategories, t.Category) && !t.Confidential && t.Kind != KindReport
	case org.RoleAgent, org.RoleDispatcher:
		if !t.Confidential || inUnit || (t.CreatedBy != 0 && t.CreatedBy == a.UserID) || s.maySeeConfidential(ctx, a) {
			return true
		}
		if a.Role == org.RoleDispatcher {
			desk, err := s.unitByCodeCached(ctx, s.db, org.CodeDesk)
			return err == nil && t.LeadUnitID == desk.ID
		}
		return false
	}
	return false
}

// maySeeConfidential: who may see who made a confidential report: the discipline-inspection team, supervisors,
// holders of the confidential permission, admins.
func (s *Service) maySeeConfidential(ctx context.Context, a org.Actor) bool {
	if a.Can(org.PermConfidential) || a.Role == org.RoleSupervisor {
		return true
	}
	disc, err := s.unitByCodeCached(ctx, s.db, "div-discipline")
	return err == nil && a.UnitID != 0 && a.UnitID == disc.ID
}

// readableSQL is mayRead as a WHERE condition over tickets, for lists; "" reads everything. It matches mayRead
// except that the confidential rule is applied in Go afterwards for agents and dispatchers who may see
// confidential reports (a rare case, kept out of the SQL).
func (s *Service) readableSQL(ctx context.Context, a org.Actor, arg func(any) string) string {
	switch a.Role {
	case org.RoleAdmin, org.RoleSupervisor:
		return ""
	case org.RoleStaff, org.RoleHead:
		p := arg(int64(a.UnitID))
		if s.isPrefecture(ctx, s.db, a.UnitID) {
			return "(lead_unit_id = " + p + " OR " + p + " = ANY(co_unit_ids) OR lead_unit_id IN (SELECT id FROM units WHERE parent_id = " + p + "))"
		}
		return "(lead_unit_id = " + p + " OR " + p + " = ANY(co_unit_ids))"
	case org.RoleCampaignManager:
		return "(category = ANY(" + arg(monitoringCategories) + ") AND NOT confidential AND kind <> 'report')"
	case org.RoleAgent, org.RoleDispatcher:
		if s.maySeeConfidential(ctx, a) {
			return ""
		}
		u, me := arg(int64(a.UnitID)), arg(int64(a.UserID))
		cond := "(NOT confidential OR lead_unit_id = " + u + " OR " + u + " = ANY(co_unit_ids) OR created_by = " + me
		if a.Role == org.RoleDispatcher {
			if desk, err := s.unitByCodeCached(ctx, s.db, org.CodeDesk); err == nil {
				cond += " OR lead_unit_id = " + arg(int64(desk.ID))
			}
		}
		return cond + ")"
	}
	return "false"
}

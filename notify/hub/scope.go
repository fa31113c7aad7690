package hub

import (
	"context"
	"slices"
	"strings"

	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// scope is what the visibility rules read from an event's payload (decoded once per event, for every
// connection): the ticket's units for ticket.* and sla.*, the agent for call.*, the user for agent.*.
type scope struct {
	LeadUnitID   org.UnitID   `json:"lead_unit_id"`
	CoUnitIDs    []org.UnitID `json:"co_unit_ids"`
	Confidential bool         `json:"confidential"`
	Kind         string       `json:"kind"`
	Category     string       `json:"category"`
	AgentID      org.UserID   `json:"agent_id"`
	UserID       org.UserID   `json:"user_id"`
}

// TicketRule is the ticket service's authorization question, as the hub asks it (ticketing.Service).
type TicketRule interface {
	Authorize(ctx context.Context, a org.Actor, act ticketing.Action, t ticketing.Ticket) error
}

// Visible answers, for one event, "may this actor see it", by asking the rule of the domain that owns the
// topic — the same rule its API applies — so a console never shows what the API would refuse:
//
//	ticket.*    the ticket service's read rule (TicketRule.Authorize with ActRead) on the fields the event
//	            carries: units, kind, category, confidential — the rule the ticket API applies; without a
//	            rule, supervisors and admins only
//	sla.*       the unit's own users (lead or co-unit) and those who see every ticket's deadlines
//	            (supervisors, admins, dispatchers)
//	call.*      telephony.CanSeeCall: the agent of the call, supervisors, heads, admins
//	agent.*     telephony.CanSeeCall on the agent the state belongs to
//	callback.*  telephony.CanSeeCallbacks: agents and supervisors (tasks are not assigned to one agent)
//	campaign.*  campaign.CanRead: campaign managers, supervisors, admins
//
// Anything else reaches supervisors and admins only: a new topic is private until its domain says otherwise.
// Event payloads carry no personal data in clear (producers mask numbers), so visibility is all-or-nothing.
func Visible(ctx context.Context, a org.Actor, ev *Event, tickets TicketRule) bool {
	domain, _, _ := strings.Cut(ev.Topic, ".")
	switch domain {
	case "ticket":
		if tickets == nil {
			break
		}
		// An event of a ticket the reader could not open is not sent; the event names no creator, so a
		// confidential report's own agent sees it through the API only (fails closed).
		t := ticketing.Ticket{LeadUnitID: ev.scope.LeadUnitID, CoUnitIDs: ev.scope.CoUnitIDs,
			Confidential: ev.scope.Confidential, Kind: ticketing.Kind(ev.scope.Kind), Category: ev.scope.Category}
		return tickets.Authorize(ctx, a, ticketing.ActRead, t) == nil
	case "sla":
		switch a.Role {
		case org.RoleSupervisor, org.RoleAdmin, org.RoleDispatcher:
			return true
		}
		return a.UnitID != 0 && (ev.scope.LeadUnitID == a.UnitID || slices.Contains(ev.scope.CoUnitIDs, a.UnitID))
	case "call":
		return telephony.CanSeeCall(a, ev.scope.AgentID)
	case "agent":
		return telephony.CanSeeCall(a, ev.scope.UserID)
	case "callback":
		return telephony.CanSeeCallbacks(a)
	case "campaign":
		return campaign.CanRead(a)
	}
	return a.Role == org.RoleSupervisor || a.Role == org.RoleAdmin
}

package hub

import (
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
	AgentID      org.UserID   `json:"agent_id"`
	UserID       org.UserID   `json:"user_id"`
}

// Visible answers, for one event, "may this actor see it", by asking the rule of the domain that owns the
// topic — the same rule its API applies — so a console never shows what the API would refuse:
//
//	ticket.*    ticketing.CanSee (division staff and heads: their unit leads or co-handles it; others: all)
//	sla.*       the unit's own users (lead or co-unit) and those who see every ticket's deadlines
//	            (supervisors, admins, dispatchers)
//	call.*      telephony.CanSeeCall: the agent of the call, supervisors, heads, admins
//	agent.*     telephony.CanSeeCall on the agent the state belongs to
//	callback.*  telephony.CanSeeCallbacks: agents and supervisors (tasks are not assigned to one agent)
//	campaign.*  campaign.CanRead: campaign managers, supervisors, admins
//
// Anything else reaches supervisors and admins only: a new topic is private until its domain says otherwise.
// Event payloads carry no personal data in clear (producers mask numbers), so visibility is all-or-nothing.
func Visible(a org.Actor, ev *Event) bool {
	domain, _, _ := strings.Cut(ev.Topic, ".")
	switch domain {
	case "ticket":
		return ticketing.CanSee(a, ev.scope.LeadUnitID, ev.scope.CoUnitIDs)
	case "sla":
		switch a.Role {
		case org.RoleSupervisor, org.RoleAdmin, org.RoleDispatcher:
			return true
		}
		return a.UnitID != 0 && ticketing.CanSee(org.Actor{Role: org.RoleStaff, UnitID: a.UnitID}, ev.scope.LeadUnitID, ev.scope.CoUnitIDs)
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

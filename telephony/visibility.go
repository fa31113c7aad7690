package telephony

import "hotline/ticketing/org"

// CanSeeCall is the rule of who may see a call and an agent's state (and their events on the stream): the
// agent it belongs to, and those who supervise (supervisors, heads, admins) — the same rule as GetCall and
// CDRs. The websocket hub asks it for every call.* and agent.* event.
func CanSeeCall(a org.Actor, agent org.UserID) bool {
	return supervising(a) || (a.Role == org.RoleAgent && agent != 0 && agent == a.UserID)
}

// CanSeeCallbacks is the rule of who works the callback list (漏接回拨): the same roles as Callbacks. Tasks are
// not assigned to one agent; every agent may ring a caller back.
func CanSeeCallbacks(a org.Actor) bool { return staff(a) }

package org

import (
	"context"
	"slices"
)

// Role of a user. The set is closed; the database enforces it too.
type Role string

const (
	RoleAgent           Role = "agent"            // 话务员
	RoleDispatcher      Role = "dispatcher"       // 派单员
	RoleStaff           Role = "staff"            // 承办人
	RoleHead            Role = "head"             // 负责人
	RoleSupervisor      Role = "supervisor"       // 督办
	RoleCampaignManager Role = "campaign_manager" // 外呼任务管理
	RoleAdmin           Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleAgent, RoleDispatcher, RoleStaff, RoleHead, RoleSupervisor, RoleCampaignManager, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Permission is a grant beyond the role, e.g. revealing personal data.
type Permission string

const (
	PermRevealPII    Permission = "reveal_pii"   // see full ID and phone numbers (audited)
	PermConfidential Permission = "confidential" // see the identity of 举报 callers
	// PermLookupPII: find records by a full ID or phone number typed in (audited, rate-limited). An exact match
	// confirms a guess, so without it masked numbers could be recovered one guess at a time.
	PermLookupPII Permission = "lookup_pii"
)

// UserID and UnitID are distinct types so one cannot be passed for the other.
type (
	UserID int64
	UnitID int64
)

// Actor is who is doing something: every service call that changes or reads scoped data takes one.
type Actor struct {
	UserID      UserID
	Username    string
	Name        string
	Role        Role
	UnitID      UnitID // 0 when the user belongs to no unit
	Permissions []Permission
}

// Can reports whether the actor holds a permission (admins hold all).
func (a Actor) Can(p Permission) bool {
	return a.Role == RoleAdmin || slices.Contains(a.Permissions, p)
}

// System is the actor for work the platform does by itself (sweepers, campaigns, intake).
var System = Actor{UserID: 0, Username: "system", Name: "系统", Role: RoleAdmin}

type actorKey struct{}

// WithActor returns a context carrying the actor (set by the web layer after authentication).
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor of a context, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

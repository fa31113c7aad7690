package org

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
)

// Administration (系统管理): users, units and the admin audit log. Every change here is one transaction that
// also writes its admin_audit row (who, what, before, after), which the database refuses to change or delete.

// AdminAction names what an admin did; the object is "user:12", "unit:5", "sip_account:12".
type AdminAction string

const (
	AdminUserCreate    AdminAction = "user.create"
	AdminUserUpdate    AdminAction = "user.update" // display name, role, unit, permissions, enabled/disabled
	AdminUserPassword  AdminAction = "user.password_reset"
	AdminUserBootstrap AdminAction = "user.bootstrap" // the first admin, made by `hotline serve` or `hotline users create`
	AdminUnitCreate    AdminAction = "unit.create"
	AdminUnitUpdate    AdminAction = "unit.update" // rename, deactivate, reactivate
	AdminUnitDelete    AdminAction = "unit.delete" // only a unit that never had a ticket, a user or a child
	AdminSIPAccount    AdminAction = "sip_account.set"
	AdminRuleCreate    AdminAction = "routing_rule.create"
	AdminRuleUpdate    AdminAction = "routing_rule.update"
	AdminCategorySave  AdminAction = "category.save" // created or changed, SLA days included
	AdminTrunkSave     AdminAction = "trunk.save"    // a stored SIP trunk created or changed
	AdminTrunkDelete   AdminAction = "trunk.delete"
	AdminHolidayUpload AdminAction = "holidays.upload" // a holiday calendar (next year's notice)
)

// AdminUnitReplyApproval: a unit's replies need (or no longer need) its head's approval (需审核答复); an admin or
// the unit's head switches it.
const AdminUnitReplyApproval AdminAction = "unit.reply_approval"

// Source says where an administrative change came from, for the audit row.
type Source struct {
	Addr string // the client's address ("" for the command line)
}

// MayAdminister is the one authorization question of administration: only admins create, change and disable
// users and units, and read the admin audit log.
func MayAdminister(a Actor) error {
	if a.Role != RoleAdmin {
		return fmt.Errorf("administration: %w", ErrForbidden)
	}
	return nil
}

// AdminAuditEntry is one row of admin_audit.
type AdminAuditEntry struct {
	ID            int64           `json:"id"`
	At            time.Time       `json:"at"`
	ActorID       UserID          `json:"actor_id,omitempty"`
	ActorUsername string          `json:"actor_username"`
	Action        AdminAction     `json:"action"`
	Object        string          `json:"object"`
	Before        json.RawMessage `json:"before"`
	After         json.RawMessage `json:"after"`
	SourceAddr    string          `json:"source_addr,omitempty"`
}

// WriteAdminAudit appends an admin audit row in db (the transaction of the change it records). before and after
// are marshalled to JSON; nil is stored as NULL (nothing before a creation, nothing after a deletion).
func WriteAdminAudit(ctx context.Context, db DB, a Actor, src Source, action AdminAction, object string, before, after any) error {
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(before)
	if err != nil {
		return fmt.Errorf("admin audit %s: %w", action, err)
	}
	af, err := enc(after)
	if err != nil {
		return fmt.Errorf("admin audit %s: %w", action, err)
	}
	var actor any
	if a.UserID != 0 {
		actor = int64(a.UserID)
	}
	if _, err := db.Exec(ctx, `INSERT INTO admin_audit (actor_id, actor_username, action, object, before, after, source_addr)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, actor, a.Username, string(action), object, b, af, src.Addr); err != nil {
		return fmt.Errorf("admin audit %s %s: %w", action, object, err)
	}
	return nil
}

// AdminAuditFilter selects admin audit rows; zero fields do not filter.
type AdminAuditFilter struct {
	Action   string // exact ("user.update") or a prefix ending in "." ("user.")
	ActorID  UserID
	Username string
	Object   string // exact, e.g. user:12
	From, To time.Time
	Before   int64 // keyset paging: rows with a smaller id
	Limit    int   // default 100, at most 1000
}

// ListAdminAudit returns admin audit rows newest first, for admins.
func ListAdminAudit(ctx context.Context, db DB, a Actor, f AdminAuditFilter) ([]AdminAuditEntry, error) {
	if err := MayAdminister(a); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			where = append(where, "starts_with(action, "+arg(f.Action)+")")
		} else {
			where = append(where, "action = "+arg(f.Action))
		}
	}
	if f.ActorID != 0 {
		where = append(where, "actor_id = "+arg(int64(f.ActorID)))
	}
	if f.Username != "" {
		where = append(where, "actor_username = "+arg(f.Username))
	}
	if f.Object != "" {
		where = append(where, "object = "+arg(f.Object))
	}
	if !f.From.IsZero() {
		where = append(where, "at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "at < "+arg(f.To))
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return nil, Invalid("limit", "at most 1000")
	}
	q := `SELECT id, at, coalesce(actor_id, 0), actor_username, action, object, before, after, source_addr FROM admin_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list admin audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminAuditEntry, error) {
		var e AdminAuditEntry
		var before, after []byte
		err := r.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorUsername, &e.Action, &e.Object, &before, &after, &e.SourceAddr)
		e.Before, e.After = nullJSON(before), nullJSON(after)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list admin audit: %w", err)
	}
	if out == nil {
		out = []AdminAuditEntry{}
	}
	return out, nil
}

func nullJSON(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}

// ---- users ---------------------------------------------------------------------------------------------------

// UserFilter selects users for the admin list; zero fields do not filter.
type UserFilter struct {
	Q      string // part of the username or display name
	Role   Role
	UnitID UnitID
	Active *bool
	Limit  int // default 200, at most 1000
}

// ListUsers returns users by username, for admins.
func ListUsers(ctx context.Context, db DB, a Actor, f UserFilter) ([]User, error) {
	if err := MayAdminister(a); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Q != "" {
		p := "%" + EscapeLike(f.Q) + "%"
		where = append(where, "(username ILIKE "+arg(p)+" OR display_name ILIKE "+arg(p)+")")
	}
	if f.Role != "" {
		if !f.Role.Valid() {
			return nil, Invalid("role", "unknown role")
		}
		where = append(where, "role = "+arg(string(f.Role)))
	}
	if f.UnitID != 0 {
		where = append(where, "unit_id = "+arg(int64(f.UnitID)))
	}
	if f.Active != nil {
		where = append(where, "active = "+arg(*f.Active))
	}
	if f.Limit <= 0 {
		f.Limit = 200
	}
	if f.Limit > 1000 {
		return nil, Invalid("limit", "at most 1000")
	}
	q := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY username LIMIT " + arg(f.Limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if us == nil {
		us = []User{}
	}
	return us, nil
}

var permissions = []Permission{PermRevealPII, PermConfidential, PermLookupPII}

func checkPermissions(ps []Permission) error {
	for _, p := range ps {
		if !slices.Contains(permissions, p) {
			return Invalid("permissions", "unknown permission "+string(p))
		}
	}
	return nil
}

// roleNeedsUnit: everyone but an admin works in a unit (their queues, scope and reports hang on it).
func roleNeedsUnit(r Role) bool { return r != RoleAdmin }

// AdminCreateUser creates a user and its audit row in one transaction. The password follows the rules a user
// chooses by (CheckNewPassword).
func AdminCreateUser(ctx context.Context, db TxBeginner, a Actor, src Source, nu NewUser) (User, error) {
	if err := MayAdminister(a); err != nil {
		return User{}, err
	}
	if err := checkPermissions(nu.Permissions); err != nil {
		return User{}, err
	}
	if err := CheckNewPassword(nu.Username, nu.Password); err != nil {
		return User{}, Invalid("password", err.(*ValidationError).Fields["new_password"])
	}
	if roleNeedsUnit(nu.Role) && nu.UnitID == 0 {
		return User{}, Invalid("unit_id", "required for this role")
	}
	var u User
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		if u, err = CreateUser(ctx, tx, nu); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUserCreate, userObject(u.ID), nil, u)
	})
	return u, err
}

func userObject(id UserID) string { return "user:" + strconv.FormatInt(int64(id), 10) }
func unitObject(id UnitID) string { return "unit:" + strconv.FormatInt(int64(id), 10) }

// UserPatch is a change to a user; nil fields stay as they are.
type UserPatch struct {
	DisplayName *string       `json:"display_name"`
	Role        *Role         `json:"role"`
	UnitID      *UnitID       `json:"unit_id"` // 0: no unit (admins only)
	Permissions *[]Permission `json:"permissions"`
	Active      *bool         `json:"active"`
}

// UpdateUser changes a user and writes the audit row, in one transaction. Disabling a user ends their sessions
// and revokes their bearer tokens in the same transaction (a process's token cache forgets within
// TokenCacheTTL). The last active admin cannot be disabled or demoted, so the system always has one.
func UpdateUser(ctx context.Context, db TxBeginner, a Actor, src Source, id UserID, p UserPatch) (User, error) {
	if err := MayAdminister(a); err != nil {
		return User{}, err
	}
	v := &ValidationError{}
	if p.DisplayName != nil && strings.TrimSpace(*p.DisplayName) == "" {
		v.Add("display_name", "required")
	}
	if p.Role != nil && !p.Role.Valid() {
		v.Add("role", "unknown role")
	}
	if p.Permissions != nil {
		if err := checkPermissions(*p.Permissions); err != nil {
			v.Add("permissions", err.(*ValidationError).Fields["permissions"])
		}
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	var after User
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, int64(id))
		if err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
		before, err := pgx.CollectExactlyOneRow(rows, scanUser)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
		next := before
		if p.DisplayName != nil {
			next.DisplayName = strings.TrimSpace(*p.DisplayName)
		}
		if p.Role != nil {
			next.Role = *p.Role
		}
		if p.UnitID != nil {
			next.UnitID = *p.UnitID
		}
		if p.Permissions != nil {
			next.Permissions = *p.Permissions
		}
		if p.Active != nil {
			next.Active = *p.Active
		}
		if roleNeedsUnit(next.Role) && next.UnitID == 0 {
			return Invalid("unit_id", "required for this role")
		}
		if before.Role == RoleAdmin && before.Active && (next.Role != RoleAdmin || !next.Active) {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND active AND id <> $1`, int64(id)).Scan(&others); err != nil {
				return fmt.Errorf("update user %d: count admins: %w", id, err)
			}
			if others == 0 {
				return Invalid("active", "the last active admin cannot be disabled or given another role")
			}
		}
		var unit any
		if next.UnitID != 0 {
			unit = int64(next.UnitID)
		}
		perms := make([]string, len(next.Permissions))
		for i, p := range next.Permissions {
			perms[i] = string(p)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET display_name = $2, role = $3, unit_id = $4, permissions = $5, active = $6 WHERE id = $1`,
			int64(id), next.DisplayName, string(next.Role), unit, perms, next.Active); err != nil {
			if SQLState(err) == pgerrcode.ForeignKeyViolation {
				return Invalid("unit_id", "no such unit")
			}
			return fmt.Errorf("update user %d: %w", id, err)
		}
		if before.Active && !next.Active {
			if err := endAccess(ctx, tx, id); err != nil {
				return err
			}
		}
		if after, err = GetUser(ctx, tx, id); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUserUpdate, userObject(id), before, after)
	})
	return after, err
}

// endAccess ends a user's sessions and revokes their bearer tokens.
func endAccess(ctx context.Context, tx DB, id UserID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, int64(id)); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, int64(id)); err != nil {
		return fmt.Errorf("revoke tokens of user %d: %w", id, err)
	}
	return nil
}

// ResetPassword sets a user's password on an admin's word (the user is told it out of band), ends their
// sessions and revokes their tokens, and writes the audit row (without the password), in one transaction.
func ResetPassword(ctx context.Context, db TxBeginner, a Actor, src Source, id UserID, password string) error {
	if err := MayAdminister(a); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		u, err := GetUser(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("reset password of user %d: %w", id, err)
		}
		if err := CheckNewPassword(u.Username, password); err != nil {
			return Invalid("password", err.(*ValidationError).Fields["new_password"])
		}
		if err := SetPassword(ctx, tx, id, password); err != nil {
			return err
		}
		if err := endAccess(ctx, tx, id); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUserPassword, userObject(id), nil, map[string]any{"username": u.Username, "sessions_ended": true})
	})
}

// BootstrapAdmin creates the first admin of an empty installation, in the provincial bureau. It does nothing
// (created false) when an active admin already exists, so a bootstrap setting left in place can never reset or
// add an account later; the check and the creation are one transaction under an advisory lock, so two
// processes starting together create one admin.
func BootstrapAdmin(ctx context.Context, db TxBeginner, username, displayName, password string, src Source) (User, bool, error) {
	if displayName == "" {
		displayName = username
	}
	if err := CheckNewPassword(username, password); err != nil {
		return User{}, false, Invalid("password", err.(*ValidationError).Fields["new_password"])
	}
	var u User
	created := false
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('hotline.bootstrap_admin'))`); err != nil {
			return fmt.Errorf("bootstrap admin: lock: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND active`).Scan(&n); err != nil {
			return fmt.Errorf("bootstrap admin: %w", err)
		}
		if n > 0 {
			return nil
		}
		bureau, err := UnitByCode(ctx, tx, CodeBureau)
		if err != nil {
			return fmt.Errorf("bootstrap admin: the provincial bureau (run `hotline migrate` first): %w", err)
		}
		if u, err = CreateUser(ctx, tx, NewUser{Username: username, DisplayName: displayName, Password: password,
			Role: RoleAdmin, UnitID: bureau.ID}); err != nil {
			return err
		}
		created = true
		return WriteAdminAudit(ctx, tx, System, src, AdminUserBootstrap, userObject(u.ID), nil, u)
	})
	return u, created, err
}

// CreateAdmin creates an admin on the command line (`hotline users create --admin NAME`), whether or not
// others exist; the audit row names the system as the actor and the command line as the source.
func CreateAdmin(ctx context.Context, db TxBeginner, username, displayName, password string) (User, error) {
	if displayName == "" {
		displayName = username
	}
	if err := CheckNewPassword(username, password); err != nil {
		return User{}, Invalid("password", err.(*ValidationError).Fields["new_password"])
	}
	var u User
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		bureau, err := UnitByCode(ctx, tx, CodeBureau)
		if err != nil {
			return fmt.Errorf("create admin: the provincial bureau (run `hotline migrate` first): %w", err)
		}
		if u, err = CreateUser(ctx, tx, NewUser{Username: username, DisplayName: displayName, Password: password,
			Role: RoleAdmin, UnitID: bureau.ID}); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, System, Source{Addr: "cli"}, AdminUserCreate, userObject(u.ID), nil, u)
	})
	return u, err
}

// ---- units ---------------------------------------------------------------------------------------------------

// NewUnit is what CreateUnit needs. Code is unique (a region code for bureaus, e.g. div-xxx for divisions).
type NewUnit struct {
	Code       string   `json:"code"`
	Name       string   `json:"name"`
	ShortName  string   `json:"short_name"`
	Kind       UnitKind `json:"kind"`
	ParentID   UnitID   `json:"parent_id"`
	RegionCode string   `json:"region_code"`
}

var unitKinds = []UnitKind{UnitBureau, UnitDesk, UnitDivision, UnitPrefecture, UnitCounty}

// CreateUnit adds a unit under an active parent, with its audit row.
func CreateUnit(ctx context.Context, db TxBeginner, a Actor, src Source, nu NewUnit) (Unit, error) {
	if err := MayAdminister(a); err != nil {
		return Unit{}, err
	}
	nu.Code, nu.Name, nu.ShortName = strings.TrimSpace(nu.Code), strings.TrimSpace(nu.Name), strings.TrimSpace(nu.ShortName)
	v := &ValidationError{}
	if nu.Code == "" || len(nu.Code) > 64 {
		v.Add("code", "required, at most 64 characters")
	}
	if nu.Name == "" {
		v.Add("name", "required")
	}
	if nu.ShortName == "" {
		nu.ShortName = nu.Name
	}
	if !slices.Contains(unitKinds, nu.Kind) || nu.Kind == UnitBureau {
		v.Add("kind", "one of desk, division, prefecture, county")
	}
	if nu.ParentID == 0 {
		v.Add("parent_id", "required")
	}
	if err := v.Err(); err != nil {
		return Unit{}, err
	}
	var u Unit
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		parent, err := GetUnit(ctx, tx, nu.ParentID)
		if errors.Is(err, ErrNotFound) {
			return Invalid("parent_id", "no such unit")
		}
		if err != nil {
			return err
		}
		if !parent.Active {
			return Invalid("parent_id", "the parent unit is deactivated")
		}
		var reg any
		if nu.RegionCode != "" {
			reg = nu.RegionCode
		}
		var id UnitID
		err = tx.QueryRow(ctx, `INSERT INTO units (code, name, short_name, kind, parent_id, region_code, admin_managed)
			VALUES ($1, $2, $3, $4, $5, $6, true) RETURNING id`, nu.Code, nu.Name, nu.ShortName, string(nu.Kind), int64(nu.ParentID), reg).Scan(&id)
		if err != nil {
			switch SQLState(err) {
			case pgerrcode.UniqueViolation:
				if strings.Contains(err.Error(), "region") {
					return Invalid("region_code", "another unit already serves this region")
				}
				return Invalid("code", "already taken")
			case pgerrcode.CheckViolation:
				return Invalid("region_code", "a Hunan region code of 6 digits (43xxxx)")
			}
			return fmt.Errorf("create unit %s: %w", nu.Code, err)
		}
		if u, err = GetUnit(ctx, tx, id); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUnitCreate, unitObject(id), nil, u)
	})
	return u, err
}

// UnitPatch renames or (de)activates a unit; nil fields stay.
type UnitPatch struct {
	Name      *string `json:"name"`
	ShortName *string `json:"short_name"`
	Active    *bool   `json:"active"`
}

// ErrUnitInUse: a unit that has open tickets, active users or active children cannot be deactivated, and one
// that ever had a ticket, a user or a child cannot be deleted.
var ErrUnitInUse = fmt.Errorf("unit in use: %w", ErrConflict)

// UpdateUnit renames, deactivates or reactivates a unit, with its audit row. A unit that still leads open
// tickets, has active users or active child units is not deactivated: those are moved first. The root bureau and
// the dispatch desk (where unrouted tickets go) are never deactivated.
func UpdateUnit(ctx context.Context, db TxBeginner, a Actor, src Source, id UnitID, p UnitPatch) (Unit, error) {
	if err := MayAdminister(a); err != nil {
		return Unit{}, err
	}
	if p.Name != nil && strings.TrimSpace(*p.Name) == "" {
		return Unit{}, Invalid("name", "required")
	}
	if p.ShortName != nil && strings.TrimSpace(*p.ShortName) == "" {
		return Unit{}, Invalid("short_name", "required")
	}
	var after Unit
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		before, err := oneUnit(ctx, tx, `SELECT `+unitColumns+` FROM units WHERE id = $1 FOR UPDATE`, int64(id))
		if err != nil {
			return fmt.Errorf("unit %d: %w", id, err)
		}
		next := before
		if p.Name != nil {
			next.Name = strings.TrimSpace(*p.Name)
		}
		if p.ShortName != nil {
			next.ShortName = strings.TrimSpace(*p.ShortName)
		}
		if p.Active != nil {
			next.Active = *p.Active
		}
		if before.Active && !next.Active {
			if before.Code == CodeBureau || before.Code == CodeDesk {
				return Invalid("active", "the provincial bureau and the dispatch desk stay active")
			}
			if err := unitInUse(ctx, tx, id, true); err != nil {
				return err
			}
		}
		if !before.Active && next.Active && before.ParentID != nil {
			parent, err := GetUnit(ctx, tx, *before.ParentID)
			if err != nil {
				return err
			}
			if !parent.Active {
				return Invalid("active", "reactivate the parent unit first")
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE units SET name = $2, short_name = $3, active = $4, admin_managed = true WHERE id = $1`,
			int64(id), next.Name, next.ShortName, next.Active); err != nil {
			return fmt.Errorf("update unit %d: %w", id, err)
		}
		if after, err = GetUnit(ctx, tx, id); err != nil {
			return err
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUnitUpdate, unitObject(id), before, after)
	})
	return after, err
}

// unitInUse refuses to take a unit out of service: open=true asks about deactivation (open tickets, active users
// or children), open=false about deletion (any ticket ever, any user, any child).
func unitInUse(ctx context.Context, tx DB, id UnitID, open bool) error {
	var tickets, users, children int
	q := `SELECT (SELECT count(*) FROM tickets WHERE (lead_unit_id = $1 OR route_unit_id = $1 OR $1 = ANY (co_unit_ids))
			AND ($2 = false OR status <> 'closed')),
		(SELECT count(*) FROM users WHERE unit_id = $1 AND ($2 = false OR active)),
		(SELECT count(*) FROM units WHERE parent_id = $1 AND ($2 = false OR active))`
	if err := tx.QueryRow(ctx, q, int64(id), open).Scan(&tickets, &users, &children); err != nil {
		return fmt.Errorf("unit %d in use: %w", id, err)
	}
	if tickets+users+children == 0 {
		return nil
	}
	var parts []string
	if tickets > 0 {
		parts = append(parts, fmt.Sprintf("%d tickets", tickets))
	}
	if users > 0 {
		parts = append(parts, fmt.Sprintf("%d users", users))
	}
	if children > 0 {
		parts = append(parts, fmt.Sprintf("%d child units", children))
	}
	return fmt.Errorf("unit %d has %s: %w", id, strings.Join(parts, ", "), ErrUnitInUse)
}

// DeleteUnit removes a unit created by mistake: only one that never had a ticket, a user or a child unit (a unit
// with history is deactivated instead, so its tickets keep their unit). The audit row keeps what was deleted.
func DeleteUnit(ctx context.Context, db TxBeginner, a Actor, src Source, id UnitID) error {
	if err := MayAdminister(a); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		before, err := oneUnit(ctx, tx, `SELECT `+unitColumns+` FROM units WHERE id = $1 FOR UPDATE`, int64(id))
		if err != nil {
			return fmt.Errorf("unit %d: %w", id, err)
		}
		if before.Code == CodeBureau || before.Code == CodeDesk {
			return fmt.Errorf("the provincial bureau and the dispatch desk stay: %w", ErrUnitInUse)
		}
		if err := unitInUse(ctx, tx, id, false); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM units WHERE id = $1`, int64(id)); err != nil {
			if SQLState(err) == pgerrcode.ForeignKeyViolation {
				// Something else still names it (a routing rule's history, a notification setting, a CDR).
				return fmt.Errorf("unit %d is referenced elsewhere; deactivate it instead: %w", id, ErrUnitInUse)
			}
			return fmt.Errorf("delete unit %d: %w", id, err)
		}
		return WriteAdminAudit(ctx, tx, a, src, AdminUnitDelete, unitObject(id), before, nil)
	})
}

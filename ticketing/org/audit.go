package org

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditKind names a security event.
type AuditKind string

const (
	AuditLogin          AuditKind = "login"                 // a password login succeeded
	AuditLoginFailed    AuditKind = "login_failed"          // a wrong username or password, or a refused (rate-limited) login
	AuditLogout         AuditKind = "logout"                // a session ended or a bearer token was revoked by its holder
	AuditPasswordChange AuditKind = "password_change"       // a password was set or changed
	AuditExport         AuditKind = "export"                // a file of records left the system (who, filter, rows)
	AuditReveal         AuditKind = "reveal"                // full personal data was shown (pii_reveals has the detail)
	AuditLookup         AuditKind = "pii_lookup"            // an exact-match search by a full ID or phone number
	AuditForbidden      AuditKind = "forbidden"             // a request was refused for role or scope
	AuditImport         AuditKind = "import"                // a household file was imported
	AuditKeyCreated     AuditKind = "georeport_key_created" // an Open311 (GeoReport) client's API key was issued
	AuditKeyRevoked     AuditKind = "georeport_key_revoked" // and revoked
)

// AuditEntry is one row of the security audit log (table security_audit, append-only in the database).
type AuditEntry struct {
	ID            int64          `json:"id"`
	At            time.Time      `json:"at"`
	Kind          AuditKind      `json:"kind"`
	ActorID       UserID         `json:"actor_id,omitempty"`
	ActorUsername string         `json:"actor_username"`
	SourceAddr    string         `json:"source_addr,omitempty"`
	Object        string         `json:"object,omitempty"`
	Detail        map[string]any `json:"detail"`
}

// Audit appends a security event. Pass a transaction to make the event part of the change it records (an export,
// a reveal), or the pool for events that stand alone (a failed login). The actor's name is taken from a when
// the entry carries none.
func Audit(ctx context.Context, db DB, a Actor, e AuditEntry) error {
	if e.ActorID == 0 {
		e.ActorID = a.UserID
	}
	if e.ActorUsername == "" {
		e.ActorUsername = a.Username
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Kind, err)
	}
	var actor any
	if e.ActorID != 0 {
		actor = int64(e.ActorID)
	}
	if _, err := db.Exec(ctx, `INSERT INTO security_audit (kind, actor_id, actor_username, source_addr, object, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`, string(e.Kind), actor, e.ActorUsername, e.SourceAddr, e.Object, detail); err != nil {
		return fmt.Errorf("audit %s: %w", e.Kind, err)
	}
	return nil
}

// AuditFilter selects audit rows; zero fields do not filter.
type AuditFilter struct {
	Kind     AuditKind
	ActorID  UserID
	Username string
	Object   string // prefix, e.g. household:12
	From, To time.Time
	Before   int64 // keyset paging: rows with a smaller id
	Limit    int   // default 100, at most 1000
}

var auditKinds = []AuditKind{AuditLogin, AuditLoginFailed, AuditLogout, AuditPasswordChange, AuditExport, AuditReveal,
	AuditLookup, AuditForbidden, AuditImport, AuditKeyCreated, AuditKeyRevoked}

// MayReadAudit is the one question the audit API asks: only admins read the security audit log.
func MayReadAudit(a Actor) error {
	if a.Role != RoleAdmin {
		return fmt.Errorf("read the security audit log: %w", ErrForbidden)
	}
	return nil
}

// ListAudit returns audit rows newest first, for admins.
func ListAudit(ctx context.Context, db DB, a Actor, f AuditFilter) ([]AuditEntry, error) {
	if err := MayReadAudit(a); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Kind != "" {
		known := false
		for _, k := range auditKinds {
			known = known || k == f.Kind
		}
		if !known {
			return nil, Invalid("kind", "unknown audit kind")
		}
		where = append(where, "kind = "+arg(string(f.Kind)))
	}
	if f.ActorID != 0 {
		where = append(where, "actor_id = "+arg(int64(f.ActorID)))
	}
	if f.Username != "" {
		where = append(where, "actor_username = "+arg(f.Username))
	}
	if f.Object != "" {
		where = append(where, "starts_with(object, "+arg(f.Object)+")")
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
	q := `SELECT id, at, kind, coalesce(actor_id, 0), actor_username, source_addr, object, detail FROM security_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list security audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Kind, &e.ActorID, &e.ActorUsername, &e.SourceAddr, &e.Object, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list security audit: %w", err)
	}
	if out == nil {
		out = []AuditEntry{}
	}
	return out, nil
}

// MinAuditRetention is the shortest retention the database accepts (security_audit_purge refuses younger rows).
const MinAuditRetention = 30 * 24 * time.Hour

// PurgeAudit deletes audit rows older than the retention through the database's one purge path; it returns the
// number removed. A retention of 0 keeps everything.
func PurgeAudit(ctx context.Context, db DB, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, nil
	}
	if retention < MinAuditRetention {
		return 0, errors.New("purge security audit: retention below 30 days")
	}
	var n int64
	if err := db.QueryRow(ctx, `SELECT security_audit_purge(now() - $1::interval)`, retention).Scan(&n); err != nil {
		return 0, fmt.Errorf("purge security audit: %w", err)
	}
	return n, nil
}

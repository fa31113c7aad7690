package org

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// Sessions stores the browser sessions of the consoles in PostgreSQL (table web_sessions). The session id is
// 32 random bytes handed to the browser once; only its SHA-256 is stored. Each session has a CSRF token of its
// own that the pages send back on every state-changing request.
type Sessions struct {
	db       DB
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
}

// SessionOptions are the timeouts of sessions; zero values take the defaults (30 minutes idle, 12 hours).
type SessionOptions struct {
	Idle     time.Duration    // a session unused this long has ended
	Absolute time.Duration    // no session lives longer than this, however busy
	Now      func() time.Time // the clock (tests inject theirs)
}

// NewSessions returns the session store.
func NewSessions(db DB, opt SessionOptions) *Sessions {
	if opt.Idle <= 0 {
		opt.Idle = 30 * time.Minute
	}
	if opt.Absolute <= 0 {
		opt.Absolute = 12 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Sessions{db: db, idle: opt.Idle, absolute: opt.Absolute, now: opt.Now}
}

// Session is a resolved session: who it belongs to and its CSRF token.
type Session struct {
	Actor     Actor
	CSRFToken string
	ExpiresAt time.Time
}

func randomToken() string {
	raw := make([]byte, 32)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func sessionHash(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// Create starts a new session for a user and returns its id (the cookie value, shown once) and CSRF token.
// Sessions of any user that have already ended are purged on the way, so the table holds live sessions only.
func (s *Sessions) Create(ctx context.Context, user UserID, remoteAddr, userAgent string) (id, csrf string, err error) {
	now := s.now()
	if _, err := s.db.Exec(ctx, `DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`,
		now, now.Add(-s.idle)); err != nil {
		return "", "", fmt.Errorf("purge ended sessions: %w", err)
	}
	id, csrf = randomToken(), randomToken()
	if len(userAgent) > 300 {
		userAgent = userAgent[:300]
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at,
		remote_addr, user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)`,
		sessionHash(id), int64(user), csrf, now, now.Add(s.absolute), remoteAddr, strings.ToValidUTF8(userAgent, "")); err != nil {
		return "", "", fmt.Errorf("create session for user %d: %w", user, err)
	}
	return id, csrf, nil
}

// touchEvery is how often a session's last use is written.
const touchEvery = 30 * time.Second

// Resolve returns the live session with that id and marks it used now, or ErrAuth when there is none (never
// existed, signed out, idle too long, past its absolute expiry, or the user was deactivated).
func (s *Sessions) Resolve(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrAuth
	}
	now := s.now()
	// The use is written at most every touchEvery, so a busy page does not write a row per request; the idle
	// deadline is that much less precise.
	rows, err := s.db.Query(ctx, `WITH s AS (
			SELECT user_id, csrf_token, expires_at FROM web_sessions
			WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3
		), touch AS (
			UPDATE web_sessions SET last_seen_at = $2
			WHERE id_hash = $1 AND last_seen_at < $4 AND EXISTS (SELECT 1 FROM s)
		)
		SELECT u.id, u.username, u.display_name, u.role, coalesce(u.unit_id, 0), u.permissions, s.csrf_token, s.expires_at
		FROM s JOIN users u ON u.id = s.user_id WHERE u.active`, sessionHash(id), now, now.Add(-s.idle), now.Add(-touchEvery))
	if err != nil {
		return Session{}, fmt.Errorf("resolve session: %w", err)
	}
	sess, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (Session, error) {
		var ss Session
		var perms []string
		a := &ss.Actor
		if err := row.Scan(&a.UserID, &a.Username, &a.Name, &a.Role, &a.UnitID, &perms, &ss.CSRFToken, &ss.ExpiresAt); err != nil {
			return ss, err
		}
		a.Permissions = []Permission{}
		for _, p := range perms {
			a.Permissions = append(a.Permissions, Permission(p))
		}
		return ss, nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrAuth
	}
	if err != nil {
		return Session{}, fmt.Errorf("resolve session: %w", err)
	}
	return sess, nil
}

// Delete ends one session (sign-out). Deleting a session that does not exist is not an error.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, sessionHash(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUser ends every session of a user except the one with id keep ("" = all of them).
func (s *Sessions) DeleteUser(ctx context.Context, user UserID, keep string) error {
	var keepHash []byte
	if keep != "" {
		keepHash = sessionHash(keep)
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)`,
		int64(user), keepHash); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", user, err)
	}
	return nil
}

// MinPasswordLength is the shortest password a user may choose.
const MinPasswordLength = 8

// CheckNewPassword applies the rules for a password a user chooses: at least MinPasswordLength characters and
// not containing the user name (in any letter case).
func CheckNewPassword(username, password string) error {
	v := &ValidationError{}
	switch {
	case len([]rune(password)) < MinPasswordLength:
		v.Add("new_password", fmt.Sprintf("at least %d characters", MinPasswordLength))
	case len(password) > 72:
		v.Add("new_password", "at most 72 bytes") // bcrypt reads no further
	case username != "" && strings.Contains(strings.ToLower(password), strings.ToLower(username)):
		v.Add("new_password", "must not contain the user name")
	}
	return v.Err()
}

// SetPassword stores a new password for a user (already checked by CheckNewPassword) and revokes the bearer
// tokens issued by password logins, in db (pass a transaction to end the user's sessions in the same one).
func SetPassword(ctx context.Context, db DB, user UserID, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	tag, err := db.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, int64(user), string(hash))
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", user, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %d: %w", user, ErrNotFound)
	}
	if _, err := db.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND name = 'login' AND revoked_at IS NULL`,
		int64(user)); err != nil {
		return fmt.Errorf("revoke login tokens of user %d: %w", user, err)
	}
	return nil
}

// ChangePassword sets a user's password and ends their other sessions in one transaction (keep is the session
// the change was made from; "" ends all).
func (s *Sessions) ChangePassword(ctx context.Context, db TxBeginner, user UserID, password, keep string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := SetPassword(ctx, tx, user, password); err != nil {
			return err
		}
		return (&Sessions{db: tx, idle: s.idle, absolute: s.absolute, now: s.now}).DeleteUser(ctx, user, keep)
	})
}

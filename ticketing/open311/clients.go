// Package open311 owns the clients of hotline's Open311 GeoReport v2 endpoint: each outside system (a city's
// app, a portal) gets its own API key, which is shown once and stored only as its SHA-256. Admins make and
// revoke keys; the authorization decision is Authorize here. The protocol itself (form-encoded requests, the
// spec's JSON/XML shapes and error format) is web's; the tickets are ticketing's.
package open311

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// Client is one Open311 client. Key is set only in the answer of Create.
type Client struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	KeyPrefix string     `json:"key_prefix"`
	Key       string     `json:"key,omitempty"`
	CreatedBy org.UserID `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// keyPrefix marks our keys so a leaked one is recognisable in logs and secret scanners.
const keyPrefix = "o311_"

// Authorize answers whether a may manage Open311 clients: admins only (a key lets an outside system open
// tickets in the bureau's name).
func Authorize(a org.Actor) error {
	if a.Role != org.RoleAdmin {
		return fmt.Errorf("manage open311 clients: %w", org.ErrForbidden)
	}
	return nil
}

func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

const clientColumns = `id, name, key_prefix, created_by, created_at, revoked_at`

func scan(row pgx.CollectableRow) (Client, error) {
	var c Client
	err := row.Scan(&c.ID, &c.Name, &c.KeyPrefix, &c.CreatedBy, &c.CreatedAt, &c.RevokedAt)
	return c, err
}

// Create makes a client and its key (32 random bytes); the key is in the answer and nowhere else.
func Create(ctx context.Context, db org.TxBeginner, a org.Actor, name string) (Client, error) {
	if err := Authorize(a); err != nil {
		return Client{}, err
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 100 {
		return Client{}, org.Invalid("name", "required, at most 100 characters")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Client{}, fmt.Errorf("open311 key: %w", err)
	}
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var c Client
	// The client and its audit row are one transaction: a key exists only with its record of who made it.
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO open311_clients (name, key_hash, key_prefix, created_by)
			VALUES ($1, $2, $3, $4) RETURNING `+clientColumns, name, hashKey(key), key[:len(keyPrefix)+6], int64(a.UserID))
		if err != nil {
			return err
		}
		if c, err = pgx.CollectExactlyOneRow(rows, scan); err != nil {
			return err
		}
		return org.Audit(ctx, tx, a, org.AuditEntry{Kind: org.AuditKeyCreated, Object: fmt.Sprintf("open311_client:%d", c.ID),
			Detail: map[string]any{"name": c.Name}})
	})
	if org.SQLState(err) == pgerrcode.UniqueViolation {
		return Client{}, org.Invalid("name", "a client of this name exists")
	}
	if err != nil {
		return Client{}, fmt.Errorf("create open311 client: %w", err)
	}
	c.Key = key
	return c, nil
}

// List returns every client, newest first.
func List(ctx context.Context, db org.DB, a org.Actor) ([]Client, error) {
	if err := Authorize(a); err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT `+clientColumns+` FROM open311_clients ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list open311 clients: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("list open311 clients: %w", err)
	}
	return cs, nil
}

// Revoke ends a client's key at once.
func Revoke(ctx context.Context, db org.TxBeginner, a org.Actor, id int64) error {
	if err := Authorize(a); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE open311_clients SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
		if err != nil {
			return fmt.Errorf("revoke open311 client %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("open311 client %d: %w", id, org.ErrNotFound)
		}
		return org.Audit(ctx, tx, a, org.AuditEntry{Kind: org.AuditKeyRevoked, Object: fmt.Sprintf("open311_client:%d", id)})
	})
}

// ErrBadKey: no key, an unknown key or a revoked one (the spec's 403 "api_key" error).
var ErrBadKey = fmt.Errorf("invalid api_key: %w", org.ErrForbidden)

// Authenticate finds the live client of a key.
func Authenticate(ctx context.Context, db org.DB, key string) (Client, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 100 {
		return Client{}, ErrBadKey
	}
	rows, err := db.Query(ctx, `SELECT `+clientColumns+` FROM open311_clients WHERE key_hash = $1 AND revoked_at IS NULL`, hashKey(key))
	if err != nil {
		return Client{}, fmt.Errorf("open311 key: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Client{}, ErrBadKey
	}
	if err != nil {
		return Client{}, fmt.Errorf("open311 key: %w", err)
	}
	return c, nil
}

package org

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/jackc/pgerrcode"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// User is an account of the console or API.
type User struct {
	ID          UserID       `json:"id"`
	Username    string       `json:"username"`
	DisplayName string       `json:"display_name"`
	Role        Role         `json:"role"`
	UnitID      UnitID       `json:"unit_id,omitempty"`
	Permissions []Permission `json:"permissions"`
	Active      bool         `json:"active"`
}

// Actor returns the user as an actor.
func (u User) Actor() Actor {
	return Actor{UserID: u.ID, Username: u.Username, Name: u.DisplayName, Role: u.Role, UnitID: u.UnitID, Permissions: u.Permissions}
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Username    string
	DisplayName string
	Password    string
	Role        Role
	UnitID      UnitID
	Permissions []Permission
}

// CreateUser stores a user with a bcrypt hash of the password.
func CreateUser(ctx context.Context, db DB, nu NewUser) (User, error) {
	v := &ValidationError{}
	if len(nu.Username) < 2 {
		v.Add("username", "at least 2 characters: a-z, 0-9, _ . -")
	}
	if len(nu.Password) < 8 {
		v.Add("password", "at least 8 characters")
	}
	if !nu.Role.Valid() {
		v.Add("role", "unknown role")
	}
	if nu.DisplayName == "" {
		v.Add("display_name", "required")
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(nu.Password), PasswordCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	var unit any
	if nu.UnitID != 0 {
		unit = int64(nu.UnitID)
	}
	perms := make([]string, len(nu.Permissions))
	for i, p := range nu.Permissions {
		perms[i] = string(p)
	}
	var id UserID
	err = db.QueryRow(ctx, `INSERT INTO users (username, display_name, password_hash, role, unit_id, permissions)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		nu.Username, nu.DisplayName, string(hash), string(nu.Role), unit, perms).Scan(&id)
	if err != nil {
		switch SQLState(err) {
		case pgerrcode.UniqueViolation:
			return User{}, Invalid("username", "already taken")
		case pgerrcode.CheckViolation:
			return User{}, Invalid("username", "only a-z, 0-9, _ . - (2 to 64)")
		case pgerrcode.ForeignKeyViolation:
			return User{}, Invalid("unit_id", "no such unit")
		}
		return User{}, fmt.Errorf("create user %s: %w", nu.Username, err)
	}
	return GetUser(ctx, db, id)
}

const userColumns = `id, username, display_name, role, coalesce(unit_id, 0), permissions, active`

func scanUser(row pgx.CollectableRow) (User, error) {
	var u User
	var perms []string
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.UnitID, &perms, &u.Active); err != nil {
		return u, err
	}
	u.Permissions = make([]Permission, len(perms))
	for i, p := range perms {
		u.Permissions[i] = Permission(p)
	}
	return u, nil
}

// GetUser returns one user.
func GetUser(ctx context.Context, db DB, id UserID) (User, error) {
	rows, err := db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, int64(id))
	if err != nil {
		return User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// UnitUsers returns the active users of a unit, by display name (the head's assign list).
func UnitUsers(ctx context.Context, db DB, unit UnitID) ([]User, error) {
	rows, err := db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE unit_id = $1 AND active ORDER BY display_name, id`, int64(unit))
	if err != nil {
		return nil, fmt.Errorf("users of unit %d: %w", unit, err)
	}
	us, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("users of unit %d: %w", unit, err)
	}
	return us, nil
}

// CheckPassword returns the active user with that username and password, or ErrAuth. It takes as long for an
// unknown user as for a wrong password, so usernames cannot be probed by timing.
func CheckPassword(ctx context.Context, db DB, username, password string) (User, error) {
	var id UserID
	var hash string
	var active bool
	err := db.QueryRow(ctx, `SELECT id, password_hash, active FROM users WHERE username = $1`, username).Scan(&id, &hash, &active)
	if errors.Is(err, pgx.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrAuth
	}
	if err != nil {
		return User{}, fmt.Errorf("check password: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || !active {
		return User{}, ErrAuth
	}
	return GetUser(ctx, db, id)
}

// PasswordCost is the bcrypt cost of new password hashes. Only deploy/testenv lowers it, for the test binaries:
// under the race detector one hash at the default cost takes about a second, and the suite signs in thousands
// of times; what the tests check (who may sign in, limits, sessions) does not depend on the cost.
var PasswordCost = bcrypt.DefaultCost

// dummyHash is compared against when the user does not exist, at the cost real hashes have.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("timing-equaliser"), PasswordCost)
	return h
})

// CreateToken issues a bearer token for a user; only its hash is stored, so the token is shown once.
func CreateToken(ctx context.Context, db DB, user UserID, name string, ttl time.Duration) (string, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	token := "hl_" + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	var exp any
	if ttl > 0 {
		exp = time.Now().Add(ttl)
	}
	if _, err := db.Exec(ctx, `INSERT INTO api_tokens (token_hash, user_id, name, expires_at) VALUES ($1, $2, $3, $4)`,
		sum[:], int64(user), name, exp); err != nil {
		return "", fmt.Errorf("create token for user %d: %w", user, err)
	}
	return token, nil
}

// TokenCacheTTL is how long a resolved token is remembered in this process, so an API client's every request
// does not cost a database round trip. A revoked token or a deactivated user keeps working for at most this
// long; 0 turns the cache off.
var TokenCacheTTL = 5 * time.Second

type cachedActor struct {
	actor Actor
	until time.Time
}

var (
	tokenCacheMu sync.Mutex
	tokenCache   = map[[32]byte]cachedActor{}
)

// ActorByToken resolves a bearer token to its active user, or ErrAuth.
func ActorByToken(ctx context.Context, db DB, token string) (Actor, error) {
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	if TokenCacheTTL > 0 {
		tokenCacheMu.Lock()
		c, ok := tokenCache[sum]
		tokenCacheMu.Unlock()
		if ok && now.Before(c.until) {
			return c.actor, nil
		}
	}
	a, exp, err := actorByToken(ctx, db, sum)
	if err != nil || TokenCacheTTL <= 0 {
		return a, err
	}
	until := now.Add(TokenCacheTTL)
	if exp != nil && exp.Before(until) {
		until = *exp
	}
	tokenCacheMu.Lock()
	if len(tokenCache) > 10000 { // bounded: drop everything rather than track ages
		clear(tokenCache)
	}
	tokenCache[sum] = cachedActor{actor: a, until: until}
	tokenCacheMu.Unlock()
	return a, nil
}

func actorByToken(ctx context.Context, db DB, sum [32]byte) (Actor, *time.Time, error) {
	var exp *time.Time
	rows, err := db.Query(ctx, `SELECT u.id, u.username, u.display_name, u.role, coalesce(u.unit_id, 0), u.permissions, u.active, t.expires_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.active`, sum[:])
	if err != nil {
		return Actor{}, nil, fmt.Errorf("check token: %w", err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (User, error) {
		var u User
		var perms []string
		if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.UnitID, &perms, &u.Active, &exp); err != nil {
			return u, err
		}
		for _, p := range perms {
			u.Permissions = append(u.Permissions, Permission(p))
		}
		if u.Permissions == nil {
			u.Permissions = []Permission{}
		}
		return u, nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Actor{}, nil, ErrAuth
	}
	if err != nil {
		return Actor{}, nil, fmt.Errorf("check token: %w", err)
	}
	return u.Actor(), exp, nil
}

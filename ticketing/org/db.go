package org

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what store functions need: both *pgxpool.Pool and pgx.Tx satisfy it, so a caller can compose several
// writes into one transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TxBeginner starts transactions (a *pgxpool.Pool, or a pgx.Tx for a savepoint).
type TxBeginner interface {
	DB
	Begin(ctx context.Context) (pgx.Tx, error)
}

// SQLState is PostgreSQL's error code of err ("" when err is not from the server); compare it with the named
// codes of github.com/jackc/pgerrcode (pgerrcode.UniqueViolation, …).
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// EscapeLike escapes LIKE's wildcards in user input, for a prefix or substring match.
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

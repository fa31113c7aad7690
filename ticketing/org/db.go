package org

import (
	"context"

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

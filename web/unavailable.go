package web

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// unavailable reports whether err means PostgreSQL or Redis could not be reached or is shutting down (restart,
// failover, pool exhausted past its acquire timeout) rather than that the request was wrong: such a request
// wrote nothing (each change is one transaction) and may be retried, so it gets 503 with Retry-After, not 500.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, pgconn.ErrConnClosed):
		// A connection lost mid-request (a commit's outcome may be unknown): a retry is safe, because creates
		// carry an Idempotency-Key and actions the version they apply to.
		return true
	case errors.As(err, &pe):
		// Class 08 connection exception, 53 insufficient resources, 57 operator intervention (admin shutdown,
		// cannot connect now), 40001/40P01 serialization failure and deadlock: all say "try again".
		c := pe.Code
		return len(c) == 5 && (c[:2] == "08" || c[:2] == "53" || c[:2] == "57" || c == "40001" || c == "40P01")
	case errors.Is(err, context.DeadlineExceeded):
		// A deadline inside the server (the pool's acquire timeout, a query timeout), not the client's.
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

package migrations

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

func asPgCode(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

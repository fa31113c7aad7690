// Package migrations holds the schema as numbered SQL files (NNNN_name.sql), embedded in the binary, and applies
// them in order. Each file runs in its own transaction and is recorded in schema_migrations; the whole run holds
// a PostgreSQL advisory lock, so two processes migrating at once take turns instead of colliding. Files are
// append-only: once shipped, a file is never edited; a change is a new file.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var files embed.FS

// lockKey is an arbitrary constant shared by every hotline process ("hotline" in ASCII).
const lockKey int64 = 0x686f746c696e65

// Migration is one numbered file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ErrOutOfDate is returned by Check when the database lacks migrations this binary has.
var ErrOutOfDate = errors.New("database schema is out of date")

// All returns the embedded migrations in order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", other, name, v)
		}
		seen[v] = name
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: rest, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Latest is the highest version this binary knows.
func Latest() int {
	ms, err := All()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Status describes a database against the embedded migrations.
type Status struct {
	Current int         // highest applied version (0: none)
	Latest  int         // highest embedded version
	Pending []Migration // embedded but not applied
}

// UpToDate reports whether nothing is pending.
func (s Status) UpToDate() bool { return len(s.Pending) == 0 }

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// GetStatus reads which migrations are applied, without changing anything.
func GetStatus(ctx context.Context, db *pgxpool.Pool) (Status, error) {
	all, err := All()
	if err != nil {
		return Status{}, err
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return Status{}, err
	}
	st := Status{}
	if len(all) > 0 {
		st.Latest = all[len(all)-1].Version
	}
	for v := range applied {
		st.Current = max(st.Current, v)
	}
	for _, m := range all {
		if !applied[m.Version] {
			st.Pending = append(st.Pending, m)
		}
	}
	return st, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func appliedVersions(ctx context.Context, db querier) (map[int]bool, error) {
	rows, err := db.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		var missing bool
		if pgErr := asPgCode(err); pgErr == "42P01" { // undefined_table: nothing applied yet
			missing = true
		}
		if missing {
			return map[int]bool{}, nil
		}
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	m := make(map[int]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m, nil
}

// Check returns ErrOutOfDate (wrapped, with the versions) if any migration is pending.
func Check(ctx context.Context, db *pgxpool.Pool) error {
	st, err := GetStatus(ctx, db)
	if err != nil {
		return err
	}
	if !st.UpToDate() {
		return fmt.Errorf("%w: at version %d, this binary needs %d", ErrOutOfDate, st.Current, st.Latest)
	}
	return nil
}

// Up applies every pending migration, each in its own transaction, under the advisory lock. A second process
// calling Up at the same time waits for the lock and then finds nothing to do. It returns the versions applied.
func Up(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)
	if _, err := conn.Exec(ctx, createTable); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range all {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if log != nil {
			log.Info("applied migration", "version", m.Version, "name", m.Name)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

// Package migrations holds the schema as numbered SQL files (NNNN_name.sql), embedded in the binary, and applies
// them in order. Each file runs in its own transaction and is recorded in schema_migrations with the sha256 of
// its text; the whole run holds a PostgreSQL advisory lock, so two processes migrating at once take turns instead
// of colliding. Files are append-only: once shipped, a file is never edited; a change is a new file. Up and Check
// refuse a database that disagrees with the binary: an applied file edited since (its checksum differs), an
// applied file the binary lacks, an applied set that skips a file, or a database newer than the binary.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var embedded embed.FS

// source is where the files are read from: the embedded ones; tests swap in others (export_test.go).
var source fs.FS = embedded

// lockKey is an arbitrary constant shared by every hotline process ("hotline" in ASCII).
const lockKey int64 = 0x686f746c696e65

// Migration is one numbered file.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string // hex sha256 of SQL, recorded when applied
}

func (m Migration) String() string { return fmt.Sprintf("%04d_%s.sql", m.Version, m.Name) }

var (
	// ErrOutOfDate is returned by Check when the database lacks migrations this binary has.
	ErrOutOfDate = errors.New("database schema is out of date")
	// ErrMismatch is returned by Check and Up when the applied migrations are not a prefix of this binary's:
	// a file edited after it was applied, an applied file the binary lacks, a skipped file, or a newer database.
	// Migrating cannot fix it; a person must look.
	ErrMismatch = errors.New("database schema does not match this binary")
)

// All returns the embedded migrations in order. Numbers need not be contiguous (a reserved number may go unused);
// what is applied must be a prefix of this list.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(source, ".")
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
		b, err := fs.ReadFile(source, name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: rest, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
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

// bootstrap creates the bookkeeping table. The checksum column came later: a database migrated before it gets
// the column here, and Up fills it for the rows that lack it from the files as they are now — an edit made before
// that cannot be detected any more, only every edit after it.
const bootstrap = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text`

// GetStatus reads which migrations are applied, without changing anything. It returns an ErrMismatch error
// (with the status so far) when the database disagrees with the binary.
func GetStatus(ctx context.Context, db *pgxpool.Pool) (Status, error) {
	all, err := All()
	if err != nil {
		return Status{}, err
	}
	applied, err := readApplied(ctx, db)
	if err != nil {
		return Status{}, err
	}
	return status(all, applied)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readApplied returns the checksum of every applied version ("" where none was recorded yet). It reads the
// column through to_jsonb so that it also works, read-only, on a table from before the column existed.
func readApplied(ctx context.Context, db querier) (map[int]string, error) {
	rows, err := db.Query(ctx, `SELECT version, coalesce(to_jsonb(m)->>'checksum', '') FROM schema_migrations m`)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgerrcode.UndefinedTable {
		return map[int]string{}, nil // nothing applied yet
	}
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := map[int]string{}
	var v int
	var sum string
	_, err = pgx.ForEachRow(rows, []any{&v, &sum}, func() error { applied[v] = sum; return nil })
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// status compares the applied versions with the files: the applied ones must be the first files, unedited.
func status(all []Migration, applied map[int]string) (Status, error) {
	st := Status{}
	if len(all) > 0 {
		st.Latest = all[len(all)-1].Version
	}
	known := map[int]bool{}
	for _, m := range all {
		known[m.Version] = true
	}
	versions := make([]int, 0, len(applied))
	for v := range applied {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	if len(versions) > 0 {
		st.Current = versions[len(versions)-1]
	}
	if st.Current > st.Latest {
		return st, fmt.Errorf("%w: database schema %d is newer than this binary's %d: upgrade hotline", ErrMismatch, st.Current, st.Latest)
	}
	for _, v := range versions {
		if !known[v] {
			return st, fmt.Errorf("%w: migration %04d is applied but missing from this binary", ErrMismatch, v)
		}
	}
	for _, m := range all {
		sum, ok := applied[m.Version]
		switch {
		case ok && sum != "" && sum != m.Checksum:
			return st, fmt.Errorf("%w: migration %s was edited after it was applied (sha256 %s, applied %s): restore the file and put the change in a new one", ErrMismatch, m, m.Checksum, sum)
		case !ok && m.Version < st.Current:
			return st, fmt.Errorf("%w: migration %s is not applied but the later %04d is: migrations apply in order only (a new file must be numbered after every applied one)", ErrMismatch, m, st.Current)
		case !ok:
			st.Pending = append(st.Pending, m)
		}
	}
	return st, nil
}

// Check returns ErrOutOfDate (wrapped, with the versions) if any migration is pending, and ErrMismatch if the
// database disagrees with the binary. serve refuses to start on either, and /readyz reports it.
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
// calling Up at the same time waits for the lock and then finds nothing to do. It returns the versions applied,
// and applies nothing to a database that disagrees with the binary (ErrMismatch).
func Up(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) ([]int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
	if _, err := conn.Exec(ctx, bootstrap); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := readApplied(ctx, conn)
	if err != nil {
		return nil, err
	}
	st, err := status(all, applied)
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if sum, ok := applied[m.Version]; ok && sum == "" {
			if _, err := conn.Exec(ctx, `UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL`, m.Version, m.Checksum); err != nil {
				return nil, fmt.Errorf("migrate: record checksum of %s: %w", m, err)
			}
			log.Info("recorded the checksum of an applied migration", "migration", m.String())
		}
	}
	var done []int
	for _, m := range st.Pending {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Checksum)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migration %s: %w", m, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name)
		done = append(done, m.Version)
	}
	return done, nil
}

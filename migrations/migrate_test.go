package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func emptyDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestFilesAreNumberedAndUnique(t *testing.T) {
	ms, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("want migrations starting at 1, got %d files", len(ms))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			t.Fatalf("migrations out of order: %d after %d", ms[i].Version, ms[i-1].Version)
		}
	}
}

func TestUpFromEmptyToCurrent(t *testing.T) {
	ctx := context.Background()
	db := emptyDB(t)
	st, err := migrations.GetStatus(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 0 || st.UpToDate() || len(st.Pending) != len(mustAll(t)) {
		t.Fatalf("empty database: status %+v", st)
	}
	if err := migrations.Check(ctx, db); err == nil {
		t.Fatal("Check on an empty database: want ErrOutOfDate")
	}
	applied, err := migrations.Up(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(mustAll(t)) {
		t.Fatalf("applied %v", applied)
	}
	st, err = migrations.GetStatus(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !st.UpToDate() || st.Current != migrations.Latest() {
		t.Fatalf("after Up: %+v", st)
	}
	if err := migrations.Check(ctx, db); err != nil {
		t.Fatalf("Check after Up: %v", err)
	}
	again, err := migrations.Up(ctx, db, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Up applied %v, err %v", again, err)
	}
}

// Two processes migrating at once: the second waits for the advisory lock, then finds nothing to do. Each
// migration is applied exactly once and neither fails.
func TestConcurrentUpWaits(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDatabase(t)
	var wg sync.WaitGroup
	results := make([][]int, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url) // a pool each: like separate processes
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			results[i], errs[i] = migrations.Up(ctx, pool, nil)
		}()
	}
	wg.Wait()
	total := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("migrator %d failed: %v", i, errs[i])
		}
		total += len(results[i])
	}
	if total != len(mustAll(t)) {
		t.Fatalf("migrations applied %d times in all, want %d (once each): %v", total, len(mustAll(t)), results)
	}
}

// A failing migration leaves no trace: its transaction rolls back and it is not recorded.
func TestFailedMigrationIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	db := emptyDB(t)
	// Occupy a name the first migration creates, so it fails half-way.
	if _, err := db.Exec(ctx, `CREATE TABLE users (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, db, nil); err == nil {
		t.Fatal("want an error from the clashing migration")
	}
	var units int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'units'`).Scan(&units); err != nil {
		t.Fatal(err)
	}
	if units != 0 {
		t.Fatal("the failed migration left its units table behind")
	}
	st, err := migrations.GetStatus(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 0 {
		t.Fatalf("failed migration recorded: %+v", st)
	}
}

// Up records the sha256 of every file it applies.
func TestUpRecordsChecksums(t *testing.T) {
	ctx := context.Background()
	db := emptyDB(t)
	if _, err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range mustAll(t) {
		var sum string
		if err := db.QueryRow(ctx, `SELECT checksum FROM schema_migrations WHERE version = $1`, m.Version).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if len(sum) != 64 || sum != m.Checksum {
			t.Fatalf("%s: recorded checksum %q, want %q", m, sum, m.Checksum)
		}
	}
}

// A database migrated before checksums existed passes Check as it is (read-only), and the next Up adds the column
// and fills it from the current files.
func TestChecksumsAddedToAnOlderDatabase(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	if _, err := db.Exec(ctx, `ALTER TABLE schema_migrations DROP COLUMN checksum`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Check(ctx, db); err != nil {
		t.Fatalf("Check on a table without checksums: %v", err)
	}
	if applied, err := migrations.Up(ctx, db, nil); err != nil || len(applied) != 0 {
		t.Fatalf("Up applied %v, err %v", applied, err)
	}
	var missing int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE checksum IS NULL`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d applied migrations still without a checksum", missing)
	}
	if err := migrations.Check(ctx, db); err != nil {
		t.Fatalf("Check after filling: %v", err)
	}
}

// refused asserts that Check and Up both refuse the database with ErrMismatch and a message holding want, and
// that Up applied nothing.
func refused(t *testing.T, db *pgxpool.Pool, want string) {
	t.Helper()
	ctx := context.Background()
	err := migrations.Check(ctx, db)
	if !errors.Is(err, migrations.ErrMismatch) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check: %v, want ErrMismatch saying %q", err, want)
	}
	applied, err := migrations.Up(ctx, db, nil)
	if !errors.Is(err, migrations.ErrMismatch) || !strings.Contains(err.Error(), want) || len(applied) != 0 {
		t.Fatalf("Up applied %v: %v, want ErrMismatch saying %q", applied, err, want)
	}
}

// An applied file that was edited afterwards (its checksum differs) stops Check and Up, naming the file.
func TestEditedMigrationIsRefused(t *testing.T) {
	db := testenv.DB(t)
	if _, err := db.Exec(context.Background(), `UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	refused(t, db, "migration "+mustAll(t)[1].String()+" was edited after it was applied")
}

// An applied set that skips a file (here: 0002 is not applied, later ones are) is refused rather than filled in
// out of order.
func TestGapIsRefused(t *testing.T) {
	db := testenv.DB(t)
	if _, err := db.Exec(context.Background(), `DELETE FROM schema_migrations WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	refused(t, db, "migration "+mustAll(t)[1].String()+" is not applied but the later")
}

// A binary that lacks a file the database has applied is refused.
func TestAppliedFileMissingFromBinaryIsRefused(t *testing.T) {
	db := testenv.DB(t)
	all := mustAll(t)
	defer migrations.UseFiles(filesExcept(all, all[2].Version))()
	refused(t, db, fmt.Sprintf("migration %04d is applied but missing from this binary", all[2].Version))
}

// A database migrated by a newer binary is refused with the versions and what to do.
func TestNewerDatabaseIsRefused(t *testing.T) {
	db := testenv.DB(t)
	all := mustAll(t)
	latest := all[len(all)-1].Version
	defer migrations.UseFiles(filesExcept(all, latest))()
	refused(t, db, fmt.Sprintf("database schema %d is newer than this binary's %d: upgrade hotline", latest, all[len(all)-2].Version))
}

// filesExcept is the embedded files without one version.
func filesExcept(all []migrations.Migration, version int) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, m := range all {
		if m.Version != version {
			fsys[m.String()] = &fstest.MapFile{Data: []byte(m.SQL)}
		}
	}
	return fsys
}

func mustAll(t *testing.T) []migrations.Migration {
	ms, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

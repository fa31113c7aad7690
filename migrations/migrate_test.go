package migrations_test

import (
	"context"
	"os"
	"sync"
	"testing"

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

func mustAll(t *testing.T) []migrations.Migration {
	ms, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

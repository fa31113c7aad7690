package ticketing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// More concurrent creates than pool connections, each in a transaction (a hook is registered, as in
// production): every create finishes, with a number of its own, and a day rollover in the middle is handled.
// Before issue 15's fix, a create waited for a second connection (its number) while holding one, and with the
// pool exhausted nothing moved: this test then ran into its deadline.
func TestCreateBurstBeyondPoolDoesNotDeadlock(t *testing.T) {
	const conns, workers, each = 2, 8, 60
	db := testenv.DBWith(t, func(c *pgxpool.Config) { c.MaxConns = conns })
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 23, 59, 0, 0, time.FixedZone("CST", 8*3600))
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := ticketing.NewService(db, ticketing.Options{Now: clock})
	addHouseholds(t, db, 42)
	hooked := 0
	svc.OnTransition(func(ctx context.Context, tx pgx.Tx, tk ticketing.Ticket, ev ticketing.Event) error {
		mu.Lock()
		hooked++
		mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if w == 0 && i == each/2 {
					mu.Lock()
					now = now.Add(2 * time.Minute) // the next day in China time
					mu.Unlock()
				}
				nt := heshanHousehold()
				nt.Content = fmt.Sprintf("burst %d/%d", w, i)
				if _, err := svc.Create(ctx, org.System, nt); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create under a burst: %v", err)
	}
	var n, distinct int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT number) FROM tickets`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != workers*each || distinct != n {
		t.Fatalf("%d tickets with %d distinct numbers, want %d each", n, distinct, workers*each)
	}
	var days int
	db.QueryRow(ctx, `SELECT count(DISTINCT left(number, 8)) FROM tickets`).Scan(&days)
	if days != 2 {
		t.Fatalf("tickets numbered on %d days, want 2 (the clock crossed midnight)", days)
	}
	var minN int
	db.QueryRow(ctx, `SELECT min(substr(number, 10)::int) FROM tickets WHERE number LIKE '20261201-%'`).Scan(&minN)
	if minN < 1 || minN > 200 {
		t.Fatalf("the new day's numbers start at %d, want near 1", minN)
	}
}

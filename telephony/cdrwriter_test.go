package telephony

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hotline/ticketing/org"
)

// queueCDRs starts n StartCalls (and the ends of the calls in ends) while every flusher slot is taken, so they all
// wait in one queue, then lets one leader send them: the shape of a burst under load, made deterministic.
func queueCDRs(t *testing.T, svc *Service, n int, bad int, ends []CallID) (ids []CallID, errs []error, endErrs []error) {
	t.Helper()
	w := svc.cdr
	w.mu.Lock()
	w.inFlight = cdrFlushers // every slot busy: callers queue
	w.mu.Unlock()
	ctx := context.Background()
	ids, errs, endErrs = make([]CallID, n), make([]error, n), make([]error, len(ends))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i == bad {
				// A statement PostgreSQL refuses (direction must be inbound or outbound).
				ids[i], errs[i] = svc.StartCall(ctx, CallStart{SIPCallID: fmt.Sprintf("batch-%d", i), Direction: "sideways"})
				return
			}
			ids[i], errs[i] = svc.StartCall(ctx, CallStart{SIPCallID: fmt.Sprintf("batch-%d", i), Trunk: "t", OfferedAt: time.Now()})
		})
	}
	for i, id := range ends {
		wg.Go(func() {
			endErrs[i] = svc.EndCall(ctx, id, CallEnd{Disposition: DispAbandoned, Reason: "caller_hangup"})
		})
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		queued := len(w.queue)
		w.mu.Unlock()
		if queued == n+len(ends) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d of %d statements queued", queued, n+len(ends))
		}
	}
	w.mu.Lock()
	w.inFlight = 1 // the test's goroutine holds the one slot left, and leads
	before := w.batches
	w.mu.Unlock()
	w.flush(ctx)
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight != 0 || len(w.queue) != 0 {
		t.Errorf("after the burst: %d flushers, %d queued; want none", w.inFlight, len(w.queue))
	}
	if got := w.batches - before; bad < 0 && got != 1 {
		t.Errorf("%d batches for one burst, want 1 (one round trip, one commit)", got)
	}
	return ids, errs, endErrs
}

// TestCDRGroupCommit: the CDR statements of concurrent calls share one batch; every caller gets its own row's id,
// every row is written once, and the ends find their rows.
func TestCDRGroupCommit(t *testing.T) {
	svc, _, _ := newSvc(t)
	ctx := context.Background()
	// Two calls to end within the burst.
	var ends []CallID
	for i := range 2 {
		id, err := svc.StartCall(ctx, CallStart{SIPCallID: fmt.Sprintf("earlier-%d", i), OfferedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, id)
	}
	ids, errs, endErrs := queueCDRs(t, svc, 50, -1, ends)
	seen := map[CallID]bool{}
	for i, id := range ids {
		if errs[i] != nil || id == 0 || seen[id] {
			t.Fatalf("call %d: id %d, err %v (ids must be distinct)", i, id, errs[i])
		}
		seen[id] = true
		var sipID string
		if err := svc.db.QueryRow(ctx, `SELECT sip_call_id FROM calls WHERE id = $1`, id).Scan(&sipID); err != nil || sipID != fmt.Sprintf("batch-%d", i) {
			t.Errorf("row %d: %q %v, want batch-%d", id, sipID, err, i)
		}
	}
	var n int
	if err := svc.db.QueryRow(ctx, `SELECT count(*) FROM calls WHERE sip_call_id LIKE 'batch-%'`).Scan(&n); err != nil || n != 50 {
		t.Errorf("%d rows, want 50 (each once)", n)
	}
	for i, id := range ends {
		if endErrs[i] != nil {
			t.Errorf("end of call %d: %v", id, endErrs[i])
		}
		if c, err := GetCDR(ctx, svc.db, id); err != nil || c.Disposition == nil || *c.Disposition != DispAbandoned || c.EndedAt == nil {
			t.Errorf("ended CDR %d: %+v %v", id, c, err)
		}
	}
}

// TestCDRGroupCommitErrorsReachTheirCaller: a statement PostgreSQL refuses rolls its batch back; its caller gets
// the error, every other caller's row is still written, once; an end for a call that does not exist is an error
// for that caller alone.
func TestCDRGroupCommitErrorsReachTheirCaller(t *testing.T) {
	svc, _, _ := newSvc(t)
	ctx := context.Background()
	ids, errs, endErrs := queueCDRs(t, svc, 20, 7, []CallID{1 << 40})
	var pgErr *pgconn.PgError
	if !errors.As(errs[7], &pgErr) || pgErr.Code != "23514" {
		t.Errorf("refused statement: %v, want its check violation", errs[7])
	}
	for i, id := range ids {
		if i != 7 && (errs[i] != nil || id == 0) {
			t.Errorf("call %d in the same batch: id %d, err %v", i, id, errs[i])
		}
	}
	var n int
	if err := svc.db.QueryRow(ctx, `SELECT count(*) FROM calls WHERE sip_call_id LIKE 'batch-%'`).Scan(&n); err != nil || n != 19 {
		t.Errorf("%d rows, want 19 (each good one once, the refused one not)", n)
	}
	if !errors.Is(endErrs[0], pgx.ErrNoRows) {
		t.Errorf("end of a call that does not exist: %v", endErrs[0])
	}
}

// TestStaffedFollowsSignIn: Staffed is answered from memory, but signing in or out in this process is seen at once.
func TestStaffedFollowsSignIn(t *testing.T) {
	svc, a1, _ := newSvc(t)
	ctx := context.Background()
	if ok, err := svc.Staffed(ctx, nil); err != nil || ok {
		t.Fatalf("nobody signed in: staffed %v %v", ok, err)
	}
	if _, err := svc.SetAgentState(ctx, org.System, a1, StateReady, ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.Staffed(ctx, nil); err != nil || !ok {
		t.Fatalf("agent signed in: staffed %v %v", ok, err)
	}
	if ok, err := svc.Staffed(ctx, []string{"xiang"}); err != nil || ok {
		t.Fatalf("no agent with the skill: staffed %v %v", ok, err)
	}
	if _, err := svc.SetAgentState(ctx, org.System, a1, StateOffline, ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.Staffed(ctx, nil); err != nil || ok {
		t.Fatalf("agent signed out: staffed %v %v", ok, err)
	}
}

// TestCDRGroupCommitConcurrent: many callers at once, as under load — flushers hand the lead on while others
// finish (a double hand-off once closed a channel twice) — and every call gets its row once, every end is
// written, and no flusher slot is left taken.
func TestCDRGroupCommitConcurrent(t *testing.T) {
	svc, _, _ := newSvc(t)
	ctx := context.Background()
	const n = 400
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id, err := svc.StartCall(ctx, CallStart{SIPCallID: fmt.Sprintf("conc-%d", i), OfferedAt: time.Now()})
			if err == nil {
				err = svc.EndCall(ctx, id, CallEnd{Disposition: DispAbandoned, Reason: "caller_hangup"})
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	var rows, ended int
	if err := svc.db.QueryRow(ctx, `SELECT count(*), count(ended_at) FROM calls WHERE sip_call_id LIKE 'conc-%'`).Scan(&rows, &ended); err != nil {
		t.Fatal(err)
	}
	if rows != n || ended != n {
		t.Errorf("%d rows, %d ended; want %d each", rows, ended, n)
	}
	svc.cdr.mu.Lock()
	defer svc.cdr.mu.Unlock()
	if svc.cdr.inFlight != 0 || len(svc.cdr.queue) != 0 {
		t.Errorf("%d flushers, %d queued after the last call", svc.cdr.inFlight, len(svc.cdr.queue))
	}
}

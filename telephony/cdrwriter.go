package telephony

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Group commit of CDR rows (issue 15, SIP overload).
//
// Every call writes its CDR twice: the row when it is offered and its end when it is over. One statement each, on
// a pool connection each, was what failed under overload: at 1,000 calls/s the 40 pool connections were all held
// by goroutines that had sent their statement and were waiting to be scheduled to read the answer, and the calls
// behind them gave up after HOTLINE_DB_ACQUIRE_TIMEOUT. Here the statements of concurrent calls share round trips:
// a caller queues its statement and waits; at most cdrFlushers batches are in flight, each one pgx.Batch (one
// pipeline, one implicit transaction, one commit) sent by one of the waiting callers — the leader — on one
// connection. A caller returns only when its batch has committed, so what it was told is written survives a
// crash. At low load nothing waits: a lone caller leads a batch of one.
//
// A batch is all or nothing (one implicit transaction). When PostgreSQL refused a statement, nothing of the batch
// was committed, and each statement is then sent alone so only its own caller gets the error. Any other error
// (connection lost: the commit's outcome unknown) is returned to every caller of the batch, as a single statement
// would have returned it.
const (
	cdrFlushers = 4   // batches in flight at once (a leader that is descheduled does not stop the others)
	cdrMaxBatch = 256 // statements per batch
	cdrTimeout  = 10 * time.Second
)

// cdrOp is one statement and its caller's result.
type cdrOp struct {
	sql  string
	args []any
	ret  bool   // the statement returns the call's id
	id   CallID // result when ret
	err  error
	done chan struct{} // closed when the result is set
	lead chan struct{} // closed when this caller is to send the next batch
	led  bool          // lead was closed (cdrWriter.mu)
}

type cdrWriter struct {
	db       *pgxpool.Pool
	mu       sync.Mutex
	queue    []*cdrOp
	inFlight int
	// batches counts the batches sent (tests: the statements of concurrent callers did share round trips).
	batches int64
}

// exec runs one CDR statement through the group commit and returns the id it returned (ret) once it is committed.
func (w *cdrWriter) exec(ctx context.Context, ret bool, sql string, args ...any) (CallID, error) {
	op := &cdrOp{sql: sql, args: args, ret: ret, done: make(chan struct{}), lead: make(chan struct{})}
	w.mu.Lock()
	w.queue = append(w.queue, op)
	if w.inFlight < cdrFlushers {
		w.inFlight++
		w.mu.Unlock()
		w.flush(ctx)
	} else {
		w.mu.Unlock()
	}
	// Not abandoned on ctx: once queued, the statement may be in a batch being committed, and the caller must
	// learn whether it was. The batch has its own timeout.
	lead := op.lead
	for {
		select {
		case <-op.done:
			if lead != nil {
				select {
				case <-lead:
					// Handed the lead, then sent in another caller's batch before this one ran: the slot it was
					// given must still be passed on or returned.
					w.flush(ctx)
				default:
				}
			}
			return op.id, op.err
		case <-lead:
			lead = nil // the lead is taken once
			w.flush(ctx)
		}
	}
}

// flush sends batches while there are queued statements, then hands the lead on or gives the slot back. The
// caller holds one of the cdrFlushers slots.
func (w *cdrWriter) flush(ctx context.Context) {
	w.mu.Lock()
	n := min(len(w.queue), cdrMaxBatch)
	ops := w.queue[:n:n]
	w.queue = w.queue[n:]
	w.mu.Unlock()
	if len(ops) > 0 {
		w.send(ctx, ops)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// The next batch is sent by one of its own callers, so no caller waits for other callers' batches after its
	// own. A caller already handed the lead by another flusher has a slot of its own: pass ours to the next one.
	for _, op := range w.queue {
		if !op.led {
			op.led = true
			close(op.lead)
			return
		}
	}
	w.inFlight--
}

func (w *cdrWriter) send(ctx context.Context, ops []*cdrOp) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cdrTimeout)
	defer cancel()
	w.mu.Lock()
	w.batches++
	w.mu.Unlock()
	if len(ops) == 1 {
		ops[0].run(ctx, w)
		close(ops[0].done)
		return
	}
	err := w.sendBatch(ctx, ops)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Rolled back as a whole: the statements alone, each caller its own answer.
		for _, op := range ops {
			op.run(ctx, w)
		}
	} else if err != nil {
		for _, op := range ops {
			op.err = err
		}
	}
	for _, op := range ops {
		close(op.done)
	}
}

// acquire takes a pool connection for a batch. A pool wait that times out (HOTLINE_DB_ACQUIRE_TIMEOUT, meant to
// refuse HTTP requests early) is tried again until the batch's own timeout: nothing has been sent yet, and the
// calls waiting here were admitted — failing them is what the admission at the door is there to avoid.
func (w *cdrWriter) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	for {
		c, err := w.db.Acquire(ctx)
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
}

func (w *cdrWriter) sendBatch(ctx context.Context, ops []*cdrOp) error {
	b := &pgx.Batch{}
	for _, op := range ops {
		b.Queue(op.sql, op.args...)
	}
	conn, err := w.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	var first error
	for _, op := range ops {
		var err error
		if op.ret {
			err = br.QueryRow().Scan(&op.id)
		} else {
			var tag pgconn.CommandTag
			tag, err = br.Exec()
			if err == nil && tag.RowsAffected() == 0 {
				op.err = pgx.ErrNoRows // this statement only; the others stand
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	// The commit of the implicit transaction is confirmed by Close: until then nothing is durable.
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		for _, op := range ops {
			op.id, op.err = 0, nil
		}
	}
	return first
}

func (op *cdrOp) run(ctx context.Context, w *cdrWriter) {
	db, err := w.acquire(ctx)
	if err != nil {
		op.err = err
		return
	}
	defer db.Release()
	if op.ret {
		op.err = db.QueryRow(ctx, op.sql, op.args...).Scan(&op.id)
		return
	}
	tag, err := db.Exec(ctx, op.sql, op.args...)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	op.err = err
}

// cdrErr wraps a CDR statement's error with the call it was for.
func cdrErr(what string, id any, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %v: no such call: %w", what, id, err)
	}
	return fmt.Errorf("%s %v: %w", what, id, err)
}

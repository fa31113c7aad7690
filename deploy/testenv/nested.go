package testenv

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// nestedGuard catches a goroutine that acquires a second pool connection while it already holds one: a pool
// query while the same request's transaction is open (or while iterating rows of another pool query). With
// every connection held by a request that waits for a second one, nothing moves — the ticket API deadlocked
// under a burst this way (issue 15). Every pool from DB carries the guard; a test that does it fails.
//
// It is a pgxpool acquire/release tracer keyed by goroutine: pgx gives the tracer no way to mark a context,
// and the pattern to catch is "the same goroutine waits for a second connection", which is exactly what
// the goroutine id identifies. Work handed to other goroutines is not seen; the concurrency test in
// ticketing covers that shape.
type nestedGuard struct {
	mu         sync.Mutex
	held       map[*pgx.Conn]uint64 // connection → goroutine that acquired it
	perG       map[uint64]int
	violations []string
}

func newNestedGuard() *nestedGuard {
	return &nestedGuard{held: map[*pgx.Conn]uint64{}, perG: map[uint64]int{}}
}

func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}

func (g *nestedGuard) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	id := goid()
	g.mu.Lock()
	n := g.perG[id]
	g.mu.Unlock()
	if n > 0 {
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		g.mu.Lock()
		if len(g.violations) < 5 {
			g.violations = append(g.violations, string(buf))
		}
		g.mu.Unlock()
	}
	return ctx
}

func (g *nestedGuard) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	if d.Err != nil || d.Conn == nil {
		return
	}
	id := goid()
	g.mu.Lock()
	g.held[d.Conn] = id
	g.perG[id]++
	g.mu.Unlock()
}

func (g *nestedGuard) TraceRelease(_ *pgxpool.Pool, d pgxpool.TraceReleaseData) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, ok := g.held[d.Conn]
	if !ok {
		return
	}
	delete(g.held, d.Conn)
	if g.perG[id]--; g.perG[id] <= 0 {
		delete(g.perG, id)
	}
}

// The pool takes its tracers from ConnConfig.Tracer, which must be a pgx.QueryTracer.
func (g *nestedGuard) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (g *nestedGuard) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (g *nestedGuard) report() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) == 0 {
		return ""
	}
	return fmt.Sprintf("testenv: a goroutine acquired a second PostgreSQL connection while holding one (a pool query inside an open transaction or row iteration: deadlocks when the pool is exhausted); first %d at:\n%s",
		len(g.violations), strings.Join(g.violations, "\n---\n"))
}

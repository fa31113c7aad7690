package telephony

import (
	"context"
	"strings"
	"sync"
	"time"
)

// staffedTTL is how long an answer of Staffed is reused. Signing in or out in this process invalidates it at once
// (SetAgentState); a change made through another process is seen within this time — a caller arriving in that
// second goes to the queue (and on to voicemail after the queue limit) or to voicemail one second early, which
// the per-call query it replaces (a pool connection per call) did not justify under load.
const staffedTTL = time.Second

type staffedEntry struct {
	ok  bool
	at  time.Time
	gen uint64
}

// staffedCache holds the last answer per skill set. One query refreshes an expired answer; the callers arriving
// meanwhile wait for it instead of sending their own.
type staffedCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]staffedEntry
	refresh chan struct{} // a one-slot lock held by the refreshing caller (a channel, so waiting honours ctx)
}

func newStaffedCache() staffedCache {
	return staffedCache{entries: map[string]staffedEntry{}, refresh: make(chan struct{}, 1)}
}

func (c *staffedCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

func (c *staffedCache) fresh(key string) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.gen != c.gen || time.Since(e.at) >= staffedTTL {
		return false, false
	}
	return e.ok, true
}

func (c *staffedCache) get(ctx context.Context, skills []string, query func(context.Context) (bool, error)) (bool, error) {
	key := strings.Join(skills, "\x00")
	if v, ok := c.fresh(key); ok {
		return v, nil
	}
	select {
	case c.refresh <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.refresh }()
	if v, ok := c.fresh(key); ok { // refreshed while we waited
		return v, nil
	}
	c.mu.Lock()
	gen, at := c.gen, time.Now()
	c.mu.Unlock()
	v, err := query(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	// An invalidation during the query may have changed the answer: serve it to this caller, keep it for no one.
	if gen == c.gen {
		c.entries[key] = staffedEntry{ok: v, at: at, gen: gen}
	}
	c.mu.Unlock()
	return v, nil
}

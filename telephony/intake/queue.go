package intake

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"hotline/telephony"
	"hotline/ticketing/org"
)

// queue holds this process's waiting callers in arrival order and hands each the ready agent idle longest that
// fits its skills. Agents are reserved in PostgreSQL (SKIP LOCKED), so several processes share one pool of
// agents; callers are first-come-first-served within a process.
type queue struct {
	svc  *telephony.Service
	log  *slog.Logger
	poll time.Duration

	mu      sync.Mutex
	waiting []*waiter
	kick    chan struct{}
}

type waiter struct {
	call    telephony.CallID
	skills  []string
	exclude []org.UserID
	got     chan telephony.Agent // buffered 1; sent under queue.mu
}

func newQueue(svc *telephony.Service, log *slog.Logger, poll time.Duration) *queue {
	return &queue{svc: svc, log: log, poll: poll, kick: make(chan struct{}, 1)}
}

func (q *queue) join(w *waiter) {
	w.got = make(chan telephony.Agent, 1)
	q.mu.Lock()
	q.waiting = append(q.waiting, w)
	q.mu.Unlock()
	q.nudge()
}

// leave takes w out of the queue. If an agent was handed over in the meantime, it is returned so the caller can
// release it.
func (q *queue) leave(w *waiter) (telephony.Agent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiting {
		if x == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	select {
	case a := <-w.got:
		return a, true
	default:
		return telephony.Agent{}, false
	}
}

func (q *queue) nudge() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// run dispatches until ctx ends: on a join, when an agent became ready in this process, and every poll interval
// (for agents made ready by other processes).
func (q *queue) run(ctx context.Context) error {
	t := time.NewTicker(q.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-q.kick:
		case <-q.svc.Wake():
		}
		q.dispatch(ctx)
	}
}

func (q *queue) dispatch(ctx context.Context) {
	q.mu.Lock()
	snapshot := append([]*waiter(nil), q.waiting...)
	q.mu.Unlock()
	for _, w := range snapshot {
		if ctx.Err() != nil {
			return
		}
		a, err := q.svc.ReserveAgent(ctx, w.call, w.skills, w.exclude)
		if errors.Is(err, org.ErrNotFound) {
			if len(w.skills) == 0 {
				return // nobody is ready at all: no later caller can be served either
			}
			continue
		}
		if err != nil {
			q.log.Warn("reserve agent failed", "call_id", w.call, "err", err)
			return
		}
		q.mu.Lock()
		still := false
		for i, x := range q.waiting {
			if x == w {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				still = true
				break
			}
		}
		if still {
			w.got <- a
		}
		q.mu.Unlock()
		if !still {
			// The caller left while we reserved: give the agent back.
			if err := q.svc.ReleaseAgent(context.WithoutCancel(ctx), a.UserID, w.call, false, ""); err != nil {
				q.log.Warn("release agent failed", "agent", a.UserID, "err", err)
			}
		}
	}
}

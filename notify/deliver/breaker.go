package deliver

import (
	"sync"
	"time"
)

// breaker stops claiming a channel's rows after threshold consecutive retryable failures, for cooldown; then
// rows flow again and the first answers decide (a failure opens it at once, a success closes it).
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu    sync.Mutex
	fails int
	until time.Time
}

func (b *breaker) open(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.until)
}

func (b *breaker) openUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.until
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails = 0
	b.mu.Unlock()
}

// failure counts one and reports whether the breaker opened now.
func (b *breaker) failure(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	if b.fails >= b.threshold && !now.Before(b.until) {
		b.until = now.Add(b.cooldown)
		return true
	}
	return false
}

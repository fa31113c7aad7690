package org

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RateLimiter counts events per key in fixed windows in Redis, so every process shares one count. The increment
// and the expiry are one Lua script: a crash between the two cannot leave a counter that never expires.
//
// Redis keys: <Prefix>rl:<key>:<window number> (integer counter, expires after two windows).
type RateLimiter struct {
	Redis  *redis.Client
	Prefix string
	Limit  int           // events per window
	Window time.Duration // default one minute
}

var incrExpire = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Allow counts one event for key and returns ErrRateLimited once the window's count passes Limit.
func (l *RateLimiter) Allow(ctx context.Context, key string) error {
	w := l.Window
	if w <= 0 {
		w = time.Minute
	}
	k := fmt.Sprintf("%srl:%s:%d", l.Prefix, key, time.Now().UnixNano()/int64(w))
	n, err := incrExpire.Run(ctx, l.Redis, []string{k}, (2 * w).Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("rate limit %s: %w", key, err)
	}
	if n > int64(l.Limit) {
		return fmt.Errorf("%s: %w", key, ErrRateLimited)
	}
	return nil
}

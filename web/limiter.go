package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// LoginLimits configure the login limiter; zero values take the defaults.
type LoginLimits struct {
	MaxFailures int           // attempts per (username, address) evaluated freely; default 10
	Window      time.Duration // quiet time after which the count starts again; default 15m
	BackoffBase time.Duration // wait after the MaxFailures-th attempt, doubling with each further one; default 1s
	BackoffMax  time.Duration // the longest wait; default 5m
}

// loginLimiter slows password guessing across all instances. Every attempt is counted in Redis BEFORE the
// password is checked (one Lua call: read, decide, count), so parallel guesses cannot slip past the count; a
// right password clears the count. The count is per (username, source address): a guesser on one address
// slows down only their own attempts, and the real admin on another address still signs in. Past MaxFailures
// there is no hard lock, only a growing wait (BackoffBase, doubling, at most BackoffMax) during which attempts
// are refused unevaluated. When Redis cannot be asked, logins are refused (fail closed).
type loginLimiter struct {
	rdb    *redis.Client
	prefix string
	lim    LoginLimits
	now    func() time.Time
}

func newLoginLimiter(rdb *redis.Client, prefix string, lim LoginLimits, now func() time.Time) *loginLimiter {
	if lim.MaxFailures <= 0 {
		lim.MaxFailures = 10
	}
	if lim.Window <= 0 {
		lim.Window = 15 * time.Minute
	}
	if lim.BackoffBase <= 0 {
		lim.BackoffBase = time.Second
	}
	if lim.BackoffMax <= 0 {
		lim.BackoffMax = 5 * time.Minute
	}
	return &loginLimiter{rdb: rdb, prefix: prefix, lim: lim, now: now}
}

// loginScript: KEYS[1] the hash of one (username, address): n attempts, last attempt and blocked-until (ms of
// the injected clock). ARGV: now, limit, window, backoff base, backoff max (ms). Returns 0 when this attempt
// may be evaluated (it has been counted), else the milliseconds to wait (nothing counted).
var loginScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local base = tonumber(ARGV[4])
local maxb = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'n', 'last', 'until')
local n = tonumber(h[1]) or 0
local last = tonumber(h[2]) or 0
local untl = tonumber(h[3]) or 0
if n > 0 and now - math.max(last, untl) > window then n = 0; untl = 0 end
if untl > now then return untl - now end
n = n + 1
untl = 0
if n >= limit then
  local b = base * math.pow(2, n - limit)
  if b > maxb then b = maxb end
  untl = now + b
end
redis.call('HSET', KEYS[1], 'n', n, 'last', now, 'until', untl)
redis.call('PEXPIRE', KEYS[1], window + maxb)
return 0
`)

func (l *loginLimiter) key(username, addr string) string {
	if len(username) > 64 {
		username = username[:64]
	}
	return l.prefix + "rl:login:" + strings.ToLower(username) + "|" + addr
}

// reserve counts an attempt and reports whether it may be evaluated; when not, how long to wait. An error
// means Redis could not be asked: the caller refuses the login.
func (l *loginLimiter) reserve(ctx context.Context, username, addr string) (bool, time.Duration, error) {
	if l.rdb == nil {
		return false, 0, errUnavailable
	}
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	wait, err := loginScript.Run(ctx, l.rdb, []string{l.key(username, addr)}, l.now().UnixMilli(), l.lim.MaxFailures,
		ms(l.lim.Window), ms(l.lim.BackoffBase), ms(l.lim.BackoffMax)).Int64()
	if err != nil {
		return false, 0, err
	}
	return wait == 0, time.Duration(wait) * time.Millisecond, nil
}

// succeeded clears the count of a (username, address) after the right password.
func (l *loginLimiter) succeeded(ctx context.Context, username, addr string) {
	if l.rdb != nil {
		l.rdb.Del(ctx, l.key(username, addr))
	}
}

// retryAfter sets the Retry-After header in whole seconds, at least 1.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
}

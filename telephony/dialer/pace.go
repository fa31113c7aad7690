package dialer

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing/campaign"
)

// A campaign's pace is a ceiling that carriers enforce (calls per second; the excess is rejected), so it is
// applied where the INVITE leaves, not where targets are queued: queueing at the pace is not enough, because
// targets that waited for a channel or a worker all go at once when the concurrency cap frees slots (measured
// before this gate: 248 attempts in one second at a pace of 200).
//
// The gate is a monotonic schedule kept in Redis, shared by every dialer process, in two steps:
//   - reserve: each call takes the campaign's next free slot and sleeps until it; the slot after it is
//     (1 s + PaceMargin)/pace later. An idle campaign's schedule restarts at "now", so nothing accrues while it
//     is idle, paused or outside its window: no burst carry-over at all, not even one slot.
//   - go: on waking, the call is let out only if fewer than ⌈pace⌉ calls (of any process) were let out in the
//     last 1 s + PaceMargin, by Redis's clock; otherwise it waits until the oldest of them leaves that window.
//     Slots are spaced so that this rarely holds anyone back; it is what makes the ceiling exact when timers
//     fire late on a busy CPU and calls that should have gone one by one go together. (Requiring one interval
//     between let-outs instead would make every late wake-up delay all later calls: measured at 200/s on a
//     loaded machine, that halved the rate.)
//
// So every window of 1 s + PaceMargin holds at most ⌈pace⌉ let-outs, and PaceMargin absorbs what happens between
// a call being let out and its INVITE reaching the carrier (building the request, the network), which could
// otherwise move a call into the next second. The price is PaceMargin/1 s of throughput (2 % with the default
// 20 ms).
//
// Redis keys (per campaign, under Config.Prefix): dialer:pace:<campaign id> — the next free slot; and
// dialer:pace:<campaign id>:out — a sorted set of the let-outs in the current window (scored by time). Times
// are microseconds on Redis's clock (TIME, one clock for all processes); both keys expire a minute after use. If
// Redis loses them, the schedule restarts at the next call: still no burst.
var paceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
redis.call('SET', KEYS[1], string.format('%.0f', slot + tonumber(ARGV[1])), 'PX', math.floor(wait / 1000) + 60000)
return wait`)

var paceGoScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now + 1)
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], 60000)
return 0`)

// paceInterval is the spacing of a campaign's slots: (1 s + margin) / pace.
func (d *Dialer) paceInterval(pace float64) time.Duration {
	if pace <= 0 {
		pace = campaign.DefaultPace
	}
	return time.Duration(float64(time.Second+d.cfg.PaceMargin) / pace)
}

// paceRate is the rate the gate lets through; the scheduler queues at the same rate so that claimed calls do
// not pile up in front of the gate.
func (d *Dialer) paceRate(pace float64) float64 {
	return float64(time.Second) / float64(d.paceInterval(pace))
}

// waitPace reserves the campaign's next slot and waits for it. An error means ctx ended (or Redis failed) and
// the call must not be placed.
func (d *Dialer) waitPace(ctx context.Context, c *campaign.Campaign, member string) error {
	key := d.cfg.Prefix + "dialer:pace:" + strconv.FormatInt(int64(c.ID), 10)
	interval := d.paceInterval(c.Pace).Microseconds()
	us, err := paceScript.Run(ctx, d.rdb, []string{key}, interval).Int64()
	if err != nil {
		return fmt.Errorf("pace slot of campaign %d: %w", c.ID, err)
	}
	for {
		if us > 0 {
			t := time.NewTimer(time.Duration(us) * time.Microsecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		window := (time.Second + d.cfg.PaceMargin).Microseconds()
		if us, err = paceGoScript.Run(ctx, d.rdb, []string{key + ":out"}, window, int(math.Ceil(c.Pace)), member).Int64(); err != nil {
			return fmt.Errorf("pace of campaign %d: %w", c.ID, err)
		}
		if us == 0 {
			return nil
		}
	}
}

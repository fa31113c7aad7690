package dialer

import (
	"context"
	"fmt"
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
// The gate is a monotonic schedule kept in Redis, shared by every dialer process: each call reserves the
// campaign's next free slot and waits until it; the slot after it is one interval later. An idle campaign's
// schedule restarts at "now", so nothing accrues while it is idle, paused or outside its window: no burst
// carry-over at all, not even one slot. Slots are at least one interval apart, so any window of
// 1 s + PaceMargin holds at most ⌈pace⌉ of them; PaceMargin absorbs the jitter between a slot and its INVITE
// actually leaving (timer wake-up, building the request), which could otherwise put the calls of pace+1 slots
// into one second on the wire. The price is PaceMargin/1 s of throughput (2 % with the default 20 ms).
//
// Redis key (per campaign, under Config.Prefix): dialer:pace:<campaign id> — the next free slot, microseconds on
// Redis's clock (TIME, one clock for all processes), expiring a minute after the last reserved slot. If Redis
// loses it, the schedule restarts at the next call: still no burst.
var paceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
redis.call('SET', KEYS[1], string.format('%.0f', slot + tonumber(ARGV[1])), 'PX', math.floor(wait / 1000) + 60000)
return wait`)

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
func (d *Dialer) waitPace(ctx context.Context, c *campaign.Campaign) error {
	key := d.cfg.Prefix + "dialer:pace:" + strconv.FormatInt(int64(c.ID), 10)
	us, err := paceScript.Run(ctx, d.rdb, []string{key}, d.paceInterval(c.Pace).Microseconds()).Int64()
	if err != nil {
		return fmt.Errorf("pace slot of campaign %d: %w", c.ID, err)
	}
	if us > 0 {
		t := time.NewTimer(time.Duration(us) * time.Microsecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

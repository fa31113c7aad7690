package dialer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing/campaign"
)

// acquireScript takes one lease in every key (trunk channels, campaign concurrency) or none. Leases are sorted
// set members scored by expiry (Redis time), so the channels of a dead process come back by themselves.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('ZCARD', k) >= tonumber(ARGV[2 + i]) then return 0 end
end
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', k, tonumber(ARGV[2]) * 2)
end
return 1`)

var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, 'XX', now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', k, tonumber(ARGV[2]) * 2)
end
return 1`)

func (d *Dialer) acquire(ctx context.Context, keys []string, caps []int, member string) (bool, error) {
	args := []any{member, d.cfg.LeaseTTL.Milliseconds()}
	for _, c := range caps {
		args = append(args, c)
	}
	n, err := acquireScript.Run(ctx, d.rdb, keys, args...).Int()
	if err != nil || n != 1 {
		return false, err
	}
	d.mu.Lock()
	d.leases[member] = keys
	d.mu.Unlock()
	return true, nil
}

func (d *Dialer) release(member string) {
	d.mu.Lock()
	keys := d.leases[member]
	delete(d.leases, member)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pipe := d.rdb.Pipeline()
	for _, k := range keys {
		pipe.ZRem(ctx, k, member)
	}
	_, _ = pipe.Exec(ctx)
}

// renewLeases extends the leases of calls in progress every third of their TTL.
func (d *Dialer) renewLeases(ctx context.Context) {
	t := time.NewTicker(d.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		held := make(map[string][]string, len(d.leases))
		for m, k := range d.leases {
			held[m] = k
		}
		d.mu.Unlock()
		// One round trip for all of them: a thousand calls up must not mean a thousand sequential scripts.
		pipe := d.rdb.Pipeline()
		for m, keys := range held {
			renewScript.Eval(ctx, pipe, keys, m, d.cfg.LeaseTTL.Milliseconds())
		}
		if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, redis.Nil) {
			d.log.Warn("dialer: renew channel leases", "err", err)
		}
	}
}

// keepLeaderScript extends the scheduler lease if we hold it, or takes it if nobody does.
var keepLeaderScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`)

// schedule is the scheduler loop; only the process holding the leader lease acts.
func (d *Dialer) schedule(ctx context.Context) {
	leaderKey := d.cfg.Prefix + "dialer:scheduler"
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	var (
		leader      bool
		lastLeader  time.Time
		lastSecond  time.Time
		running     []*campaign.Campaign
		pacers      = map[campaign.ID]*campaign.Pacer{}
		idle        = map[campaign.ID]time.Time{}
		leaseLength = 3 * time.Second
	)
	for {
		select {
		case <-ctx.Done():
			if leader {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				d.rdb.Eval(rctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
					[]string{leaderKey}, d.cfg.WorkerID)
				cancel()
			}
			return
		case <-tick.C:
		}
		now := time.Now()
		if now.Sub(lastLeader) >= leaseLength/3 {
			n, err := keepLeaderScript.Run(ctx, d.rdb, []string{leaderKey}, d.cfg.WorkerID, leaseLength.Milliseconds()).Int()
			was := leader
			leader = err == nil && n == 1
			lastLeader = now
			if leader && !was {
				d.log.Info("dialer scheduler: leading", "worker", d.cfg.WorkerID)
				lastSecond = time.Time{}
			}
		}
		if !leader {
			if now.Sub(lastSecond) >= 10*time.Second {
				lastSecond = now
				d.forgetCampaigns() // followers reload campaign settings too, and keep the cache small
			}
			continue
		}
		if now.Sub(lastSecond) >= time.Second {
			lastSecond = now
			running = d.housekeeping(ctx)
			live := map[campaign.ID]bool{}
			for _, c := range running {
				live[c.ID] = true
				// Queue at the rate the pace gate lets calls out (pace.go), so claimed calls do not pile up in
				// front of it; the gate, not this pacer, is what keeps every second within the pace.
				if rate := d.paceRate(c.Pace); pacers[c.ID] == nil || pacers[c.ID].Rate != rate {
					pacers[c.ID] = campaign.NewPacer(rate)
				}
			}
			for id := range pacers {
				if !live[id] {
					delete(pacers, id)
					delete(idle, id)
				}
			}
		}
		clock := d.svc.Now()
		for _, c := range running {
			p := pacers[c.ID]
			if !c.Windows.Open(clock, d.svc.Holidays()) {
				p.Reset() // a window opening is not a burst
				continue
			}
			if now.Before(idle[c.ID]) {
				continue // nothing was due a moment ago (the standing 回访 campaign, mostly): look again shortly
			}
			backlog := d.cfg.Backlog
			if backlog <= 0 {
				backlog = max(10, int(c.Pace))
			}
			queued, dialing, err := d.svc.InFlight(ctx, c.ID)
			if err != nil {
				continue
			}
			want := min(backlog-queued, c.MaxConcurrent-dialing-queued)
			if want <= 0 {
				continue
			}
			n := p.Take(now, want)
			if n == 0 {
				continue
			}
			qs, err := d.svc.Enqueue(ctx, c.ID, n)
			if err != nil {
				d.log.Warn("dialer scheduler: enqueue", "campaign_id", c.ID, "err", err)
			}
			if len(qs) < n {
				p.Refund(n - len(qs))
				idle[c.ID] = now.Add(250 * time.Millisecond)
			}
			d.add(ctx, qs)
		}
	}
}

// add puts queued targets on the stream.
func (d *Dialer) add(ctx context.Context, qs []campaign.Queued) {
	if len(qs) == 0 {
		return
	}
	d.m.enqueued.Add(float64(len(qs)))
	pipe := d.rdb.Pipeline()
	for _, q := range qs {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: d.stream, Values: []any{
			"c", strconv.FormatInt(int64(q.Campaign), 10), "t", strconv.FormatInt(int64(q.Target), 10), "a", strconv.Itoa(q.Attempts)}})
	}
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("dialer scheduler: stream add (the targets are re-added later)", "err", err)
	}
}

// housekeeping runs once a second on the leader: interrupted attempts, lost entries, finished campaigns,
// progress events; it returns the running campaigns.
func (d *Dialer) housekeeping(ctx context.Context) []*campaign.Campaign {
	n, err := d.svc.SweepInterrupted(ctx, d.cfg.DeadAfter)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("dialer: sweep interrupted attempts", "err", err)
	}
	d.m.swept.Add(float64(n))
	if qs, err := d.svc.StaleQueued(ctx, d.cfg.StaleQueued); err == nil && len(qs) > 0 {
		d.log.Info("dialer: re-adding lost stream entries", "count", len(qs))
		d.add(ctx, qs)
	}
	if ids, err := d.svc.FinishDone(ctx); err == nil {
		for _, id := range ids {
			d.log.Info("campaign finished", "campaign_id", id)
			d.publishProgress(ctx, id)
		}
	}
	d.forgetCampaigns() // workers reload settings changed by pause/resume/cancel
	running, err := d.svc.Running(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dialer: running campaigns", "err", err)
		}
		return nil
	}
	for _, c := range running {
		d.publishProgress(ctx, c.ID)
	}
	return running
}

func (d *Dialer) publishProgress(ctx context.Context, id campaign.ID) {
	if d.publish == nil {
		return
	}
	p, err := d.svc.Progress(ctx, id)
	if err != nil {
		return
	}
	// An idle campaign (the standing 回访 one, most of the time) does not repeat the same event every second.
	sig := fmt.Sprint(p.Status, p.ByState, p.ByOutcome)
	d.mu.Lock()
	same := d.published[id] == sig
	d.published[id] = sig
	d.mu.Unlock()
	if same {
		return
	}
	if err := d.publish(ctx, "campaign.progress", strconv.FormatInt(int64(id), 10), p); err != nil && ctx.Err() == nil {
		d.log.Warn("dialer: publish progress", "campaign_id", id, "err", err)
	}
}

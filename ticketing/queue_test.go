package ticketing_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

type queueFixture struct {
	*fixture
	rdb    *redis.Client
	prefix string
	relay  *ticketing.Relay
	q      *ticketing.Queues
}

func newQueueFixture(t *testing.T) *queueFixture {
	f := newFixture(t)
	rdb, prefix := testenv.Redis(t)
	return &queueFixture{fixture: f, rdb: rdb, prefix: prefix,
		relay: ticketing.NewRelay(f.db, rdb, ticketing.RelayOptions{Prefix: prefix}),
		q:     ticketing.NewQueues(f.db, rdb, prefix)}
}

func (f *queueFixture) drain() {
	f.t.Helper()
	for {
		n, err := f.relay.PublishOnce(f.ctx)
		if err != nil {
			f.t.Fatalf("relay: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// queued returns the ticket ids in a unit's queue, urgent first, in order.
func (f *queueFixture) queued(unit org.UnitID) []org.TicketID {
	f.t.Helper()
	es, err := f.q.Entries(f.ctx, org.System, unit)
	if err != nil {
		f.t.Fatal(err)
	}
	out := []org.TicketID{}
	for _, e := range es {
		out = append(out, e.Ticket)
	}
	return out
}

func TestQueueFollowsTheTicket(t *testing.T) {
	f := newQueueFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	staff := f.actor(org.RoleStaff, "430903")
	county, desk := f.unit("430903"), f.unit("desk")
	a := f.create(agent, heshanHousehold())
	f.drain()
	if got := f.queued(desk); !slices.Equal(got, []org.TicketID{a.ID}) {
		t.Fatalf("desk queue %v, want [%d]", got, a.ID)
	}
	a = f.do(agent, a, ticketing.ActDispatch, ticketing.ActionInput{})
	nt := heshanHousehold()
	nt.Dispatch = true
	b := f.create(agent, nt)
	nt.Urgency = ticketing.UrgencyUrgent
	c := f.create(agent, nt)
	f.drain()
	if got := f.queued(desk); len(got) != 0 {
		t.Fatalf("desk queue after dispatch %v", got)
	}
	if got := f.queued(county); !slices.Equal(got, []org.TicketID{c.ID, a.ID, b.ID}) {
		t.Fatalf("county queue %v, want urgent %d first then %d, %d", got, c.ID, a.ID, b.ID)
	}
	// Claim takes the urgent one first; signing it acknowledges the entry.
	e, err := f.q.Claim(f.ctx, staff, county)
	if err != nil || e.Ticket != c.ID || !e.Urgent {
		t.Fatalf("claim: %+v %v, want urgent %d", e, err, c.ID)
	}
	f.do(staff, c, ticketing.ActSign, ticketing.ActionInput{})
	f.drain()
	if got := f.queued(county); !slices.Equal(got, []org.TicketID{a.ID, b.ID}) {
		t.Fatalf("county queue after sign %v", got)
	}
	pend, err := f.rdb.XPending(f.ctx, ticketing.QueueKey(f.prefix, county, true), ticketing.Group).Result()
	if err != nil || pend.Count != 0 {
		t.Fatalf("pending after sign: %+v %v", pend, err)
	}
	// Staff of another unit cannot take from this queue.
	if _, err := f.q.Claim(f.ctx, f.actor(org.RoleStaff, "430902"), county); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("claim from another unit: %v", err)
	}
	// A claimant who goes away: another staff member reclaims after the idle time.
	e, err = f.q.Claim(f.ctx, staff, county)
	if err != nil || e.Ticket != a.ID {
		t.Fatalf("claim: %+v %v", e, err)
	}
	other := f.actor(org.RoleStaff, "430903")
	if _, err := f.q.Reclaim(f.ctx, other, county, time.Hour); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("reclaim before the idle time: %v", err)
	}
	e2, err := f.q.Reclaim(f.ctx, other, county, 0)
	if err != nil || e2.Ticket != a.ID {
		t.Fatalf("reclaim: %+v %v", e2, err)
	}
	// A ticket that left the unit while Redis lagged is skipped by claims.
	f.do(staff, b, ticketing.ActReturn, ticketing.ActionInput{Reason: "错派"}) // not yet relayed
	if _, err := f.q.Claim(f.ctx, other, county); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("claim of a returned ticket: %v", err)
	}
	f.drain()
	if got := f.queued(desk); !slices.Equal(got, []org.TicketID{b.ID}) {
		t.Fatalf("desk queue after return %v", got)
	}
	// Events reached the stream with topic, key and JSON payload.
	msgs, err := f.rdb.XRange(f.ctx, ticketing.EventsKey(f.prefix), "-", "+").Result()
	if err != nil || len(msgs) < 8 {
		t.Fatalf("event stream: %d entries %v", len(msgs), err)
	}
	if m := msgs[0].Values; m["topic"] != "ticket.created" || m["key"] != strconv.FormatInt(int64(a.ID), 10) || m["payload"] == "" {
		t.Fatalf("first event %v", m)
	}
	// Metrics: queue depth per unit and outbox lag.
	reg := prometheus.NewRegistry()
	if err := ticketing.RegisterMetrics(reg, f.db, f.q, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "hotline_queue_depth"); err != nil || n < 2 {
		t.Fatalf("queue depth series %d %v", n, err)
	}
	if v := testutil.ToFloat64(collectorFor(reg, "hotline_outbox_backlog")); v != 0 {
		t.Fatalf("outbox backlog %v after draining", v)
	}
}

// collectorFor wraps one gathered gauge so testutil.ToFloat64 can read it.
func collectorFor(reg *prometheus.Registry, name string) prometheus.Collector {
	return gatherOne{reg, name}
}

type gatherOne struct {
	reg  *prometheus.Registry
	name string
}

func (g gatherOne) Describe(ch chan<- *prometheus.Desc) {}
func (g gatherOne) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			for _, m := range mf.GetMetric() {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
			}
		}
	}
}

func TestRelayCrashBetweenPublishAndMark(t *testing.T) {
	f := newQueueFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.Dispatch = true
	tk := f.create(agent, nt)
	var outbox int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM outbox`).Scan(&outbox)
	crashing := ticketing.NewRelay(f.db, f.rdb, ticketing.RelayOptions{Prefix: f.prefix})
	ticketing.SetAfterPublish(crashing, func() error { return errors.New("killed") })
	if _, err := crashing.PublishOnce(f.ctx); err == nil {
		t.Fatal("the crashing relay reported success")
	}
	var left int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM outbox`).Scan(&left)
	if left != outbox {
		t.Fatalf("%d of %d outbox rows left after the crash", left, outbox)
	}
	if got := f.queued(f.unit("430903")); !slices.Equal(got, []org.TicketID{tk.ID}) {
		t.Fatalf("queue after the crash %v", got)
	}
	f.drain() // the restarted relay publishes the same rows again
	if got := f.queued(f.unit("430903")); !slices.Equal(got, []org.TicketID{tk.ID}) {
		t.Fatalf("queue after the restart %v, want the ticket once", got)
	}
	if n, _ := f.rdb.XLen(f.ctx, ticketing.EventsKey(f.prefix)).Result(); n != int64(outbox) {
		t.Fatalf("%d events for %d outbox rows", n, outbox)
	}
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM outbox`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d rows left after the restart", left)
	}
}

func TestRelaysInParallel(t *testing.T) {
	f := newQueueFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.Dispatch = true
	const n = 60
	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	for range 3 {
		r := ticketing.NewRelay(f.db, f.rdb, ticketing.RelayOptions{Prefix: f.prefix, Batch: 7, PollInterval: 5 * time.Millisecond})
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	for range n {
		f.create(agent, nt)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.queued(f.unit("430903"))) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	got := f.queued(f.unit("430903"))
	seen := map[org.TicketID]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("ticket %d queued twice", id)
		}
		seen[id] = true
	}
	if len(got) != n {
		t.Fatalf("%d tickets queued, want %d", len(got), n)
	}
}

func TestRebuildAfterFlush(t *testing.T) {
	f := newQueueFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	staff := f.actor(org.RoleStaff, "430903")
	county, desk := f.unit("430903"), f.unit("desk")
	nt := heshanHousehold()
	nt.Dispatch = true
	var want []org.TicketID
	var urgent org.TicketID
	for i := range 6 {
		f.now = f.now.Add(time.Minute)
		if i == 4 {
			u := nt
			u.Urgency = ticketing.UrgencyUrgent
			urgent = f.create(agent, u).ID
			continue
		}
		want = append(want, f.create(agent, nt).ID)
	}
	signed := f.create(agent, nt)
	f.do(staff, signed, ticketing.ActSign, ticketing.ActionInput{})
	waiting := f.create(agent, heshanHousehold()) // new: at the desk
	f.drain()
	before := f.queued(county)
	// Redis loses everything under our prefix, scripts included.
	keys, _ := f.rdb.Keys(f.ctx, f.prefix+"*").Result()
	f.rdb.Del(f.ctx, keys...)
	f.rdb.ScriptFlush(f.ctx)
	if got := f.queued(county); len(got) != 0 {
		t.Fatalf("queue not flushed: %v", got)
	}
	n, err := f.q.RebuildQueues(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCounty := append([]org.TicketID{urgent}, want...)
	if got := f.queued(county); !slices.Equal(got, wantCounty) || !slices.Equal(got, before) {
		t.Fatalf("rebuilt queue %v, want %v (before the flush %v)", got, wantCounty, before)
	}
	if got := f.queued(desk); !slices.Equal(got, []org.TicketID{waiting.ID}) {
		t.Fatalf("rebuilt desk queue %v", got)
	}
	if n != len(wantCounty)+1 {
		t.Fatalf("rebuild queued %d", n)
	}
	// Claims work on the rebuilt queues, and a second rebuild gives the same.
	if e, err := f.q.Claim(f.ctx, staff, county); err != nil || e.Ticket != urgent {
		t.Fatalf("claim after rebuild %+v %v", e, err)
	}
	if _, err := f.q.RebuildQueues(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.queued(county); !slices.Equal(got, wantCounty) {
		t.Fatalf("second rebuild %v", got)
	}
}

func TestSweeperAlertsOnceWithTwoSweepers(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.Dispatch = true
	var ids []org.TicketID
	for range 10 {
		ids = append(ids, f.create(agent, nt).ID)
	}
	tk, _ := f.svc.Get(f.ctx, org.System, ids[0])
	// Two services (two processes) sweeping at the same moments.
	other := ticketing.NewService(f.db, ticketing.Options{Now: func() time.Time { return f.now }})
	sweepBoth := func() int {
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, s := range []*ticketing.Service{f.svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					al, err := s.Sweep(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					counts[i] += len(al)
				}
			}()
		}
		wg.Wait()
		return counts[0] + counts[1]
	}
	if n := sweepBoth(); n != 0 {
		t.Fatalf("%d alerts while green", n)
	}
	f.now = tk.YellowAt.Add(time.Second)
	if n := sweepBoth(); n != len(ids) {
		t.Fatalf("%d yellow alerts, want %d", n, len(ids))
	}
	f.now = tk.DueAt.Add(time.Second)
	if n := sweepBoth(); n != len(ids) {
		t.Fatalf("%d red alerts, want %d", n, len(ids))
	}
	if n := sweepBoth(); n != 0 {
		t.Fatalf("%d alerts on a later sweep", n)
	}
	for _, lvl := range []string{"sla_yellow", "sla_red"} {
		var evs, ob int
		f.db.QueryRow(f.ctx, `SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND action = $2`, int64(ids[0]), lvl).Scan(&evs)
		f.db.QueryRow(f.ctx, `SELECT count(*) FROM outbox WHERE topic = $1`, "sla."+lvl[4:]).Scan(&ob)
		if evs != 1 || ob != len(ids) {
			t.Fatalf("%s: %d events on one ticket (want 1), %d outbox rows (want %d)", lvl, evs, ob, len(ids))
		}
	}
	// Listing by colour.
	red, _, err := f.svc.List(f.ctx, org.System, ticketing.Filter{Overdue: true})
	if err != nil || len(red) != len(ids) {
		t.Fatalf("overdue list %d %v", len(red), err)
	}
}

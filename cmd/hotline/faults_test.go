package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/localrt"
	"hotline/deploy/testenv"
	"hotline/migrations"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// faultRig is one hotline process (in this test binary, wired exactly as `hotline serve`) on a PostgreSQL and
// Redis of its own, so the test can kill and restart them without touching other tests' servers.
type faultRig struct {
	t         *testing.T
	rt        *localrt.Runtime
	app       *App
	base      string
	check     *pgxpool.Pool // the test's own view of the database
	rdb       *redis.Client
	prefix    string
	agent     string // bearer tokens
	staff     string
	household int64
	region    string
	env       []string // the process's environment, to run the binary on the same servers
	stop      context.CancelFunc
	done      chan error
}

func newFaultRig(t *testing.T, env ...string) *faultRig {
	t.Helper()
	ctx := context.Background()
	dir := testenv.TempDir(t)
	// Durable (fsync on), as in production: a crash must not lose what clients were told is committed.
	rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: testenv.FreePort(t),
		RedisPort: testenv.FreePort(t), Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	setup, err := pgxpool.New(ctx, rt.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, setup, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := org.SeedUnits(ctx, setup); err != nil {
		t.Fatal(err)
	}
	token := func(name string, role org.Role, unit string) string {
		u, err := org.UnitByCode(ctx, setup, unit)
		if err != nil {
			t.Fatal(err)
		}
		usr, err := org.CreateUser(ctx, setup, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := org.CreateToken(ctx, setup, usr.ID, "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	r := &faultRig{t: t, rt: rt, check: setup, prefix: "hl:", agent: token("agent1", org.RoleAgent, org.CodeDesk)}
	t.Cleanup(setup.Close)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	r.base = "http://" + httpAddr
	r.env = append([]string{"HOTLINE_DATABASE_URL=" + rt.DatabaseURL, "HOTLINE_REDIS_URL=" + rt.RedisURL,
		"HOTLINE_HTTP_ADDR=" + httpAddr, "HOTLINE_SIP_LISTEN=", "HOTLINE_DATA_DIR=" + dir, "HOTLINE_DIALER_CALLBACK=false",
		"HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), "HOTLINE_DB_MAX_CONNS=8"}, env...)
	cfg, _, _, err := loadConfig(nil, r.env)
	if err != nil {
		t.Fatal(err)
	}
	db, rdb, err := connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.Default()
	}
	r.app, err = newApp(ctx, cfg, log, db, rdb, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_ = rdb
	ropt, _ := redis.ParseURL(rt.RedisURL)
	r.rdb = redis.NewClient(ropt) // the test's own view of Redis, open after the app's pools close
	t.Cleanup(func() { r.rdb.Close() })
	// One monitored household: its help tickets go to its county bureau, whose head signs them.
	if err := r.app.monitoring.LoadDemo(ctx, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	var region string
	if err := setup.QueryRow(ctx, `SELECT id, township_code FROM households`).Scan(&r.household, &region); err != nil {
		t.Fatal(err)
	}
	r.region = region
	r.staff = token("head", org.RoleHead, region[:6])
	sctx, stop := context.WithCancel(ctx)
	r.stop, r.done = stop, make(chan error, 1)
	go func() { r.done <- r.app.serve(sctx) }()
	t.Cleanup(r.shutdown)
	r.waitReady()
	return r
}

// streamDuplicates counts event-stream entries published more than once (same topic, key and payload).
func (r *faultRig) streamDuplicates() int {
	msgs, err := r.rdb.XRange(context.Background(), ticketing.EventsKey(r.prefix), "-", "+").Result()
	if err != nil {
		r.t.Fatal(err)
	}
	seen := map[string]bool{}
	dups := 0
	for _, m := range msgs {
		k := fmt.Sprint(m.Values["topic"], "|", m.Values["key"], "|", m.Values["payload"])
		if seen[k] {
			dups++
		}
		seen[k] = true
	}
	return dups
}

func (r *faultRig) shutdown() {
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	if err := <-r.done; err != nil {
		r.t.Errorf("serve: %v", err)
	}
	r.app.close()
}

func (r *faultRig) waitReady() {
	r.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(r.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	r.t.Fatal("/readyz did not answer 200")
}

// answer is one HTTP exchange as a client saw it.
type answer struct {
	code       int
	errCode    string
	retryAfter string
	body       []byte
}

func (r *faultRig) do(method, path, token, key string, body any) (answer, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, r.base+path, bytes.NewReader(j))
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	a.body, _ = io.ReadAll(resp.Body)
	var e struct{ Code string }
	json.Unmarshal(a.body, &e)
	a.errCode = e.Code
	return a, nil
}

// tally counts what clients saw; anything but success or a retryable refusal is an error of the test.
type tally struct {
	mu       sync.Mutex
	codes    map[string]int
	bad      []string
	created  map[int64]bool // tickets the clients were told exist
	signed   map[int64]bool
	attempts atomic.Int64
	// retryTransport: a connection error is expected (the server was killed) and retried, not counted as bad.
	retryTransport bool
}

func (tl *tally) see(a answer, err error) (ok bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if err != nil {
		tl.codes["transport"]++
		if !tl.retryTransport {
			tl.bad = append(tl.bad, err.Error())
		}
		return false
	}
	tl.codes[fmt.Sprintf("%d %s", a.code, a.errCode)]++
	switch {
	case a.code < 300:
		return true
	case a.code == 503 && (a.errCode == "unavailable" || a.errCode == "overloaded") && a.retryAfter != "":
		return false
	default:
		tl.bad = append(tl.bad, fmt.Sprintf("%d %s", a.code, a.body))
		return false
	}
}

// load runs clients that each create a dispatched ticket (retrying with the same Idempotency-Key until it
// exists) and sign it (retrying until signed), until ctx ends.
func (r *faultRig) load(ctx context.Context, clients int, tl *tally) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("c%d-%d", c, i)
				body := map[string]any{"source": "phone", "caller_name": "王五", "caller_phone": "13800001111", "region_code": r.region,
					"household_id": r.household, "kind": "help", "category": "monitoring_help", "content": "房屋漏雨,需要危房改造 " + key, "dispatch": true}
				var tk struct{ Ticket ticketing.Ticket }
				for ctx.Err() == nil {
					tl.attempts.Add(1)
					a, err := r.do("POST", "/api/v1/tickets", r.agent, key, body)
					if tl.see(a, err) {
						json.Unmarshal(a.body, &tk)
						break
					}
					if err == nil && a.code != 503 {
						return // counted as bad by see
					}
					time.Sleep(100 * time.Millisecond)
				}
				if tk.Ticket.ID == 0 {
					return
				}
				tl.mu.Lock()
				tl.created[int64(tk.Ticket.ID)] = true
				tl.mu.Unlock()
				for ctx.Err() == nil {
					a, err := r.do("POST", fmt.Sprintf("/api/v1/tickets/%d/sign", tk.Ticket.ID), r.staff, "", map[string]any{"version": tk.Ticket.Version})
					if a.code == 409 { // signed by an attempt whose answer was lost: check below
						break
					}
					if tl.see(a, err) {
						tl.mu.Lock()
						tl.signed[int64(tk.Ticket.ID)] = true
						tl.mu.Unlock()
						break
					}
					if err == nil && a.code != 503 {
						break // counted as bad by see
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return &wg
}

// consistent checks the database against what the clients saw: every ticket they were told exists is there,
// whole (its create and dispatch events), every sign they were told of happened, no ticket was written twice,
// and the relay publishes every outbox row.
func (r *faultRig) consistent(tl *tally, streamWhole bool) {
	r.t.Helper()
	ctx := context.Background()
	var tickets, half, keys, unsignedButTold int
	r.check.QueryRow(ctx, `SELECT count(idempotency_key), count(DISTINCT idempotency_key) FROM tickets`).Scan(&tickets, &keys)
	// The clients' tickets (with a key; a hook adds verification tickets without) were created dispatched.
	r.check.QueryRow(ctx, `SELECT count(*) FROM tickets t WHERE
		NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id AND e.action = 'create')
		OR (t.idempotency_key IS NOT NULL AND (SELECT count(*) FROM ticket_events e WHERE e.ticket_id = t.id AND e.action IN ('create', 'dispatch')) <> 2)
		OR (t.status = 'signed') <> EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id AND e.action = 'sign')`).Scan(&half)
	if tickets != keys {
		r.t.Errorf("%d tickets for %d idempotency keys: a retried create wrote twice", tickets, keys)
	}
	if half != 0 {
		r.t.Errorf("%d tickets without all their events", half)
	}
	for id := range tl.created {
		var status string
		if err := r.check.QueryRow(ctx, `SELECT status FROM tickets WHERE id = $1`, id).Scan(&status); err != nil {
			r.t.Errorf("ticket %d, created for a client, is gone: %v", id, err)
		} else if tl.signed[id] && status != "signed" {
			unsignedButTold++
		}
	}
	if unsignedButTold > 0 {
		r.t.Errorf("%d tickets whose sign was confirmed are not signed", unsignedButTold)
	}
	// The relay catches up: the outbox empties and every event reached the stream.
	var left int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r.check.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left)
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	if left != 0 {
		r.t.Errorf("%d outbox rows never published", left)
	}
	var events int64
	r.check.QueryRow(ctx, `SELECT count(*) FROM ticket_events`).Scan(&events)
	// (A flush empties the stream of what was published before it: only then is it not whole.)
	if n, _ := r.rdb.XLen(ctx, ticketing.EventsKey(r.prefix)).Result(); streamWhole && n < events {
		r.t.Errorf("event stream holds %d entries, PostgreSQL %d events", n, events)
	}
}

// PostgreSQL crashes (immediate shutdown: no checkpoint, recovery on start) and comes back under ticket creation
// and transitions: clients get 503 with a code and Retry-After meanwhile, never a 500; work resumes by itself;
// nothing a client was told is lost, nothing is half-written or written twice, and every event is published.
func TestPostgresRestartUnderLoad(t *testing.T) {
	r := newFaultRig(t)
	tl := &tally{codes: map[string]int{}, created: map[int64]bool{}, signed: map[int64]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			t.Logf("answers: %v; first bad: %v", tl.codes, tl.bad[:min(3, len(tl.bad))])
			tl.mu.Unlock()
		}
	})
	wg := r.load(ctx, 4, tl)
	waitFor(t, "tickets before the crash", func() bool { tl.mu.Lock(); defer tl.mu.Unlock(); return len(tl.signed) >= 20 })
	if err := r.rt.RestartPostgres(context.Background(), syscall.SIGQUIT, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	tl.mu.Lock()
	before := len(tl.signed)
	tl.mu.Unlock()
	waitFor(t, "work resuming after the restart", func() bool { tl.mu.Lock(); defer tl.mu.Unlock(); return len(tl.signed) >= before+20 })
	stop()
	wg.Wait()
	t.Logf("answers: %v", tl.codes)
	if len(tl.bad) > 0 {
		t.Errorf("%d answers that are neither success nor a retryable 503, e.g. %s", len(tl.bad), tl.bad[0])
	}
	if tl.codes["503 unavailable"] == 0 {
		t.Error("no 503 unavailable while PostgreSQL was down")
	}
	r.consistent(tl, true)
	r.waitReady()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Redis killed (no final flush) and restarted, then separately flushed, under ticket creation and signing:
// creation keeps committing to PostgreSQL while Redis is away, the relay catches up, and after the flush the
// unit queues are rebuilt from PostgreSQL by the queue guard.
func TestRedisRestartAndFlushUnderLoad(t *testing.T) {
	r := newFaultRig(t, "HOTLINE_QUEUE_GUARD_INTERVAL=200ms")
	tl := &tally{codes: map[string]int{}, created: map[int64]bool{}, signed: map[int64]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			t.Logf("answers: %v; first bad: %v", tl.codes, tl.bad[:min(3, len(tl.bad))])
			tl.mu.Unlock()
		}
	})
	wg := r.load(ctx, 4, tl)
	created := func() int { tl.mu.Lock(); defer tl.mu.Unlock(); return len(tl.created) }
	waitFor(t, "tickets before the fault", func() bool { return created() >= 20 })

	// Redis away for 2 s: tickets are still created (PostgreSQL holds the truth).
	restarted := make(chan error, 1)
	go func() { restarted <- r.rt.RestartRedis(context.Background(), syscall.SIGKILL, 2*time.Second) }()
	time.Sleep(300 * time.Millisecond)
	during := created()
	time.Sleep(time.Second)
	if created() <= during {
		t.Error("no ticket was created while Redis was down")
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "work after the Redis restart", func() bool { return created() >= during+40 })

	// Tickets left waiting in their unit's queue, then Redis flushed: the queue guard notices and rebuilds.
	var waiting []int64
	for i := range 5 {
		var a answer
		var err error
		for try := 0; try < 50; try++ { // the load holds the write slots: retry as a client would
			a, err = r.do("POST", "/api/v1/tickets", r.agent, fmt.Sprintf("waiting-%d", i), map[string]any{"source": "phone",
				"caller_name": "王五", "caller_phone": "13800001111", "region_code": r.region, "household_id": r.household,
				"kind": "help", "category": "monitoring_help", "content": "等待签收", "dispatch": true})
			if err != nil || a.code != 503 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || a.code != 201 {
			t.Fatalf("create: %v %d %s", err, a.code, a.body)
		}
		var tk struct{ Ticket ticketing.Ticket }
		json.Unmarshal(a.body, &tk)
		waiting = append(waiting, int64(tk.Ticket.ID))
	}
	if err := r.rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queue guard rebuilding", func() bool {
		n, _ := r.rdb.Exists(context.Background(), ticketing.GuardKey(r.prefix)).Result()
		return n == 1
	})
	flushedAt := created()
	waitFor(t, "work after the flush", func() bool { return created() >= flushedAt+20 })
	stop()
	wg.Wait()
	if len(tl.bad) > 0 {
		t.Errorf("%d answers that are neither success nor a retryable 503, e.g. %s", len(tl.bad), tl.bad[0])
	}
	r.consistent(tl, false)
	// The tickets that waited before the flush are in their unit's queue again.
	var unit org.UnitID
	r.check.QueryRow(context.Background(), `SELECT lead_unit_id FROM tickets WHERE id = $1`, waiting[0]).Scan(&unit)
	entries, err := r.app.tickets.queues.Entries(context.Background(), org.System, unit)
	if err != nil {
		t.Fatal(err)
	}
	inQueue := map[int64]bool{}
	for _, e := range entries {
		inQueue[int64(e.Ticket)] = true
	}
	for _, id := range waiting {
		if !inQueue[id] {
			t.Errorf("ticket %d, dispatched before the flush, is not in its unit's queue after it", id)
		}
	}
}

// SIGKILL of the hotline process (the real binary) under ticket creation and signing — transitions and outbox
// publishes in flight — and a restart: every action is complete or was cleanly retried by its client, nothing is
// half-written or doubled, and every event reaches the stream exactly once.
func TestSIGKILLUnderLoad(t *testing.T) {
	r := newFaultRig(t)
	r.shutdown() // the in-process one made the household and the users; the binary takes over
	p := startHotline(t, r.env, "serve")
	r.waitReady()
	tl := &tally{codes: map[string]int{}, created: map[int64]bool{}, signed: map[int64]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			t.Logf("answers: %v; first bad: %v", tl.codes, tl.bad[:min(3, len(tl.bad))])
			tl.mu.Unlock()
		}
	})
	// Clients see a dead server as a transport error; they retry like any client, with the same key.
	tl.retryTransport = true
	wg := r.load(ctx, 4, tl)
	signed := func() int { tl.mu.Lock(); defer tl.mu.Unlock(); return len(tl.signed) }
	waitFor(t, "work before the kill", func() bool { return signed() >= 30 })
	p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	p2 := startHotline(t, r.env, "serve")
	r.waitReady()
	before := signed()
	waitFor(t, "work after the restart", func() bool { return signed() >= before+30 })
	stop()
	wg.Wait()
	if len(tl.bad) > 0 {
		t.Errorf("%d answers that are neither success nor a retryable refusal, e.g. %s", len(tl.bad), tl.bad[0])
	}
	r.consistent(tl, true)
	if d := r.streamDuplicates(); d != 0 {
		t.Errorf("%d events published twice", d)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := p2.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, p2.out.String())
	}
}

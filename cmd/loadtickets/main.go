// Command loadtickets measures ticket intake: N concurrent HTTP clients create tickets (dispatched at once) for
// a fixed time against a running hotline, and a reader on the target unit's Redis queue notes when each ticket
// arrives there. It reports tickets/s and the p50/p99 latency from the start of the create call to the arrival
// in the unit queue; then, with the same number of clients on the same PostgreSQL, the rate of plain single-row
// INSERT transactions, so the ratio can be stated. It targets loopback servers and stops by itself.
//
//	hotline up &   # or serve
//	go run ./cmd/loadtickets -url http://127.0.0.1:8080 -redis-url redis://127.0.0.1:6380/0 \
//	    -database-url 'postgres://hotline@127.0.0.1:5433/hotline?sslmode=disable' -clients 8 -rounds 5 -duration 2s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtickets:", err)
		os.Exit(1)
	}
}

type created struct {
	Ticket struct {
		ID         int64 `json:"id"`
		LeadUnitID int64 `json:"lead_unit_id"`
		Status     string
	} `json:"ticket"`
}

func run() error {
	base := flag.String("url", "http://127.0.0.1:8080", "hotline base URL")
	user := flag.String("user", "agent1", "username to log in with (POST /api/v1/tokens)")
	pass := flag.String("password", "hotline-demo", "password")
	clients := flag.Int("clients", 32, "concurrent HTTP clients (and INSERT connections)")
	dur := flag.Duration("duration", 2*time.Second, "how long each phase of a round runs")
	rounds := flag.Int("rounds", 5, "rounds of (tickets, then plain INSERTs)")
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6380/0", "Redis of the hotline")
	prefix := flag.String("redis-prefix", "hl:", "Redis key prefix of the hotline")
	dbURL := flag.String("database-url", "", "PostgreSQL of the hotline, for the plain INSERT baseline (empty: skip)")
	category := flag.String("category", "policy_question", "category of the tickets (its routing rule picks the unit whose queue is watched)")
	flag.Parse()
	if *clients < 1 || *dur <= 0 || *rounds < 1 {
		return errors.New("need -clients >= 1, -duration > 0 and -rounds >= 1")
	}
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: *clients * 2, MaxIdleConnsPerHost: *clients * 2}, Timeout: 30 * time.Second}

	token, err := login(hc, *base, *user, *pass)
	if err != nil {
		return err
	}
	ropt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	// One ticket first to learn the unit.
	first, err := create(hc, *base, token, *category, fmt.Sprintf("warm-up-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err != nil {
		return err
	}
	if first.Ticket.Status != "dispatched" {
		return fmt.Errorf("the first ticket was not dispatched (status %s): choose a -category with a routing rule", first.Ticket.Status)
	}
	unit := first.Ticket.LeadUnitID
	streams := []string{fmt.Sprintf("%squeue:%d:urgent", *prefix, unit), fmt.Sprintf("%squeue:%d:normal", *prefix, unit)}

	var (
		mu      sync.Mutex
		started = map[int64]time.Time{}
		arrived = map[int64]time.Time{}
	)
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	readerDone := make(chan error, 1)
	go func() {
		readerDone <- readQueue(rctx, rdb, streams, func(id int64, at time.Time) { mu.Lock(); arrived[id] = at; mu.Unlock() })
	}()
	time.Sleep(200 * time.Millisecond) // the reader starts at the stream's end

	var ins *inserter
	if *dbURL != "" {
		if ins, err = newInserter(ctx, *dbURL, *clients); err != nil {
			return err
		}
		defer ins.close(ctx)
	}
	// The phases alternate in rounds, so load from other processes on a shared machine weighs on both alike.
	fmt.Printf("tickets: %d clients, %d rounds of %s, category %s → unit %d\n", *clients, *rounds, *dur, *category, unit)
	var ok, failed, inserts atomic.Int64
	var httpLat []time.Duration
	var latMu sync.Mutex
	var ticketTime, insertTime time.Duration
	for round := range *rounds {
		end := time.Now().Add(*dur)
		var wg sync.WaitGroup
		for c := range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for i := 0; time.Now().Before(end); i++ {
					t0 := time.Now()
					res, err := create(hc, *base, token, *category, fmt.Sprintf("load-%d-%d-%d-%d", os.Getpid(), round, c, i))
					if err != nil {
						if failed.Add(1) <= 3 {
							fmt.Fprintln(os.Stderr, "create:", err)
						}
						continue
					}
					mine = append(mine, time.Since(t0))
					ok.Add(1)
					mu.Lock()
					started[res.Ticket.ID] = t0
					mu.Unlock()
				}
				latMu.Lock()
				httpLat = append(httpLat, mine...)
				latMu.Unlock()
			}()
		}
		t0 := time.Now()
		wg.Wait()
		ticketTime += time.Since(t0)
		if ins != nil {
			time.Sleep(200 * time.Millisecond) // let the relay finish this round's tickets
			n, d := ins.run(ctx, *clients, *dur)
			inserts.Add(n)
			insertTime += d
		}
	}
	// Wait for the last arrivals (at most 5 s).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := 0
		for id := range started {
			if _, ok := arrived[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(started) {
			break
		}
	}
	stopReader()
	<-readerDone
	var e2e []time.Duration
	missing := 0
	for id, s := range started {
		a, ok := arrived[id]
		if !ok {
			missing++
			continue
		}
		e2e = append(e2e, a.Sub(s))
	}
	rate := float64(ok.Load()) / ticketTime.Seconds()
	fmt.Printf("  created %d tickets in %s: %.0f tickets/s (%d failed)\n", ok.Load(), ticketTime.Round(time.Millisecond), rate, failed.Load())
	fmt.Printf("  create call          p50 %s  p99 %s\n", pct(httpLat, 50), pct(httpLat, 99))
	fmt.Printf("  create → unit queue  p50 %s  p99 %s  (%d never arrived)\n", pct(e2e, 50), pct(e2e, 99), missing)
	if ins == nil {
		return nil
	}
	irate := float64(inserts.Load()) / insertTime.Seconds()
	fmt.Printf("plain INSERT: %d connections: %d inserts in %s: %.0f inserts/s\n", *clients, inserts.Load(), insertTime.Round(time.Millisecond), irate)
	fmt.Printf("ratio tickets/INSERT: %.2f\n", rate/irate)
	return nil
}

func login(hc *http.Client, base, user, pass string) (string, error) {
	b, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	resp, err := hc.Post(base+"/api/v1/tokens", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("login as %s: HTTP %d", user, resp.StatusCode)
	}
	return out.Token, nil
}

func create(hc *http.Client, base, token, category, key string) (created, error) {
	body, _ := json.Marshal(map[string]any{"source": "api", "caller_name": "压测", "caller_phone": fmt.Sprintf("139%08d", rand.IntN(100000000)),
		"region_code": "430903", "kind": "consultation", "category": category, "content": "压力测试工单:雨露计划补助政策咨询", "dispatch": true})
	req, _ := http.NewRequest("POST", base+"/api/v1/tickets", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return created{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return created{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var c created
	return c, json.Unmarshal(raw, &c)
}

// readQueue follows the unit's queue streams (plain XREAD, no consumer group, so handlers are not disturbed).
func readQueue(ctx context.Context, rdb *redis.Client, streams []string, arrived func(int64, time.Time)) error {
	// Start after the last entry there now; "$" would skip entries added between two blocking reads.
	ids := []string{"0-0", "0-0"}
	for i, st := range streams {
		if last, err := rdb.XRevRangeN(ctx, st, "+", "-", 1).Result(); err == nil && len(last) == 1 {
			ids[i] = last[0].ID
		}
	}
	for ctx.Err() == nil {
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: append(slices.Clone(streams), ids...), Count: 1000, Block: 200 * time.Millisecond}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		for _, s := range res {
			i := slices.Index(streams, s.Stream)
			for _, m := range s.Messages {
				id, _ := strconv.ParseInt(fmt.Sprint(m.Values["ticket"]), 10, 64)
				arrived(id, now)
				ids[i] = m.ID
			}
		}
	}
	return nil
}

// inserter runs the baseline: single-row INSERT transactions into a table of its own, dropped at the end.
type inserter struct{ pool *pgxpool.Pool }

func newInserter(ctx context.Context, url string, clients int) (*inserter, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(clients)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS loadtickets_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		pool.Close()
		return nil, fmt.Errorf("baseline table: %w", err)
	}
	return &inserter{pool: pool}, nil
}

func (in *inserter) close(ctx context.Context) {
	in.pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS loadtickets_insert`)
	in.pool.Close()
}

func (in *inserter) run(ctx context.Context, clients int, dur time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, err := in.pool.Exec(ctx, `INSERT INTO loadtickets_insert (payload) VALUES ($1)`, "压力测试工单:雨露计划补助政策咨询"); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(t0)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))].Round(100 * time.Microsecond)
}

// Command loadws measures the websocket fan-out of one hotline process: N console connections, all signed in
// as one county bureau's clerk (so all subscribed to that unit's tickets), one ticket event added to the Redis
// event stream as the outbox relay adds it, and the time until each connection has it (p50, p99, max), plus
// the server's memory per idle connection (Go heap + goroutine stacks after a GC, and RSS, each as the delta
// from before the connections divided by N).
//
// By default it starts everything itself on loopback: PostgreSQL and Redis (deploy/localrt, in a temporary
// directory) and the server — the same web handler and notify/hub as `hotline serve` — as a child process of
// its own binary, so the client side's memory does not count. It raises RLIMIT_NOFILE in both processes and
// spreads the connections over source addresses 127.0.0.2, 127.0.0.3, … (25,000 per address: a source
// address has about 28,000 ephemeral ports). It stops by itself and removes what it made.
//
//	go run ./cmd/loadws -n 20000 -events 5
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/notify/hub"
	"hotline/ticketing"
	"hotline/ticketing/org"
	"hotline/web"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		err = serve(os.Args[2:])
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadws:", err)
		os.Exit(1)
	}
}

const prefix = "hl:"

func run() error {
	n := flag.Int("n", 20000, "websocket connections")
	events := flag.Int("events", 5, "events published, one at a time, each waited for on every connection")
	perAddr := flag.Int("per-address", 25000, "connections per loopback source address")
	dialers := flag.Int("dialers", 64, "connections opened in parallel")
	flag.Parse()
	if *n < 1 || *events < 1 || *perAddr < 1 {
		return errors.New("need -n, -events and -per-address >= 1")
	}
	if err := raiseNoFile(uint64(*n) + 100); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // bounded, whatever happens
	defer cancel()
	dir, err := os.MkdirTemp("", "loadws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: freePort(), RedisPort: freePort(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Stop()
	db, err := pgxpool.New(ctx, rt.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		return err
	}
	unit, err := org.UnitByCode(ctx, db, "430903")
	if err != nil {
		return err
	}
	u, err := org.CreateUser(ctx, db, org.NewUser{Username: "heshan1", DisplayName: "赫山区承办人", Password: "load-test-pass",
		Role: org.RoleStaff, UnitID: unit.ID})
	if err != nil {
		return err
	}
	token, err := org.CreateToken(ctx, db, u.ID, "loadws", time.Hour)
	if err != nil {
		return err
	}
	ropt, _ := redis.ParseURL(rt.RedisURL)
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	// The server: a child process of this binary.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	// #nosec G702 -- the load tool re-runs its own binary with addresses it made itself; no outside input.
	child := exec.CommandContext(ctx, os.Args[0], "serve", "-addr", addr, "-db", rt.DatabaseURL, "-redis", rt.RedisURL,
		"-nofile", strconv.Itoa(*n+100))
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	base := "http://" + addr
	if err := waitReady(ctx, base); err != nil {
		return err
	}
	before, err := serverMem(base)
	if err != nil {
		return err
	}

	// One reader per connection, started as soon as it is open (it answers the server's pings, so a connection
	// opened early is not closed as dead while the others open), notes when each event arrives.
	type arrival struct {
		conn int
		id   string
		at   time.Time
	}
	arrivals := make(chan arrival, *n**events)
	var readers sync.WaitGroup
	startReader := func(i int, c *websocket.Conn) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Minute))
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				at := time.Now()
				// Event frames start {"id":"<stream id>", (the hub writes them so); reading just that keeps the
				// client's share of the shared CPU small.
				if rest, ok := bytes.CutPrefix(msg, []byte(`{"id":"`)); ok {
					if id, _, ok := bytes.Cut(rest, []byte(`"`)); ok {
						select {
						case arrivals <- arrival{i, string(id), at}:
						default:
						}
					}
				}
			}
		}()
	}
	fmt.Printf("opening %d websocket connections (%d per source address, %d at a time) ...\n", *n, *perAddr, *dialers)
	start := time.Now()
	conns := make([]*websocket.Conn, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *dialers)
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	for range *dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				src := net.IPv4(127, 0, 0, byte(2 + i / *perAddr))
				d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256,
					NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}).DialContext}
				ws, _, err := d.DialContext(ctx, "ws://"+addr+"/ws", hdr)
				if err != nil {
					errs <- fmt.Errorf("connection %d from %s: %w", i, src, err)
					return
				}
				ws.SetReadDeadline(time.Now().Add(time.Minute))
				var hello struct{ Type string }
				if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
					errs <- fmt.Errorf("connection %d: no hello (%v)", i, err)
					return
				}
				conns[i] = ws
				startReader(i, ws)
			}
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("connected in %s\n", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the server settle (handshake garbage) before measuring
	after, err := serverMem(base)
	if err != nil {
		return err
	}

	var lat []time.Duration
	for e := range *events {
		payload, _ := json.Marshal(map[string]any{"ticket_id": e + 1, "number": fmt.Sprintf("LOAD%04d", e), "action": "dispatch",
			"status": "dispatched", "lead_unit_id": unit.ID, "co_unit_ids": []int{}, "confidential": false})
		t0 := time.Now()
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ticketing.EventsKey(prefix),
			Values: []any{"topic", "ticket.dispatch", "key", strconv.Itoa(e + 1), "payload", string(payload)}}).Result()
		if err != nil {
			return err
		}
		seen := make([]bool, *n)
		got := 0
		deadline := time.NewTimer(time.Minute)
		for got < *n {
			select {
			case a := <-arrivals:
				if a.id == id && !seen[a.conn] {
					seen[a.conn] = true
					got++
					lat = append(lat, a.at.Sub(t0))
				}
			case <-deadline.C:
				return fmt.Errorf("event %d reached %d of %d connections within a minute", e+1, got, *n)
			}
		}
		deadline.Stop()
		time.Sleep(500 * time.Millisecond)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("delivery of %d events to %d connections (%d deliveries): p50 %s  p99 %s  max %s\n", *events, *n, len(lat),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	fmt.Printf("server memory per idle connection: heap+stacks %.1f KiB (%.0f → %.0f MiB), RSS %.1f KiB (%.0f → %.0f MiB)\n",
		float64(after.HeapStack-before.HeapStack)/float64(*n)/1024, mib(before.HeapStack), mib(after.HeapStack),
		float64(after.RSS-before.RSS)/float64(*n)/1024, mib(before.RSS), mib(after.RSS))
	fmt.Printf("server goroutines: %d → %d\n", before.Goroutines, after.Goroutines)
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// mem is what the server reports at /loadws/mem (after a GC).
type mem struct {
	HeapStack  int64 `json:"heap_stack"`
	RSS        int64 `json:"rss"`
	Goroutines int   `json:"goroutines"`
}

func serverMem(base string) (mem, error) {
	var m mem
	resp, err := http.Get(base + "/loadws/mem")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func waitReady(ctx context.Context, base string) error {
	for i := 0; i < 200; i++ {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the server did not become ready")
}

// serve is the child: the web handler with the hub, as `hotline serve` wires them, plus /loadws/mem.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "")
	dbURL := fs.String("db", "", "")
	redisURL := fs.String("redis", "", "")
	nofile := fs.Int("nofile", 25000, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := raiseNoFile(uint64(*nofile)); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	db, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ropt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	h := hub.New(rdb, hub.Options{Prefix: prefix, Tickets: ticketing.NewService(db, ticketing.Options{})})
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("/", web.New(web.Deps{DB: db, Redis: rdb, RedisPrefix: prefix, Hub: h, Registry: prometheus.NewRegistry()}))
	mux.HandleFunc("/loadws/mem", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(mem{HeapStack: int64(ms.HeapInuse + ms.StackInuse), RSS: rss(), Goroutines: runtime.NumGoroutine()})
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
	}()
	err = srv.ListenAndServe()
	stop()
	<-hubDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// rss reads the resident set size of this process from /proc.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// raiseNoFile raises the open-file limit to at least n (root may raise the hard limit too).
func raiseNoFile(n uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= n {
		return nil
	}
	hard := l.Max
	l.Cur = n
	if l.Max < n {
		l.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("raise the open-file limit to %d (hard limit %d here; run as root with CAP_SYS_RESOURCE, raise `ulimit -Hn`, or use a smaller -n): %w", n, hard, err)
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

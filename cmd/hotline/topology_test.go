package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

// topology is deploy/topology.sh running: PostgreSQL, Redis with replicas and Sentinels, three hotline processes,
// Kamailio and HAProxy, all on loopback (issue 16).
type topology struct {
	t   *testing.T
	dir string
	env map[string]string // topology.env
}

// startTopology runs deploy/topology.sh with extra HOTLINE_* settings for the hotline processes. It stops at the
// test's end, and by itself after TOPOLOGY_TTL whatever happens to the test.
func startTopology(t *testing.T, hotlineEnv ...string) *topology {
	t.Helper()
	for _, b := range []string{"kamailio", "haproxy", "redis-sentinel", "redis-server", "curl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is missing (deploy/install-deps.sh installs it): %v", b, err)
		}
	}
	dir := testenv.TempDir(t)
	// 42 ports from a base under the ephemeral range (32768+) that FreePort and RTP draw from.
	base := 23000 + rand.IntN(180)*50
	cmd := exec.Command("../../deploy/topology.sh", "start", dir, strconv.Itoa(base))
	cmd.Env = append(append(cleanEnv(), "HOTLINE_BIN="+hotlineBinary(t), "TOPOLOGY_TTL=300"), hotlineEnv...)
	out, err := cmd.CombinedOutput()
	tp := &topology{t: t, dir: dir, env: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"hotline1", "hotline2", "hotline3", "kamailio", "sentinel0"} {
				b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
				t.Logf("%s.log: %s", n, tail(string(b), 1500))
			}
		}
		exec.Command("../../deploy/topology.sh", "stop", dir).Run()
	})
	if err != nil {
		t.Fatalf("topology.sh start: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "topology.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			tp.env[k] = v
		}
	}
	return tp
}

func (tp *topology) list(key string) []string { return strings.Split(tp.env[key], ",") }

// kill SIGKILLs one process of the topology (hotline1, redis0, ...).
func (tp *topology) kill(name string) {
	tp.t.Helper()
	if out, err := exec.Command("../../deploy/topology.sh", "kill", tp.dir, name).CombinedOutput(); err != nil {
		tp.t.Fatalf("kill %s: %v %s", name, err, out)
	}
}

// metric reads one unlabelled counter or gauge from a hotline process's /metrics (node 0-based); -1 when the
// process does not answer.
func (tp *topology) metric(node int, name string) float64 {
	resp, err := http.Get("http://" + tp.list("METRICS")[node] + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// TestTopology runs the drills on one deploy/topology.sh (starting it takes ≈ 20 s on the shared machine), in an
// order where each leaves what the next needs: consoles on every web node, then Redis failover, then a SIP node
// killed.
func TestTopology(t *testing.T) {
	tp := startTopology(t)
	for _, c := range []struct {
		name string
		run  func(*testing.T, *topology)
	}{{"WebsocketOnce", testTopologyWebsocketOnce}, {"RedisFailover", testTopologyRedisFailover}, {"SIPFailover", testTopologySIPFailover}} {
		if !t.Run(c.name, func(t *testing.T) { c.run(t, tp) }) {
			return
		}
	}
}

// testTopologySIPFailover: calls sent to Kamailio reach both SIP nodes; after one is SIGKILLed, new calls go to the
// other (Kamailio's failure route at once, its OPTIONS probes soon after) and a call up on the survivor is
// untouched. It logs the time from the kill to the first call answered around the dead node.
func testTopologySIPFailover(t *testing.T, tp *topology) {
	kam := tp.env["KAMAILIO"]
	phone, err := phonetest.Start(phonetest.Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	call := func(timeout time.Duration) (*phonetest.Call, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return phone.Dial(ctx, "sip:12345@"+kam, phonetest.DialOptions{From: "13812345678"})
	}
	hangup := func(c *phonetest.Call) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Hangup(ctx)
	}
	const accepted = "hotline_sip_calls_accepted_total"
	for i := range 6 {
		c, err := call(10 * time.Second)
		if err != nil {
			t.Fatalf("call %d through Kamailio: %v", i, err)
		}
		hangup(c)
	}
	a1, a2 := tp.metric(0, accepted), tp.metric(1, accepted)
	if a1 < 1 || a2 < 1 || a1+a2 != 6 {
		t.Fatalf("6 calls through Kamailio: node 1 took %v, node 2 %v; want both, 6 in all", a1, a2)
	}
	// A call that stays up; the node that took it survives, the other is killed.
	up, err := call(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hangup(up)
	survivor, victim := 0, 1
	if tp.metric(1, accepted) > a2 {
		survivor, victim = 1, 0
	}
	before := tp.metric(survivor, accepted)
	killed := time.Now()
	tp.kill(fmt.Sprintf("hotline%d", victim+1))
	first, err := call(30 * time.Second)
	if err != nil {
		t.Fatalf("first call after node %d was killed: %v", victim+1, err)
	}
	around := time.Since(killed)
	hangup(first)
	for i := range 6 {
		c, err := call(15 * time.Second)
		if err != nil {
			t.Fatalf("call %d after the kill (the first came %v after it): %v", i, around, err)
		}
		hangup(c)
	}
	if got := tp.metric(survivor, accepted) - before; got != 7 {
		t.Errorf("the survivor took %v of the 7 calls after the kill", got)
	}
	select {
	case <-up.Done():
		t.Error("the call up on the surviving node ended when the other node was killed")
	default:
	}
	t.Logf("SIP node killed → first call answered around it: %v", around.Round(time.Millisecond))
}

// token makes a user of the topology's database and returns an API token for it.
func (tp *topology) token(name string, role org.Role, unit string) string {
	tp.t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, tp.env["DATABASE_URL"])
	if err != nil {
		tp.t.Fatal(err)
	}
	defer db.Close()
	if _, err := org.SeedUnits(ctx, db); err != nil {
		tp.t.Fatal(err)
	}
	u, err := org.UnitByCode(ctx, db, unit)
	if err != nil {
		tp.t.Fatal(err)
	}
	usr, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID})
	if err != nil {
		tp.t.Fatal(err)
	}
	tok, err := org.CreateToken(ctx, db, usr.ID, "test", time.Hour)
	if err != nil {
		tp.t.Fatal(err)
	}
	return tok
}

// createTickets has clients create tickets through HAProxy until ctx ends, each retrying with its Idempotency-Key
// until it gets 201 (a refusal during a failover is retried, as a client would). It returns the tickets created.
func createTickets(ctx context.Context, base, token string, clients int, created chan<- int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("c%d-%d", c, i)
				body := `{"source":"phone","caller_name":"王五","caller_phone":"13800001111","region_code":"430903","kind":"help","category":"monitoring_help","content":"房屋漏雨 ` + key + `"}`
				for ctx.Err() == nil {
					req, _ := http.NewRequest("POST", base+"/api/v1/tickets", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Idempotency-Key", key)
					resp, err := hc.Do(req)
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					var out struct{ Ticket struct{ ID int64 } }
					json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode == 201 || resp.StatusCode == 200 {
						created <- out.Ticket.ID
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return &wg
}

// testTopologyRedisFailover: the Redis primary is SIGKILLed while tickets are created through HAProxy; the
// Sentinels promote a replica, hotline follows (go-redis failover client), and no ticket or event is lost: every
// ticket created has exactly one ticket.created event on the new primary's stream, and the outbox drains.
func testTopologyRedisFailover(t *testing.T, tp *topology) {
	agent := tp.token("agent2", org.RoleAgent, org.CodeDesk)
	db, err := pgxpool.New(context.Background(), tp.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before int // tickets of earlier drills
	db.QueryRow(context.Background(), `SELECT count(*) FROM tickets`).Scan(&before)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	createdCh := make(chan int64, 10000)
	wg := createTickets(ctx, "http://"+tp.env["HAPROXY"], agent, 3, createdCh)
	created := map[int64]bool{}
	collect := func(n int, limit time.Duration) {
		t.Helper()
		deadline := time.After(limit)
		for target := len(created) + n; len(created) < target; {
			select {
			case id := <-createdCh:
				created[id] = true
			case <-deadline:
				t.Fatalf("only %d tickets created, waiting for %d", len(created), target)
			}
		}
	}
	collect(20, 60*time.Second)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: tp.list("REDIS_SENTINELS")[0]})
	defer sentinel.Close()
	old, err := sentinel.GetMasterAddrByName(ctx, "hotline").Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	tp.kill("redis0")
	var promoted []string
	waitFor(t, "a replica promoted", func() bool {
		promoted, err = sentinel.GetMasterAddrByName(ctx, "hotline").Result()
		return err == nil && promoted[1] != old[1]
	})
	promotedAfter := time.Since(killed)
	collect(30, 60*time.Second)
	followedAfter := time.Since(killed)
	stop()
	wg.Wait()
	for len(createdCh) > 0 {
		created[<-createdCh] = true
	}

	waitFor(t, "the outbox drained", func() bool {
		var n int
		db.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n)
		return n == 0
	})
	var inDB int
	db.QueryRow(context.Background(), `SELECT count(*) FROM tickets`).Scan(&inDB)
	if inDB-before != len(created) {
		t.Errorf("%d new tickets in PostgreSQL, clients were told of %d", inDB-before, len(created))
	}
	primary := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(promoted[0], promoted[1])})
	defer primary.Close()
	msgs, err := primary.XRange(context.Background(), "hl:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	events := map[int64]int{}
	for _, m := range msgs {
		if m.Values["topic"] == "ticket.created" {
			id, _ := strconv.ParseInt(fmt.Sprint(m.Values["key"]), 10, 64)
			events[id]++
		}
	}
	for id := range created {
		if events[id] != 1 {
			t.Errorf("ticket %d: %d ticket.created events on the new primary, want 1", id, events[id])
		}
	}
	t.Logf("%d tickets; Redis primary killed → replica promoted after %v; 30 more tickets created %v after the kill",
		len(created), promotedAfter.Round(time.Millisecond), followedAfter.Round(time.Millisecond))
}

// testTopologyWebsocketOnce: consoles connected through HAProxy (round robin: one on each web node) each get a
// ticket created through one particular node exactly once — the event crosses processes through the outbox, the
// relay on the workers node and the Redis stream every node's hub reads.
func testTopologyWebsocketOnce(t *testing.T, tp *topology) {
	agent := tp.token("agent1", org.RoleAgent, org.CodeDesk)
	sup := tp.token("sup1", org.RoleSupervisor, org.CodeDesk)
	type frame struct {
		Type string
		Data map[string]any
	}
	const consoles = 3
	frames := make(chan [2]any, 100)
	for i := range consoles {
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
		ws, _, err := d.Dial("ws://"+tp.env["HAPROXY"]+"/ws", http.Header{"Authorization": {"Bearer " + sup}})
		if err != nil {
			t.Fatalf("console %d through HAProxy: %v", i, err)
		}
		defer ws.Close()
		go func() {
			for {
				var f frame
				if err := ws.ReadJSON(&f); err != nil {
					return
				}
				frames <- [2]any{i, f}
			}
		}()
	}
	// Each console's hello first: all connected before the ticket exists.
	for range consoles {
		select {
		case f := <-frames:
			if f[1].(frame).Type != "hello" {
				t.Fatalf("console %d: first frame %+v", f[0], f[1])
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a console got no hello")
		}
	}
	node := "http://" + tp.list("HTTP")[0]
	body := `{"source":"api","caller_name":"王五","caller_phone":"13800001111","region_code":"430903","kind":"consultation","category":"policy_question","content":"跨节点推送"}`
	req, _ := http.NewRequest("POST", node+"/api/v1/tickets", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+agent)
	req.Header.Set("Idempotency-Key", "ws-once")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Ticket struct{ ID int64 } }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create on node 1: %d", resp.StatusCode)
	}
	got := map[int]int{}
	deadline := time.After(20 * time.Second)
	settle := (<-chan time.Time)(nil)
	for settle == nil || len(got) < consoles {
		select {
		case f := <-frames:
			fr := f[1].(frame)
			if fr.Type == "ticket.created" && (fmt.Sprint(fr.Data["ticket_id"]) == strconv.FormatInt(out.Ticket.ID, 10) ||
				fmt.Sprint(fr.Data["id"]) == strconv.FormatInt(out.Ticket.ID, 10)) {
				got[f[0].(int)]++
				if len(got) == consoles && settle == nil {
					settle = time.After(2 * time.Second) // a double would come now
				}
			}
		case <-settle:
			settle = nil
			goto done
		case <-deadline:
			t.Fatalf("ticket %d reached %d of %d consoles: %v", out.Ticket.ID, len(got), consoles, got)
		}
	}
done:
	for c, n := range got {
		if n != 1 {
			t.Errorf("console %d got the ticket %d times", c, n)
		}
	}
}

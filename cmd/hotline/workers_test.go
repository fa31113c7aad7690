package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// TestWorkersInThreeProcessesFireOnce: three `hotline serve` processes with the workers role (outbox relay, SLA
// sweeper every 200 ms) on one PostgreSQL and Redis. Tickets are created through all three; then every clock is
// put past its deadline. Each ticket.created and each sla.red event reaches the stream exactly once, and the
// outbox drains (issue 16: background work that must run once is safe with any number of processes).
func TestWorkersInThreeProcessesFireOnce(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	rdb, prefix := testenv.Redis(t)
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := org.SeedUnits(ctx, db); err != nil {
		t.Fatal(err)
	}
	u, err := org.UnitByCode(ctx, db, org.CodeDesk)
	if err != nil {
		t.Fatal(err)
	}
	usr, err := org.CreateUser(ctx, db, org.NewUser{Username: "agent1", DisplayName: "agent1", Password: "password1", Role: org.RoleAgent, UnitID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	token, err := org.CreateToken(ctx, db, usr.ID, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var bases []string
	var procs []*proc
	for range 3 {
		http := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + dbURL, "HOTLINE_REDIS_URL=" + testenv.RedisURL(t),
			"HOTLINE_REDIS_PREFIX=" + prefix, "HOTLINE_HTTP_ADDR=" + http, "HOTLINE_SIP_LISTEN=", "HOTLINE_ROLES=web,workers",
			"HOTLINE_DATA_DIR=" + testenv.TempDir(t), "HOTLINE_DIALER_CALLBACK=false", "HOTLINE_DB_MAX_CONNS=6",
			"HOTLINE_SLA_SWEEP_INTERVAL=200ms", "HOTLINE_OUTBOX_POLL=50ms",
			"HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}, "serve")
		waitReady(t, p, "http://"+http)
		bases, procs = append(bases, "http://"+http), append(procs, p)
	}
	const n = 30
	hc := http.Client{Timeout: 10 * time.Second}
	for i := range n {
		body := `{"source":"api","caller_name":"王五","caller_phone":"13800001111","region_code":"430903","kind":"consultation","category":"policy_question","content":"政策咨询 ` + strconv.Itoa(i) + `","dispatch":true}`
		for try := 0; ; try++ {
			req, _ := http.NewRequest("POST", bases[i%3]+"/api/v1/tickets", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", fmt.Sprintf("t%d", i))
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 201 {
					break
				}
			}
			if try > 20 {
				t.Fatalf("ticket %d: %v %v", i, err, resp)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	tag, err := db.Exec(ctx, `UPDATE tickets SET yellow_at = now() - interval '1 minute', due_at = now() - interval '1 second' WHERE due_at IS NOT NULL`)
	if err != nil || tag.RowsAffected() != n {
		t.Fatalf("clocks past due: %d tickets with a clock, want %d (%v)", tag.RowsAffected(), n, err)
	}
	count := func() (created, red map[string]int) {
		created, red = map[string]int{}, map[string]int{}
		msgs, err := rdb.XRange(ctx, ticketing.EventsKey(prefix), "-", "+").Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			switch m.Values["topic"] {
			case "ticket.created":
				created[fmt.Sprint(m.Values["key"])]++
			case "sla.red":
				red[fmt.Sprint(m.Values["key"])]++
			}
		}
		return created, red
	}
	waitFor(t, "every ticket's events published", func() bool {
		var backlog int
		db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&backlog)
		c, r := count()
		return backlog == 0 && len(c) == n && len(r) == n
	})
	time.Sleep(time.Second) // more sweeps and relay rounds in all three: still nothing doubled
	created, red := count()
	for k, v := range created {
		if v != 1 {
			t.Errorf("ticket %s: ticket.created published %d times", k, v)
		}
	}
	for k, v := range red {
		if v != 1 {
			t.Errorf("ticket %s: sla.red published %d times", k, v)
		}
	}
	var alerts int
	db.QueryRow(ctx, `SELECT count(*) FROM sla_alerts`).Scan(&alerts)
	if alerts != n {
		t.Errorf("%d SLA alerts recorded, want %d", alerts, n)
	}
	for i, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Errorf("process %d: exit %d after SIGTERM:\n%s", i+1, code, p.out.String())
		}
	}
}

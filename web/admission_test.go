package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/ticketing/org"
)

// With the write class full, another write is refused at once with 503, Retry-After and a JSON code, while
// reads and /readyz are still served; the held writes then complete.
func TestAdmissionShedsWritesKeepsReads(t *testing.T) {
	f := newAPIWith(t, Limits{Writes: 2, Reads: 8, Health: 4})
	agent := f.user("agent1", org.RoleAgent, "desk")
	ctx := context.Background()
	// Hold ticket inserts: a transaction of the test's own, on a connection of its own, locks the table.
	other, err := pgxpool.New(ctx, f.db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE tickets IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	body := `{"source":"phone","caller_name":"王五","caller_phone":"13800001111","region_code":"430903","kind":"help","category":"monitoring_help","content":"房屋漏雨"}`
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/tickets", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+agent)
		return http.DefaultClient.Do(req)
	}
	held := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := post()
			if err != nil {
				held <- -1
				return
			}
			resp.Body.Close()
			held <- resp.StatusCode
		}()
	}
	// Wait until both writes are in flight (blocked on the lock).
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		f.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting)
		if waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes waiting on the lock, want 2", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := post()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e apiError
	json.Unmarshal(raw, &e)
	if resp.StatusCode != 503 || e.Code != "overloaded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third write: %d %s Retry-After %q; want 503 overloaded with Retry-After", resp.StatusCode, raw, resp.Header.Get("Retry-After"))
	}
	if code := f.call(agent, "GET", "/api/v1/units", nil, nil, nil); code != 200 {
		t.Fatalf("a read while writes are shed: %d", code)
	}
	if code := f.call("", "GET", "/readyz", nil, nil, nil); code != 200 {
		t.Fatalf("/readyz while writes are shed: %d", code)
	}
	lock.Rollback(ctx)
	for range 2 {
		if code := <-held; code != 201 {
			t.Fatalf("held write: %d, want 201", code)
		}
	}
	if code := f.call(agent, "POST", "/api/v1/tickets", body, nil, nil); code != 201 {
		t.Fatalf("write after the burst: %d", code)
	}
}

// A database that cannot be reached gives a retryable 503 with its code, not a 500.
func TestUnreachableDatabaseIs503(t *testing.T) {
	db, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://nobody@127.0.0.1:%d/x?connect_timeout=1", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(New(Deps{DB: db}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/units", nil)
	req.Header.Set("Authorization", "Bearer some-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 503 || e.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v Retry-After %q; want 503 unavailable with Retry-After", resp.StatusCode, e, resp.Header.Get("Retry-After"))
	}
}

// While the process shuts down, /readyz says so before anything stops.
func TestReadyzWhileDraining(t *testing.T) {
	f := newAPI(t)
	_ = f
	draining := true
	h := New(Deps{DB: f.db, Redis: f.rdb, Draining: func() bool { return draining }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Fatalf("readyz while draining: %d %s", rec.Code, rec.Body)
	}
}

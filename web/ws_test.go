package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/notify/hub"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// TestWebsocketEndpoint: /ws takes the session cookie (or a bearer token), refuses a page from another origin
// and a request without credentials, and streams the events the user may see.
func TestWebsocketEndpoint(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	h := hub.New(rdb, hub.Options{Prefix: prefix, Tickets: ticketing.NewService(db, ticketing.Options{})})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	<-h.Ready()
	s := newServer(Deps{DB: db, Redis: rdb, RedisPrefix: prefix, Hub: h})
	srv := httptest.NewServer(s.handler)
	defer srv.Close()
	unit, _ := org.UnitByCode(ctx, db, "430903")
	usr, err := org.CreateUser(ctx, db, org.NewUser{Username: "heshan1", DisplayName: "刘洋", Password: "password1", Role: org.RoleStaff, UnitID: unit.ID})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/api/v1/session", "application/json", strings.NewReader(`{"username":"heshan1","password":"password1"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in: %v %v", err, resp)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			cookie = c.Value
		}
	}
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	dial := func(hdr http.Header) (*websocket.Conn, int) {
		ws, resp, err := websocket.DefaultDialer.Dial(wsURL, hdr)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { ws.Close() })
		return ws, 101
	}
	withCookie := func(origin string) http.Header {
		h := http.Header{"Cookie": {SessionCookie + "=" + cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	if _, code := dial(nil); code != 401 {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if _, code := dial(withCookie("http://evil.example")); code != 403 {
		t.Errorf("foreign origin: %d, want 403", code)
	}
	ws, code := dial(withCookie(srv.URL)) // the page's own origin
	if code != 101 {
		t.Fatalf("same origin: %d", code)
	}
	tok, _ := org.CreateToken(ctx, db, usr.ID, "test", 0)
	if _, code := dial(http.Header{"Authorization": {"Bearer " + tok}}); code != 101 {
		t.Errorf("bearer: %d", code)
	}

	read := func() map[string]any {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); m["type"] != "hello" {
		t.Fatalf("first frame %v", m)
	}
	add := func(lead org.UnitID) string {
		b, _ := json.Marshal(map[string]any{"ticket_id": 1, "lead_unit_id": lead, "co_unit_ids": []int{}})
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ticketing.EventsKey(prefix), Values: []any{"topic", "ticket.dispatch", "key", "1", "payload", string(b)}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	add(unit.ID + 1000) // another unit's: not for this user
	mine := add(unit.ID)
	if m := read(); m["id"] != mine || m["type"] != "ticket.dispatch" {
		t.Fatalf("got %v, want %s", m, mine)
	}

	// Configured origins replace the same-host rule.
	s2 := newServer(Deps{DB: db, Redis: rdb, RedisPrefix: prefix, Hub: h, Sessions: SessionConfig{ConsoleOrigins: []string{"https://hotline.example.gov.cn"}}})
	srv2 := httptest.NewServer(s2.handler)
	defer srv2.Close()
	wsURL = "ws" + strings.TrimPrefix(srv2.URL, "http") + "/ws"
	if _, code := dial(withCookie(srv2.URL)); code != 403 {
		t.Errorf("own host, not configured: %d, want 403", code)
	}
	if _, code := dial(withCookie("https://hotline.example.gov.cn")); code != 101 {
		t.Errorf("configured origin: %d", code)
	}
}

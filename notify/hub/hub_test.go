package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The demo roles, as actors (unit 10 is a county bureau, 20 another, 1 the dispatch desk).
var (
	admin      = org.Actor{UserID: 1, Username: "admin", Role: org.RoleAdmin, UnitID: 100}
	agent1     = org.Actor{UserID: 2, Username: "agent1", Role: org.RoleAgent, UnitID: 1}
	agent2     = org.Actor{UserID: 3, Username: "agent2", Role: org.RoleAgent, UnitID: 1}
	dispatch1  = org.Actor{UserID: 4, Username: "dispatch1", Role: org.RoleDispatcher, UnitID: 1}
	heshan1    = org.Actor{UserID: 5, Username: "heshan1", Role: org.RoleStaff, UnitID: 10}
	heshanhead = org.Actor{UserID: 6, Username: "heshanhead", Role: org.RoleHead, UnitID: 10}
	monitor1   = org.Actor{UserID: 7, Username: "monitor1", Role: org.RoleStaff, UnitID: 20}
	super1     = org.Actor{UserID: 8, Username: "super1", Role: org.RoleSupervisor, UnitID: 30}
	campaign1  = org.Actor{UserID: 9, Username: "campaign1", Role: org.RoleCampaignManager, UnitID: 20}
	demoActors = []org.Actor{admin, agent1, agent2, dispatch1, heshan1, heshanhead, monitor1, super1, campaign1}
)

type env struct {
	t      *testing.T
	rdb    *redis.Client
	prefix string
}

func newEnv(t *testing.T) *env {
	rdb, prefix := testenv.Redis(t)
	return &env{t: t, rdb: rdb, prefix: prefix}
}

// startHub runs a hub (one process's worth) behind a test server whose handler takes the actor from ?as=.
func (e *env) startHub(opt Options) (*Hub, string) {
	e.t.Helper()
	opt.Prefix = e.prefix
	if opt.Tickets == nil {
		// The ticket service's read rule, on a database of its own (the rule looks up the desk and the
		// discipline-inspection unit).
		opt.Tickets = ticketing.NewService(testenv.DB(e.t), ticketing.Options{})
	}
	h := New(e.rdb, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("as")
		for _, a := range demoActors {
			if a.Username == name {
				h.ServeWS(w, r, a, r.URL.Query().Get("last_id"))
				return
			}
		}
		http.Error(w, "who?", 401)
	}))
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("hub run: %v", err)
		}
		srv.Close()
	})
	<-h.Ready()
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// publish adds an event to the stream as the outbox relay does.
func (e *env) publish(topic, key string, payload any) string {
	e.t.Helper()
	b, _ := json.Marshal(payload)
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: ticketing.EventsKey(e.prefix),
		Values: []any{"topic", topic, "key", key, "payload", string(b)}}).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

type frame struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	LastID string          `json:"last_id"`
	Data   json.RawMessage `json:"data"`
}

type client struct {
	t    *testing.T
	ws   *websocket.Conn
	last string // last_id of hello
}

func dial(t *testing.T, url, as, lastID string) *client {
	t.Helper()
	u := url + "/?as=" + as
	if lastID != "" {
		u += "&last_id=" + lastID
	}
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial as %s: %v", as, err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t: t, ws: ws}
	f := c.next()
	if f.Type != "hello" || f.LastID == "" {
		t.Fatalf("first frame %+v, want hello", f)
	}
	c.last = f.LastID
	return c
}

// next reads one frame (failing the test after 10 s: a missing event, not a timing assertion).
func (c *client) next() frame {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(msg, &f); err != nil {
		c.t.Fatalf("frame %s: %v", msg, err)
	}
	return f
}

// ticketPayload is the part of a ticket event's payload that decides who sees it.
func ticketPayload(lead int64, co ...int64) map[string]any {
	if co == nil {
		co = []int64{}
	}
	return map[string]any{"ticket_id": 1, "number": "T1", "lead_unit_id": lead, "co_unit_ids": co, "confidential": false}
}

func confidential(p map[string]any) map[string]any {
	p["confidential"], p["kind"] = true, "report"
	return p
}

func monitoringHelp(p map[string]any) map[string]any {
	p["kind"], p["category"] = "help", ticketing.CategoryMonitoringHelp
	return p
}

// TestEventMatrix: every event topic × every demo role, delivered or not, through real connections: each
// role's console receives exactly the events whose row names it, in stream order, and nothing else.
func TestEventMatrix(t *testing.T) {
	e := newEnv(t)
	_, url := e.startHub(Options{})
	type ev struct {
		topic   string
		payload any
		to      string // usernames that receive it
	}
	allTickets := "admin agent1 agent2 dispatch1 super1" // the roles that see every ordinary ticket
	events := []ev{
		{"ticket.created", ticketPayload(10), allTickets + " heshan1 heshanhead"},
		{"ticket.dispatch", ticketPayload(20), allTickets + " monitor1"},
		{"ticket.sign", ticketPayload(20, 10), allTickets + " monitor1 heshan1 heshanhead"},
		{"ticket.merged_from", ticketPayload(1), allTickets},
		// A confidential report reaches its own unit, supervisors and admins only; a monitoring ticket reaches
		// the campaign managers too (the ticket API's read rule).
		{"ticket.created", confidential(ticketPayload(10)), "admin super1 heshan1 heshanhead"},
		{"ticket.created", monitoringHelp(ticketPayload(10)), allTickets + " campaign1 heshan1 heshanhead"},
		{"sla.yellow", ticketPayload(10), "admin dispatch1 super1 heshan1 heshanhead"},
		{"sla.red", ticketPayload(1, 20), "admin dispatch1 super1 agent1 agent2 monitor1 campaign1"},
		{"call.screen_pop", map[string]any{"call_id": 5, "agent_id": agent1.UserID, "caller": "138****5678"}, "admin super1 heshanhead agent1"},
		{"call.ended", map[string]any{"call_id": 5, "agent_id": agent2.UserID, "caller": "138****5678"}, "admin super1 heshanhead agent2"},
		{"call.ended", map[string]any{"call_id": 6, "caller": "138****5678"}, "admin super1 heshanhead"},
		{"agent.state", map[string]any{"user_id": agent1.UserID, "state": "ready"}, "admin super1 heshanhead agent1"},
		{"callback.changed", map[string]any{"id": 3, "caller": "138****5678"}, "admin super1 heshanhead agent1 agent2"},
		{"callback.manual", map[string]any{"ticket_id": 3}, "admin super1 heshanhead agent1 agent2"},
		{"campaign.progress", map[string]any{"campaign_id": 1}, "admin super1 campaign1"},
		{"household.changed", map[string]any{"household_id": 1}, "admin super1"},
	}
	// Every ticket action is a topic too; each must follow the ticket read rule.
	for _, act := range ticketing.Actions {
		events = append(events, ev{"ticket." + string(act), ticketPayload(10), allTickets + " heshan1 heshanhead"})
	}
	clients := map[string]*client{}
	for _, a := range demoActors {
		clients[a.Username] = dial(t, url, a.Username, "")
	}
	want := map[string][]string{}
	for _, x := range events {
		id := e.publish(x.topic, "k", x.payload)
		for _, u := range strings.Fields(x.to) {
			want[u] = append(want[u], x.topic+"@"+id)
		}
	}
	// End of the batch: one marker per demo user, led by that user's unit; a console has read everything
	// meant for it once it has seen every marker it may see.
	for _, a := range demoActors {
		e.publish("ticket.end_marker", "end", monitoringHelp(ticketPayload(int64(a.UnitID))))
	}
	for _, a := range demoActors {
		c := clients[a.Username]
		var got []string
		ends := 0
		expectEnds := 0
		for _, b := range demoActors {
			if a.Role != org.RoleStaff && a.Role != org.RoleHead || a.UnitID == b.UnitID {
				expectEnds++
			}
		}
		for ends < expectEnds {
			f := c.next()
			if f.Type == "ticket.end_marker" {
				ends++
				continue
			}
			got = append(got, f.Type+"@"+f.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[a.Username]) {
			t.Errorf("%s (%s) received\n  %v\nwant\n  %v", a.Username, a.Role, got, want[a.Username])
		}
	}
}

// TestPing: a client's {"type":"ping"} is answered with {"type":"pong"}.
func TestPing(t *testing.T) {
	e := newEnv(t)
	_, url := e.startHub(Options{})
	c := dial(t, url, "agent1", "")
	c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("got %+v, want pong", f)
	}
}

// TestSlowClientDropped: a console that never reads is disconnected when its queue is full, while another
// keeps receiving every event, in order.
func TestSlowClientDropped(t *testing.T) {
	e := newEnv(t)
	h, url := e.startHub(Options{SendQueue: 64})
	// The slow client reads nothing after hello and keeps a small receive buffer, so the server's writes to it
	// soon block and its queue fills.
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	slow, _, err := d.Dial(url+"/?as=super1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := dial(t, url, "admin", "")
	big := strings.Repeat("x", 64<<10)
	sent := 0
	for round := 0; round < 400 && h.connections() == 2; round++ {
		var ids []string
		for i := 0; i < 16; i++ {
			ids = append(ids, e.publish("ticket.note", "k", map[string]any{"lead_unit_id": 10, "pad": big}))
		}
		for _, id := range ids {
			if f := fast.next(); f.ID != id {
				t.Fatalf("fast client got %s, want %s", f.ID, id)
			}
		}
		sent += len(ids)
	}
	if h.connections() != 1 {
		t.Fatalf("slow client still connected after %d events of 64 KiB", sent)
	}
	// The fast one still receives.
	id := e.publish("ticket.note", "k", ticketPayload(10))
	if f := fast.next(); f.ID != id {
		t.Fatalf("after the drop: %s, want %s", f.ID, id)
	}
}

// TestTwoHubs: two processes' hubs on one Redis: an event produced once reaches a console connected to the
// other hub exactly once, and consoles of both hubs get it.
func TestTwoHubs(t *testing.T) {
	e := newEnv(t)
	_, urlA := e.startHub(Options{})
	_, urlB := e.startHub(Options{})
	onA, onB := dial(t, urlA, "heshan1", ""), dial(t, urlB, "heshan1", "")
	first := e.publish("ticket.dispatch", "1", ticketPayload(10))
	second := e.publish("ticket.sign", "1", ticketPayload(10))
	for name, c := range map[string]*client{"hub A": onA, "hub B": onB} {
		if f := c.next(); f.ID != first || f.Type != "ticket.dispatch" {
			t.Fatalf("%s: %+v, want %s", name, f, first)
		}
		if f := c.next(); f.ID != second { // not the first one again
			t.Fatalf("%s: second frame %+v, want %s", name, f, second)
		}
	}
}

// TestResume: a console reconnecting with the last id it saw gets exactly what it missed, then live events;
// one whose last id is older than the stream keeps gets "reload".
func TestResume(t *testing.T) {
	e := newEnv(t)
	_, url := e.startHub(Options{MaxReplay: 50})
	c := dial(t, url, "heshan1", "")
	e1 := e.publish("ticket.dispatch", "1", ticketPayload(10))
	if f := c.next(); f.ID != e1 {
		t.Fatalf("live: %+v", f)
	}
	c.ws.Close()
	// Missed while away: two of its unit's events and one of another unit (not for it).
	e2 := e.publish("ticket.sign", "1", ticketPayload(10))
	e.publish("ticket.sign", "2", ticketPayload(20))
	e3 := e.publish("ticket.reply", "1", ticketPayload(20, 10))

	c = dial(t, url, "heshan1", e1)
	for _, want := range []string{e2, e3} {
		if f := c.next(); f.ID != want {
			t.Fatalf("resume: got %+v, want %s", f, want)
		}
	}
	e4 := e.publish("ticket.close", "1", ticketPayload(10))
	if f := c.next(); f.ID != e4 {
		t.Fatalf("live after resume: %+v, want %s (nothing doubled)", f, e4)
	}

	// Too old: the stream was trimmed past the client's last id.
	old := e4
	for i := 0; i < 20; i++ {
		e.publish("ticket.note", "1", ticketPayload(10))
	}
	e.rdb.XTrimMaxLen(context.Background(), ticketing.EventsKey(e.prefix), 5)
	c = dial(t, url, "heshan1", old)
	if f := c.next(); f.Type != "reload" {
		t.Fatalf("after trim: %+v, want reload", f)
	}
	e5 := e.publish("ticket.close", "1", ticketPayload(10))
	if f := c.next(); f.ID != e5 {
		t.Fatalf("live after reload: %+v", f)
	}
	// More missing than MaxReplay: reload too. A bogus id: reload.
	for _, last := range []string{"1-0", "not-an-id", strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10) + "-0"} {
		c = dial(t, url, "heshan1", last)
		if f := c.next(); f.Type != "reload" {
			t.Fatalf("last_id %s: %+v, want reload", last, f)
		}
	}
}

// TestShutdownClosesConnections: when Run's ctx ends, clients get a close frame and Run returns.
func TestShutdownClosesConnections(t *testing.T) {
	e := newEnv(t)
	h := New(e.rdb, Options{Prefix: e.prefix})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeWS(w, r, admin, "") }))
	defer srv.Close()
	<-h.Ready()
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), "admin", "")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("read after shutdown: %v, want close 1001", err)
	}
	// Run returned only after every connection goroutine ended. A goroutine whose deferred wg.Done has run can
	// still show in a stack dump for a moment, runnable at its own closing brace, before the scheduler retires
	// it. One that Run did not wait for is somewhere below: in a write, a select, a read. So a connection
	// goroutine may be left only with its own function as the top frame.
	if h.connections() != 0 {
		t.Fatalf("%d connections registered after Run returned", h.connections())
	}
	buf := make([]byte, 1<<20)
	st := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(st, "\n\n") {
		if !strings.Contains(g, "hub.(*conn)") {
			continue
		}
		if lines := strings.Split(g, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[1], "hotline/notify/hub.(*conn).") {
			t.Fatalf("connection goroutine still working after Run returned:\n%s", g)
		}
	}
}

// TestTicketEventsFromTheRelay: events as ticketing writes them and the outbox relay publishes them carry what
// the scope rule reads (units, confidential flag) and not the caller: the lead unit's clerk gets the new ticket,
// the clerk of another unit does not.
func TestTicketEventsFromTheRelay(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	e := newEnv(t)
	svc := ticketing.NewService(db, ticketing.Options{})
	h := New(e.rdb, Options{Prefix: e.prefix, Tickets: svc})
	hctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.Run(hctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	<-h.Ready()
	// A confidential report (举报): its outbox rows wait in PostgreSQL until the relay below publishes them.
	tk, err := svc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "匿名",
		CallerPhone: "13807371234", RegionCode: "430903", Kind: ticketing.KindReport, Category: "funds_assets",
		Content: "项目资金没有公示", Confidential: true, Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	county, err := org.UnitByCode(ctx, db, "430903")
	if err != nil {
		t.Fatal(err)
	}
	if county.ID == tk.LeadUnitID {
		t.Fatal("the report was routed to the county bureau; the test needs another unit")
	}
	actors := map[string]org.Actor{
		"clerk": {UserID: 1, Username: "clerk", Role: org.RoleStaff, UnitID: tk.LeadUnitID},
		"other": {UserID: 2, Username: "other", Role: org.RoleStaff, UnitID: county.ID},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, actors[r.URL.Query().Get("as")], "")
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	clerk, other := dial(t, url, "clerk", ""), dial(t, url, "other", "")
	if _, err := ticketing.NewRelay(db, e.rdb, ticketing.RelayOptions{Prefix: e.prefix}).PublishOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f := clerk.next()
	var data struct {
		TicketID     int64        `json:"ticket_id"`
		LeadUnitID   org.UnitID   `json:"lead_unit_id"`
		Confidential bool         `json:"confidential"`
		CoUnitIDs    []org.UnitID `json:"co_unit_ids"`
	}
	json.Unmarshal(f.Data, &data)
	if !strings.HasPrefix(f.Type, "ticket.") || data.TicketID != int64(tk.ID) || data.LeadUnitID != tk.LeadUnitID || !data.Confidential {
		t.Fatalf("clerk got %s %s", f.Type, f.Data)
	}
	if strings.Contains(string(f.Data), "13807371234") || strings.Contains(string(f.Data), "匿名") {
		t.Fatalf("ticket event carries the caller: %s", f.Data)
	}
	marker := e.publish("ticket.marker", "m", ticketPayload(int64(actors["other"].UnitID)))
	if f := other.next(); f.ID != marker {
		t.Fatalf("the other unit's clerk got %s %s before the marker", f.Type, f.Data)
	}
}

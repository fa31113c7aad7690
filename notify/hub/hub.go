// Package hub is the websocket hub of the consoles: one Redis event-stream consumer per process (Run) fans the
// events of `<prefix>events` out to the websocket connections of this process, each connection receiving only
// what its user may see (scope.go asks the owning domain's rule for every event).
//
// How it runs: Run reads the stream with XREAD from the newest entry at start, so every process sees every
// event once and delivers it to its own connections; an event made in any process reaches a console connected
// to any other. ServeWS upgrades one request; each connection has one reader (the handler's goroutine) and one
// writer goroutine and a bounded send queue. Delivery never waits: a connection whose queue is full is closed
// (the page reconnects and resumes), so a slow client never slows the others. When Run's ctx ends, every
// connection is sent a close frame and Run returns once their goroutines have ended.
//
// Resume: every event frame carries its stream id. A page reconnecting with ?last_id gets the entries after it
// (XRANGE), then the live ones, with nothing doubled or skipped; when the stream no longer holds what follows
// last_id (trimmed, flushed) or too much is missing, it gets {"type":"reload"} and reloads its data instead.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// Options configure the hub; zero values take the defaults.
type Options struct {
	Prefix       string        // Redis key prefix; the stream is ticketing.EventsKey(Prefix)
	Log          *slog.Logger  //
	SendQueue    int           // frames waiting per connection before it counts as slow; default 256
	ReadLimit    int64         // largest client message; default 4096 bytes
	PingInterval time.Duration // server pings this often; default 30s
	PongWait     time.Duration // a connection silent this long (no pong, no message) is closed; default 75s
	WriteWait    time.Duration // the longest one write may take; default 10s
	MaxReplay    int64         // most events replayed on resume; more missing → reload; default 1000
	Block        time.Duration // XREAD block time (bounds how long Run takes to notice its ctx end); default 500ms
	Tickets      TicketRule    // who may read a ticket (ticketing.Service); nil: ticket events reach supervisors and admins only
}

// Hub fans the event stream out to websocket connections. Build it with New, run Run, serve with ServeWS.
type Hub struct {
	rdb      *redis.Client
	key      string
	opt      Options
	log      *slog.Logger
	upgrader websocket.Upgrader

	ready     chan struct{} // closed once Run knows where it reads from
	readyOnce sync.Once

	mu     sync.RWMutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // connection goroutines

	connsGauge prometheus.Gauge
	delivered  prometheus.Counter
	dropped    prometheus.Counter
}

// New returns a hub; call Run to start its consumer.
func New(rdb *redis.Client, opt Options) *Hub {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.SendQueue <= 0 {
		opt.SendQueue = 256
	}
	if opt.ReadLimit <= 0 {
		opt.ReadLimit = 4096
	}
	if opt.PingInterval <= 0 {
		opt.PingInterval = 30 * time.Second
	}
	if opt.PongWait <= 0 {
		opt.PongWait = 75 * time.Second
	}
	if opt.WriteWait <= 0 {
		opt.WriteWait = 10 * time.Second
	}
	if opt.MaxReplay <= 0 {
		opt.MaxReplay = 1000
	}
	if opt.Block <= 0 {
		opt.Block = 500 * time.Millisecond
	}
	h := &Hub{rdb: rdb, key: ticketing.EventsKey(opt.Prefix), opt: opt, log: opt.Log, ready: make(chan struct{}),
		conns:      map[*conn]struct{}{},
		connsGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hotline_ws_connections", Help: "Open console websockets in this process."}),
		delivered:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_ws_events_delivered_total", Help: "Event frames queued to console websockets."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_ws_slow_dropped_total", Help: "Console websockets closed because they did not keep up."}),
	}
	h.upgrader = websocket.Upgrader{
		// Small read buffer (clients send only pings); writes borrow pooled buffers, so an idle connection
		// holds no write buffer.
		ReadBufferSize:  512,
		WriteBufferSize: 2048,
		WriteBufferPool: &sync.Pool{},
		// The web layer checks Origin against the configured console origins before it hands the request over.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// Collectors returns the hub's metrics.
func (h *Hub) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.connsGauge, h.delivered, h.dropped}
}

// connections is the number of open connections.
func (h *Hub) connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// Ready is closed once Run reads the stream: an event added after that reaches every connection.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Run consumes the event stream until ctx ends, then closes every connection and waits for their goroutines.
func (h *Hub) Run(ctx context.Context) error {
	defer h.shutdown()
	last := ""
	for last == "" {
		id, err := h.newest(ctx)
		if err == nil {
			last = id
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		h.log.Warn("hub: cannot read the event stream; retrying", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	h.readyOnce.Do(func() { close(h.ready) })
	for {
		res, err := h.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{h.key, last}, Count: 512, Block: h.opt.Block}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			h.log.Warn("hub: reading the event stream failed; retrying", "err", err, "after", last)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				h.dispatch(newEvent(m))
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// newest returns the id of the newest entry of the stream, "0-0" when it is empty.
func (h *Hub) newest(ctx context.Context) (string, error) {
	ms, err := h.rdb.XRevRangeN(ctx, h.key, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("newest event: %w", err)
	}
	if len(ms) == 0 {
		return "0-0", nil
	}
	return ms[0].ID, nil
}

func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		c.close(false)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// dispatch queues an event to every connection whose user may see it. It never blocks.
func (h *Hub) dispatch(ev *Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		if Visible(context.Background(), c.actor, ev, h.opt.Tickets) {
			c.deliver(ev)
		}
	}
}

// Event is one entry of the stream as the hub carries it.
type Event struct {
	ID    string
	Topic string
	Key   string
	Data  json.RawMessage
	scope scope
	frame []byte                     // the message sent to clients, encoded once for all of them
	msg   *websocket.PreparedMessage // ... and framed once for all of them
}

func (ev *Event) prepare() *Event {
	ev.msg, _ = websocket.NewPreparedMessage(websocket.TextMessage, ev.frame)
	return ev
}

func newEvent(m redis.XMessage) *Event {
	ev := &Event{ID: m.ID}
	ev.Topic, _ = m.Values["topic"].(string)
	ev.Key, _ = m.Values["key"].(string)
	payload, _ := m.Values["payload"].(string)
	if !json.Valid([]byte(payload)) {
		payload = "null"
	}
	ev.Data = json.RawMessage(payload)
	json.Unmarshal(ev.Data, &ev.scope)
	ev.frame, _ = json.Marshal(struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}{ev.ID, ev.Topic, ev.Data})
	return ev.prepare()
}

// control frames of the hub itself
func controlFrame(v any) *Event {
	b, _ := json.Marshal(v)
	return (&Event{frame: b}).prepare()
}

var pongFrame = controlFrame(map[string]string{"type": "pong"})

// ServeWS upgrades the request to a websocket for actor and streams events after lastID ("" = from now on).
// The request is already authenticated and origin-checked. It returns once the connection is set up; the
// connection's reader and writer goroutines belong to the hub (Run waits for them).
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, actor org.Actor, lastID string) {
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	select {
	case <-h.ready:
	case <-r.Context().Done():
		return
	case <-wait.C:
		http.Error(w, `{"code":"unavailable","message":"event stream not ready"}`, http.StatusServiceUnavailable)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{h: h, ws: ws, actor: actor, send: make(chan *Event, h.opt.SendQueue), done: make(chan struct{})}
	c.replaying.Store(true)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(2)
	h.mu.Unlock()
	h.connsGauge.Inc()
	go c.writer()
	end := func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.connsGauge.Dec()
		c.close(true)
		h.wg.Done()
	}
	if err := c.resume(r.Context(), lastID); err != nil {
		h.log.Warn("hub: resume failed", "err", err, "user_id", actor.UserID)
		end()
		return
	}
	// The reader runs on a goroutine of its own so this one — the HTTP server's, whose stack grew through the
	// handshake, authentication and resume — ends now: an idle connection then holds two small stacks.
	go func() {
		defer end()
		c.reader()
	}()
}

// conn is one websocket. Events reach it through deliver (the dispatcher's goroutine, never blocking) into
// send; the writer goroutine writes them. Until resume has replayed what the client missed, live events wait
// in pending, and after is the newest id the client has been given, so nothing is sent twice.
type conn struct {
	h     *Hub
	ws    *websocket.Conn
	actor org.Actor
	send  chan *Event

	done      chan struct{}
	closeOnce sync.Once

	replaying atomic.Bool
	mu        sync.Mutex // guards pending and, while replaying, after
	pending   []*Event
	overflow  bool
	after     streamID
}

func (c *conn) deliver(ev *Event) {
	if c.replaying.Load() {
		c.mu.Lock()
		if c.replaying.Load() {
			if int64(len(c.pending)) >= c.h.opt.MaxReplay {
				c.overflow = true
			} else {
				c.pending = append(c.pending, ev)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	id, ok := parseID(ev.ID)
	if !ok || !c.after.less(id) {
		return
	}
	c.after = id
	c.push(ev)
}

// push queues a frame, or closes a connection that has not kept up: the hub never waits for one client.
func (c *conn) push(ev *Event) {
	select {
	case c.send <- ev:
		c.h.delivered.Inc()
	default:
		c.h.dropped.Inc()
		c.h.log.Info("hub: closing a websocket that does not keep up", "user_id", c.actor.UserID, "queue", cap(c.send))
		c.close(true)
	}
}

// close ends the connection once: at once (slow client, reader gone), or after a close frame (shutdown).
func (c *conn) close(now bool) {
	c.closeOnce.Do(func() {
		close(c.done)
		if now {
			c.ws.NetConn().Close()
		}
	})
}

// resume sends hello, then what the client missed after lastID, then lets live events through.
func (c *conn) resume(ctx context.Context, lastID string) error {
	newest, err := c.h.newest(ctx)
	if err != nil {
		return err
	}
	c.push(controlFrame(map[string]string{"type": "hello", "last_id": newest}))
	top, _ := parseID(newest)
	var replay []*Event
	reload := false
	if lastID != "" {
		from, ok := parseID(lastID)
		switch {
		case !ok || top.less(from):
			reload = true // not an id of this stream
		case from.less(top):
			first, err := c.h.rdb.XRangeN(ctx, c.h.key, "-", "+", 1).Result()
			if err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			if len(first) == 0 {
				reload = true // the stream went away meanwhile (flushed)
				break
			}
			oldest, _ := parseID(first[0].ID)
			if from.less(oldest) && from.next().less(oldest) {
				reload = true // entries after lastID were trimmed
				break
			}
			ms, err := c.h.rdb.XRangeN(ctx, c.h.key, "("+lastID, newest, c.h.opt.MaxReplay+1).Result()
			if err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			if int64(len(ms)) > c.h.opt.MaxReplay {
				reload = true
				break
			}
			for _, m := range ms {
				if ev := newEvent(m); Visible(ctx, c.actor, ev, c.h.opt.Tickets) {
					replay = append(replay, ev)
				}
			}
		}
	}
	if reload {
		c.push(controlFrame(map[string]string{"type": "reload"}))
	}
	for _, ev := range replay {
		c.push(ev)
	}
	c.mu.Lock()
	c.after = top
	if c.overflow {
		c.push(controlFrame(map[string]string{"type": "reload"}))
	}
	for _, ev := range c.pending {
		if id, ok := parseID(ev.ID); ok && c.after.less(id) {
			c.after = id
			c.push(ev)
		}
	}
	c.pending = nil
	c.replaying.Store(false)
	c.mu.Unlock()
	return nil
}

// reader reads the client's messages: {"type":"ping"} is answered with {"type":"pong"}; any message or pong
// keeps the connection alive; silence for PongWait, a message over ReadLimit or a read error ends it.
func (c *conn) reader() {
	c.ws.SetReadLimit(c.h.opt.ReadLimit)
	alive := func() { c.ws.SetReadDeadline(time.Now().Add(c.h.opt.PongWait)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		alive()
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(msg, &m) == nil && m.Type == "ping" {
			c.push(pongFrame)
		}
	}
}

// writer writes queued frames and pings until the connection is closed.
func (c *conn) writer() {
	defer c.h.wg.Done()
	defer c.ws.Close()
	ping := time.NewTicker(c.h.opt.PingInterval)
	defer ping.Stop()
	for {
		select {
		case ev := <-c.send:
			c.ws.SetWriteDeadline(time.Now().Add(c.h.opt.WriteWait))
			if err := c.ws.WritePreparedMessage(ev.msg); err != nil {
				c.close(true)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.opt.WriteWait)); err != nil {
				c.close(true)
				return
			}
		case <-c.done:
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server stopping"),
				time.Now().Add(time.Second))
			return
		}
	}
}

// streamID is a Redis stream entry id (milliseconds-sequence), ordered.
type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

// next is the smallest id after a (no entry can lie between a and a.next()).
func (a streamID) next() streamID {
	if a.seq == ^uint64(0) {
		return streamID{a.ms + 1, 0}
	}
	return streamID{a.ms, a.seq + 1}
}

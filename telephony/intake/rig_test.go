package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/telephony/sipua"
	"hotline/ticketing"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// event is one published event, as the outbox would carry it.
type event struct {
	Topic, Key string
	Payload    json.RawMessage
}

// eventLog records events in memory (the outbox of ticketing when it is not wired).
type eventLog struct {
	mu sync.Mutex
	ev []event
}

func (l *eventLog) Publish(_ context.Context, _ ticketing.DB, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ev = append(l.ev, event{topic, key, b})
	l.mu.Unlock()
	return nil
}

func (l *eventLog) find(topic, key string) (event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.ev {
		if e.Topic == topic && (key == "" || e.Key == key) {
			return e, true
		}
	}
	return event{}, false
}

type rig struct {
	t      *testing.T
	db     *pgxpool.Pool
	svc    *telephony.Service
	sip    *sipua.Server
	intake *Intake
	events *eventLog
	port   int
	recDir string
	stop   func()
}

type rigOpts struct {
	answerDelay   time.Duration
	queueLimit    time.Duration
	ringTimeout   time.Duration
	rate          float64
	hours         string
	opt           telephony.Options // interfaces to wire
	drainTimeout  time.Duration
	keepRunningOn func(*rig)
}

// newRig starts hotline's SIP side on a free loopback port, with trunks "main" (127.0.0.1), "other" (127.0.0.3)
// and "flood" (127.0.0.4), all for 12345; 127.0.0.2 is no trunk.
func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	r := &rig{t: t, db: db, events: &eventLog{}, recDir: testenv.TempDir(t)}
	opt := o.opt
	opt.DB, opt.RecordingsDir = db, r.recDir
	if opt.Events == nil {
		opt.Events = r.events
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opt.Log = log
	r.svc = telephony.NewService(opt)
	r.port = freeUDP(t)
	trunks := []sipua.Trunk{
		{Name: "main", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: []string{"12345"}},
		{Name: "other", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, Numbers: []string{"12345"}},
		{Name: "flood", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}, Numbers: []string{"12345"}},
	}
	if o.rate == 0 {
		o.rate = 100
	}
	if o.drainTimeout == 0 {
		o.drainTimeout = 10 * time.Second
	}
	srv, err := sipua.New(sipua.Config{
		Listeners: []sipua.Listener{{Transport: "udp", Addr: "127.0.0.1:" + strconv.Itoa(r.port)}, {Transport: "tcp", Addr: "127.0.0.1:" + strconv.Itoa(r.port)}},
		Trunks:    trunks, MaxCalls: 200, RatePerSource: o.rate, Burst: int(o.rate), DrainTimeout: o.drainTimeout,
	}, sipua.Deps{DB: db, Redis: rdb, Prefix: prefix, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	r.sip = srv
	p := media.DefaultPrompts()
	p.Greeting, p.Queue, p.Voicemail, p.Closed, p.Thanks = media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt()
	hours, err := ParseHours(o.hours, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.queueLimit == 0 {
		o.queueLimit = 30 * time.Second
	}
	if o.ringTimeout == 0 {
		o.ringTimeout = 5 * time.Second
	}
	r.intake = New(Config{QueueLimit: o.queueLimit, RingTimeout: o.ringTimeout, AnswerDelay: o.answerDelay, Prompts: p,
		Hours: hours, Poll: 100 * time.Millisecond, VoicemailMax: 20 * time.Second}, r.svc, srv, log)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	errs := make(chan error, 2)
	go func() { defer wg.Done(); errs <- srv.Run(ctx, r.intake) }()
	go func() { defer wg.Done(); errs <- r.intake.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-errs:
		t.Fatalf("SIP server did not start: %v", err)
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(r.stop)
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b[:len(b)-1])); return len(b), nil }

func freeUDP(t *testing.T) int {
	for {
		p := testenv.FreePort(t) // free on TCP; check UDP too
		if pc, err := netListenUDP(p); err == nil {
			pc.Close()
			return p
		}
	}
}

func (r *rig) uri(user string) string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, r.port) }

// agent creates an agent user with a SIP account and returns its id.
func (r *rig) agent(name string, skills ...string) ticketing.UserID {
	r.t.Helper()
	ctx := context.Background()
	u, err := ticketing.CreateUser(ctx, r.db, ticketing.NewUser{Username: name, DisplayName: "坐席 " + name, Password: "password-" + name, Role: ticketing.RoleAgent})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := telephony.SetSIPAccount(ctx, r.db, u.ID, name, "hotline", "sip-secret-"+name, skills); err != nil {
		r.t.Fatal(err)
	}
	return u.ID
}

// phone starts an agent's phone, registered.
func (r *rig) agentPhone(name string, o phonetest.Options) *phonetest.Phone {
	r.t.Helper()
	p, err := phonetest.Start(o)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Register(ctx, r.uri(name), name, "sip-secret-"+name, time.Hour); err != nil {
		r.t.Fatalf("register %s: %v", name, err)
	}
	return p
}

func (r *rig) setState(id ticketing.UserID, st telephony.AgentState, reason string) {
	r.t.Helper()
	if _, err := r.svc.SetAgentState(context.Background(), ticketing.System, id, st, reason); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) caller(host string, tone float64) *phonetest.Phone {
	r.t.Helper()
	p, err := phonetest.Start(phonetest.Options{Host: host, ToneHz: tone})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(p.Close)
	return p
}

// waitFor polls cond until it holds or the (generous) bound passes; the bound only stops a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// lastCDR returns the newest call once it has ended.
func (r *rig) endedCDR(what string) telephony.CDR {
	r.t.Helper()
	var c telephony.CDR
	waitFor(r.t, what, func() bool {
		cs, err := telephony.ListCDRs(context.Background(), r.db, telephony.CDRFilter{Limit: 1})
		if err != nil || len(cs) == 0 || cs[0].Disposition == nil {
			return false
		}
		c = cs[0]
		return true
	})
	return c
}

func (r *rig) openCallbacks() []telephony.Callback {
	r.t.Helper()
	cbs, err := telephony.ListCallbacks(context.Background(), r.db, "open", 10)
	if err != nil {
		r.t.Fatal(err)
	}
	return cbs
}

// baseline records goroutines and open files, to check that calls leave nothing behind.
type baseline struct{ goroutines, fds int }

func takeBaseline() baseline {
	return baseline{runtime.NumGoroutine(), countFDs()}
}

func countFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

// checkNoLeaks waits until goroutines and file descriptors (RTP sockets are fds) are back to the baseline.
func checkNoLeaks(t *testing.T, b baseline) {
	t.Helper()
	var g, f int
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		g, f = runtime.NumGoroutine(), countFDs()
		if g <= b.goroutines && f <= b.fds {
			return
		}
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Fatalf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, b.goroutines, f, b.fds, buf[:n])
}

func agentRow(t *testing.T, db *pgxpool.Pool, id ticketing.UserID) telephony.Agent {
	t.Helper()
	a, err := telephony.GetAgent(context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var _ = pgx.ErrNoRows

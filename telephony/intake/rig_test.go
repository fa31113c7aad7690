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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/telephony/sipua"
	"hotline/telephony/ticketlink"
	"hotline/ticketing"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

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

func (l *eventLog) Publish(_ context.Context, _ org.DB, topic, key string, payload any) error {
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
	tsvc   *ticketing.Service
	msvc   *monitoring.Service
	sip    *sipua.Server
	intake *Intake
	events *eventLog
	port   int
	recDir string
	stop   func()
}

type rigOpts struct {
	answerDelay  time.Duration
	queueLimit   time.Duration
	ringTimeout  time.Duration
	rate         float64
	hours        string
	opt          telephony.Options // interfaces to wire
	drainTimeout time.Duration
	registry     *prometheus.Registry
	maxCalls     int
	maxSetups    int           // calls between INVITE and answer before new ones get 503 (sipua.Config.MaxSetups)
	greeting     *media.Prompt // default: the one-second short prompt
	greetingMin  time.Duration
	greetingFull bool
	recDir       string // default: a fresh temporary directory
}

// newRig starts hotline's SIP side on a free loopback port, with trunks "main" (127.0.0.1), "other" (127.0.0.3)
// "flood" (127.0.0.4) and "auth" (127.0.0.5, digest county/trunk-secret), all for 12345; 127.0.0.2 is no trunk.
func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	r := &rig{t: t, db: db, events: &eventLog{}, recDir: o.recDir}
	if r.recDir == "" {
		r.recDir = testenv.TempDir(t)
	}
	// The real ticketing core and monitoring records, on this test's database.
	r.tsvc = ticketing.NewService(db, ticketing.Options{})
	key, _ := pii.ParseKey(pii.NewKey())
	box, err := pii.New(key)
	if err != nil {
		t.Fatal(err)
	}
	r.msvc = monitoring.New(monitoring.Config{DB: db, Box: box})
	opt := o.opt
	opt.DB, opt.RecordingsDir = db, r.recDir
	if opt.Events == nil {
		opt.Events = ticketlink.Events
	}
	if opt.Tickets == nil {
		opt.Tickets = ticketlink.Tickets{Svc: r.tsvc}
	}
	if opt.Callers == nil {
		opt.Callers = ticketlink.Callers{Svc: r.msvc}
	}
	if opt.Contacts == nil {
		opt.Contacts = ticketlink.Contacts{Svc: r.msvc}
	}
	if opt.TicketAccess == nil {
		opt.TicketAccess = ticketlink.Access{Svc: r.tsvc}
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opt.Log = log
	r.svc = telephony.NewService(opt)
	r.port = freeUDP(t)
	trunks := []sipua.Trunk{
		{Name: "main", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: []string{"12345"}},
		{Name: "other", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, Numbers: []string{"12345"}},
		{Name: "flood", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}, Numbers: []string{"12345"}},
		{Name: "auth", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}, Numbers: []string{"12345"}, Username: "county", Password: "trunk-secret"},
	}
	if o.rate == 0 {
		o.rate = 100
	}
	if o.maxCalls == 0 {
		o.maxCalls = 200
	}
	if o.drainTimeout == 0 {
		o.drainTimeout = 10 * time.Second
	}
	var regr prometheus.Registerer
	if o.registry != nil {
		regr = o.registry
	}
	srv, err := sipua.New(sipua.Config{
		Listeners: []sipua.Listener{{Transport: "udp", Addr: "127.0.0.1:" + strconv.Itoa(r.port)}, {Transport: "tcp", Addr: "127.0.0.1:" + strconv.Itoa(r.port)}},
		Trunks:    trunks, MaxCalls: o.maxCalls, MaxSetups: o.maxSetups, RatePerSource: o.rate, Burst: int(o.rate), DrainTimeout: o.drainTimeout,
	}, sipua.Deps{DB: db, Redis: rdb, Prefix: prefix, Log: log, Registry: regr})
	if err != nil {
		t.Fatal(err)
	}
	r.sip = srv
	p := media.DefaultPrompts()
	p.Greeting, p.Queue, p.Voicemail, p.Closed, p.Thanks = media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt(), media.ShortPrompt()
	if o.greeting != nil {
		p.Greeting = *o.greeting
	}
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
		Hours: hours, Poll: 100 * time.Millisecond, VoicemailMax: 20 * time.Second, GreetingMin: o.greetingMin,
		GreetingFull: o.greetingFull}, r.svc, srv, log)
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
func (r *rig) agent(name string, skills ...string) org.UserID {
	r.t.Helper()
	ctx := context.Background()
	u, err := org.CreateUser(ctx, r.db, org.NewUser{Username: name, DisplayName: "坐席 " + name, Password: "password-" + name, Role: org.RoleAgent})
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

func (r *rig) setState(id org.UserID, st telephony.AgentState, reason string) {
	r.t.Helper()
	if _, err := r.svc.SetAgentState(context.Background(), org.System, id, st, reason); err != nil {
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

// baseline records goroutines and UDP sockets (RTP and RTCP ports), to check that calls leave nothing behind.
// (TCP sockets are left out: the database pool grows on its own.)
type baseline struct{ goroutines, udp int }

func takeBaseline() baseline {
	return baseline{runtime.NumGoroutine(), countUDPSockets()}
}

// countUDPSockets counts this process's open UDP sockets: its socket fds whose inode is in /proc/net/udp{,6}.
func countUDPSockets() int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) > 9 {
				inodes[fs[9]] = true
			}
		}
	}
	es, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range es {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") && inodes[strings.Trim(l[7:], "[]")] {
			n++
		}
	}
	return n
}

// checkNoLeaks waits until goroutines and UDP sockets are back to the baseline.
func checkNoLeaks(t *testing.T, b baseline) {
	t.Helper()
	var g, u int
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		g, u = runtime.NumGoroutine(), countUDPSockets()
		if g <= b.goroutines && u <= b.udp {
			return
		}
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Fatalf("leak: goroutines %d (baseline %d), UDP sockets %d (baseline %d)\n%s", g, b.goroutines, u, b.udp, buf[:n])
}

func agentRow(t *testing.T, db *pgxpool.Pool, id org.UserID) telephony.Agent {
	t.Helper()
	a, err := telephony.GetAgent(context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// outboxEvent returns the first event of a topic written to ticketing's outbox (what the relay puts on the Redis
// event stream for the consoles).
func (r *rig) outboxEvent(topic string) (event, bool) {
	r.t.Helper()
	var e event
	err := r.db.QueryRow(context.Background(), `SELECT topic, key, payload FROM outbox WHERE topic = $1 ORDER BY id LIMIT 1`, topic).
		Scan(&e.Topic, &e.Key, &e.Payload)
	if err == pgx.ErrNoRows {
		return e, false
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return e, true
}

// household creates a monitored household of 赫山区 whose head uses phone, with one open ticket.
func (r *rig) household(phone string) (org.HouseholdID, org.TicketID) {
	r.t.Helper()
	ctx := context.Background()
	town := region.Children("430903")[0].Code
	h, err := r.msvc.Create(ctx, org.Actor{Username: "heshan1", Name: "赫山区承办人", Role: org.RoleStaff}, monitoring.HouseholdInput{
		Number: "HS-0001", CountyCode: "430903", TownshipCode: town, Village: "新华村", MonitoringType: "边缘易致贫户",
		RiskTypes: []string{"因病"}, CadreName: "周敏", CadrePhone: "13907371234",
		Members: []monitoring.MemberInput{{Name: "刘建国", Relation: "户主", IDNumber: "43090319650505123X", Health: "大病", Phone: phone}},
	})
	if err != nil {
		r.t.Fatalf("create household: %v", err)
	}
	hid := int64(h.ID)
	tk, err := r.tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerPhone: phone,
		Kind: ticketing.KindHelp, Category: "monitoring_help", Content: "家中老人住院，医疗费用报销进度咨询", HouseholdID: &hid, RegionCode: "430903"})
	if err != nil {
		r.t.Fatalf("create ticket: %v", err)
	}
	return h.ID, tk.ID
}

package deliver

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/notify/mail"
	"hotline/notify/mail/smtptest"
	"hotline/notify/sms"
	"hotline/notify/sms/smstest"
	"hotline/notify/wecom"
	"hotline/notify/wecom/wecomtest"
	"hotline/ticketing"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) {
	if os.Getenv("NOTIFY_CRASH_CHILD") != "" {
		os.Exit(crashChild())
	}
	os.Exit(testenv.Main(m))
}

// rig is one pipeline on a database and Redis prefix of its own, with local providers: the generic gateway
// for SMS unless a test chooses another, a WeChat Work API and an SMTP server.
type rig struct {
	t       testing.TB
	ctx     context.Context
	db      *pgxpool.Pool
	dbURL   string
	rdb     *redis.Client
	prefix  string
	box     *pii.Box
	tickets *ticketing.Service
	relay   *ticketing.Relay
	gw      *smstest.Server
	wc      *wecomtest.Server
	mail    *smtptest.Server
	opt     Options
	svc     *Service

	mu  sync.Mutex
	now time.Time
}

var cst = China

func newRig(t testing.TB, mod func(r *rig, o *Options)) *rig {
	t.Helper()
	r := &rig{t: t, ctx: context.Background(), dbURL: testenv.DatabaseURL(t), now: time.Date(2026, 12, 1, 10, 0, 0, 0, cst)}
	db, err := pgxpool.New(r.ctx, r.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	r.db = db
	r.rdb, r.prefix = testenv.Redis(t)
	box, err := pii.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	r.box = box
	r.tickets = ticketing.NewService(r.db, ticketing.Options{})
	r.relay = ticketing.NewRelay(r.db, r.rdb, ticketing.RelayOptions{Prefix: r.prefix})
	r.gw = smstest.Gateway(t, "Authorization: Bearer gw-token")
	r.wc = wecomtest.New(t, "ww-corp", "app-secret")
	r.mail = smtptest.Start(t, "hotline", "mail-pw")
	gw, err := sms.NewGateway(sms.Gateway{URL: r.gw.URL, AuthHeader: "Authorization: Bearer gw-token"})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mail.New(mail.Config{Addr: r.mail.Addr, Username: "hotline", Password: "mail-pw", From: "hotline@example.gov.cn", TLS: r.mail.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	r.opt = Options{DB: r.db, Redis: r.rdb, Prefix: r.prefix, Box: box,
		Channels:    Channels{SMS: gw, Robot: &wecom.Robot{}, App: &wecom.App{API: r.wc.URL, CorpID: "ww-corp", Secret: "app-secret", AgentID: 1000002}, Mail: ms},
		BackoffBase: time.Second, BackoffMax: time.Minute, QueryURL: "https://12345.example.gov.cn/q", Now: r.clock}
	if mod != nil {
		mod(r, &r.opt)
	}
	r.svc = r.service(r.opt)
	return r
}

func (r *rig) service(o Options) *Service {
	r.t.Helper()
	s, err := New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := s.EnsureGroup(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) setNow(t time.Time) {
	r.mu.Lock()
	r.now = t
	r.mu.Unlock()
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// flow publishes the outbox and ingests the stream: events become delivery rows.
func (r *rig) flow() {
	r.t.Helper()
	if _, err := r.relay.PublishOnce(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.svc.IntakeOnce(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) sendDue() int {
	r.t.Helper()
	n, err := r.svc.SendDue(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) unit(code string) org.UnitID {
	r.t.Helper()
	u, err := org.UnitByCode(r.ctx, r.db, code)
	if err != nil {
		r.t.Fatal(err)
	}
	return u.ID
}

// callTicket creates a ticket as an agent would after a call, dispatched at once.
func (r *rig) callTicket(phoneNo string, mod func(*ticketing.NewTicket)) ticketing.Ticket {
	r.t.Helper()
	nt := ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "李四", CallerPhone: phoneNo, RegionCode: "430903",
		Kind: ticketing.KindHelp, Category: "employment", Content: "想参加技能培训", Dispatch: true}
	if mod != nil {
		mod(&nt)
	}
	tk, err := r.tickets.Create(r.ctx, org.System, nt)
	if err != nil {
		r.t.Fatal(err)
	}
	return tk
}

func (r *rig) deliveries(where string, args ...any) []Delivery {
	r.t.Helper()
	ds, err := r.svc.Deliveries(r.ctx, org.System, Filter{Limit: 500})
	if err != nil {
		r.t.Fatal(err)
	}
	_ = where
	return ds
}

func (r *rig) only(channel, recipient string) Delivery {
	r.t.Helper()
	var out []Delivery
	for _, d := range r.deliveries("") {
		if d.Channel == channel && (recipient == "" || d.Recipient == recipient) {
			out = append(out, d)
		}
	}
	if len(out) != 1 {
		r.t.Fatalf("%d %s deliveries to %q, want 1: %+v", len(out), channel, recipient, out)
	}
	d, err := r.svc.GetDelivery(r.ctx, org.System, out[0].ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

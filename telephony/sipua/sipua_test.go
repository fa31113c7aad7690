package sipua

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

func TestParseTrunks(t *testing.T) {
	ts, err := ParseTrunks("name=12345,net=10.0.0.0/24|10.0.1.5,numbers=12345|12317; name=county,user=u1,pass=p1,skills=xiang")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Name != "12345" || len(ts[0].Networks) != 2 || ts[0].Networks[1].String() != "10.0.1.5/32" ||
		len(ts[0].Numbers) != 2 || ts[1].Username != "u1" || ts[1].Skills[0] != "xiang" {
		t.Errorf("%+v", ts)
	}
	for _, bad := range []string{"net=10.0.0.0/8", "name=a", "name=a,net=nonsense", "name=a,net=1.2.3.4,colour=red",
		"name=a,user=u", "name=a,net=1.2.3.4;name=a,net=1.2.3.5", "name=a,net"} {
		if _, err := ParseTrunks(bad); err == nil {
			t.Errorf("ParseTrunks(%q) accepted", bad)
		}
	}
}

func TestMatchTrunk(t *testing.T) {
	ts, _ := ParseTrunks("name=wide,net=10.0.0.0/8; name=narrow,net=10.1.0.0/16; name=auth,user=u,pass=p")
	for addr, want := range map[string]string{"10.1.2.3": "narrow", "10.2.0.1": "wide", "192.168.1.1": "auth"} {
		if got := matchTrunk(ts, netip.MustParseAddr(addr)); got == nil || got.Name != want {
			t.Errorf("%s → %v, want %s", addr, got, want)
		}
	}
	ts2, _ := ParseTrunks("name=only,net=10.0.0.0/8")
	if matchTrunk(ts2, netip.MustParseAddr("127.0.0.2")) != nil {
		t.Error("unknown source matched a trunk")
	}
}

func TestStatus(t *testing.T) {
	for err, want := range map[error]int{
		ErrMalformed: 400, ErrUnknownSource: 403, ErrBadCredentials: 403, ErrAuthRequired: 401, ErrNumberNotServed: 404,
		ErrRateLimited: 503, ErrOverCapacity: 503, ErrDraining: 503, ErrNoOffer: 488, errors.New("x"): 500,
	} {
		if got, _ := Status(err); got != want {
			t.Errorf("Status(%v) = %d, want %d", err, got, want)
		}
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "12345", Host: "127.0.0.1"})
	if res := Response(req, ErrDraining); res.GetHeader("Retry-After") == nil {
		t.Error("503 while draining without Retry-After")
	}
}

func TestSafeHeaderValue(t *testing.T) {
	for _, v := range []string{"13812345678\r\nBYE-Injected: yes", "a\nb", "a\x00b"} {
		if SafeHeaderValue(v) == nil {
			t.Errorf("%q accepted", v)
		}
	}
	if SafeHeaderValue("13812345678") != nil {
		t.Error("plain number refused")
	}
}

type refuseAll struct{}

func (refuseAll) HandleCall(ctx context.Context, c *Call) { c.Dialog.Respond(486, "Busy Here", nil) }
func (refuseAll) Refused(*Trunk, *sip.Request, error)     {}

func startServer(t *testing.T) (*Server, int) {
	t.Helper()
	return startServerWith(t, func(*Config) {})
}

// startServerWith starts a server on a free UDP port (and TCP on the same port number when the config asks for
// it: tune sees the UDP listener and may add more).
func startServerWith(t *testing.T, tune func(*Config)) (*Server, int) {
	t.Helper()
	return startServerHandler(t, tune, refuseAll{})
}

// startServerHandler is startServerWith with the call handler given.
func startServerHandler(t *testing.T, tune func(*Config), h Handler) (*Server, int) {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port := testenv.FreePort(t)
	cfg := Config{Listeners: []Listener{{Transport: "udp", Addr: "127.0.0.1:" + strconv.Itoa(port)}}, DrainTimeout: time.Second,
		Trunks: []Trunk{{Name: "main", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}}
	tune(&cfg)
	srv, err := New(cfg, Deps{DB: db, Redis: rdb, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx, h) }()
	<-srv.Ready()
	t.Cleanup(func() { cancel(); wg.Wait() })
	u, err := org.CreateUser(context.Background(), db, org.NewUser{Username: "agent7", DisplayName: "坐席七", Password: "password7", Role: org.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	if err := telephony.SetSIPAccount(context.Background(), db, u.ID, "agent7", "hotline", "sip-secret-7", nil); err != nil {
		t.Fatal(err)
	}
	return srv, port
}

func TestRegistrar(t *testing.T) {
	srv, port := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uri := "sip:agent7@127.0.0.1:" + strconv.Itoa(port)
	contacts := func() int {
		cs, err := srv.Registrar().Contacts(ctx, "agent7")
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	p1, err := phonetest.Start(phonetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, err := phonetest.Start(phonetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()

	if err := p1.Register(ctx, uri, "agent7", "wrong-password", time.Hour); err == nil {
		t.Fatal("registered with a wrong password")
	}
	if contacts() != 0 {
		t.Fatal("binding from a failed registration")
	}
	if err := p1.Register(ctx, uri, "agent7", "sip-secret-7", time.Hour); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := p2.Register(ctx, uri, "agent7", "sip-secret-7", time.Hour); err != nil {
		t.Fatalf("register second phone: %v", err)
	}
	if n := contacts(); n != 2 {
		t.Fatalf("%d contacts, want 2 (one per phone)", n)
	}
	// Re-registering refreshes the binding instead of adding one.
	if err := p1.Register(ctx, uri, "agent7", "sip-secret-7", time.Hour); err != nil || contacts() != 2 {
		t.Fatalf("re-register: %v, %d contacts", err, contacts())
	}
	if err := p2.Unregister(ctx); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	if n := contacts(); n != 0 {
		// Contact: * removes every binding of the user (RFC 3261 10.3).
		t.Fatalf("%d contacts after Contact: * un-registration", n)
	}
}

func TestRegistrarNoncesAreSingleUse(t *testing.T) {
	_, port := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	target := sip.Uri{User: "agent7", Host: "127.0.0.1", Port: port}
	req := sip.NewRequest(sip.REGISTER, target)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "agent7", Host: "127.0.0.1", Port: 5999}})
	res, err := client.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %v %v, want 401", res, err)
	}
	res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "agent7", Password: "sip-secret-7"})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("authenticated REGISTER: %v %v", res, err)
	}
	// Replay the same Authorization in a new transaction: the nonce is spent.
	replay := req.Clone()
	replay.RemoveHeader("Via")
	res, err = client.Do(ctx, replay)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("replayed REGISTER: %v %v, want 401", res, err)
	}
	if h := res.GetHeader("WWW-Authenticate"); h == nil || !strings.Contains(strings.ToLower(h.Value()), "stale=true") {
		t.Errorf("replay challenge %v: want stale=true", h)
	}
}

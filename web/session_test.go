package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// clock is a settable clock for sessions and the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type sessionEnv struct {
	t      *testing.T
	s      *Server
	db     *pgxpool.Pool
	rdb    *redis.Client
	clock  *clock
	checks atomic.Int64 // password checks evaluated (each one bcrypt comparison)
}

func newSessionEnv(t *testing.T, mod func(*Deps)) *sessionEnv {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	e := &sessionEnv{t: t, db: db, rdb: rdb, clock: &clock{t: time.Date(2026, 3, 2, 9, 59, 58, 0, time.UTC)}}
	svc := ticketing.NewService(db, ticketing.Options{})
	deps := Deps{DB: db, Redis: rdb, Now: e.clock.now, RedisPrefix: prefix,
		Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix}}
	if mod != nil {
		mod(&deps)
	}
	e.s = newServer(deps)
	e.s.checkPassword = func(ctx context.Context, db org.DB, u, p string) (org.User, error) {
		e.checks.Add(1)
		return org.CheckPassword(ctx, db, u, p)
	}
	return e
}

func (e *sessionEnv) user(name string, role org.Role, unit string) org.User {
	e.t.Helper()
	u, err := org.UnitByCode(context.Background(), e.db, unit)
	if err != nil {
		e.t.Fatal(err)
	}
	usr, err := org.CreateUser(context.Background(), e.db, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	return usr
}

// req is one request to the handler from a source address; cookie and headers optional.
type req struct {
	method, path string
	body         any
	cookie       string
	csrf         string
	bearer       string
	addr         string
	xff          string // X-Forwarded-For, as a proxy in front writes it
}

type resp struct {
	code   int
	body   map[string]any
	raw    string
	cookie *http.Cookie
	header http.Header
}

func (e *sessionEnv) do(q req) resp {
	var rd io.Reader
	if q.body != nil {
		b, _ := json.Marshal(q.body)
		rd = bytes.NewReader(b)
	}
	r := httptest.NewRequest(q.method, q.path, rd)
	r.RemoteAddr = "192.0.2.1:40000"
	if q.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if q.addr != "" {
		r.RemoteAddr = q.addr + ":40000"
	}
	if q.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	if q.csrf != "" {
		r.Header.Set(CSRFHeader, q.csrf)
	}
	if q.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.xff != "" {
		r.Header.Set("X-Forwarded-For", q.xff)
	}
	rec := httptest.NewRecorder()
	e.s.handler.ServeHTTP(rec, r)
	out := resp{code: rec.Code, raw: rec.Body.String(), header: rec.Header()}
	json.Unmarshal(rec.Body.Bytes(), &out.body)
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			out.cookie = c
		}
	}
	return out
}

// signIn signs in and returns the cookie value and CSRF token.
func (e *sessionEnv) signIn(name, password, oldCookie string) (string, string) {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": name, "password": password}, cookie: oldCookie})
	if r.code != 200 || r.cookie == nil {
		e.t.Fatalf("sign in %s: %d %s", name, r.code, r.raw)
	}
	c := r.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		e.t.Fatalf("cookie attributes: %+v", c)
	}
	user, _ := r.body["user"].(map[string]any)
	if user["Username"] != name {
		e.t.Fatalf("sign in answer names %v, want %s: %s", user["Username"], name, r.raw)
	}
	csrf, _ := r.body["csrf_token"].(string)
	if csrf == "" {
		e.t.Fatalf("no csrf_token: %s", r.raw)
	}
	return c.Value, csrf
}

// TestSessionFixation: a cookie the browser holds at sign-in (planted or old) is never the signed-in one, and
// the old one stops working; the session endpoint answers with the same user JSON as /api/v1/me.
func TestSessionFixation(t *testing.T) {
	e := newSessionEnv(t, nil)
	e.user("agent1", org.RoleAgent, org.CodeDesk)

	planted := "attacker-chosen-session-id"
	c1, csrf1 := e.signIn("agent1", "password1", planted)
	if c1 == planted {
		t.Fatal("sign-in kept the planted session id")
	}
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: planted}); r.code != 401 {
		t.Fatalf("planted cookie: %d", r.code)
	}
	c2, csrf2 := e.signIn("agent1", "password1", c1)
	if c2 == c1 || csrf2 == csrf1 {
		t.Fatal("second sign-in kept the session id or CSRF token")
	}
	if r := e.do(req{method: "GET", path: "/api/v1/session", cookie: c1}); r.code != 401 {
		t.Fatalf("old cookie after a new sign-in: %d, want 401", r.code)
	}
	r := e.do(req{method: "GET", path: "/api/v1/session", cookie: c2})
	me := e.do(req{method: "GET", path: "/api/v1/me", cookie: c2})
	if r.code != 200 || r.body["csrf_token"] != csrf2 || me.code != 200 {
		t.Fatalf("session: %d %s; me %d", r.code, r.raw, me.code)
	}
	u, _ := json.Marshal(r.body["user"])
	m, _ := json.Marshal(me.body)
	if string(u) != string(m) {
		t.Fatalf("session user %s differs from /me %s", u, m)
	}
	// Only a hash of the id is stored.
	var n int
	e.db.QueryRow(context.Background(), `SELECT count(*) FROM web_sessions WHERE convert_from(id_hash, 'SQL_ASCII') LIKE '%' || $1 || '%'`, c2[:10]).Scan(&n)
	if n != 0 {
		t.Fatal("the session id is stored in clear")
	}
	if r := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "agent1", "password": "nope-nope"}}); r.code != 401 || r.body["code"] != "unauthenticated" || r.cookie != nil {
		t.Fatalf("wrong password: %d %s", r.code, r.raw)
	}
	// A cross-site form cannot sign anyone in: it cannot send application/json.
	form := httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"username":"agent1","password":"password1"}`))
	form.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	e.s.handler.ServeHTTP(rec, form)
	if rec.Code != 415 || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("text/plain sign-in: %d %s", rec.Code, rec.Body)
	}
}

// TestCSRF: a state-changing request made with the cookie needs the session's token in X-CSRF-Token; a bearer
// request does not; reads do not.
func TestCSRF(t *testing.T) {
	e := newSessionEnv(t, nil)
	usr := e.user("agent1", org.RoleAgent, org.CodeDesk)
	cookie, csrf := e.signIn("agent1", "password1", "")
	body := map[string]any{"source": "phone", "caller_name": "张三", "caller_phone": "13812345678", "region_code": "430903",
		"kind": "help", "category": ticketing.CategoryMonitoringHelp, "content": "家里收入下降"}
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"no token", "", 403}, {"wrong token", "forged", 403}, {"other session's token", "", 403}, {"right token", csrf, 201}} {
		tok := tc.token
		if tc.name == "other session's token" {
			_, tok = e.signIn("agent1", "password1", "")
		}
		r := e.do(req{method: "POST", path: "/api/v1/tickets", body: body, cookie: cookie, csrf: tok})
		if r.code != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.name, r.code, r.raw, tc.want)
		}
		if tc.want == 403 && r.body["code"] != "csrf" {
			t.Fatalf("%s: code %v, want csrf", tc.name, r.body["code"])
		}
	}
	var n int
	e.db.QueryRow(context.Background(), `SELECT count(*) FROM tickets`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d tickets written, want 1 (refused requests must not write)", n)
	}
	// Bearer: no token needed. Reads with the cookie: no token needed.
	tok, _ := org.CreateToken(context.Background(), e.db, usr.ID, "test", 0)
	if r := e.do(req{method: "POST", path: "/api/v1/tickets", body: body, bearer: tok}); r.code != 201 {
		t.Fatalf("bearer create: %d %s", r.code, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/tickets", cookie: cookie}); r.code != 200 {
		t.Fatalf("cookie read: %d %s", r.code, r.raw)
	}
	// A bad bearer is refused even with a good cookie.
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: cookie, bearer: "hl_forged"}); r.code != 401 {
		t.Fatalf("bad bearer with good cookie: %d", r.code)
	}
	// Sign-out needs the token too.
	if r := e.do(req{method: "DELETE", path: "/api/v1/session", cookie: cookie}); r.code != 403 {
		t.Fatalf("sign-out without token: %d", r.code)
	}
}

// TestSignOut: deleting the session ends it for every client holding the cookie; "everywhere" ends all of the
// user's sessions and no one else's.
func TestSignOut(t *testing.T) {
	e := newSessionEnv(t, nil)
	e.user("agent1", org.RoleAgent, org.CodeDesk)
	e.user("agent2", org.RoleAgent, org.CodeDesk)
	cookie, csrf := e.signIn("agent1", "password1", "")
	// A second client (another tab, or someone who copied the cookie) uses the same session.
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: cookie, addr: "192.0.2.77"}); r.code != 200 {
		t.Fatalf("second client: %d", r.code)
	}
	r := e.do(req{method: "DELETE", path: "/api/v1/session", cookie: cookie, csrf: csrf})
	if r.code != 204 || r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Fatalf("sign-out: %d cookie %+v", r.code, r.cookie)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: cookie, addr: "192.0.2.77"}); r.code != 401 {
		t.Fatalf("second client after sign-out: %d, want 401", r.code)
	}

	a, csrfA := e.signIn("agent1", "password1", "")
	b, _ := e.signIn("agent1", "password1", "")
	other, _ := e.signIn("agent2", "password1", "")
	if r := e.do(req{method: "DELETE", path: "/api/v1/sessions", cookie: a, csrf: csrfA}); r.code != 204 {
		t.Fatalf("sign out everywhere: %d %s", r.code, r.raw)
	}
	for name, c := range map[string]string{"this": a, "other device": b} {
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: c}); r.code != 401 {
			t.Errorf("%s session after sign-out everywhere: %d", name, r.code)
		}
	}
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: other}); r.code != 200 {
		t.Errorf("another user's session ended: %d", r.code)
	}
}

// TestSessionTimeouts: a session ends after the idle timeout without use, and at the absolute timeout however
// busy; use moves the idle deadline.
func TestSessionTimeouts(t *testing.T) {
	e := newSessionEnv(t, func(d *Deps) { d.Sessions.Idle, d.Sessions.Absolute = 30*time.Minute, 2*time.Hour })
	e.user("agent1", org.RoleAgent, org.CodeDesk)
	me := func(c string) int { return e.do(req{method: "GET", path: "/api/v1/me", cookie: c}).code }

	c, _ := e.signIn("agent1", "password1", "")
	e.clock.add(29 * time.Minute)
	if me(c) != 200 {
		t.Fatal("ended before the idle timeout")
	}
	e.clock.add(29 * time.Minute) // 58 min since sign-in, 29 since last use
	if me(c) != 200 {
		t.Fatal("use did not extend the idle deadline")
	}
	e.clock.add(31 * time.Minute)
	if me(c) != 401 {
		t.Fatal("alive after 31 idle minutes")
	}

	c, _ = e.signIn("agent1", "password1", "")
	for i := 0; i < 5; i++ { // busy: used every 20 minutes, 1h40 in all
		e.clock.add(20 * time.Minute)
		if me(c) != 200 {
			t.Fatalf("busy session ended at %d min", 20*(i+1))
		}
	}
	e.clock.add(20 * time.Minute) // 2h: the absolute timeout
	if me(c) != 401 {
		t.Fatal("alive past the absolute timeout")
	}
}

// TestChangePassword: the old password is required, the new one has a minimum length and may not contain the
// user name; afterwards the user's other sessions end, this one stays, and only the new password works.
func TestChangePassword(t *testing.T) {
	e := newSessionEnv(t, nil)
	e.user("heshan1", org.RoleStaff, "430903")
	c, csrf := e.signIn("heshan1", "password1", "")
	other, _ := e.signIn("heshan1", "password1", "")
	change := func(old, nw string) resp {
		return e.do(req{method: "POST", path: "/api/v1/session/password", cookie: c, csrf: csrf,
			body: map[string]string{"old_password": old, "new_password": nw}})
	}
	for _, tc := range []struct{ old, nw, field string }{
		{"wrong-old", "a-good-new-one", "old_password"},
		{"", "a-good-new-one", "old_password"},
		{"password1", "short", "new_password"},
		{"password1", "my-HeShan1-pass", "new_password"},
		{"password1", "password1", "new_password"},
	} {
		r := change(tc.old, tc.nw)
		fields, _ := r.body["fields"].(map[string]any)
		if r.code != 400 || fields[tc.field] == nil {
			t.Errorf("old %q new %q: %d %s, want 400 on %s", tc.old, tc.nw, r.code, r.raw, tc.field)
		}
	}
	if r := change("password1", "a-good-new-one"); r.code != 204 {
		t.Fatalf("change: %d %s", r.code, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: other}); r.code != 401 {
		t.Errorf("other session after password change: %d", r.code)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: c}); r.code != 200 {
		t.Errorf("this session after password change: %d", r.code)
	}
	if r := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "heshan1", "password": "password1"}}); r.code != 401 {
		t.Errorf("old password still works: %d", r.code)
	}
	e.signIn("heshan1", "a-good-new-one", "")
}

// TestLoginLimiter: 30 parallel wrong passwords for admin from one address: at most 10 are evaluated (counted
// before the answer), the rest refused with Retry-After; admin still signs in from another address; after the
// wait one more attempt is evaluated and the next wait is longer (back-off, not a lock); the right password
// clears the count.
func TestLoginLimiter(t *testing.T) {
	e := newSessionEnv(t, nil)
	e.user("admin", org.RoleAdmin, org.CodeBureau)
	wrong := req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "admin", "password": "guess-guess"}, addr: "198.51.100.9"}
	var wg sync.WaitGroup
	codes := make([]int, 30)
	retry := make([]string, 30)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(wrong)
			codes[i], retry[i] = r.code, r.header.Get("Retry-After")
		}()
	}
	wg.Wait()
	n401, n429 := 0, 0
	for i, c := range codes {
		switch c {
		case 401:
			n401++
		case 429:
			n429++
			if retry[i] == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Errorf("attempt answered %d", c)
		}
	}
	if got := e.checks.Load(); got > 10 || n401 != int(got) || n401+n429 != 30 {
		t.Fatalf("%d passwords evaluated (%d × 401, %d × 429), want at most 10", got, n401, n429)
	}

	// The real admin, elsewhere, is not locked out.
	e.signIn("admin", "password1", "")

	// Back-off: after the wait one attempt is evaluated, then the wait doubles.
	r := e.do(wrong)
	wait1, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.code != 429 || wait1 < 1 {
		t.Fatalf("during back-off: %d Retry-After %q", r.code, r.header.Get("Retry-After"))
	}
	before := e.checks.Load()
	e.clock.add(time.Duration(wait1) * time.Second)
	if r := e.do(wrong); r.code != 401 || e.checks.Load() != before+1 {
		t.Fatalf("after the wait: %d, evaluated %d", r.code, e.checks.Load()-before)
	}
	r = e.do(wrong)
	wait2, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.code != 429 || wait2 <= wait1 {
		t.Fatalf("next wait %ds, want longer than %ds", wait2, wait1)
	}
	// Even the right password waits now from that address (it is not evaluated) ...
	right := wrong
	right.body = map[string]string{"username": "admin", "password": "password1"}
	if r := e.do(right); r.code != 429 {
		t.Fatalf("right password during back-off: %d", r.code)
	}
	// ... and after the wait it works and clears the count.
	e.clock.add(time.Duration(wait2) * time.Second)
	if r := e.do(right); r.code != 200 {
		t.Fatalf("right password after the wait: %d %s", r.code, r.raw)
	}
	for i := 0; i < 5; i++ {
		if r := e.do(wrong); r.code != 401 {
			t.Fatalf("count not cleared by the right password: attempt %d answered %d", i, r.code)
		}
	}
	// The token login shares the limiter.
	tokenWrong := wrong
	tokenWrong.path = "/api/v1/tokens"
	for i := 0; i < 10; i++ {
		e.do(tokenWrong)
	}
	if r := e.do(tokenWrong); r.code != 429 || r.body["code"] != "rate_limited" {
		t.Fatalf("token login past the limit: %d %s", r.code, r.raw)
	}
}

// TestLoginFailsClosedWithoutRedis: with Redis unreachable no password is evaluated and logins are refused.
func TestLoginFailsClosedWithoutRedis(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	e := newSessionEnv(t, func(d *Deps) { d.Redis = dead })
	e.user("admin", org.RoleAdmin, org.CodeBureau)
	for _, path := range []string{"/api/v1/session", "/api/v1/tokens"} {
		r := e.do(req{method: "POST", path: path, body: map[string]string{"username": "admin", "password": "password1"}})
		if r.code != 503 || r.body["code"] != "unavailable" || r.cookie != nil {
			t.Fatalf("%s without Redis: %d %s", path, r.code, r.raw)
		}
	}
	if e.checks.Load() != 0 {
		t.Fatalf("%d passwords evaluated without the limiter", e.checks.Load())
	}
}

// TestLoginLimiterBehindAProxy: with one trusted proxy in front, the limiter counts each client by the address
// the proxy forwarded, not the proxy's own: one client guessing is held back while another client behind the
// same proxy signs in, and the audit rows name the client.
func TestLoginLimiterBehindAProxy(t *testing.T) {
	e := newSessionEnv(t, func(d *Deps) { d.Public.TrustedHops = 1 })
	e.user("admin", org.RoleAdmin, org.CodeBureau)
	const proxy = "10.0.0.5"
	wrong := req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "admin", "password": "guess-guess"},
		addr: proxy, xff: "203.0.113.7"}
	held := false
	for i := 0; i < 30 && !held; i++ {
		held = e.do(wrong).code == http.StatusTooManyRequests
	}
	if !held {
		t.Fatal("30 wrong passwords from one client behind the proxy were never held back")
	}
	// Another client behind the same proxy is not held back, and a client cannot pose as another by writing
	// its own X-Forwarded-For in front of the proxy's entry: the proxy's (rightmost) entry is the one trusted.
	right := req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "admin", "password": "password1"},
		addr: proxy, xff: "203.0.113.7, 198.51.100.20"}
	if r := e.do(right); r.code != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d %s", r.code, r.raw)
	}
	var addrs []string
	rows, err := e.db.Query(context.Background(), `SELECT DISTINCT source_addr FROM security_audit WHERE kind IN ('login', 'login_failed') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if addrs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"198.51.100.20", "203.0.113.7"}; !slices.Equal(addrs, want) {
		t.Errorf("audit source addresses %v, want %v (the clients, not the proxy %s)", addrs, want, proxy)
	}
}

package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// secEnv is the whole API (tickets, households, calls) on one server, with the Redis look-up limit of
// production.
type secEnv struct {
	*hhEnv
	tel *telephony.Service
	mon *monitoring.Service
	ctx context.Context
	f   *apiFixture
}

func newSecEnv(t *testing.T, lookupLimit int) *secEnv {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	tsvc := ticketing.NewService(db, ticketing.Options{})
	mon := monitoring.New(monitoring.Config{DB: db, Box: box,
		Lookups: &org.RateLimiter{Redis: rdb, Prefix: prefix, Limit: lookupLimit, Window: time.Minute}})
	mon.AttachTickets(tsvc)
	tel := telephony.NewService(telephony.Options{DB: db, RecordingsDir: t.TempDir()})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Monitoring: mon, Telephony: tel, TokenChannel: prefix + "revoked",
		Tickets: &Tickets{Service: tsvc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix, PublicLimit: 50}}))
	t.Cleanup(srv.Close)
	f := &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}
	return &secEnv{hhEnv: &hhEnv{srv: srv, svc: mon}, tel: tel, mon: mon, ctx: context.Background(), f: f}
}

// user creates a user of a unit (by code, "" for none) and returns its bearer token.
func (e *secEnv) user(name string, role org.Role, unit string, perms ...org.Permission) (org.UserID, string) {
	e.f.t.Helper()
	var uid org.UnitID
	if unit != "" {
		u, err := org.UnitByCode(e.ctx, e.f.db, unit)
		if err != nil {
			e.f.t.Fatal(err)
		}
		uid = u.ID
	}
	u, err := org.CreateUser(e.ctx, e.f.db, org.NewUser{Username: name, DisplayName: name, Role: role, UnitID: uid,
		Password: "secret-password", Permissions: perms})
	if err != nil {
		e.f.t.Fatal(err)
	}
	tok, err := org.CreateToken(e.ctx, e.f.db, u.ID, "test", 0)
	if err != nil {
		e.f.t.Fatal(err)
	}
	return u.ID, tok
}

func (e *secEnv) count(sql string, args ...any) int {
	var n int
	if err := e.f.db.QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.f.t.Fatal(err)
	}
	return n
}

// High 2: exact look-ups by a full number need lookup_pii, are limited per user (429) and audited; an agent looks
// up the caller of its own live call through the call.
func TestExactLookupsNeedPermission(t *testing.T) {
	e := newSecEnv(t, 3)
	in := monitoring.DemoHousehold(1)
	if _, err := e.mon.Create(e.ctx, org.System, in); err != nil {
		t.Fatal(err)
	}
	fullID, fullPhone := in.Members[0].IDNumber, in.Members[0].Phone
	agentID, agent := e.user("agent1", org.RoleAgent, "desk")
	_, looker := e.user("looker", org.RoleDispatcher, "desk", org.PermLookupPII)
	for _, path := range []string{"/api/v1/households?id_number=" + fullID, "/api/v1/households?phone=" + fullPhone,
		"/api/v1/caller-lookup?phone=" + fullPhone, "/api/v1/calls?caller=" + fullPhone,
		"/api/v1/households/export?phone=" + fullPhone} {
		if code, _, raw := e.do(t, agent, "GET", path, nil); code != 403 {
			t.Errorf("agent GET %s: %d %s", path, code, raw)
		}
	}
	for i, path := range []string{"/api/v1/households?id_number=" + fullID, "/api/v1/households?phone=" + fullPhone,
		"/api/v1/caller-lookup?phone=" + fullPhone} {
		code, _, raw := e.do(t, looker, "GET", path, nil)
		if code != 200 || !strings.Contains(raw, in.Number) {
			t.Fatalf("look-up %d: %d %s", i, code, raw)
		}
	}
	if code, m, _ := e.do(t, looker, "GET", "/api/v1/households?phone="+fullPhone, nil); code != 429 || m["code"] != "rate_limited" {
		t.Fatalf("fourth look-up in a minute: %d %v", code, m)
	}
	if n := e.count(`SELECT count(*) FROM security_audit WHERE kind = 'pii_lookup' AND actor_username = 'looker'`); n != 3 {
		t.Fatalf("%d look-ups audited, want 3", n)
	}
	if n := e.count(`SELECT count(*) FROM security_audit WHERE detail::text LIKE '%' || $1 || '%'`, fullPhone); n != 0 {
		t.Fatal("the audit log holds a full number")
	}

	// The agent on a live call asks through the call: the number comes from the call.
	call, err := e.tel.StartCall(e.ctx, telephony.CallStart{SIPCallID: "live-1", Trunk: "12345", Caller: fullPhone, OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/calls/%d/caller-lookup", call)
	if code, _, raw := e.do(t, agent, "GET", path, nil); code != 403 {
		t.Fatalf("lookup on a call the agent is not on: %d %s", code, raw)
	}
	e.f.db.Exec(e.ctx, `UPDATE calls SET agent_id = $1 WHERE id = $2`, int64(agentID), int64(call))
	code, _, raw := e.do(t, agent, "GET", path, nil)
	if code != 200 || !strings.Contains(raw, in.Number) || strings.Contains(raw, fullPhone) {
		t.Fatalf("lookup of the live call's caller: %d %s", code, raw)
	}
	e.f.db.Exec(e.ctx, `UPDATE calls SET ended_at = now() WHERE id = $1`, int64(call))
	if code, _, _ := e.do(t, agent, "GET", path, nil); code != 409 {
		t.Fatalf("lookup after the call ended: %d", code)
	}
}

// Medium: callback tasks are masked like CDRs; linking a call needs the right to see the call.
func TestCallbacksMaskedAndCallLinking(t *testing.T) {
	e := newSecEnv(t, 30)
	agentID, agent := e.user("agent1", org.RoleAgent, "desk")
	_, head := e.user("heshanhead", org.RoleHead, "430903")
	call, err := e.tel.StartCall(e.ctx, telephony.CallStart{SIPCallID: "c-1", Trunk: "12345", Caller: "13812345678", OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.db.Exec(e.ctx, `UPDATE calls SET agent_id = $1 WHERE id = $2`, int64(agentID), int64(call)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.db.Exec(e.ctx, `INSERT INTO callback_tasks (caller, reason, call_id) VALUES ('13812345678', 'abandoned', $1)`, int64(call)); err != nil {
		t.Fatal(err)
	}
	code, _, raw := e.do(t, agent, "GET", "/api/v1/callbacks", nil)
	if code != 200 || strings.Contains(raw, "13812345678") || !strings.Contains(raw, "138****5678") {
		t.Fatalf("callbacks: %d %s", code, raw)
	}
	// The head's own ticket.
	e.f.db.Exec(e.ctx, `INSERT INTO households (id, number, county_code, township_code, head_name, monitoring_type)
		VALUES (5, 'T5', '430903', '430903001', '户主', 'marginal')`)
	var tk ticketing.Ticket
	if err := e.f.call(agent, "POST", "/api/v1/tickets", map[string]any{"source": "phone", "region_code": "430903", "kind": "help",
		"category": "monitoring_help", "household_id": 5, "content": "求助", "dispatch": true}, nil, &struct {
		Ticket *ticketing.Ticket
	}{&tk}); err != 201 {
		t.Fatalf("create: %d", err)
	}
	if code, _, raw := e.do(t, head, "PUT", fmt.Sprintf("/api/v1/calls/%d/ticket", call), map[string]any{"ticket_id": tk.ID}); code != 403 {
		t.Fatalf("a head links someone else's call to his ticket: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, agent, "PUT", fmt.Sprintf("/api/v1/calls/%d/ticket", call), map[string]any{"ticket_id": tk.ID}); code != 200 {
		t.Fatalf("the agent links its call: %d %s", code, raw)
	}
}

// Medium/Low: NUL bytes are a 400 anywhere (login and the public query included), never a 500; a wrong method is
// a JSON 405; unknown filters, out-of-range positions and sub-floor reclaims are 400.
func TestBadInputIsA4xx(t *testing.T) {
	e := newSecEnv(t, 30)
	_, admin := e.user("admin1", org.RoleAdmin, "430000")
	_, staff := e.user("heshan1", org.RoleStaff, "430903")
	for _, c := range []struct {
		tok, method, path string
		body              any
		want              int
	}{
		{"", "POST", "/api/v1/tokens", `{"username":"ad\u0000min","password":"x"}`, 400},
		{"", "GET", "/api/v1/public/tickets/A%00B?code=123456", nil, 400},
		{"", "GET", "/api/v1/public/tickets/AB?code=12%0056", nil, 400},
		{admin, "GET", "/api/v1/households?name=%00", nil, 400},
		{admin, "GET", "/api/v1/tickets?q=a%00b", nil, 400},
		{admin, "POST", "/api/v1/tickets", `{"source":"phone","kind":"consultation","category":"policy_question","content":"a\u0000b"}`, 400},
		{admin, "DELETE", "/api/v1/tickets/1", nil, 405},
		{admin, "PATCH", "/api/v1/households", nil, 405},
		{admin, "GET", "/api/v1/tickets?status=gone", nil, 400},
		{admin, "GET", "/api/v1/tickets?kind=gone", nil, 400},
		{admin, "POST", "/api/v1/routing-rules", map[string]any{"name": "x", "unit_code": "desk", "position": 1 << 40}, 400},
		{staff, "POST", "/api/v1/queues/1/reclaim?min_idle=0s", nil, 400},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, bodyOf(c.body))
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %s, want %d JSON", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
		}
		if c.want == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

func bodyOf(b any) *strings.Reader {
	switch v := b.(type) {
	case nil:
		return strings.NewReader("")
	case string:
		return strings.NewReader(v)
	default:
		return strings.NewReader(mustJSON(v))
	}
}

// Low: a unit's queue is listed only to its own users; an Idempotency-Key reused with another body is a 422.
func TestQueuesAndIdempotencyOverHTTP(t *testing.T) {
	e := newSecEnv(t, 30)
	_, staff := e.user("heshan1", org.RoleStaff, "430903")
	_, agent := e.user("agent1", org.RoleAgent, "desk")
	desk, _ := org.UnitByCode(e.ctx, e.f.db, "desk")
	if code, _, raw := e.do(t, staff, "GET", fmt.Sprintf("/api/v1/queues/%d", desk.ID), nil); code != 403 {
		t.Fatalf("heshan lists the desk's queue: %d %s", code, raw)
	}
	body := map[string]any{"source": "phone", "kind": "consultation", "category": "policy_question", "content": "政策咨询"}
	hdr := map[string]string{"Idempotency-Key": "k-9"}
	if code := e.f.call(agent, "POST", "/api/v1/tickets", body, hdr, nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	body["content"] = "别的事"
	var m map[string]any
	if code := e.f.call(agent, "POST", "/api/v1/tickets", body, hdr, &m); code != 422 || m["code"] != "idempotency_key_reused" {
		t.Fatalf("reused key: %d %v", code, m)
	}
}

// Also: a file with unknown columns is refused with 422 naming the nearest known column, and accepted when
// confirmed.
func TestImportUnknownColumnsOverHTTP(t *testing.T) {
	e := newSecEnv(t, 30)
	_, admin := e.user("admin1", org.RoleAdmin, "430000")
	file := "household_number,township_code,monitoring_type,phone,member_name,relation,id_number\n" +
		"A1,430903001,边缘易致贫户,13800001111,甲,户主,11010519491231002X\n"
	code, m, raw := e.do(t, admin, "POST", "/api/v1/households/import", file)
	if code != 422 || m["code"] != "unknown_columns" || !strings.Contains(raw, "did you mean phones") {
		t.Fatalf("unknown column: %d %s", code, raw)
	}
	if code, m, raw := e.do(t, admin, "POST", "/api/v1/households/import?accept_unknown_columns=1", file); code != 200 || m["created"] != float64(1) {
		t.Fatalf("confirmed: %d %s", code, raw)
	}
}

// Also: the security audit log: logins with the source address, failed logins, refusals; admins read it; the
// database refuses to change or delete it except through the retention purge of old rows.
func TestSecurityAuditLog(t *testing.T) {
	e := newSecEnv(t, 30)
	_, admin := e.user("admin1", org.RoleAdmin, "430000")
	_, agent := e.user("agent1", org.RoleAgent, "desk")
	if code := e.f.call("", "POST", "/api/v1/tokens", map[string]string{"username": "agent1", "password": "wrong-password"}, nil, nil); code != 401 {
		t.Fatalf("bad login: %d", code)
	}
	if code := e.f.call("", "POST", "/api/v1/tokens", map[string]string{"username": "agent1", "password": "secret-password"}, nil, nil); code != 201 {
		t.Fatalf("login: %d", code)
	}
	if code, _, _ := e.do(t, agent, "GET", "/api/v1/security-audit", nil); code != 403 {
		t.Fatalf("an agent reads the audit log: %d", code)
	}
	var out struct{ Entries []org.AuditEntry }
	if code := e.f.call(admin, "GET", "/api/v1/security-audit?limit=50", nil, nil, &out); code != 200 {
		t.Fatalf("audit API: %d", code)
	}
	kinds := map[org.AuditKind]org.AuditEntry{}
	for _, x := range out.Entries {
		kinds[x.Kind] = x
	}
	if x := kinds[org.AuditLoginFailed]; x.ActorUsername != "agent1" || x.SourceAddr != "127.0.0.1" {
		t.Errorf("failed login: %+v", x)
	}
	if x := kinds[org.AuditLogin]; x.ActorUsername != "agent1" || x.ActorID == 0 || x.SourceAddr == "" {
		t.Errorf("login: %+v", x)
	}
	if x := kinds[org.AuditForbidden]; x.ActorUsername != "agent1" || x.Object != "GET /api/v1/security-audit" {
		t.Errorf("refusal: %+v", x)
	}
	if code := e.f.call(admin, "GET", "/api/v1/security-audit?kind=login_failed", nil, nil, &out); code != 200 || len(out.Entries) != 1 {
		t.Errorf("filter by kind: %d %+v", code, out.Entries)
	}
	for _, sql := range []string{`UPDATE security_audit SET actor_username = 'x'`, `DELETE FROM security_audit`,
		`TRUNCATE security_audit`, `SELECT security_audit_purge(now())`} {
		if _, err := e.f.db.Exec(e.ctx, sql); err == nil {
			t.Errorf("%s was allowed", sql)
		}
	}
	// An old row leaves only through the purge.
	if n, err := org.PurgeAudit(e.ctx, e.f.db, 31*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("purge of recent rows: %d %v", n, err)
	}
}

// The bearer token of the request is revoked at once, here and (through Redis) in every other process's cache.
func TestTokenRevocation(t *testing.T) {
	e := newSecEnv(t, 30)
	_, tok := e.user("agent1", org.RoleAgent, "desk")
	if code, _, _ := e.do(t, tok, "GET", "/api/v1/me", nil); code != 200 {
		t.Fatal("me")
	}
	if code, _, raw := e.do(t, tok, "DELETE", "/api/v1/tokens/current", nil); code != 204 {
		t.Fatalf("revoke: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, tok, "GET", "/api/v1/me", nil); code != 401 {
		t.Fatalf("revoked token still works: %d", code)
	}
	if n := e.count(`SELECT count(*) FROM security_audit WHERE kind = 'logout' AND actor_username = 'agent1'`); n != 1 {
		t.Fatalf("sign-out audited %d times", n)
	}

	// Another process: its cache learns of the revocation from the channel.
	_, tok2 := e.user("agent2", org.RoleAgent, "desk")
	if _, err := org.ActorByToken(e.ctx, e.f.db, tok2); err != nil { // now cached
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- org.WatchRevocations(ctx, e.f.rdb, e.f.prefix+"other", slogDiscard()) }()
	defer func() { cancel(); <-done }()
	// Revoke as another process would: the row, then the announcement (this process's cache is not touched).
	e.f.db.Exec(e.ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE username = 'agent2')`)
	if _, err := org.ActorByToken(e.ctx, e.f.db, tok2); err != nil {
		t.Fatalf("precondition: the cached token still resolves before the announcement: %v", err)
	}
	for i := 0; ; i++ {
		// Publish until the watcher has subscribed and dropped the entry.
		e.f.rdb.Publish(e.ctx, e.f.prefix+"other", tokenHashHex(tok2))
		if _, err := org.ActorByToken(e.ctx, e.f.db, tok2); err != nil {
			break
		}
		if i > 200 {
			t.Fatal("the announcement never reached the cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func tokenHashHex(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

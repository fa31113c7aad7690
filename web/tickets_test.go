package web

import (
	"bytes"
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
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

type apiFixture struct {
	t      *testing.T
	srv    *httptest.Server
	db     *pgxpool.Pool
	rdb    *redis.Client
	prefix string
}

func newAPI(t *testing.T) *apiFixture {
	return newAPIWith(t, Limits{})
}

func newAPIWith(t *testing.T, lim Limits) *apiFixture {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	svc := ticketing.NewService(db, ticketing.Options{})
	// The per-minute limits count in a minute that does not end during the test.
	clock := func() time.Time { return time.Date(2026, 11, 30, 10, 0, 30, 0, time.UTC) }
	h := New(Deps{DB: db, Redis: rdb, Limits: lim, Now: clock, Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix, PublicLimit: 5}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// Household 5 of 赫山区, which tickets of these tests name (tickets.household_id must exist).
	if _, err := db.Exec(context.Background(), `INSERT INTO households (id, number, county_code, township_code, head_name, monitoring_type)
		VALUES (5, 'T5', '430903', '430903001', '测试户主', 'marginal')`); err != nil {
		t.Fatal(err)
	}
	return &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}
}

// user creates a user and logs in through POST /api/v1/tokens.
func (f *apiFixture) user(name string, role org.Role, unitCode string) string {
	f.t.Helper()
	ctx := context.Background()
	u, err := org.UnitByCode(ctx, f.db, unitCode)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := org.CreateUser(ctx, f.db, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID}); err != nil {
		f.t.Fatal(err)
	}
	var out struct{ Token string }
	if code := f.call("", "POST", "/api/v1/tokens", map[string]string{"username": name, "password": "password1"}, nil, &out); code != 201 {
		f.t.Fatalf("login %s: %d", name, code)
	}
	return out.Token
}

func (f *apiFixture) call(token, method, path string, body any, hdr map[string]string, out any) int {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type viewResp struct {
	Ticket     ticketing.Ticket
	Allowed    []string `json:"allowed_actions"`
	Duplicates []ticketing.Ticket
}

func (f *apiFixture) events(id org.TicketID) int {
	var n int
	f.db.QueryRow(context.Background(), `SELECT count(*) FROM ticket_events WHERE ticket_id = $1`, int64(id)).Scan(&n)
	return n
}

func TestTicketAPI(t *testing.T) {
	f := newAPI(t)
	agent := f.user("agent1", org.RoleAgent, "desk")
	staff := f.user("heshan1", org.RoleStaff, "430903")
	hh := int64(5)
	body := map[string]any{"source": "phone", "caller_name": "王五", "caller_phone": "+86 138-0000-1111", "region_code": "430903",
		"household_id": hh, "kind": "help", "category": "monitoring_help", "content": "房屋漏雨,需要危房改造"}

	var v viewResp
	if code := f.call(agent, "POST", "/api/v1/tickets", body, map[string]string{"Idempotency-Key": "k1"}, &v); code != 201 {
		t.Fatalf("create: %d", code)
	}
	first := v.Ticket
	if first.QueryCode == "" || first.CallerPhone != "138****1111" || first.Status != "new" {
		t.Fatalf("created %+v", first)
	}
	var again viewResp
	if code := f.call(agent, "POST", "/api/v1/tickets", body, map[string]string{"Idempotency-Key": "k1"}, &again); code != 200 || again.Ticket.ID != first.ID {
		t.Fatalf("retried create: %d ticket %d, want 200 and %d", code, again.Ticket.ID, first.ID)
	}
	var second viewResp
	f.call(agent, "POST", "/api/v1/tickets", body, map[string]string{"Idempotency-Key": "k2"}, &second)
	if len(second.Duplicates) != 1 || second.Duplicates[0].ID != first.ID {
		t.Fatalf("duplicate suggestions %v", second.Duplicates)
	}

	var e apiError
	// Unknown ticket.
	if code := f.call(agent, "GET", "/api/v1/tickets/999999", nil, nil, &e); code != 404 || e.Code != "not_found" {
		t.Fatalf("unknown ticket: %d %+v", code, e)
	}
	if code := f.call(agent, "POST", "/api/v1/tickets/999999/dispatch", map[string]any{"version": 1}, nil, &e); code != 404 {
		t.Fatalf("action on an unknown ticket: %d %+v", code, e)
	}
	// Another unit's ticket: 403 that tells nothing of its state, version or allowed actions.
	e = apiError{}
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/sign", first.ID), map[string]any{"version": first.Version + 7}, nil, &e); code != 403 ||
		e.Code != "forbidden" || len(e.Allowed) != 0 || strings.Contains(e.Message, "new") || strings.Contains(e.Message, "version") {
		t.Fatalf("sign another unit's ticket: %d %+v", code, e)
	}
	// Action not allowed in this state: 409 with the allowed actions.
	e = apiError{}
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/start_callback", first.ID), map[string]any{"version": first.Version}, nil, &e); code != 409 || e.Code != "action_not_allowed" {
		t.Fatalf("start a callback of a new ticket: %d %+v", code, e)
	}
	// Role not allowed: 403 with what the role may do.
	e = apiError{}
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/reply", first.ID), map[string]any{"version": first.Version, "reply": "x"}, nil, &e); code != 403 || e.Code != "role_not_allowed" || !contains(e.Allowed, "dispatch") {
		t.Fatalf("agent replies: %d %+v", code, e)
	}
	// Malformed, unknown field, oversized, missing version.
	for _, tc := range []struct {
		body any
		code int
	}{
		{"{not json", 400},
		{map[string]any{"version": 1, "colour": "red"}, 400},
		{`{"version": 1, "note": "` + strings.Repeat("x", 2<<20) + `"}`, 413},
		{map[string]any{"note": "x"}, 400},
	} {
		if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/dispatch", first.ID), tc.body, nil, nil); code != tc.code {
			t.Errorf("bad body: %d, want %d", code, tc.code)
		}
	}
	if code := f.call(agent, "POST", "/api/v1/tickets", map[string]any{"kind": "gossip", "content": ""}, nil, &e); code != 400 || e.Fields["kind"] == "" || e.Fields["content"] == "" || e.Fields["category"] == "" {
		t.Fatalf("invalid create: %d %+v", code, e)
	}
	if n := f.events(first.ID); n != 1 {
		t.Fatalf("refused requests wrote %d events", n)
	}
	// Dispatch, then a stale version is a conflict.
	var d viewResp
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/dispatch", first.ID), map[string]any{"version": first.Version}, nil, &d); code != 200 || d.Ticket.Status != "dispatched" {
		t.Fatalf("dispatch: %d %+v", code, d.Ticket)
	}
	e = apiError{}
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/sign", first.ID), map[string]any{"version": first.Version}, nil, &e); code != 409 || e.Code != "conflict" {
		t.Fatalf("stale version: %d %+v", code, e)
	}
	var sv viewResp
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/sign", first.ID), map[string]any{"version": d.Ticket.Version}, nil, &sv); code != 200 || !contains(sv.Allowed, "reply") {
		t.Fatalf("sign: %d %+v", code, sv)
	}
	var rv viewResp
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/reply", first.ID), map[string]any{"version": sv.Ticket.Version, "reply": "已纳入危房改造计划"}, nil, &rv); code != 200 {
		t.Fatalf("reply: %d", code)
	}
	// History and lists.
	var evs struct{ Events []ticketing.Event }
	f.call(staff, "GET", fmt.Sprintf("/api/v1/tickets/%d/events", first.ID), nil, nil, &evs)
	if len(evs.Events) != 4 || evs.Events[3].Action != "reply" {
		t.Fatalf("events %+v", evs.Events)
	}
	var list struct {
		Tickets    []viewResp
		NextBefore int64 `json:"next_before"`
	}
	f.call(agent, "GET", "/api/v1/tickets?status=new&limit=1", nil, nil, &list)
	if len(list.Tickets) != 1 || list.Tickets[0].Ticket.ID != second.Ticket.ID || list.NextBefore != 0 {
		t.Fatalf("list new: %+v", list)
	}
	f.call(agent, "GET", "/api/v1/tickets?region=4309&q=危房", nil, nil, &list)
	if len(list.Tickets) != 2 {
		t.Fatalf("list by region and text: %d", len(list.Tickets))
	}
	if code := f.call(agent, "GET", "/api/v1/tickets?overdue=maybe", nil, nil, &e); code != 400 || e.Fields["overdue"] == "" {
		t.Fatalf("bad filter: %d %+v", code, e)
	}

	// Public progress: number + code, no personal data, rate limited.
	var p map[string]any
	path := fmt.Sprintf("/api/v1/public/tickets/%s?code=%s", first.Number, first.QueryCode)
	if code := f.call("", "GET", path, nil, nil, &p); code != 200 || p["status"] != "replied" {
		t.Fatalf("progress: %d %v", code, p)
	}
	raw, _ := json.Marshal(p)
	// Only these fields may be shown; timestamps are dropped before looking for personal data, since their
	// digits could match a fragment of a phone number by chance.
	allowed := map[string]bool{"number": true, "status": true, "kind": true, "category": true, "created_at": true, "closed_at": true, "replies": true,
		"suspended": true, "state_text": true} // 挂起中 and the state in words (issue 11)
	for k := range p {
		if !allowed[k] {
			t.Fatalf("progress shows field %q: %s", k, raw)
		}
	}
	delete(p, "created_at")
	delete(p, "closed_at")
	for _, r := range p["replies"].([]any) {
		delete(r.(map[string]any), "at")
	}
	stripped, _ := json.Marshal(p)
	for _, secret := range []string{"王五", "1111", "138", "430903", "房屋漏雨"} {
		if strings.Contains(string(stripped), secret) {
			t.Fatalf("progress shows personal data %q: %s", secret, raw)
		}
	}
	if !strings.Contains(string(raw), "已纳入危房改造计划") {
		t.Fatalf("progress lacks the reply: %s", raw)
	}
	wrong := "000000"
	if first.QueryCode == wrong {
		wrong = "111111"
	}
	if code := f.call("", "GET", fmt.Sprintf("/api/v1/public/tickets/%s?code=%s", first.Number, wrong), nil, nil, nil); code != 404 {
		t.Fatalf("wrong code: %d", code)
	}
	limited := 0
	for range 6 {
		if f.call("", "GET", path, nil, nil, nil) == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the public query is not rate-limited")
	}
	// Unauthenticated API calls are refused.
	if code := f.call("", "GET", "/api/v1/tickets", nil, nil, nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestDirectoryAndQueueAPI(t *testing.T) {
	f := newAPI(t)
	admin := f.user("admin", org.RoleAdmin, "430000")
	agent := f.user("agent1", org.RoleAgent, "desk")
	staff := f.user("policy1", org.RoleStaff, "div-policy")
	// Categories are editable by admins only.
	var cats struct{ Categories []ticketing.Category }
	f.call(agent, "GET", "/api/v1/categories", nil, nil, &cats)
	codes := map[string]bool{}
	for _, c := range cats.Categories {
		codes[c.Code] = true
	}
	if !codes["monitoring_help"] || !codes["monitoring_verify"] || len(cats.Categories) < 15 {
		t.Fatalf("seeded categories %v", codes)
	}
	days := 5
	cat := map[string]any{"name": "农村低保政策咨询", "lead_unit_code": "div-policy", "reply_days": days, "active": true}
	if code := f.call(agent, "PUT", "/api/v1/categories/dibao_question", cat, nil, nil); code != 403 {
		t.Fatalf("agent edits a category: %d", code)
	}
	if code := f.call(admin, "PUT", "/api/v1/categories/dibao_question", cat, nil, nil); code != 200 {
		t.Fatalf("admin adds a category: %d", code)
	}
	var e apiError
	if code := f.call(admin, "PUT", "/api/v1/categories/Bad-Code", cat, nil, &e); code != 400 || e.Fields["code"] == "" {
		t.Fatalf("bad category code: %d %+v", code, e)
	}
	// A rule for it, through the API.
	var rule ticketing.Rule
	if code := f.call(admin, "POST", "/api/v1/routing-rules", map[string]any{"position": 5, "name": "低保咨询 → 政策法规处",
		"categories": []string{"dibao_question"}, "unit_code": "div-policy"}, nil, &rule); code != 201 || rule.Version != 1 {
		t.Fatalf("create rule: %d %+v", code, rule)
	}
	if code := f.call(admin, "PUT", fmt.Sprintf("/api/v1/routing-rules/%d", rule.ID), map[string]any{"position": 5, "name": "x",
		"unit_code": "div-policy", "categories": []string{"dibao_question"}, "version": 7}, nil, &e); code != 409 {
		t.Fatalf("stale rule update: %d", code)
	}
	// A ticket in the new category lands in the policy division's queue; its staff claim and sign it.
	var v viewResp
	f.call(agent, "POST", "/api/v1/tickets", map[string]any{"kind": "consultation", "category": "dibao_question", "content": "低保怎么申请", "dispatch": true}, nil, &v)
	if v.Ticket.Status != "dispatched" || v.Ticket.RouteRuleID == nil || *v.Ticket.RouteRuleID != rule.ID {
		t.Fatalf("ticket %+v", v.Ticket)
	}
	if !v.Ticket.ReplyBy.Equal(ticketing.NewService(f.db, ticketing.Options{}).Calendar().AddDays(*v.Ticket.DispatchedAt, days)) {
		t.Fatalf("the category's reply_days not used: reply_by %v", v.Ticket.ReplyBy)
	}
	relay := ticketing.NewRelay(f.db, f.rdb, ticketing.RelayOptions{Prefix: f.prefix})
	if _, err := relay.PublishOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	unit := v.Ticket.LeadUnitID
	var claimed struct {
		Entry   ticketing.QueueEntry
		Ticket  ticketing.Ticket
		Allowed []string `json:"allowed_actions"`
	}
	if code := f.call(agent, "POST", fmt.Sprintf("/api/v1/queues/%d/claim", unit), nil, nil, nil); code != 403 {
		t.Fatalf("agent claims from a division queue: %d", code)
	}
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/queues/%d/claim", unit), nil, nil, &claimed); code != 200 || claimed.Ticket.ID != v.Ticket.ID || !contains(claimed.Allowed, "sign") {
		t.Fatalf("claim: %d %+v", code, claimed)
	}
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/queues/%d/claim", unit), nil, nil, &e); code != 404 {
		t.Fatalf("claim from an empty queue: %d", code)
	}
	if code := f.call(staff, "POST", fmt.Sprintf("/api/v1/tickets/%d/sign", v.Ticket.ID), map[string]any{"version": claimed.Ticket.Version}, nil, nil); code != 200 {
		t.Fatalf("sign: %d", code)
	}
	relay.PublishOnce(context.Background())
	var entries struct{ Entries []ticketing.QueueEntry }
	f.call(staff, "GET", fmt.Sprintf("/api/v1/queues/%d", unit), nil, nil, &entries)
	if len(entries.Entries) != 0 {
		t.Fatalf("queue after sign: %+v", entries.Entries)
	}
}

// Wrong passwords are capped per username and address; then even the right one waits (Retry-After), and
// other users are not affected. The count is not bucketed by the clock's minute, so it holds whenever it runs.
func TestLoginFailuresAreCapped(t *testing.T) {
	f := newAPI(t)
	f.user("guarded", org.RoleAgent, org.CodeDesk)
	const maxLoginFailures = 10 // LoginLimits default
	for i := 0; i < maxLoginFailures; i++ {
		if code := f.call("", "POST", "/api/v1/tokens", map[string]string{"username": "guarded", "password": "wrong-guess"}, nil, nil); code != 401 {
			t.Fatalf("wrong password %d: %d, want 401", i, code)
		}
	}
	if code := f.call("", "POST", "/api/v1/tokens", map[string]string{"username": "guarded", "password": "password1"}, nil, nil); code != 429 {
		t.Fatalf("after %d failures: %d, want 429", maxLoginFailures, code)
	}
	f.user("other", org.RoleAgent, org.CodeDesk) // logs in fine
}

// A list request with several malformed parameters is answered once, naming every one of them.
func TestListNamesEveryBadParameter(t *testing.T) {
	f := newAPI(t)
	agent := f.user("agent1", org.RoleAgent, "desk")
	var e apiError
	code := f.call(agent, "GET", "/api/v1/tickets?limit=x&overdue=maybe&from=yesterday&to=2026-11-30", nil, nil, &e)
	if code != 400 || e.Code != "invalid" || len(e.Fields) != 3 || e.Fields["limit"] == "" || e.Fields["overdue"] == "" || e.Fields["from"] == "" {
		t.Fatalf("%d %+v, want 400 naming limit, overdue and from (not to)", code, e)
	}
}

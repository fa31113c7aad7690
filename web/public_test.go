package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/blob"
	"hotline/ticketing/org"
)

func TestClientKey(t *testing.T) {
	for _, c := range []struct {
		name string
		peer string
		xff  []string
		hops int
		want string
	}{
		{"peer v4, no proxy", "203.0.113.7:5000", nil, 0, "203.0.113.7"},
		{"header ignored without trusted hops", "203.0.113.7:5000", []string{"198.51.100.1"}, 0, "203.0.113.7"},
		{"one proxy: the entry it appended", "10.0.0.2:80", []string{"198.51.100.1"}, 1, "198.51.100.1"},
		{"one proxy: the client's own entries are not trusted", "10.0.0.2:80", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, 1, "198.51.100.1"},
		{"two proxies", "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.1, 10.0.0.9"}, 2, "198.51.100.1"},
		{"two proxies, header lines joined", "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.1", "10.0.0.9"}, 2, "198.51.100.1"},
		{"fewer entries than hops: the leftmost", "10.0.0.2:80", []string{"198.51.100.1"}, 2, "198.51.100.1"},
		{"no header behind a proxy: the peer", "10.0.0.2:80", nil, 1, "10.0.0.2"},
		{"malformed trusted entry: the peer", "10.0.0.2:80", []string{"1.1.1.1, garbage"}, 1, "10.0.0.2"},
		{"v6 peer counts per /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", nil, 0, "2001:db8:1:2::/64"},
		{"v6 from the proxy, /64", "10.0.0.2:80", []string{"2001:db8:1:2::99"}, 1, "2001:db8:1:2::/64"},
		{"v6 with port in brackets", "10.0.0.2:80", []string{"[2001:db8:1:2::99]:1234"}, 1, "2001:db8:1:2::/64"},
		{"v4-mapped v6 is v4", "[::ffff:203.0.113.7]:1", nil, 0, "203.0.113.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientKey(r, c.hops); got != c.want {
				t.Fatalf("clientKey = %q, want %q", got, c.want)
			}
		})
	}
	// Two addresses of one /64 are one client; of two /64s, two.
	a, b, other := httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil)
	a.RemoteAddr, b.RemoteAddr, other.RemoteAddr = "[2001:db8::1]:1", "[2001:db8::ffff:1]:1", "[2001:db8:0:1::1]:1"
	if clientKey(a, 0) != clientKey(b, 0) || clientKey(a, 0) == clientKey(other, 0) {
		t.Fatalf("/64: %s %s %s", clientKey(a, 0), clientKey(b, 0), clientKey(other, 0))
	}
}

func TestPowSolved(t *testing.T) {
	n := 0
	for !powSolved("abc", strconv.Itoa(n), 8) {
		n++
	}
	if !powSolved("abc", strconv.Itoa(n), 8) || powSolved("abd", strconv.Itoa(n), 8) && powSolved("abd", strconv.Itoa(n), 16) {
		t.Fatal("pow")
	}
	if powSolved("abc", "x", 256) {
		t.Fatal("256 zero bits")
	}
}

// publicFixture is a server with the public channels, its clock fixed inside one minute and one hour.
func newPublicAPI(t *testing.T, pub PublicLimits) *apiFixture {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	svc := ticketing.NewService(db, ticketing.Options{})
	clock := func() time.Time { return time.Date(2026, 11, 30, 10, 0, 30, 0, time.UTC) }
	h := New(Deps{DB: db, Redis: rdb, Now: clock, Public: pub,
		Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix, PublicLimit: 20}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}
}

// solve asks for a challenge and solves it as the page does.
func (f *apiFixture) solve(hdr map[string]string) (string, string) {
	f.t.Helper()
	var c struct {
		Challenge string
		Bits      int
	}
	if code := f.call("", "POST", "/api/v1/public/challenges", nil, hdr, &c); code != 201 {
		f.t.Fatalf("challenge: %d", code)
	}
	n := 0
	for !powSolved(c.Challenge, strconv.Itoa(n), c.Bits) {
		n++
	}
	return c.Challenge, strconv.Itoa(n)
}

func publicBody(challenge, nonce string) map[string]string {
	return map[string]string{"kind": "help", "category": "three_guarantees", "region_code": "430903001",
		"content": "村里自来水停了三天，老人取水困难。", "phone": "13807370001", "name": "李女士", "challenge": challenge, "nonce": nonce}
}

// TestPublicSubmit: the web form's path from challenge to a routed web ticket to the progress query, and what
// refuses automation: an unsolved or reused challenge, the per-client limit (per /64, behind the trusted proxy)
// and the global ceiling.
func TestPublicSubmit(t *testing.T) {
	f := newPublicAPI(t, PublicLimits{TrustedHops: 1, Submit: 2, Global: 30, PowBits: 10})
	client := map[string]string{"X-Forwarded-For": "6.6.6.6, 2001:db8:aa:bb::1"}
	ch, nonce := f.solve(client)
	var got struct {
		Number    string `json:"number"`
		QueryCode string `json:"query_code"`
		Status    string `json:"status"`
	}
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), client, &got); code != 201 {
		t.Fatalf("submit: %d %+v", code, got)
	}
	if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{10}$`).MatchString(got.QueryCode) || got.Status != "dispatched" {
		t.Fatalf("submitted: %+v", got)
	}
	// A web ticket, routed like any other: 三保障 of 赫山区 goes to the 赫山区 bureau.
	var source, unit string
	if err := f.db.QueryRow(t.Context(), `SELECT t.source, u.code FROM tickets t JOIN units u ON u.id = t.lead_unit_id WHERE t.number = $1`,
		got.Number).Scan(&source, &unit); err != nil || source != "web" || unit != "430903" {
		t.Fatalf("ticket: %v source %q unit %q", err, source, unit)
	}
	// The challenge is spent.
	var e apiError
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), client, &e); code != 400 || e.Fields["challenge"] == "" {
		t.Fatalf("replayed challenge: %d %+v", code, e)
	}
	// A wrong answer.
	ch2, _ := f.solve(client)
	bad := "x"
	for powSolved(ch2, bad, 10) {
		bad += "x"
	}
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch2, bad), client, &e); code != 400 || e.Fields["nonce"] == "" {
		t.Fatalf("wrong nonce: %d %+v", code, e)
	}
	// Bad fields come back together.
	body := publicBody("c", "1")
	body["region_code"], body["phone"], body["content"] = "430903", "0737123", "短"
	if code := f.call("", "POST", "/api/v1/public/tickets", body, client, &e); code != 400 ||
		e.Fields["region_code"] == "" || e.Fields["phone"] == "" || e.Fields["content"] == "" {
		t.Fatalf("bad fields: %d %+v", code, e)
	}
	// Progress by number and code, typed loosely (lower case, dashes).
	loose := strings.ToLower(got.QueryCode[:5] + "-" + got.QueryCode[5:])
	var p map[string]any
	if code := f.call("", "GET", "/api/v1/public/tickets/"+got.Number+"?code="+loose, nil, client, &p); code != 200 || p["status"] != "dispatched" {
		t.Fatalf("progress: %d %v", code, p)
	}

	// The second submission of this /64 in the hour is allowed (limit 2), the third is not — from another
	// address of the same /64 too; another /64 still may.
	ch, nonce = f.solve(client)
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), client, nil); code != 201 {
		t.Fatalf("second: %d", code)
	}
	sameNet := map[string]string{"X-Forwarded-For": "2001:db8:aa:bb:ffff::2"}
	ch, nonce = f.solve(sameNet)
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), sameNet, &e); code != 429 || e.Code != "rate_limited" {
		t.Fatalf("third from the /64: %d %+v", code, e)
	}
	otherNet := map[string]string{"X-Forwarded-For": "2001:db8:aa:bc::1"}
	ch, nonce = f.solve(otherNet)
	if code := f.call("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), otherNet, nil); code != 201 {
		t.Fatalf("another /64: %d", code)
	}
	// The global ceiling (30 per minute; 9 public requests have counted so far: 5 challenges, 3 accepted
	// submissions, 1 query — refused ones are not counted against it): many addresses
	// together are refused once it is reached, each well under its own limit.
	refused := 0
	for i := range 30 {
		hdr := map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}
		if f.call("", "GET", "/api/v1/public/tickets/"+got.Number+"?code="+got.QueryCode, nil, hdr, nil) == 429 {
			refused++
		}
	}
	if refused != 9 {
		t.Fatalf("global ceiling: %d of 30 refused, want 9", refused)
	}
}

// o311 posts a form to the Open311 endpoint.
func (f *apiFixture) o311(method, path string, form url.Values) (int, []byte, *http.Request, *http.Response) {
	f.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp.StatusCode, body, req, resp
}

// keysOf returns the keys of each object of a JSON array.
func keysOf(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return out
}

func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %v", what, k, m)
		}
	}
}

// TestOpen311Conformance replays the requests of the GeoReport v2 specification's examples
// (http://wiki.open311.org/GeoReport_v2) with our service codes and checks the answers have the shapes of the
// spec's example answers, including its error format; every JSON answer is also validated against our OpenAPI
// document.
func TestOpen311Conformance(t *testing.T) {
	f := newPublicAPI(t, PublicLimits{})
	v := newOpenAPIValidator(t)
	admin := f.user("admin", org.RoleAdmin, org.CodeBureau)
	var client struct {
		Key string
	}
	if code := f.call(admin, "POST", "/api/v1/open311/clients", map[string]string{"name": "益阳市民通"}, nil, &client); code != 201 || !strings.HasPrefix(client.Key, "o311_") {
		t.Fatalf("client: %d %+v", code, client)
	}
	var stored int
	if err := f.db.QueryRow(t.Context(), `SELECT count(*) FROM open311_clients WHERE key_hash = sha256(convert_to($1, 'UTF8'))
		AND key_prefix = left($1, 11)`, client.Key).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("key stored as its SHA-256: %v %d", err, stored)
	}

	// GET services.json — the spec's example: [{"service_code":001,"service_name":…,"description":…,
	// "metadata":true,"type":"realtime","keywords":…,"group":…}]
	code, body, req, resp := f.o311("GET", "/open311/v2/services.json", nil)
	v.check(req, resp)
	services := keysOf(t, body)
	if code != 200 || len(services) < 5 {
		t.Fatalf("services: %d %s", code, body)
	}
	hasKeys(t, "service", services[0], "service_code", "service_name", "description", "metadata", "type", "keywords", "group")
	for _, s := range services {
		if s["service_code"] == "monitoring_verify" || s["service_code"] == "monitoring_help" {
			t.Fatalf("a private category offered: %v", s)
		}
	}
	// services.xml — <services><service><service_code>…
	code, body, _, _ = f.o311("GET", "/open311/v2/services.xml", nil)
	if code != 200 || !bytes.HasPrefix(body, []byte("<?xml")) || !bytes.Contains(body, []byte("<services><service><service_code>")) {
		t.Fatalf("services.xml: %d %s", code, body)
	}
	// GET services/{code}.json — {"service_code":"DMV66","attributes":[{"variable":true,"code":…,"datatype":
	// "singlevaluelist","required":true,"datatype_description":null,"order":1,"description":…,"values":[{"key":…,"name":…}]}]}
	code, body, req, resp = f.o311("GET", "/open311/v2/services/three_guarantees.json", nil)
	v.check(req, resp)
	var def struct {
		ServiceCode string           `json:"service_code"`
		Attributes  []map[string]any `json:"attributes"`
	}
	if err := json.Unmarshal(body, &def); err != nil || code != 200 || def.ServiceCode != "three_guarantees" || len(def.Attributes) == 0 {
		t.Fatalf("definition: %d %s", code, body)
	}
	hasKeys(t, "attribute", def.Attributes[0], "variable", "code", "datatype", "required", "datatype_description", "order", "description", "values")

	// POST requests.json — the spec's example request, form-encoded, with a phone of ours:
	// api_key=xyz&service_code=001&lat=37.76524078&long=-122.4212043&address_string=1234+5th+street&
	// email=smit333%40sfgov.edu&device_id=tt222111&account_id=123456&first_name=john&last_name=smith&
	// phone=111111111&description=A+large+sinkhole+is+destroying+the+street&media_url=http%3A%2F%2Fexample.com%2Fimage.jpg
	// answered [{"service_request_id":293944,"service_notice":"…","account_id":null}].
	form := url.Values{"api_key": {client.Key}, "service_code": {"three_guarantees"}, "lat": {"28.5539"}, "long": {"112.3286"},
		"address_string": {"赫山区赫山街道龙岭村"}, "email": {"smit333@sfgov.edu"}, "device_id": {"tt222111"}, "account_id": {"123456"},
		"first_name": {"建国"}, "last_name": {"刘"}, "phone": {"13807371234"}, "description": {"村口饮水管道破裂，三天没有自来水"},
		"media_url": {"http://example.com/image.jpg"}, "attribute[region_code]": {"430903001"}}
	code, body, req, resp = f.o311("POST", "/open311/v2/requests.json", form)
	v.check(req, resp)
	posted := keysOf(t, body)
	if code != 201 || len(posted) != 1 {
		t.Fatalf("post: %d %s", code, body)
	}
	hasKeys(t, "post answer", posted[0], "service_request_id", "service_notice", "account_id")
	id, _ := posted[0]["service_request_id"].(string)
	var src, unit, content, caller string
	if err := f.db.QueryRow(t.Context(), `SELECT t.source, u.code, t.content, t.caller_name FROM tickets t JOIN units u ON u.id = t.lead_unit_id
		WHERE t.number = $1`, id).Scan(&src, &unit, &content, &caller); err != nil || src != "api" || unit != "430903" || caller != "刘建国" ||
		strings.Contains(content, "sfgov") || !strings.Contains(content, "example.com/image.jpg") {
		t.Fatalf("ticket: %v %q %q %q %q", err, src, unit, content, caller)
	}

	// Errors: the spec's format [{"code":403,"description":"Invalid api_key"}].
	for _, c := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"api_key": {"o311_wrong"}, "service_code": {"three_guarantees"}, "description": {"x"}, "lat": {"1"}, "long": {"2"}}, 403},
		{url.Values{"service_code": {"three_guarantees"}, "description": {"x"}, "lat": {"1"}, "long": {"2"}}, 403},
		{url.Values{"api_key": {client.Key}, "service_code": {"nope"}, "description": {"x"}}, 400},
		{url.Values{"api_key": {client.Key}, "service_code": {"monitoring_verify"}, "description": {"x"}, "lat": {"1"}, "long": {"2"}}, 400},
	} {
		code, body, req, resp = f.o311("POST", "/open311/v2/requests.json", c.form)
		v.check(req, resp)
		errs := keysOf(t, body)
		if code != c.want || len(errs) != 1 || errs[0]["code"] != float64(c.want) || errs[0]["description"] == "" {
			t.Fatalf("error %v: %d %s", c.form, code, body)
		}
	}
	code, body, _, _ = f.o311("GET", "/open311/v2/services/nope.json", nil)
	if errs := keysOf(t, body); code != 404 || errs[0]["code"] != float64(404) {
		t.Fatalf("unknown service: %d %s", code, body)
	}

	// A confidential report and a private category exist too: the listing shows neither.
	svc := ticketing.NewService(f.db, ticketing.Options{})
	if _, err := svc.Create(t.Context(), org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "匿名", CallerPhone: "13807379999",
		RegionCode: "430903", Kind: ticketing.KindReport, Category: "misconduct_report", Content: "举报村干部截留补贴", Confidential: true, Dispatch: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(t.Context(), org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "王五", CallerPhone: "13807378888",
		RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "家里收入下降", Dispatch: true}); err != nil {
		t.Fatal(err)
	}
	// GET requests.json — [{"service_request_id":638344,"status":"closed","status_notes":…,"service_name":…,
	// "service_code":…,"description":…,"agency_responsible":…,"service_notice":…,"requested_datetime":…,
	// "updated_datetime":…,"expected_datetime":…,"address":…,"address_id":…,"zipcode":…,"lat":…,"long":…,"media_url":…}]
	code, body, req, resp = f.o311("GET", "/open311/v2/requests.json", nil)
	v.check(req, resp)
	list := keysOf(t, body)
	if code != 200 || len(list) != 1 || list[0]["service_request_id"] != id || list[0]["status"] != "open" {
		t.Fatalf("requests: %d %s", code, body)
	}
	hasKeys(t, "request", list[0], "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
		"agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime", "address", "address_id",
		"zipcode", "lat", "long", "media_url")
	for _, secret := range []string{"刘", "1380737", "龙岭", "饮水管道", "example.com", "举报", "王五"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("the public listing shows %q: %s", secret, body)
		}
	}
	if code, body, _, _ = f.o311("GET", "/open311/v2/requests.json?status=closed", nil); code != 200 || string(bytes.TrimSpace(body)) != "[]" {
		t.Fatalf("closed: %d %s", code, body)
	}
	if code, body, _, _ = f.o311("GET", "/open311/v2/requests.json?status=gone", nil); code != 400 || keysOf(t, body)[0]["code"] != float64(400) {
		t.Fatalf("bad status: %d %s", code, body)
	}
	// GET requests/{id}.json — a list of one.
	code, body, req, resp = f.o311("GET", "/open311/v2/requests/"+id+".json", nil)
	v.check(req, resp)
	if one := keysOf(t, body); code != 200 || len(one) != 1 || one[0]["service_request_id"] != id {
		t.Fatalf("one request: %d %s", code, body)
	}
	if code, _, _, _ = f.o311("GET", "/open311/v2/requests/20261130-999999.json", nil); code != 404 {
		t.Fatalf("unknown request: %d", code)
	}
	// A revoked key is refused.
	var cl struct{ Clients []struct{ ID int64 } }
	if code := f.call(admin, "GET", "/api/v1/open311/clients", nil, nil, &cl); code != 200 || len(cl.Clients) != 1 {
		t.Fatalf("clients: %d %+v", code, cl)
	}
	if code := f.call(admin, "DELETE", fmt.Sprintf("/api/v1/open311/clients/%d", cl.Clients[0].ID), nil, nil, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _, _ = f.o311("POST", "/open311/v2/requests.json", form); code != 403 {
		t.Fatalf("revoked key: %d", code)
	}
	// Issuing and revoking the key are in the security audit, and the log filters on each.
	for _, kind := range []string{"georeport_key_created", "georeport_key_revoked"} {
		var out struct {
			Entries []struct{ Kind, Object string }
		}
		obj := fmt.Sprintf("open311_client:%d", cl.Clients[0].ID)
		if code := f.call(admin, "GET", "/api/v1/security-audit?kind="+kind, nil, nil, &out); code != 200 || len(out.Entries) != 1 ||
			out.Entries[0].Object != obj {
			t.Errorf("audit filtered on %s: %d %+v, want the one row of %s", kind, code, out, obj)
		}
	}
	if v.n < 8 {
		t.Fatalf("validated %d answers", v.n)
	}
}

// TestOpenAPIResponses validates answers of real API calls against the document: ticket create, get, list, an
// action, errors of several kinds, the public progress query and the web form.
func TestOpenAPIResponses(t *testing.T) {
	f := newPublicAPI(t, PublicLimits{PowBits: 8})
	v := newOpenAPIValidator(t)
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	do := func(token, method, path string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, f.srv.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw := v.check(req, resp)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		return raw
	}
	var created struct {
		Ticket ticketing.Ticket
	}
	raw := do(agent, "POST", "/api/v1/tickets", map[string]any{"source": "phone", "caller_name": "王五", "caller_phone": "13807371111",
		"region_code": "430903001", "kind": "help", "category": "three_guarantees", "content": "房屋漏雨", "dispatch": true}, 201)
	if err := json.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	tk := created.Ticket
	do(agent, "GET", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), nil, 200)
	do(agent, "GET", "/api/v1/tickets?limit=5", nil, 200)
	do(agent, "GET", fmt.Sprintf("/api/v1/tickets/%d/events", tk.ID), nil, 200)
	do(agent, "POST", fmt.Sprintf("/api/v1/tickets/%d/urge", tk.ID), map[string]any{"version": tk.Version, "note": "催"}, 403)
	do(agent, "GET", "/api/v1/categories", nil, 200)
	do(agent, "GET", "/api/v1/me", nil, 200)
	do(agent, "GET", "/api/v1/regions?parent=430903", nil, 200)
	// Errors: 400 with fields, 401, 404, 405 from the catch-all.
	do(agent, "POST", "/api/v1/tickets", map[string]any{"kind": "nope"}, 400)
	do("", "GET", "/api/v1/tickets", nil, 401)
	do(agent, "GET", "/api/v1/tickets/999999", nil, 404)
	// Public progress: found, and the 404 of a wrong code.
	do("", "GET", "/api/v1/public/tickets/"+tk.Number+"?code="+tk.QueryCode, nil, 200)
	do("", "GET", "/api/v1/public/tickets/"+tk.Number+"?code=0000000000", nil, 404)
	do("", "GET", "/api/v1/public/tickets/"+tk.Number+"?code=12", nil, 400)
	// The web form.
	do("", "GET", "/api/v1/public/form", nil, 200)
	ch, nonce := f.solve(nil)
	do("", "POST", "/api/v1/public/tickets", publicBody(ch, nonce), 201)
	do("", "GET", "/healthz", nil, 200)
	do("", "GET", "/api/v1/openapi.json", nil, 200)
	if v.n < 18 {
		t.Fatalf("validated %d answers", v.n)
	}
	// The integrators' page lists the operations.
	resp, err := http.Get(f.srv.URL + "/api/v1/docs")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("/open311/v2/requests.json")) || !bytes.Contains(page, []byte("/api/v1/tickets/{id}/sign")) {
		t.Fatalf("docs page: %d %.300s", resp.StatusCode, page)
	}
}

// publicMultipart builds a submission with photos: the ticket part first, then one photo part per file.
func publicMultipart(t *testing.T, body map[string]string, photos ...[]byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="ticket"; filename="blob"`)
	h.Set("Content-Type", "application/json")
	pw, _ := mw.CreatePart(h)
	j, _ := json.Marshal(body)
	pw.Write(j)
	for i, p := range photos {
		fw, _ := mw.CreateFormFile("photo", fmt.Sprintf("现场%d.png", i+1))
		fw.Write(p)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// TestPublicSubmitPhotos: photos with a public submission — a PNG is attached to the routed ticket (its unit's
// staff see it through the attachment API, with the attach event); a PDF or a program is refused 415 naming the
// photo field, a fourth photo 400, a photo without a solved challenge 400 — and in each refusal no ticket is
// created and no stored byte is left behind.
func TestPublicSubmitPhotos(t *testing.T) {
	f := newPublicAPI(t, PublicLimits{TrustedHops: 1, Submit: 20, Global: 100, PowBits: 8})
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := ticketing.NewService(f.db, ticketing.Options{})
	att := attach.New(attach.Options{DB: f.db, Store: store, Tickets: svc, MaxBytes: 100 << 10})
	clock := func() time.Time { return time.Date(2026, 11, 30, 10, 0, 30, 0, time.UTC) }
	f.srv.Config.Handler = New(Deps{DB: f.db, Redis: f.rdb, Now: clock, Public: PublicLimits{TrustedHops: 1, Submit: 20, Global: 100, PowBits: 8},
		Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(f.db, f.rdb, f.prefix), RedisPrefix: f.prefix, PublicLimit: 100},
		Content: &Content{Attachments: att}})
	client := map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
	post := func(buf *bytes.Buffer, ctype string, out any) int {
		t.Helper()
		return f.call("", "POST", "/api/v1/public/tickets", buf.String(), map[string]string{"X-Forwarded-For": client["X-Forwarded-For"],
			"Content-Type": ctype}, out)
	}
	tickets := func() int {
		var n int
		if err := f.db.QueryRow(t.Context(), `SELECT count(*) FROM tickets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	files := func() int {
		n := 0
		filepath.WalkDir(store.Dir(), func(_ string, d fs.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				n++
			}
			return nil
		})
		return n
	}
	var form map[string]any
	if code := f.call("", "GET", "/api/v1/public/form", nil, client, &form); code != 200 || form["photos"] != true || form["max_photos"] != 3.0 {
		t.Fatalf("form: %d %v", code, form)
	}
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, img); err != nil {
		t.Fatal(err)
	}

	// A PNG: the ticket and its photo, together.
	ch, nonce := f.solve(client)
	buf, ctype := publicMultipart(t, publicBody(ch, nonce), pngData.Bytes())
	var got struct {
		Number string `json:"number"`
		Photos int    `json:"photos"`
	}
	if code := post(buf, ctype, &got); code != 201 || got.Photos != 1 {
		t.Fatalf("submit with a photo: %d %+v", code, got)
	}
	var id int64
	if err := f.db.QueryRow(t.Context(), `SELECT id FROM tickets WHERE number = $1`, got.Number).Scan(&id); err != nil {
		t.Fatal(err)
	}
	clerk := f.user("heshan1", org.RoleStaff, "430903") // the 赫山区 bureau, where 三保障 of 赫山区 is routed
	var list struct{ Attachments []attach.Attachment }
	if code := f.call(clerk, "GET", "/api/v1/tickets/"+strconv.FormatInt(id, 10)+"/attachments", nil, nil, &list); code != 200 ||
		len(list.Attachments) != 1 || list.Attachments[0].ContentType != "image/png" || !list.Attachments[0].HasThumb ||
		*list.Attachments[0].Width != 640 || list.Attachments[0].Filename != "现场1.png" {
		t.Fatalf("attachments: %d %+v", code, list)
	}
	var events int
	f.db.QueryRow(t.Context(), `SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND action = 'attach'`, id).Scan(&events)
	if events != 1 || files() != 2 { // the photo and its thumbnail
		t.Fatalf("attach events %d, stored files %d", events, files())
	}
	code, raw := 0, []byte(nil)
	{
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/attachments/"+strconv.FormatInt(list.Attachments[0].ID, 10), nil)
		req.Header.Set("Authorization", "Bearer "+clerk)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		code = resp.StatusCode
	}
	if code != 200 || !bytes.Equal(raw, pngData.Bytes()) {
		t.Fatalf("photo download: %d, %d bytes", code, len(raw))
	}

	before := tickets()
	// A PDF and a program (Windows executable header) are not photos: 415 naming the field, no ticket.
	for what, data := range map[string][]byte{"pdf": []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"),
		"exe": append([]byte("MZ\x90\x00\x03"), make([]byte, 500)...)} {
		ch, nonce = f.solve(client)
		buf, ctype = publicMultipart(t, publicBody(ch, nonce), pngData.Bytes(), data)
		var e apiError
		if code := post(buf, ctype, &e); code != 415 || e.Code != "unsupported_file_type" || e.Fields["photo"] == "" {
			t.Fatalf("%s as a photo: %d %+v", what, code, e)
		}
	}
	// A fourth photo.
	ch, nonce = f.solve(client)
	buf, ctype = publicMultipart(t, publicBody(ch, nonce), pngData.Bytes(), pngData.Bytes(), pngData.Bytes(), pngData.Bytes())
	var e apiError
	if code := post(buf, ctype, &e); code != 400 || e.Fields["photo"] == "" {
		t.Fatalf("four photos: %d %+v", code, e)
	}
	// Without a solved challenge no photo is taken.
	buf, ctype = publicMultipart(t, publicBody("deadbeef", "1"), pngData.Bytes())
	if code := post(buf, ctype, &e); code != 400 || e.Fields["challenge"] == "" {
		t.Fatalf("unsolved: %d %+v", code, e)
	}
	// The ticket part must come first, so a photo is never read before the challenge is checked.
	ch, nonce = f.solve(client)
	{
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("photo", "a.png")
		fw.Write(pngData.Bytes())
		mw.Close()
		if code := post(&b, mw.FormDataContentType(), &e); code != 400 || e.Fields["ticket"] == "" {
			t.Fatalf("photo first: %d %+v", code, e)
		}
	}
	if n := tickets(); n != before {
		t.Fatalf("refused submissions created %d tickets", n-before)
	}
	if n := files(); n != 2 {
		t.Fatalf("refused photos left %d stored files behind", n-2)
	}
}

package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// Every answer — page, asset, API, error — carries the security headers; the policy allows no inline or eval'd
// script, and the pages are the shell whatever console path is asked for.
func TestConsoleHeadersAndShell(t *testing.T) {
	h := New(Deps{DB: testenv.DB(t)})
	for _, path := range []string{"/", "/login", "/agent", "/division", "/notify", "/tickets/12", "/assets/js/main.js", "/assets/js/notify.js",
		"/assets/vendor/vue.runtime.global.prod.js", "/api/v1/me", "/api/v1/nothing", "/nothing"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		hd := rec.Header()
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-eval") ||
			strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, hd)
		}
		switch {
		case strings.HasPrefix(path, "/api/"), path == "/nothing":
			if rec.Code/100 != 4 {
				t.Errorf("%s: %d", path, rec.Code)
			}
		case strings.HasPrefix(path, "/assets/"):
			if rec.Code != 200 || !strings.Contains(hd.Get("Content-Type"), "javascript") {
				t.Errorf("%s: %d %s", path, rec.Code, hd.Get("Content-Type"))
			}
		default:
			body := rec.Body.String()
			if rec.Code != 200 || !strings.Contains(body, `lang="zh-CN"`) || !strings.Contains(body, `src="/assets/js/main.js"`) {
				t.Errorf("%s: %d %.200s", path, rec.Code, body)
			}
			// No inline script: every <script> has a src.
			for _, tag := range strings.Split(body, "<script")[1:] {
				if !strings.Contains(strings.SplitN(tag, ">", 2)[0], "src=") {
					t.Errorf("%s: inline script %q", path, tag)
				}
			}
		}
	}
}

// Assets go gzipped to browsers that take it and revalidate by ETag; vendored files may be cached.
func TestConsoleAssets(t *testing.T) {
	h := New(Deps{DB: testenv.DB(t)})
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const bundle = "/assets/vendor/element-plus.full.min.js"
	plain, zipped := get(bundle), get(bundle, "Accept-Encoding", "gzip, deflate")
	if plain.Code != 200 || zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Body.Len()*2 > plain.Body.Len() {
		t.Errorf("gzip: %d plain %d bytes, gzipped %d bytes (%s)", plain.Code, plain.Body.Len(), zipped.Body.Len(), zipped.Header().Get("Content-Encoding"))
	}
	if !strings.Contains(plain.Header().Get("Cache-Control"), "max-age") || get("/assets/js/lib.js").Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("cache: vendor %q", plain.Header().Get("Cache-Control"))
	}
	if rec := get(bundle, "If-None-Match", plain.Header().Get("ETag")); rec.Code != 304 {
		t.Errorf("revalidation: %d", rec.Code)
	}
	if rec := get("/assets/vendor/"); rec.Code != 404 {
		t.Errorf("directory listing: %d", rec.Code)
	}
}

// The console API: regions for the picker, merge suggestions for a ticket being typed, a ticket created with its
// call (linked in the same transaction, the caller's number taken from the call), the unit's list counts and
// filters.
func TestConsoleAPI(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	tsvc := ticketing.NewService(db, ticketing.Options{})
	tel := telephony.NewService(telephony.Options{DB: db, RecordingsDir: t.TempDir()})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Telephony: tel,
		Tickets: &Tickets{Service: tsvc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix}}))
	t.Cleanup(srv.Close)
	f := &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}
	agent := f.user("agent1", org.RoleAgent, org.CodeDesk)
	other := f.user("agent2", org.RoleAgent, org.CodeDesk)
	clerk := f.user("clerk1", org.RoleStaff, "430903")

	var regions struct {
		Regions []struct{ Code, Name, Level string }
	}
	if code := f.call(agent, "GET", "/api/v1/regions", nil, nil, &regions); code != 200 || len(regions.Regions) != 14 {
		t.Fatalf("prefectures: %d %v", code, regions)
	}
	if code := f.call(agent, "GET", "/api/v1/regions?parent=430903", nil, nil, &regions); code != 200 || len(regions.Regions) == 0 ||
		regions.Regions[0].Level != "township" || !strings.HasPrefix(regions.Regions[0].Code, "430903") {
		t.Fatalf("townships of 赫山区: %d %v", code, regions)
	}
	if code := f.call(agent, "GET", "/api/v1/regions?parent=110000", nil, nil, nil); code != 400 {
		t.Errorf("a region outside Hunan: %d", code)
	}

	// agent1 is on call 1 (ringing at its phone): the CDR does not name its agent until the call ends.
	var agentID org.UserID
	db.QueryRow(ctx, `SELECT id FROM users WHERE username = 'agent1'`).Scan(&agentID)
	if err := telephony.SetSIPAccount(ctx, db, agentID, "agent1", "hotline", "sip-secret-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.SetAgentState(ctx, org.Actor{UserID: agentID, Role: org.RoleAgent}, agentID, telephony.StateReady, ""); err != nil {
		t.Fatal(err)
	}
	callID, err := tel.StartCall(ctx, telephony.CallStart{SIPCallID: "c1", Trunk: "12345", Caller: "13807371234", OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tel.ReserveAgent(ctx, callID, nil, nil); err != nil {
		t.Fatal(err)
	}

	// An earlier open ticket from the same number and category is suggested while the agent types.
	var first viewResp
	if code := f.call(agent, "POST", "/api/v1/tickets", map[string]any{"source": "phone", "caller_phone": "13807371234", "kind": "help",
		"category": "monitoring_help", "region_code": "430903", "content": "收入下降", "dispatch": true}, nil, &first); code != 201 {
		t.Fatalf("first ticket: %d", code)
	}
	var sug struct{ Duplicates []ticketing.Ticket }
	if code := f.call(agent, "GET", "/api/v1/ticket-suggestions?category=monitoring_help&call_id="+itoa(int64(callID)), nil, nil, &sug); code != 200 ||
		len(sug.Duplicates) != 1 || sug.Duplicates[0].ID != first.Ticket.ID {
		t.Errorf("suggestions for the call: %d %+v", code, sug)
	}
	if code := f.call(other, "GET", "/api/v1/ticket-suggestions?category=monitoring_help&call_id="+itoa(int64(callID)), nil, nil, nil); code != 403 {
		t.Errorf("another agent's call: %d", code)
	}

	// Create with call_id: linked in the same request; the number comes from the call.
	body := map[string]any{"kind": "help", "category": "monitoring_help", "region_code": "430903", "content": "老人住院", "dispatch": true, "call_id": callID}
	if code := f.call(other, "POST", "/api/v1/tickets", body, nil, nil); code != 403 {
		t.Errorf("create for another agent's call: %d", code)
	}
	var created, again viewResp
	key := map[string]string{"Idempotency-Key": "call-ticket-1"}
	if code := f.call(agent, "POST", "/api/v1/tickets", body, key, &created); code != 201 {
		t.Fatalf("create with call: %d", code)
	}
	// The same create retried (its answer was lost) returns the ticket it made.
	if code := f.call(agent, "POST", "/api/v1/tickets", body, key, &again); code != 200 || again.Ticket.ID != created.Ticket.ID {
		t.Errorf("retried create with call: %d ticket %d, want 200 and %d", code, again.Ticket.ID, created.Ticket.ID)
	}
	var linked int64
	var phone string
	db.QueryRow(ctx, `SELECT coalesce(c.ticket_id, 0), t.caller_phone FROM calls c, tickets t WHERE c.id = $1 AND t.id = $2`, callID, created.Ticket.ID).Scan(&linked, &phone)
	if linked != int64(created.Ticket.ID) || phone != "13807371234" {
		t.Errorf("call linked to %d, ticket phone %q; want ticket %d with the caller's number", linked, phone, created.Ticket.ID)
	}
	// A second ticket for the same call is refused whole: no ticket without its link.
	var before, after int
	db.QueryRow(ctx, `SELECT count(*) FROM tickets`).Scan(&before)
	if code := f.call(agent, "POST", "/api/v1/tickets", body, nil, nil); code != 409 {
		t.Errorf("second ticket for a linked call: %d", code)
	}
	db.QueryRow(ctx, `SELECT count(*) FROM tickets`).Scan(&after)
	if after != before {
		t.Errorf("a refused create left %d tickets behind", after-before)
	}

	// The clerk's counts and lists: two unsigned, none co-handled; the lists sort by deadline.
	var counts ticketing.Counts
	if code := f.call(clerk, "GET", "/api/v1/ticket-counts", nil, nil, &counts); code != 200 || counts.Unsigned != 2 || counts.CoHandling != 0 {
		t.Errorf("counts: %d %+v", code, counts)
	}
	var list struct {
		Tickets []struct {
			Ticket     ticketing.Ticket
			RegionName string `json:"region_name"`
		}
	}
	if code := f.call(clerk, "GET", "/api/v1/tickets?status=dispatched&sort=deadline", nil, nil, &list); code != 200 || len(list.Tickets) != 2 ||
		list.Tickets[0].Ticket.ID != first.Ticket.ID || list.Tickets[0].RegionName != "益阳市赫山区" {
		t.Errorf("unsigned by deadline: %d %+v", code, list)
	}
	for _, q := range []string{"overdue=true", "sent_back=true", "pressed=true", "co_handling=true", "due_today=true&status=signed"} {
		if code := f.call(clerk, "GET", "/api/v1/tickets?"+q, nil, nil, &list); code != 200 || len(list.Tickets) != 0 {
			t.Errorf("%s: %d %d tickets", q, code, len(list.Tickets))
		}
	}
	if code := f.call(clerk, "GET", "/api/v1/tickets?sort=sideways", nil, nil, nil); code != 400 {
		t.Errorf("unknown sort: %d", code)
	}
	if code := f.call(agent, "GET", "/api/v1/tickets?phone=13807371234", nil, nil, &list); code != 200 || len(list.Tickets) != 2 {
		t.Errorf("search by phone: %d %d", code, len(list.Tickets))
	}

	// The agent's own state for the state bar.
	var me struct {
		Agent      telephony.Agent
		Registered *int
	}
	if code := f.call(agent, "GET", "/api/v1/agents/me", nil, nil, &me); code != 200 || me.Agent.State != telephony.StateBusy {
		t.Errorf("agents/me: %d %+v", code, me)
	}
	if code := f.call(clerk, "GET", "/api/v1/agents/me", nil, nil, nil); code != 403 {
		t.Errorf("agents/me for a clerk: %d", code)
	}
	if code := f.call(clerk, "GET", "/api/v1/tickets/"+itoa(int64(created.Ticket.ID))+"/calls", nil, nil, nil); code != http.StatusOK {
		t.Errorf("calls of the unit's ticket: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The vendored files are exactly what web/vendor.sh fetched: each one listed in VERSIONS with its hash, nothing
// else in the folder (a hand edit or a stray file fails here).
func TestVendoredFilesMatchVERSIONS(t *testing.T) {
	manifest, err := consoleFiles.ReadFile("console/vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"VERSIONS": true}
	for _, line := range strings.Split(string(manifest), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 4 {
			t.Fatalf("VERSIONS line %q: want package version file sha256", line)
		}
		b, err := consoleFiles.ReadFile("console/vendor/" + f[2])
		if err != nil {
			t.Errorf("%s listed but missing: %v", f[2], err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f[3] {
			t.Errorf("%s does not match its recorded hash (edited by hand? re-run web/vendor.sh)", f[2])
		}
		listed[f[2]] = true
	}
	entries, err := consoleFiles.ReadDir("console/vendor")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("vendor/%s is not in VERSIONS", e.Name())
		}
	}
}

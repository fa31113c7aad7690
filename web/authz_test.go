package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	pngenc "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"hotline/deploy/testenv"
	"hotline/notify/hub"
	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/blob"
	"hotline/ticketing/campaign"
	"hotline/ticketing/exchange"
	"hotline/ticketing/kb"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// matrixUsers are the demo users of `hotline up` (one per role, plus a second unit's staff for scope), and
// "anon" for no credentials. Columns of routeMatrix, in this order.
var matrixUsers = []struct {
	name string
	role org.Role
	unit string
}{
	{"anon", "", ""},
	{"admin", org.RoleAdmin, org.CodeBureau},
	{"agent1", org.RoleAgent, org.CodeDesk},
	{"dispatch1", org.RoleDispatcher, org.CodeDesk},
	{"heshan1", org.RoleStaff, "430903"},
	{"heshanhead", org.RoleHead, "430903"},
	{"monitor1", org.RoleStaff, "div-monitoring"},
	{"super1", org.RoleSupervisor, "div-inspection"},
	{"campaign1", org.RoleCampaignManager, "div-monitoring"},
}

// routeMatrix is every registered route × every demo user: "+" the request is let through (any answer but 401
// and 403: it may still be 400, 404 or 409 for the object used), "-" refused (401 or 403). Columns:
//
//	anon admin agent1 dispatch1 heshan1 heshanhead monitor1 super1 campaign1
//
// A route registered without a row here fails TestRouteRoleMatrix; so does a changed rule. Some rows let
// every signed-in user through because the handler answers 400 or 404 for the test's object before it asks
// about the role (GET /api/v1/calls/{id} of no call, PUT /api/v1/routing-rules/{id} with an empty body); moving
// authorization into the services tightens those, and this table with them.
var routeMatrix = map[string]string{
	"GET /healthz":                                  "+++++++++",
	"GET /readyz":                                   "+++++++++",
	"GET /api/v1/units":                             "-++++++++",
	"GET /api/v1/me":                                "-++++++++",
	"POST /api/v1/session":                          "---------",
	"GET /api/v1/session":                           "---------",
	"DELETE /api/v1/session":                        "---------",
	"DELETE /api/v1/sessions":                       "-++++++++",
	"POST /api/v1/session/password":                 "-++++++++",
	"POST /api/v1/tokens":                           "---------", // wrong credentials ({}): 401 for everyone
	"GET /ws":                                       "-++++++++",
	"POST /api/v1/tickets":                          "-+++---+-", // the hotline, supervision and admins open tickets
	"GET /api/v1/tickets":                           "-++++++++",
	"GET /api/v1/tickets/{id}":                      "-+++++-++",
	"GET /api/v1/tickets/{id}/events":               "-+++++-++",
	"GET /api/v1/tickets/{id}/duplicates":           "-+++++-++",
	"POST /api/v1/tickets/{id}/dispatch":            "-+++-----",
	"POST /api/v1/tickets/{id}/sign":                "-+--++---",
	"POST /api/v1/tickets/{id}/reply":               "-+--++---",
	"POST /api/v1/tickets/{id}/return":              "-+--++---",
	"POST /api/v1/tickets/{id}/request_extension":   "-+--++---", // another unit's ticket: refused outright
	"POST /api/v1/tickets/{id}/approve_extension":   "-+-----+-",
	"POST /api/v1/tickets/{id}/refuse_extension":    "-+-----+-",
	"POST /api/v1/tickets/{id}/urge":                "-+-+---+-",
	"POST /api/v1/tickets/{id}/supervise":           "-+-----+-",
	"POST /api/v1/tickets/{id}/assign":              "-+---+---",
	"POST /api/v1/tickets/{id}/start_callback":      "-++------",
	"POST /api/v1/tickets/{id}/callback_result":     "-++------",
	"POST /api/v1/tickets/{id}/reopen":              "-++----+-",
	"POST /api/v1/tickets/{id}/merge":               "-+++-----",
	"POST /api/v1/tickets/{id}/close_first_contact": "-++------",
	"POST /api/v1/tickets/{id}/correct":             "-+++-----", // the desk corrects (no changes in the body: 400)
	"POST /api/v1/tickets/{id}/co_sign":             "-+-------", // a co-unit's own; the lead unit is refused
	"POST /api/v1/tickets/{id}/co_opinion":          "-+-------",
	"POST /api/v1/tickets/{id}/approve_reply":       "-+---+---", // the lead unit's head (nothing pending: 409)
	"POST /api/v1/tickets/{id}/return_reply":        "-+---+---",
	"POST /api/v1/tickets/{id}/note":                "-+--++---",
	"POST /api/v1/tickets/{id}/interim_reply":       "-+--++---",
	"POST /api/v1/tickets/{id}/request_suspend":     "-+--++---",
	"POST /api/v1/tickets/{id}/approve_suspend":     "-+-----+-",
	"POST /api/v1/tickets/{id}/refuse_suspend":      "-+-----+-",
	"POST /api/v1/tickets/{id}/resume":              "-+--++-+-",
	"GET /api/v1/units/{unit}/reply-approval":       "-+--++-+-", // the unit's own users, supervisors, admins
	"PUT /api/v1/units/{unit}/reply-approval":       "-+---+---", // the unit's head and admins
	"GET /api/v1/calendar":                          "-+-------",
	"GET /api/v1/categories":                        "-++++++++",
	"PUT /api/v1/categories/{code}":                 "-+-------",
	"GET /api/v1/routing-rules":                     "-++++++++",
	"POST /api/v1/routing-rules":                    "-+-------",
	"PUT /api/v1/routing-rules/{id}":                "-++++++++",
	"GET /api/v1/queues/{unit}":                     "-+--++---", // the unit's own users
	"POST /api/v1/queues/{unit}/claim":              "-+--++---",
	"POST /api/v1/queues/{unit}/reclaim":            "-+--++---",
	"GET /api/v1/public/tickets/{number}":           "+++++++++",
	"GET /api/v1/agents":                            "-++--+-+-",
	"PUT /api/v1/agents/{id}/state":                 "-+-----+-",
	"GET /api/v1/calls":                             "-++--+-+-",
	"GET /api/v1/calls/kpis":                        "-+---+-+-",
	"GET /api/v1/calls/{id}":                        "-++++++++",
	"PUT /api/v1/calls/{id}/ticket":                 "-++++++++",
	"GET /api/v1/callbacks":                         "-++--+-+-",
	"POST /api/v1/callbacks/{id}/close":             "-++----+-",
	"GET /api/v1/recordings/{id}":                   "-++++++++",
	"GET /api/v1/households":                        "-++++++++",
	"POST /api/v1/households":                       "-+--++++-",
	"GET /api/v1/households/meta":                   "-++++++++",
	"POST /api/v1/households/import":                "-+--++++-",
	"GET /api/v1/households/export":                 "-++++++++",
	"GET /api/v1/households/{id}":                   "-+++--+++", // DemoHousehold(1) is outside 赫山区
	"PUT /api/v1/households/{id}":                   "-+--++++-",
	"POST /api/v1/households/{id}/actions/{action}": "-++++++++",
	"GET /api/v1/households/{id}/timeline":          "-+++--+++",
	"POST /api/v1/households/{id}/contacts":         "-+++--+++",
	"POST /api/v1/households/{id}/reveal":           "-+-------",
	"GET /api/v1/households/{id}/reveals":           "-+-------",
	"GET /api/v1/caller-lookup":                     "-+-------", // a typed number needs lookup_pii
	"GET /api/v1/calls/{id}/caller-lookup":          "-++++++++", // no such call: 404 before the on-the-call check
	"GET /api/v1/security-audit":                    "-+-------",
	"DELETE /api/v1/tokens/current":                 "-++++++++", // each with a token of its own (it ends it)
	"POST /api/v1/campaigns":                        "-+------+",
	"GET /api/v1/campaigns":                         "-+-----++",
	"GET /api/v1/campaigns/{id}":                    "-+-----++",
	"GET /api/v1/campaigns/{id}/progress":           "-+-----++",
	"GET /api/v1/campaigns/{id}/results.csv":        "-+-----++",
	"POST /api/v1/campaigns/{id}/launch":            "-+------+",
	"POST /api/v1/campaigns/{id}/pause":             "-+------+",
	"POST /api/v1/campaigns/{id}/resume":            "-+------+",
	"POST /api/v1/campaigns/{id}/cancel":            "-+------+",
	"GET /api/v1/campaigns/defaults":                "-+------+", // the build page: campaign managers and admins
	"POST /api/v1/campaigns/target-count":           "-+------+",
	"GET /api/v1/campaigns/{id}/answers":            "-+-----++", // reading a campaign: supervisors too
	"GET /api/v1/campaigns/{id}/results":            "-+-----++",
	"GET /api/v1/campaigns/{id}/export.csv":         "-+-----++",
	"GET /api/v1/campaigns/{id}/export.xlsx":        "-+-----++",
	"GET /api/v1/campaign-prompts":                  "-+-----++",
	"POST /api/v1/campaign-prompts":                 "-+------+",
	"GET /api/v1/campaign-prompts/{name}":           "-+-----++",
	"GET /api/v1/campaign-optouts":                  "-+-----++",
	"GET /api/v1/campaign-optouts/history":          "-+-----++",
	"POST /api/v1/campaign-optouts":                 "-+------+",
	"POST /api/v1/campaign-optouts/remove":          "-+------+",
	"GET /api/v1/callbacks/manual":                  "-++----++",
	"POST /api/v1/click-to-call":                    "-++++++++",
	"GET /api/v1/click-to-call/{id}":                "-++++++++",
	"GET /api/v1/units/{unit}/users":                "-+--++-+-", // the unit's own (赫山区 in the table), supervisors, admins
	"GET /api/v1/regions":                           "-++++++++",
	"GET /api/v1/ticket-suggestions":                "-++++++++",
	"GET /api/v1/ticket-counts":                     "-++++++++", // every demo role belongs to a unit
	"GET /api/v1/agents/me":                         "--+------", // the state bar is an agent's
	"GET /api/v1/tickets/{id}/calls":                "-+++++-++", // who may see the ticket (赫山区's, not 防贫监测处's)
	"GET /api/v1/stats/wallboard":                   "-+-----+-", // the whole bureau: supervisors and admins
	"GET /api/v1/stats/kpis":                        "-+---+-+-", // and a unit's head, for its unit (and counties)
	"GET /api/v1/stats/reports/{period}":            "-+---+-+-",
	"GET /api/v1/openapi.json":                      "+++++++++", // the contract is public
	"GET /api/v1/docs":                              "+++++++++",
	"GET /open311/v2/services.json":                 "+++++++++", // Open311: public reads
	"GET /open311/v2/services.xml":                  "+++++++++",
	"GET /open311/v2/services/{file}":               "+++++++++",
	"POST /open311/v2/requests.json":                "---------", // no api_key: 403 whoever is signed in
	"GET /open311/v2/requests.json":                 "+++++++++",
	"GET /open311/v2/requests/{file}":               "+++++++++",
	"POST /api/v1/open311/clients":                  "-+-------", // Open311 keys: admins
	"GET /api/v1/open311/clients":                   "-+-------",
	"DELETE /api/v1/open311/clients/{id}":           "-+-------",
	"GET /liuyan":                                   "+++++++++", // the public web channel
	"GET /liuyan/progress":                          "+++++++++",
	"GET /liuyan/assets/{file}":                     "+++++++++",
	"GET /api/v1/public/form":                       "+++++++++",
	"GET /api/v1/public/regions":                    "+++++++++",
	"POST /api/v1/public/challenges":                "+++++++++",
	"POST /api/v1/public/tickets":                   "+++++++++",
	"GET /api/v1/admin/users":                       "-+-------",
	"POST /api/v1/admin/users":                      "-+-------",
	"PUT /api/v1/admin/users/{id}":                  "-+-------",
	"POST /api/v1/admin/users/{id}/password":        "-+-------",
	"PUT /api/v1/admin/users/{id}/sip-account":      "-+-------",
	"POST /api/v1/admin/units":                      "-+-------",
	"PUT /api/v1/admin/units/{id}":                  "-+-------",
	"DELETE /api/v1/admin/units/{id}":               "-+-------", // the id is the bureau's: refused with 409, never deleted
	"GET /api/v1/admin/audit":                       "-+-------",
	"GET /api/v1/admin/trunks":                      "-+-------",
	"GET /api/v1/admin/holidays":                    "-+-------",
	"POST /api/v1/admin/holidays":                   "-+-------", // {} is not a calendar: 400
	"PUT /api/v1/admin/trunks/{name}":               "-+-------",
	"DELETE /api/v1/admin/trunks/{name}":            "-+-------", // no such trunk: 404
	"POST /api/v1/routing-rules/dry-run":            "-+-+-----", // admins and dispatchers
	"GET /api/v1/routing-rules/{id}/history":        "-+-+-----",
	"/api/":                                         "+++++++++",
	"/":                                             "+++++++++",
	// The push endpoint is a machine's: authenticated by the platform's HMAC signature, never by a session or a
	// token, so every column (no signature) gets 401. The exchange's administration is the admins'.
	"POST /api/v1/exchange/{platform}/orders":                             "---------",
	"GET /api/v1/exchange/platforms":                                      "-+-------",
	"GET /api/v1/exchange/platforms/{platform}/mappings":                  "-+-------",
	"PUT /api/v1/exchange/platforms/{platform}/mappings/{kind}/{code}":    "-+-------",
	"DELETE /api/v1/exchange/platforms/{platform}/mappings/{kind}/{code}": "-+-------",
	"GET /api/v1/exchange/platforms/{platform}/unmapped":                  "-+-------",
	"GET /api/v1/exchange/outbound":                                       "-+-------",
	"POST /api/v1/exchange/outbound/{id}/retry":                           "-+-------",
	"GET /api/v1/exchange/reconciliations":                                "-+-------",
	"POST /api/v1/exchange/platforms/{platform}/reconciliations":          "-+-------",
	"POST /api/v1/tickets/{id}/attachments":                               "-+++++-+-", // who may see the ticket and works tickets
	"GET /api/v1/tickets/{id}/attachments":                                "-+++++-++",
	"POST /api/v1/households/{id}/attachments":                            "-+++--+++", // as contacts: the household's scope
	"GET /api/v1/households/{id}/attachments":                             "-+++--+++",
	"GET /api/v1/attachments/{id}":                                        "-+++++-++", // a photo on the ticket: who may see the ticket
	"GET /api/v1/attachments/{id}/thumbnail":                              "-+++++-++",
	"GET /api/v1/kb/articles":                                             "-++++++++",
	"POST /api/v1/kb/articles":                                            "-+----+--", // the provincial divisions (防贫监测处 here) and admins
	"GET /api/v1/kb/articles/{id}":                                        "-++++++++",
	"PUT /api/v1/kb/articles/{id}":                                        "-+----+--", // the owner division (防贫监测处) and admins
	"GET /api/v1/kb/articles/{id}/versions":                               "-++++++++",
	"GET /api/v1/reply-templates":                                         "-++++++++",
	"POST /api/v1/reply-templates":                                        "-+-+-+-+-", // the desk, unit heads, supervisors, admins
	"PUT /api/v1/reply-templates/{id}":                                    "-+-+-+-+-",
	"POST /api/v1/reply-templates/{id}/render":                            "-++++++++", // then the ticket's read rule
}

// cookieOnly are the routes of the browser session itself: a bearer token has no session to show or end.
var cookieOnly = map[string]bool{"GET /api/v1/session": true, "DELETE /api/v1/session": true}

// TestRouteRoleMatrix walks every route the server registers with every demo user (bearer token) and compares
// allowed/refused with routeMatrix; the admin's session cookie (with its CSRF token) must be treated like the
// admin's bearer token on every route.
func TestRouteRoleMatrix(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	mon := monitoring.New(monitoring.Config{DB: db, Box: box})
	hh, err := mon.Create(ctx, org.System, monitoring.DemoHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	tsvc := ticketing.NewService(db, ticketing.Options{})
	tk, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
		CallerPhone: "13807371234", RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp,
		Content: "收入下降", Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	// Content: an image attached to the ticket, an article of 防贫监测处, a reply template.
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	photo := attach.New(attach.Options{DB: db, Store: store, Tickets: tsvc})
	var png bytes.Buffer
	_ = pngenc.Encode(&png, image.NewGray(image.Rect(0, 0, 2, 2)))
	att, err := photo.Upload(ctx, org.Actor{Role: org.RoleAdmin, Name: "admin"}, attach.Target{TicketID: tk.ID}, "p.png", bytes.NewReader(png.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	kbs := kb.New(db, nil)
	monUnit, err := org.UnitByCode(ctx, db, "div-monitoring")
	if err != nil {
		t.Fatal(err)
	}
	art, err := kbs.Create(ctx, org.Actor{Role: org.RoleAdmin, Name: "admin"}, kb.Draft{Title: "监测标准", Body: "收入低于监测线", OwnerUnitID: monUnit.ID})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := kbs.SaveTemplate(ctx, org.Actor{Role: org.RoleAdmin}, kb.Template{Name: "已办结", Body: "您好，工单{number}已办结。"})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(rdb, hub.Options{Prefix: prefix, Tickets: tsvc})
	hctx, stop := context.WithCancel(ctx)
	hubDone := make(chan struct{})
	go func() { h.Run(hctx); close(hubDone) }()
	t.Cleanup(func() { stop(); <-hubDone })
	// The login routes are sent wrong credentials ({}) by every column: a high failure cap keeps the limiter
	// (tested in session_test.go) from turning the later ones into 429s, so each row is decided by the route alone.
	ex, err := exchange.New(exchange.Config{DB: db, Redis: rdb, Prefix: prefix, Tickets: tsvc,
		Platforms: []exchange.Platform{{Name: "test", URL: "http://127.0.0.1:9", Secret: []byte("matrix-secret-of-32-bytes-length")}}})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(Deps{DB: db, Redis: rdb, RedisPrefix: prefix, Hub: h, Sessions: SessionConfig{Login: LoginLimits{MaxFailures: 10000}},
		Exchange:   ex,
		Tickets:    &Tickets{Service: tsvc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix},
		Telephony:  telephony.NewService(telephony.Options{DB: db, RecordingsDir: t.TempDir()}),
		Monitoring: mon,
		Content:    &Content{KB: kbs, Attachments: attach.New(attach.Options{DB: db, Store: store, Tickets: tsvc, Households: mon})},
		Campaigns:  &Campaigns{Service: campaign.NewService(db, campaign.Options{Directory: campaign.MonitoringDirectory{Households: mon}})}})
	srv := httptest.NewServer(s.handler)
	defer srv.Close()

	tokens := map[string]string{}
	ids := map[string]org.UserID{}
	units := map[string]org.UnitID{}
	for _, u := range matrixUsers[1:] {
		unit, err := org.UnitByCode(ctx, db, u.unit)
		if err != nil {
			t.Fatal(err)
		}
		units[u.unit] = unit.ID
		usr, err := org.CreateUser(ctx, db, org.NewUser{Username: u.name, DisplayName: u.name, Password: "password1", Role: u.role, UnitID: unit.ID})
		if err != nil {
			t.Fatal(err)
		}
		ids[u.name] = usr.ID
		if tokens[u.name], err = org.CreateToken(ctx, db, usr.ID, "test", 0); err != nil {
			t.Fatal(err)
		}
	}
	// The admin's browser session, made afresh for each route (sign-out routes end it).
	var adminCSRF string
	adminSession := func() string {
		id, csrf, err := s.sessions.Create(ctx, ids["admin"], "", "")
		if err != nil {
			t.Fatal(err)
		}
		adminCSRF = csrf
		return id
	}

	// Path values: the objects made above.
	values := map[string]string{"id": strconv.FormatInt(int64(tk.ID), 10), "unit": strconv.FormatInt(int64(units["430903"]), 10),
		"code": ticketing.CategoryMonitoringHelp, "number": tk.Number, "action": "verify"}
	householdValues := map[string]string{"id": strconv.FormatInt(int64(hh.ID), 10)}
	build := func(pattern string) (method, path string) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		vals := values
		if strings.HasPrefix(path, "/api/v1/households/") {
			vals = householdValues
		}
		for prefix, id := range map[string]int64{"/api/v1/attachments/": att.ID, "/api/v1/kb/": art.ID, "/api/v1/reply-templates/": tpl.ID} {
			if strings.HasPrefix(path, prefix) {
				vals = map[string]string{"id": strconv.FormatInt(id, 10)}
			}
		}
		for k, v := range vals {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		if path == "/" || path == "/api/" {
			path += "x"
		}
		return method, path
	}
	// A ticket action is sent to a fresh dispatched ticket with its current version, so one user's action does
	// not change what the next one meets: the answer is decided by role, state (dispatched) and unit scope.
	freshTicket := func() ticketing.Ticket {
		tk, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
			CallerPhone: "13807371234", RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp,
			Content: "收入下降", Dispatch: true})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	send := func(method, path, bearer, cookie string) int {
		body := strings.NewReader("")
		if method == "POST" || method == "PUT" {
			body = strings.NewReader("{}")
		}
		if rest, ok := strings.CutPrefix(path, "/api/v1/tickets/"+values["id"]+"/"); ok && method == "POST" {
			tk := freshTicket()
			path = fmt.Sprintf("/api/v1/tickets/%d/%s", tk.ID, rest)
			body = strings.NewReader(fmt.Sprintf(`{"version": %d, "note": "矩阵测试", "reason": "矩阵测试"}`, tk.Version))
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
			req.Header.Set(CSRFHeader, adminCSRF)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mark := func(code int) byte {
		if code == 401 || code == 403 {
			return '-'
		}
		return '+'
	}

	var got []string
	for _, pattern := range s.mux.patterns {
		method, path := build(pattern)
		row := make([]byte, 0, len(matrixUsers))
		for _, u := range matrixUsers {
			bearer := tokens[u.name]
			if pattern == "DELETE /api/v1/tokens/current" && bearer != "" {
				// Revoking ends the token: use one made for this request.
				if bearer, err = org.CreateToken(ctx, db, ids[u.name], "matrix", 0); err != nil {
					t.Fatal(err)
				}
			}
			row = append(row, mark(send(method, path, bearer, "")))
		}
		c := mark(send(method, path, "", adminSession()))
		if cookieOnly[pattern] && c != '+' {
			t.Errorf("%s: refused the admin's session cookie", pattern)
		} else if !cookieOnly[pattern] && c != row[1] {
			t.Errorf("%s: admin's cookie %c, admin's token %c", pattern, c, row[1])
		}
		want, ok := routeMatrix[pattern]
		switch {
		case !ok:
			t.Errorf("route %q has no row in routeMatrix (observed %s)", pattern, row)
		case want != string(row):
			t.Errorf("route %q: %s, want %s", pattern, row, want)
		}
		got = append(got, fmt.Sprintf("\t%q: %q,", pattern, row))
	}
	for p := range routeMatrix {
		if !slices.Contains(s.mux.patterns, p) {
			t.Errorf("routeMatrix row %q: no such route", p)
		}
	}
	if t.Failed() || os.Getenv("PRINT_MATRIX") != "" {
		t.Logf("observed:\n%s", strings.Join(got, "\n"))
	}
}

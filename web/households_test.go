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

	"hotline/deploy/testenv"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

type hhEnv struct {
	srv          *httptest.Server
	agent, admin string // bearer tokens
	svc          *monitoring.Service
}

func newHouseholdEnv(t *testing.T) *hhEnv {
	t.Helper()
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	svc := monitoring.New(monitoring.Config{DB: db, Box: box})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Monitoring: svc}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	token := func(name string, role org.Role, perms ...org.Permission) string {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Role: role,
			Password: "secret-password", Permissions: perms})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := org.CreateToken(ctx, db, u.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &hhEnv{srv: srv, svc: svc, agent: token("agent1", org.RoleAgent),
		admin: token("admin", org.RoleAdmin, org.PermRevealPII)}
}

func (e *hhEnv) do(t *testing.T, token, method, path string, body any) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func TestHouseholdAPI(t *testing.T) {
	e := newHouseholdEnv(t)
	in := monitoring.DemoHousehold(1)
	fullID, fullPhone := in.Members[0].IDNumber, in.Members[0].Phone

	// Agents may not create records; bad input is a 400 naming the fields; nothing is written.
	if code, m, _ := e.do(t, e.agent, "POST", "/api/v1/households", in); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("agent create: %d %v", code, m)
	}
	bad := in
	bad.TownshipCode = "439999999"
	if code, m, _ := e.do(t, e.admin, "POST", "/api/v1/households", bad); code != 400 || m["code"] != "invalid" ||
		m["fields"].(map[string]any)["township_code"] == nil {
		t.Fatalf("bad create: %d %v", code, m)
	}
	code, m, raw := e.do(t, e.admin, "POST", "/api/v1/households", in)
	if code != 201 {
		t.Fatalf("create: %d %s", code, raw)
	}
	id := int64(m["id"].(float64))
	if code, m, _ := e.do(t, e.admin, "POST", "/api/v1/households", in); code != 409 || m["fields"] == nil {
		t.Fatalf("duplicate: %d %v", code, m)
	}

	// Every read path is masked, for agents and admins alike.
	for _, path := range []string{
		fmt.Sprintf("/api/v1/households/%d", id),
		"/api/v1/households?region=" + in.CountyCode,
		"/api/v1/caller-lookup?phone=" + "%2B86%20" + fullPhone,
		fmt.Sprintf("/api/v1/households/%d/timeline", id),
		"/api/v1/households/export",
	} {
		for _, tok := range []string{e.agent, e.admin} {
			if tok == e.agent && strings.Contains(path, "caller-lookup") {
				continue // a typed number needs lookup_pii (TestExactLookupsNeedPermission)
			}
			code, _, raw := e.do(t, tok, "GET", path, nil)
			if code != 200 {
				t.Fatalf("GET %s: %d %s", path, code, raw)
			}
			if strings.Contains(raw, fullID) || strings.Contains(raw, fullPhone) {
				t.Errorf("GET %s shows full personal data: %s", path, raw)
			}
			if !strings.Contains(raw, fullID[:6]+"********"+fullID[14:]) && !strings.Contains(path, "timeline") && !strings.Contains(path, "region=") {
				t.Errorf("GET %s lacks the masked ID: %s", path, raw)
			}
		}
	}
	_, m, _ = e.do(t, e.admin, "GET", "/api/v1/caller-lookup?phone="+fullPhone, nil)
	if len(m["matches"].([]any)) != 1 {
		t.Fatalf("lookup: %v", m)
	}

	// Reveal: agents are refused; admins get the value with an audit row.
	rv := monitoring.RevealRequest{Field: "id_number", MemberSeq: 1, Reason: "核对身份"}
	if code, m, _ := e.do(t, e.agent, "POST", fmt.Sprintf("/api/v1/households/%d/reveal", id), rv); code != 403 {
		t.Fatalf("agent reveal: %d %v", code, m)
	}
	code, m, _ = e.do(t, e.admin, "POST", fmt.Sprintf("/api/v1/households/%d/reveal", id), rv)
	if code != 200 || m["value"] != fullID {
		t.Fatalf("admin reveal: %d %v", code, m)
	}
	_, m, _ = e.do(t, e.admin, "GET", fmt.Sprintf("/api/v1/households/%d/reveals", id), nil)
	if rs := m["reveals"].([]any); len(rs) != 1 || rs[0].(map[string]any)["actor_username"] != "admin" {
		t.Fatalf("audit: %v", m)
	}
	if code, _, _ := e.do(t, e.agent, "GET", fmt.Sprintf("/api/v1/households/%d/reveals", id), nil); code != 403 {
		t.Fatalf("agent reads audit: %d", code)
	}
	// The security audit log lists the reveal (never the value) beside logins and exports.
	_, m, raw = e.do(t, e.admin, "GET", fmt.Sprintf("/api/v1/security-audit?kind=reveal&object=household:%d", id), nil)
	if es := m["entries"].([]any); len(es) != 1 || es[0].(map[string]any)["actor_username"] != "admin" ||
		es[0].(map[string]any)["detail"].(map[string]any)["field"] != "id_number" || strings.Contains(raw, fullID) {
		t.Fatalf("security audit of the reveal: %s", raw)
	}

	// Status actions: wrong state is a 409 with the allowed actions.
	code, m, _ = e.do(t, e.admin, "POST", fmt.Sprintf("/api/v1/households/%d/actions/identify", id), map[string]string{"reason": "x"})
	if code != 409 || m["code"] != "action_not_allowed" || fmt.Sprint(m["allowed_actions"]) != "[not_include verify]" {
		t.Fatalf("identify: %d %v", code, m)
	}
	code, m, _ = e.do(t, e.admin, "POST", fmt.Sprintf("/api/v1/households/%d/actions/verify", id), map[string]string{"reason": "入户核实"})
	if code != 200 || m["status"] != "verified" {
		t.Fatalf("verify: %d %v", code, m)
	}
	// Contacts from the console.
	code, _, _ = e.do(t, e.agent, "POST", fmt.Sprintf("/api/v1/households/%d/contacts", id), map[string]string{"kind": "visit", "summary": "入户走访"})
	if code != 201 {
		t.Fatalf("contact: %d", code)
	}
	_, m, _ = e.do(t, e.agent, "GET", fmt.Sprintf("/api/v1/households/%d/timeline", id), nil)
	if tl := m["timeline"].([]any); len(tl) != 3 {
		t.Fatalf("timeline: %v", tl)
	}
	if code, m, _ := e.do(t, e.agent, "GET", "/api/v1/households/99999", nil); code != 404 || m["code"] != "not_found" {
		t.Fatalf("unknown: %d %v", code, m)
	}

	// Import over HTTP; export with reveal is audited.
	code, m, raw = e.do(t, e.admin, "POST", "/api/v1/households/import", monitoring.DemoCSV(100, 20))
	if code != 200 || m["created"].(float64) != 20 || len(m["rejected"].([]any)) != 0 {
		t.Fatalf("import: %d %s", code, raw)
	}
	if code, m, _ := e.do(t, e.admin, "POST", "/api/v1/households/import", "nothing,useful\n"); code != 400 || m["fields"] == nil {
		t.Fatalf("bad import: %d %v", code, m)
	}
	if code, _, _ := e.do(t, e.agent, "GET", "/api/v1/households/export?reveal=true&reason=x", nil); code != 403 {
		t.Fatalf("agent revealing export: %d", code)
	}
	code, _, raw = e.do(t, e.admin, "GET", "/api/v1/households/export?reveal=true&reason=%E6%A0%B8%E6%9F%A5", nil)
	if code != 200 || !strings.Contains(raw, fullID) {
		t.Fatalf("revealing export: %d", code)
	}
}

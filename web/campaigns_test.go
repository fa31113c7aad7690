package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// TestCampaignAPI: a campaign manager builds a campaign over monitored households, bad input names its fields,
// agents may not build one, launch freezes the targets, progress and the results CSV are served, and the
// lifecycle refuses what its state does not allow.
func TestCampaignAPI(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	mon := monitoring.New(monitoring.Config{DB: db, Box: box})
	for i := 1; i <= 5; i++ {
		if _, err := mon.Create(ctx, org.System, monitoring.DemoHousehold(i)); err != nil {
			t.Fatal(err)
		}
	}
	svc := campaign.NewService(db, campaign.Options{Directory: campaign.MonitoringDirectory{Households: mon}})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Campaigns: &Campaigns{Service: svc}}))
	t.Cleanup(srv.Close)
	e := &hhEnv{srv: srv}
	token := func(name string, role org.Role) string {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Role: role, Password: "secret-password"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := org.CreateToken(ctx, db, u.ID, "test", 0)
		return tok
	}
	cm, agent := token("campaign1", org.RoleCampaignManager), token("agent1", org.RoleAgent)
	body := map[string]any{"name": "收入回访", "purpose": "checkin", "caller_id": "12345", "optout_key": "9",
		"target_query": map[string]any{"region_prefix": "43"},
		"script":       map[string]any{"questions": []any{map[string]any{"id": "income", "prompt": "income_question.wav", "keys": "12", "risk_keys": "1"}}}}
	if code, m, _ := e.do(t, agent, "POST", "/api/v1/campaigns", body); code != http.StatusForbidden {
		t.Fatalf("agent create: %d %v", code, m)
	}
	bad := map[string]any{"name": "", "purpose": "sales", "caller_id": "1\r\n2", "script": map[string]any{"questions": []any{}}}
	code, m, _ := e.do(t, cm, "POST", "/api/v1/campaigns", bad)
	fields, _ := m["fields"].(map[string]any)
	if code != http.StatusBadRequest || m["code"] != "invalid" || fields["name"] == nil || fields["purpose"] == nil ||
		fields["caller_id"] == nil || fields["script.questions"] == nil {
		t.Fatalf("bad create: %d %v", code, m)
	}
	code, m, _ = e.do(t, cm, "POST", "/api/v1/campaigns", body)
	if code != http.StatusCreated || m["status"] != "draft" || m["pace"].(float64) != campaign.DefaultPace {
		t.Fatalf("create: %d %v", code, m)
	}
	id := int(m["id"].(float64))
	path := "/api/v1/campaigns/" + strconv.Itoa(id)
	if code, m, _ := e.do(t, cm, "POST", path+"/pause", nil); code != http.StatusConflict || m["code"] != "action_not_allowed" {
		t.Fatalf("pause a draft: %d %v", code, m)
	}
	if code, m, _ := e.do(t, cm, "POST", path+"/launch", nil); code != http.StatusOK || m["status"] != "running" {
		t.Fatalf("launch: %d %v", code, m)
	}
	code, m, _ = e.do(t, cm, "GET", path+"/progress", nil)
	if code != http.StatusOK || m["targets"].(float64) != 5 {
		t.Fatalf("progress: %d %v", code, m)
	}
	if code, _, _ := e.do(t, agent, "GET", path+"/progress", nil); code != http.StatusForbidden {
		t.Fatalf("agent reads progress: %d", code)
	}
	code, _, raw := e.do(t, cm, "GET", path+"/results.csv", nil)
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(raw, "\xef\xbb\xbf")), "\n")
	if code != http.StatusOK || len(lines) != 6 || !strings.HasPrefix(lines[0], "household_id,ticket_id,region_code,state") ||
		regexp.MustCompile(`1700\d{7}`).MatchString(raw) { // a full demo phone number; timestamps may hold "1700"
		t.Fatalf("results: %d %q", code, raw)
	}
	if code, m, _ := e.do(t, cm, "POST", path+"/cancel", nil); code != http.StatusOK || m["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, m)
	}
	if code, _, _ := e.do(t, cm, "GET", "/api/v1/campaigns/999999", nil); code != http.StatusNotFound {
		t.Fatalf("missing campaign: %d", code)
	}
	if code, m, _ := e.do(t, agent, "POST", "/api/v1/click-to-call", map[string]any{"household_id": 1}); code != http.StatusConflict {
		t.Fatalf("click-to-call without a dialer: %d %v", code, m)
	}
}

// TestClickToCallCallback: a call-back by callback task id is refused to roles that do not work the callback list
// (403) and for an unknown task (404) whether or not the process dials; an agent's request passes authorization
// (here it then meets the missing dialer), and no answer holds the caller's number.
func TestClickToCallCallback(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	tel := telephony.NewService(telephony.Options{DB: db, RecordingsDir: t.TempDir()})
	svc := campaign.NewService(db, campaign.Options{})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Telephony: tel, Campaigns: &Campaigns{Service: svc}}))
	t.Cleanup(srv.Close)
	e := &hhEnv{srv: srv}
	token := func(name string, role org.Role) string {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Role: role, Password: "secret-password"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := org.CreateToken(ctx, db, u.ID, "test", 0)
		return tok
	}
	const number = "13687654321"
	call, err := tel.StartCall(ctx, telephony.CallStart{SIPCallID: "missed-1", Trunk: "12345", Caller: number, OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var task int64
	if err := db.QueryRow(ctx, `INSERT INTO callback_tasks (caller, reason, call_id) VALUES ($1, 'abandoned', $2) RETURNING id`,
		number, int64(call)).Scan(&task); err != nil {
		t.Fatal(err)
	}
	for _, role := range []org.Role{org.RoleDispatcher, org.RoleCampaignManager} {
		tok := token("u-"+string(role), role)
		if code, m, _ := e.do(t, tok, "POST", "/api/v1/click-to-call", map[string]any{"callback_id": task}); code != http.StatusForbidden {
			t.Errorf("%s calls a callback task back: %d %v", role, code, m)
		}
	}
	agent := token("agent1", org.RoleAgent)
	if code, m, _ := e.do(t, agent, "POST", "/api/v1/click-to-call", map[string]any{"callback_id": task + 1000}); code != http.StatusNotFound {
		t.Errorf("unknown callback task: %d %v", code, m)
	}
	code, m, _ := e.do(t, agent, "POST", "/api/v1/click-to-call", map[string]any{"callback_id": task, "household_id": 1})
	if fields, _ := m["fields"].(map[string]any); code != http.StatusBadRequest || fields["callback_id"] == nil {
		t.Errorf("callback task with a household: %d %v", code, m)
	}
	code, m, raw := e.do(t, agent, "POST", "/api/v1/click-to-call", map[string]any{"callback_id": task})
	if code != http.StatusConflict || m["code"] == "forbidden" || strings.Contains(raw, number) {
		t.Errorf("agent's call-back without a dialer: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, token("sup1", org.RoleSupervisor), "POST", "/api/v1/click-to-call", map[string]any{"callback_id": task}); code != http.StatusConflict {
		t.Errorf("supervisor's call-back without a dialer: %d %s", code, raw)
	}
	var status string
	if err := db.QueryRow(ctx, `SELECT status FROM callback_tasks WHERE id = $1`, task).Scan(&status); err != nil || status != "open" {
		t.Errorf("a refused call-back changed the task: %s %v", status, err)
	}
}

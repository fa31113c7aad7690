package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"hotline/deploy/testenv"
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

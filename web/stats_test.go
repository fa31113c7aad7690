package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// TestStatsAPI: the wallboard reflects a waiting call, a ticket opened today and a deadline passed; bad
// parameters are a 400 naming them; a head asks only within its unit; reports download whole.
func TestStatsAPI(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	tsvc := ticketing.NewService(db, ticketing.Options{})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, RedisPrefix: prefix,
		Tickets:   &Tickets{Service: tsvc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix},
		Telephony: telephony.NewService(telephony.Options{DB: db, RecordingsDir: t.TempDir()})}))
	t.Cleanup(srv.Close)
	e := &hhEnv{srv: srv}
	user := func(name string, role org.Role, unit string) string {
		var uid org.UnitID
		if unit != "" {
			u, err := org.UnitByCode(ctx, db, unit)
			if err != nil {
				t.Fatal(err)
			}
			uid = u.ID
		}
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Role: role, Password: "secret-password", UnitID: uid})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := org.CreateToken(ctx, db, u.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	super, head := user("super1", org.RoleSupervisor, "div-inspection"), user("heshanhead", org.RoleHead, "430903")

	board := func() map[string]any {
		t.Helper()
		code, m, raw := e.do(t, super, "GET", "/api/v1/stats/wallboard", nil)
		if code != 200 {
			t.Fatalf("wallboard: %d %s", code, raw)
		}
		return m
	}
	num := func(m map[string]any, path ...string) float64 {
		var v any = m
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		f, _ := v.(float64)
		return f
	}
	before := board()
	if num(before, "tickets", "created_today") != 0 || num(before, "calls", "waiting") != 0 || num(before, "tickets", "red") != 0 {
		t.Fatalf("empty wallboard %v", before)
	}

	tk, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
		CallerPhone: "13807371234", RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp,
		Content: "收入下降", Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO calls (sip_call_id, caller, offered_at, answered_at) VALUES ('w1', '13807371234', now() - interval '40 seconds', now() - interval '39 seconds')`); err != nil {
		t.Fatal(err)
	}
	m := board()
	if num(m, "tickets", "created_today") != 1 || num(m, "tickets", "dispatched_today") != 1 || num(m, "calls", "waiting") != 1 ||
		num(m, "calls", "longest_wait_seconds") < 40 || num(m, "tickets", "red") != 0 {
		t.Errorf("after a ticket and a waiting call: %v", m)
	}
	// The sign-by passes (set in the past: the server has no clock to move): the ticket is red, and listed.
	if _, err := db.Exec(ctx, `UPDATE tickets SET due_at = now() - interval '1 minute', yellow_at = now() - interval '2 hours' WHERE id = $1`, tk.ID); err != nil {
		t.Fatal(err)
	}
	m = board()
	reds, _ := m["tickets"].(map[string]any)["red_tickets"].([]any)
	if num(m, "tickets", "red") != 1 || len(reds) != 1 || reds[0].(map[string]any)["number"] != tk.Number || num(m, "tickets", "overdue_today") != 1 {
		t.Errorf("red ticket: %v", m["tickets"])
	}
	if code, _, _ := e.do(t, head, "GET", "/api/v1/stats/wallboard", nil); code != 403 {
		t.Errorf("a head on the bureau wallboard: %d", code)
	}

	// KPIs: this month so far by unit; the head sees its unit only.
	code, m, raw := e.do(t, super, "GET", "/api/v1/stats/kpis?by=county", nil)
	if code != 200 || len(m["rows"].([]any)) != 1 || m["rows"].([]any)[0].(map[string]any)["label"] != "赫山区" || num(m, "total", "dispatched") != 1 {
		t.Errorf("kpis by county: %d %s", code, raw)
	}
	code, m, raw = e.do(t, super, "GET", "/api/v1/stats/kpis?by=street&from=yesterday&region=43x", nil)
	f, _ := m["fields"].(map[string]any)
	if code != 400 || f["by"] == nil || f["from"] == nil || f["region"] == nil {
		t.Errorf("bad parameters: %d %s", code, raw)
	}
	desk, _ := org.UnitByCode(ctx, db, org.CodeDesk)
	if code, _, raw := e.do(t, head, "GET", "/api/v1/stats/kpis?unit_id="+itoa(int64(desk.ID)), nil); code != 403 {
		t.Errorf("a head asking for another unit: %d %s", code, raw)
	}
	if code, m, raw := e.do(t, head, "GET", "/api/v1/stats/kpis?by=unit", nil); code != 200 || len(m["rows"].([]any)) != 1 {
		t.Errorf("head's kpis: %d %s", code, raw)
	}

	// Reports.
	get := func(tok, path string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(super, "/api/v1/stats/reports/daily?format=xlsx")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "report-daily-"+time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")+".xlsx") {
		t.Fatalf("daily xlsx: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	x, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if v, _ := x.GetCellValue("统计报表", "A1"); v != "湖南省乡村振兴局 12345热线工单统计日报" {
		t.Errorf("A1 %q", v)
	}
	if v, _ := x.GetCellValue("统计报表", "A5"); v != "益阳市赫山区乡村振兴局" {
		t.Errorf("A5 %q", v)
	}
	resp, body = get(head, "/api/v1/stats/reports/weekly?format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!bytes.HasPrefix(body, []byte("\uFEFF益阳市赫山区乡村振兴局 工单统计周报")) || !strings.Contains(string(body), "防返贫监测求助") {
		t.Errorf("head's weekly csv: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(head, "/api/v1/stats/reports/leaders"); resp.StatusCode != 403 {
		t.Errorf("leaders' report to a head: %d", resp.StatusCode)
	}
	if resp, body := get(super, "/api/v1/stats/reports/leaders?month=2026-13"); resp.StatusCode != 400 || !strings.Contains(string(body), "month") {
		t.Errorf("bad month: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(super, "/api/v1/stats/reports/weekly?format=pdf"); resp.StatusCode != 400 {
		t.Errorf("pdf: %d", resp.StatusCode)
	}
	if resp, _ := get(super, "/api/v1/stats/reports/yearly"); resp.StatusCode != 400 {
		t.Errorf("yearly: %d", resp.StatusCode)
	}
}

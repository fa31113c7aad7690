package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// 监控大屏 and 统计分析 in a real browser: a supervisor watches the wallboard; a caller joins the queue and an agent
// opens a ticket: the 排队等待 and 今日受理 tiles change without a reload (the ticket's event on the stream makes
// the page re-read); the ticket's deadline then passes (set in the past in the database, as the server has no
// clock to move), and the 超期工单 tile and list show it (the sweeper's sla.red event or the page's 10 s poll).
// Then 统计分析 shows the KPI table and draws its charts with the vendored ECharts. Any console error fails it.
func TestWallboardInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e, p, ctx, db := upWithDB(t, 3*time.Minute)

	br := newBrowser(t, ctx, "super1", shots, p, browserOptions{width: 1366, height: 900})
	errs := br.errs
	run := br.run
	tileValue := func(id string) int {
		t.Helper()
		var v string
		var ok bool
		run("read tile "+id, 10*time.Second, chromedp.AttributeValue("#tile-"+id, "data-value", &v, &ok, chromedp.ByQuery))
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("tile %s: %q", id, v)
		}
		return n
	}
	tileIs := func(id string, n int) chromedp.Action {
		return chromedp.WaitVisible(`#tile-`+id+`[data-value="`+strconv.Itoa(n)+`"]`, chromedp.ByQuery)
	}

	var nav string
	run("supervisor opens 监控大屏", 30*time.Second,
		chromedp.Navigate(e.base+"/login"),
		chromedp.WaitVisible("#login-username", chromedp.ByID),
		chromedp.SendKeys("#login-username", "super1", chromedp.ByID),
		chromedp.SendKeys("#login-password", demoPassword, chromedp.ByID),
		chromedp.Click("#login-submit", chromedp.ByID),
		chromedp.WaitVisible("header.topbar nav a", chromedp.ByQuery),
		chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery),
		chromedp.Click(`//header//nav/a[text()="监控大屏"]`, chromedp.BySearch),
		chromedp.WaitVisible("#tile-created", chromedp.ByID),
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery))
	if !strings.Contains(nav, "监控大屏") || !strings.Contains(nav, "统计分析") {
		t.Errorf("supervisor's nav %q", nav)
	}
	created, waiting, red := tileValue("created"), tileValue("waiting"), tileValue("red")

	// A caller waits in the queue (the CDR intake writes when it answers), and an agent opens a ticket.
	if _, err := db.Exec(ctx, `INSERT INTO calls (sip_call_id, trunk, caller, offered_at, answered_at)
		VALUES ('wallboard-1', '12345', '13807371234', now() - interval '20 seconds', now() - interval '19 seconds')`); err != nil {
		t.Fatal(err)
	}
	var tk struct {
		Ticket struct {
			ID     int64
			Number string
		}
	}
	if code := postJSON(t, e.base+"/api/v1/tickets", login(t, e.base, "agent1"), map[string]any{"kind": "help",
		"category": "monitoring_help", "region_code": "430903", "content": "家中老人生病住院，请求帮扶", "dispatch": true}, &tk); code != 201 {
		t.Fatalf("create ticket: %d", code)
	}
	run("the tiles follow the new ticket and the waiting call", 15*time.Second,
		tileIs("created", created+1), tileIs("waiting", waiting+1))

	// Its sign-by passes: the ticket goes red.
	if _, err := db.Exec(ctx, `UPDATE tickets SET due_at = now() - interval '1 minute', yellow_at = now() - interval '3 hours'
		WHERE id = $1`, tk.Ticket.ID); err != nil {
		t.Fatal(err)
	}
	var redList string
	var png []byte
	run("the ticket goes red", 30*time.Second, tileIs("red", red+1),
		chromedp.WaitVisible(`//*[@id="red-tickets"]//a[text()="`+tk.Ticket.Number+`"]`, chromedp.BySearch),
		chromedp.Text("#red-tickets", &redList, chromedp.ByID),
		chromedp.Sleep(400*time.Millisecond), // Element Plus's transitions
		chromedp.CaptureScreenshot(&png))
	if !strings.Contains(redList, "赫山区") {
		t.Errorf("red list %q does not name the unit", redList)
	}
	if err := os.WriteFile(filepath.Join(shots, "wallboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}

	// 统计分析: the table has this month's units, the charts are drawn (ECharts renders into canvas).
	var table string
	var canvases int
	run("统计分析", 30*time.Second,
		chromedp.Click(`//header//nav/a[text()="统计分析"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//*[@id="stats-table"]//td[contains(., "赫山区")]`, chromedp.BySearch),
		chromedp.WaitVisible("#chart-day canvas", chromedp.ByQuery),
		chromedp.WaitVisible("#chart-sla canvas", chromedp.ByQuery),
		chromedp.Text("#stats-table", &table, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('.chart canvas').length`, &canvases),
		chromedp.Sleep(800*time.Millisecond), // chart animations
		chromedp.CaptureScreenshot(&png))
	if !strings.Contains(table, "按时签收率") || !strings.Contains(table, "合计") || canvases < 5 {
		t.Errorf("stats page: %d charts, table %q", canvases, tail(table, 400))
	}
	if err := os.WriteFile(filepath.Join(shots, "stats.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	var href string
	var ok bool
	run("report link", 10*time.Second, chromedp.AttributeValue("#report-xlsx", "href", &href, &ok, chromedp.ByID))
	if !strings.HasPrefix(href, "/api/v1/stats/reports/monthly?date=") || !strings.Contains(href, "format=xlsx") {
		t.Errorf("report link %q", href)
	}
	if es := errs.list(); len(es) > 0 {
		t.Errorf("browser errors: %v", es)
	}
}

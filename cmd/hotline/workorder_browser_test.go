package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"hotline/ticketing/org"
)

// The ticket page's work-order controls in a real browser (issue 11): 赫山区's clerk signs a demo ticket, writes a
// 办理过程 note and asks for a suspension (挂起); a supervisor approves it through the API; the page follows live
// and shows 挂起中 with the resume button; the clerk resumes. Any console error fails the test.
func TestWorkorderControlsInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e, p, ctx, db := upWithDB(t, 3*time.Minute, "HOTLINE_DEMO_HOUSEHOLDS=10")
	var ticketID, superID int64
	if err := db.QueryRow(ctx, `SELECT t.id FROM tickets t JOIN units u ON u.id = t.lead_unit_id
		WHERE u.code = '430903' AND t.status = 'dispatched' ORDER BY t.id LIMIT 1`).Scan(&ticketID); err != nil {
		t.Fatalf("a demo ticket of 赫山区: %v", err)
	}
	if err := db.QueryRow(ctx, `SELECT id FROM users WHERE username = 'super1'`).Scan(&superID); err != nil {
		t.Fatal(err)
	}
	superTok, err := org.CreateToken(ctx, db, org.UserID(superID), "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	br := newBrowser(t, ctx, "clerk", shots, p, browserOptions{width: 1366, height: 900})
	errs := br.errs
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 30*time.Second, actions...)
	}
	shot := br.shot
	action := func(name, field, text string) chromedp.Tasks {
		ts := chromedp.Tasks{
			press(fmt.Sprintf(`#ticket-actions [data-action=%q]`, name)),
			chromedp.WaitVisible("#act-confirm", chromedp.ByID),
		}
		if field != "" {
			ts = append(ts, chromedp.WaitVisible("#act-"+field, chromedp.ByID), chromedp.SendKeys("#act-"+field, text, chromedp.ByID))
		}
		return append(ts, press("#act-confirm"), chromedp.WaitNotVisible("#action-dialog", chromedp.ByID))
	}
	page := fmt.Sprintf("%s/tickets/%d", e.base, ticketID)
	run("clerk signs in", chromedp.Navigate(e.base+"/login"), chromedp.WaitVisible("#login-username", chromedp.ByID),
		chromedp.SendKeys("#login-username", "heshan1", chromedp.ByID),
		chromedp.SendKeys("#login-password", demoPassword, chromedp.ByID),
		chromedp.Click("#login-submit", chromedp.ByID),
		chromedp.WaitNotPresent("#login-submit", chromedp.ByID))
	run("clerk signs, notes and asks for a suspension", chromedp.Navigate(page),
		action("sign", "", ""),
		chromedp.WaitVisible(`#ticket-status[data-status="signed"]`, chromedp.ByQuery),
		action("note", "note", "已电话联系村委会，约定周三入户"),
		action("request_suspend", "reason", "等待医院出具诊断证明"),
		chromedp.WaitNotPresent(`#ticket-actions [data-action="request_suspend"]`, chromedp.ByQuery),
		shot("ticket-suspend-requested"))

	var view struct {
		Ticket struct{ Version int }
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/tickets/%d", e.base, ticketID), nil)
	req.Header.Set("Authorization", "Bearer "+superTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/tickets/%d/approve_suspend", e.base, ticketID), superTok,
		map[string]any{"version": view.Ticket.Version}, nil); code != 200 {
		t.Fatalf("supervisor approves the suspension: %d", code)
	}
	run("the page shows the suspension live", chromedp.WaitVisible("#ticket-suspended", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-actions [data-action="resume"]`, chromedp.ByQuery),
		shot("ticket-suspended"))
	run("clerk resumes", action("resume", "", ""), chromedp.WaitNotPresent("#ticket-suspended", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-actions [data-action="interim_reply"]`, chromedp.ByQuery))
	if list := errs.list(); len(list) > 0 {
		t.Errorf("browser errors: %v", list)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// The ticket page's work-order controls in a real browser (issue 11): 赫山区's clerk signs a demo ticket, writes a
// 办理过程 note and asks for a suspension (挂起); a supervisor approves it through the API; the page follows live
// and shows 挂起中 with the resume button; the clerk resumes. Any console error fails the test.
func TestWorkorderControlsInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s missing: run deploy/install-deps.sh test", chromium)
	}
	shots := screenshotDir(t)
	e := newUpEnv(t)
	p := startHotline(t, append(e.env, "HOTLINE_DEMO_HOUSEHOLDS=10"), "up")
	waitReady(t, p, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
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

	profile, err := os.MkdirTemp("", "hotline-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile), chromedp.WindowSize(1366, 900))
	defer cancelAlloc()
	b, cancelB := chromedp.NewContext(allocCtx)
	defer cancelB()
	errs := &browserErrors{}
	errs.listen(b, "clerk")
	if err := chromedp.Run(b, log.Enable(), runtime.Enable(), chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		sc, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		if err := chromedp.Run(sc, actions...); err != nil {
			hc, cancel := context.WithTimeout(b, 5*time.Second)
			defer cancel()
			var html string
			var png []byte
			chromedp.Run(hc, chromedp.OuterHTML("body", &html, chromedp.ByQuery), chromedp.CaptureScreenshot(&png))
			os.WriteFile(filepath.Join(shots, "failed-"+strings.ReplaceAll(what, " ", "-")+".png"), png, 0o644)
			t.Fatalf("%s: %v\nbrowser errors: %v\npage: %s\nhotline output:\n%s", what, err, errs.list(), tail(html, 4000), tail(p.out.String(), 3000))
		}
	}
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			time.Sleep(400 * time.Millisecond) // let Element Plus's transitions finish
			var png []byte
			if err := chromedp.CaptureScreenshot(&png).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	action := func(name, field, text string) chromedp.Tasks {
		ts := chromedp.Tasks{
			chromedp.WaitVisible(fmt.Sprintf(`#ticket-actions [data-action=%q]`, name), chromedp.ByQuery),
			chromedp.Click(fmt.Sprintf(`#ticket-actions [data-action=%q]`, name), chromedp.ByQuery),
			chromedp.WaitVisible("#act-confirm", chromedp.ByID),
		}
		if field != "" {
			ts = append(ts, chromedp.WaitVisible("#act-"+field, chromedp.ByID), chromedp.SendKeys("#act-"+field, text, chromedp.ByID))
		}
		return append(ts, chromedp.Click("#act-confirm", chromedp.ByID), chromedp.WaitNotVisible("#action-dialog", chromedp.ByID))
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

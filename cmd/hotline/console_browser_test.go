package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"hotline/telephony/phonetest"
	"hotline/ticketing"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// chromium is Debian's browser (deploy/install-deps.sh test installs it).
const chromium = "/usr/bin/chromium"

// browserErrors collects what a page reports as wrong: console errors, uncaught exceptions, and browser log
// errors (a refused script or style under the Content-Security-Policy shows up there). Failed HTTP answers the
// pages handle themselves (a 401 before login) are network log entries and are not counted.
type browserErrors struct {
	mu   sync.Mutex
	errs []string
}

func (b *browserErrors) listen(ctx context.Context, who string) {
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "uncaught: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError && e.Entry.Source != log.SourceNetwork {
				msg = "log " + string(e.Entry.Source) + ": " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errs = append(b.errs, who+": "+msg)
			b.mu.Unlock()
		}
	})
}

func (b *browserErrors) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// screenshotDir is where the test keeps its screenshots: $HOTLINE_SCREENSHOTS, or a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("HOTLINE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// The consoles in a real browser: an agent signs in and goes ready; a call from a monitored household's number
// arrives over SIP; the screen-pop shows the household; the agent saves a ticket from it (the call linked in the
// same request) and reads out the number and query code; a county clerk, signed in beforehand in a second browser
// context, sees the ticket appear in 待签收 without reloading, signs it and replies; the agent's open ticket page
// follows the status without reloading. Any console error or uncaught exception fails the test.
func TestConsoleInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e := newUpEnv(t)
	// A short greeting (the beep) keeps the caller's wait for an agent, and so the test, short.
	prompts := t.TempDir()
	beep, err := os.ReadFile(filepath.Join("..", "..", "telephony", "media", "prompts", "beep.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prompts, "greeting.wav"), beep, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(e.env, "HOTLINE_DEMO_HOUSEHOLDS=60", "HOTLINE_RING_TIMEOUT=30s", "HOTLINE_AFTER_CALL_WORK=2s", "HOTLINE_PROMPTS_DIR="+prompts)
	p := startHotline(t, env, "up")
	waitReady(t, p, e.base)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The agent's phone registers like a softphone and answers after a few rings.
	agentPhone, err := phonetest.Start(phonetest.Options{Mode: phonetest.Answer, AnswerAfter: 1500 * time.Millisecond, ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer agentPhone.Close()
	if err := agentPhone.Register(ctx, "sip:agent1@"+e.sip, "agent1", "sip-agent1-demo", 10*time.Minute); err != nil {
		t.Fatalf("register agent1: %v", err)
	}

	// Two browsers, each with its own profile, are two people at two desks (no shared cookies).
	errs := &browserErrors{}
	dbWhenFailed := func() string { return "database activity:\n" + dbActivity(e.dbURL) }
	agentB := newBrowser(t, ctx, "agent", shots, p, browserOptions{errs: errs, onFail: dbWhenFailed})
	clerkB := newBrowser(t, ctx, "clerk", shots, p, browserOptions{errs: errs, onFail: dbWhenFailed})
	agent, clerk := agentB.ctx, clerkB.ctx
	browsers := map[context.Context]*browser{agent: agentB, clerk: clerkB}
	run := func(who string, c context.Context, actions ...chromedp.Action) {
		t.Helper()
		start := time.Now()
		browsers[c].run(who, 20*time.Second, actions...)
		t.Logf("%s: %v", who, time.Since(start).Round(time.Millisecond))
	}
	shot := agentB.shot // the screenshot is of the browser the step runs in; the action takes its context
	signIn := func(user string) chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.Navigate(e.base + "/"),
			chromedp.WaitVisible("#login-username", chromedp.ByID),
			chromedp.SendKeys("#login-username", user, chromedp.ByID),
			chromedp.SendKeys("#login-password", demoPassword, chromedp.ByID),
			chromedp.Click("#login-submit", chromedp.ByID),
		}
	}

	// The login page, then the agent's console.
	// The login page, loaded cold: its weight and how long until it can be used are logged (figures, not assertions).
	var weight string
	run("agent login page", agent, chromedp.Navigate(e.base+"/login"), chromedp.WaitVisible("#login-submit", chromedp.ByID),
		chromedp.Evaluate(`(() => { const n = performance.getEntriesByType('navigation')[0]; const rs = performance.getEntriesByType('resource');
			const sum = (k) => rs.reduce((s, e) => s + e[k], n[k]);
			return 'transferred ' + sum('transferSize') + ' B (decoded ' + sum('decodedBodySize') + ' B) in ' + (rs.length + 1) +
				' requests; DOMContentLoaded ' + Math.round(n.domContentLoadedEventEnd) + ' ms; form usable ' + Math.round(performance.now()) + ' ms'; })()`, &weight),
		shot("login"))
	t.Logf("login page, cold: %s", weight)
	run("agent signs in", agent, signIn("agent1"),
		chromedp.WaitVisible("#state-bar", chromedp.ByID),
		chromedp.WaitVisible(`#sip-registered`, chromedp.ByID),
		chromedp.Click("#btn-ready", chromedp.ByID),
		chromedp.WaitVisible(`#agent-state[data-state="ready"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery),
	)
	var registered string
	run("agent registration shown", agent, chromedp.Text("#sip-registered", &registered, chromedp.ByID))
	if registered != "话机已注册" {
		t.Errorf("state bar shows %q for a registered phone", registered)
	}

	// The clerk of 赫山区 signs in before the ticket exists and keeps the division console open.
	run("clerk signs in", clerk, signIn("heshan1"),
		chromedp.WaitVisible("#division-list", chromedp.ByID),
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument = true`, nil),
	)
	var unsignedBefore string
	run("clerk count", clerk, chromedp.AttributeValue("#tab-unsigned .cnt", "data-count", &unsignedBefore, nil, chromedp.ByQuery))

	// A call from household 0's number (刘 of 赫山区, the demo's first household).
	citizen, err := phonetest.Start(phonetest.Options{ToneHz: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer citizen.Close()
	caller := monitoring.DemoPhone(0)
	call, err := citizen.Dial(ctx, "sip:12345@"+e.sip, phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatalf("call the hotline: %v", err)
	}
	defer call.Hangup(context.Background())

	var popCaller string
	run("screen-pop", agent,
		chromedp.WaitVisible(`#call-panel [data-household]`, chromedp.ByQuery),
		chromedp.Text("#pop-caller", &popCaller, chromedp.ByID),
		chromedp.WaitVisible(`#call-panel .hh .meta .el-tag`, chromedp.ByQuery),
		shot("agent-screen-pop"),
	)
	if strings.Contains(popCaller, caller) || !strings.Contains(popCaller, "*") {
		t.Errorf("screen-pop shows the caller as %q: want it masked", popCaller)
	}
	var popText string
	run("screen-pop text", agent, chromedp.Text("#call-panel", &popText, chromedp.ByID))
	if !strings.Contains(popText, "刘") || !strings.Contains(popText, "赫山区") {
		t.Errorf("screen-pop does not show the household of 赫山区:\n%s", popText)
	}

	// One click starts the ticket from the call and the household; the agent types the matter and saves.
	var number, code string
	run("save ticket", agent,
		chromedp.Click(`#call-panel .start-ticket`, chromedp.ByQuery),
		chromedp.WaitVisible(`#tf-town`, chromedp.ByID),
		chromedp.SendKeys("#tf-content", "刘家反映：家中老人今年住院两次，医药费自付部分较高，家庭收入明显下降，请求核实帮扶。<b>不是标记</b>", chromedp.ByID),
		shot("agent-ticket-form"),
		chromedp.Click("#tf-save-dispatch", chromedp.ByID),
		chromedp.WaitVisible("#saved-number", chromedp.ByID),
		chromedp.Text("#saved-number", &number, chromedp.ByID),
		chromedp.Text("#saved-code", &code, chromedp.ByID),
		shot("agent-ticket-saved"),
	)
	if number == "" || len(code) != ticketing.QueryCodeLen || !ticketing.ValidQueryCodeShape(code) {
		t.Errorf("read-out shows number %q and query code %q", number, code)
	}

	// The call was linked to the ticket by the same request that created it.
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var linkedNumber string
	if err := db.QueryRow(ctx, `SELECT t.number FROM calls c JOIN tickets t ON t.id = c.ticket_id WHERE c.caller = $1`, caller).Scan(&linkedNumber); err != nil || linkedNumber != number {
		t.Errorf("call from %s linked to ticket %q (%v), want %s", caller, linkedNumber, err, number)
	}

	// The clerk's 待签收 list shows it without a reload.
	run("clerk sees the ticket", clerk,
		chromedp.WaitVisible(fmt.Sprintf(`//*[@id="division-list"]//a[normalize-space(text())=%q]`, number), chromedp.BySearch),
		shot("division-console"),
	)
	var same bool
	var unsignedAfter string
	run("clerk same document", clerk, chromedp.Evaluate(`window.__sameDocument === true`, &same),
		chromedp.AttributeValue("#tab-unsigned .cnt", "data-count", &unsignedAfter, nil, chromedp.ByQuery))
	if !same {
		t.Error("the division console reloaded to show the new ticket")
	}
	if unsignedAfter == unsignedBefore {
		t.Errorf("待签收 count stayed %s after a ticket was dispatched to the unit", unsignedAfter)
	}

	// The agent opens the ticket page and keeps it open.
	run("agent opens the ticket", agent,
		chromedp.Click(`#saved-dialog a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#ticket-status[data-status="dispatched"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument = true`, nil),
	)
	var content string
	run("agent ticket content", agent, chromedp.Text("#ticket-content", &content, chromedp.ByID))
	if !strings.Contains(content, "<b>不是标记</b>") {
		t.Errorf("typed markup is not shown as text: %q", content)
	}

	// The clerk signs and replies on the ticket page.
	run("clerk signs and replies", clerk,
		chromedp.Click(fmt.Sprintf(`//*[@id="division-list"]//a[normalize-space(text())=%q]`, number), chromedp.BySearch),
		chromedp.WaitVisible(`#ticket-actions [data-action="sign"]`, chromedp.ByQuery),
		chromedp.Click(`#ticket-actions [data-action="sign"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#act-confirm", chromedp.ByID),
		chromedp.Click("#act-confirm", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-status[data-status="signed"]`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#action-dialog`, chromedp.ByID),
		chromedp.WaitVisible(`#ticket-actions [data-action="reply"]`, chromedp.ByQuery),
		chromedp.Click(`#ticket-actions [data-action="reply"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#act-reply", chromedp.ByID),
		chromedp.SendKeys("#act-reply", "已入户核实，已纳入监测并落实医疗救助。", chromedp.ByID),
		chromedp.Click("#act-confirm", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-status[data-status="replied"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument = true`, nil),
		shot("ticket-page"),
	)

	// The agent's page followed without a reload.
	run("agent sees the reply", agent,
		chromedp.WaitVisible(`#ticket-status[data-status="replied"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#ticket-reply", chromedp.ByID),
		chromedp.Evaluate(`window.__sameDocument === true`, &same),
		shot("agent-ticket-page"),
	)
	if !same {
		t.Error("the agent's ticket page reloaded to show the new status")
	}

	// The call ends after the ticket was saved: its recording goes with the ticket, and the link stays.
	if err := call.Hangup(ctx); err != nil {
		t.Errorf("hang up: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var recTicket, callTicket *int64
	for {
		err := db.QueryRow(ctx, `SELECT r.ticket_id, c.ticket_id FROM calls c JOIN recordings r ON r.call_id = c.id
			WHERE c.caller = $1 AND c.ended_at IS NOT NULL`, caller).Scan(&recTicket, &callTicket)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if recTicket == nil || callTicket == nil || *recTicket != *callTicket {
		t.Errorf("after the call ended: recording of ticket %v, call of ticket %v; want both the saved ticket", recTicket, callTicket)
	}

	// The agent's ticket page now plays the call's recording.
	var recStatus int
	var callLabel string
	run("recording on the ticket page", agent, chromedp.Reload(),
		chromedp.WaitVisible(`#ticket-calls audio[data-recording]`, chromedp.ByQuery),
		chromedp.Text(`#ticket-calls .ticket-call[data-kind=inbound]`, &callLabel, chromedp.ByQuery),
		chromedp.Evaluate(`fetch(document.querySelector('#ticket-calls audio').src).then(r => r.status)`, &recStatus,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
		shot("ticket-page-recording"))
	if recStatus != 200 {
		t.Errorf("the recording answers %d to the agent", recStatus)
	}
	if !strings.Contains(callLabel, "呼入 · 来电") || !strings.Contains(callLabel, "已接通") {
		t.Errorf("the call on the ticket page: %q, want its direction, kind (来电) and outcome", callLabel)
	}

	// Someone acts first: while the clerk's sign dialog is open, the unit's head signs the ticket through the API;
	// the page follows, and the clerk's confirmation is answered with a plain conflict message, not a failure.
	var headID, agentID int64
	db.QueryRow(ctx, `SELECT id FROM users WHERE username = 'heshanhead'`).Scan(&headID)
	db.QueryRow(ctx, `SELECT id FROM users WHERE username = 'agent1'`).Scan(&agentID)
	headTok, err := org.CreateToken(ctx, db, org.UserID(headID), "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agentTok, err := org.CreateToken(ctx, db, org.UserID(agentID), "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var second struct{ Ticket struct{ ID, Version int64 } }
	if code := postJSON(t, e.base+"/api/v1/tickets", agentTok, map[string]any{"kind": "help", "category": "monitoring_help",
		"region_code": "430903", "content": "饮水设施损坏，请求维修", "dispatch": true}, &second); code != 201 {
		t.Fatalf("second ticket: %d", code)
	}
	run("clerk opens the sign dialog", clerk,
		chromedp.Navigate(fmt.Sprintf("%s/tickets/%d", e.base, second.Ticket.ID)),
		chromedp.WaitVisible(`#ticket-actions [data-action="sign"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery),
		chromedp.Click(`#ticket-actions [data-action="sign"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#act-confirm", chromedp.ByID))
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/tickets/%d/sign", e.base, second.Ticket.ID), headTok,
		map[string]any{"version": second.Ticket.Version}, nil); code != 200 {
		t.Fatalf("head signs: %d", code)
	}
	var conflict string
	run("clerk meets the conflict", clerk,
		chromedp.WaitVisible(`#ticket-status[data-status="signed"]`, chromedp.ByQuery),
		chromedp.Click("#act-confirm", chromedp.ByID),
		chromedp.WaitVisible(`.el-message-box`, chromedp.ByQuery),
		chromedp.Text(`.el-message-box`, &conflict, chromedp.ByQuery),
		shot("conflict"),
		chromedp.Click(`.el-message-box__btns button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`.el-message-box`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument = true`, nil))
	if !strings.Contains(conflict, "状态已变化") {
		t.Errorf("conflict shown as %q", conflict)
	}

	// hotline restarts: the pages say they are offline, reconnect by themselves (the session lives in
	// PostgreSQL), and live updates flow again — the clerk's page follows the agent's next step.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	run("pages go offline", agent, chromedp.WaitVisible(`#live-state[data-online="false"]`, chromedp.ByQuery), shot("offline"))
	p = startHotline(t, env, "up")
	waitReady(t, p, e.base)
	run("agent reconnects", agent, chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery))
	run("clerk reconnects", clerk, chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery))
	run("agent starts the callback", agent,
		chromedp.Click(`#ticket-actions [data-action="start_callback"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#act-confirm", chromedp.ByID),
		chromedp.Click("#act-confirm", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-status[data-status="callback"]`, chromedp.ByQuery))
	// The head replies to the second ticket through the API: the clerk's page, reconnected, follows.
	var cur struct{ Ticket struct{ Version int64 } }
	get := func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/tickets/%d", e.base, second.Ticket.ID), nil)
		req.Header.Set("Authorization", "Bearer "+headTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&cur)
	}
	get()
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/tickets/%d/reply", e.base, second.Ticket.ID), headTok,
		map[string]any{"version": cur.Ticket.Version, "reply": "已联系水利站维修。"}, nil); code != 200 {
		t.Fatalf("head replies: %d", code)
	}
	run("clerk follows after the reconnect", clerk, chromedp.WaitVisible(`#ticket-status[data-status="replied"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument === true`, &same))
	if !same {
		t.Error("the clerk's ticket page reloaded after the reconnect")
	}

	if es := errs.list(); len(es) > 0 {
		t.Errorf("browser reported errors:\n%s", strings.Join(es, "\n"))
	}
	t.Logf("screenshots in %s", shots)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// dbActivity lists the database's busy sessions, for a failure report.
func dbActivity(url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT state || ' ' || coalesce(wait_event_type, '') || ' ' || coalesce(wait_event, '') || ' ' || left(query, 200)
		FROM pg_stat_activity WHERE state IS NOT NULL AND state <> 'idle' AND pid <> pg_backend_pid()`)
	if err != nil {
		return err.Error()
	}
	lines, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n")
}

// postJSON posts a JSON body with a bearer token and decodes the answer into out (if not nil).
func postJSON(t *testing.T, url, token string, body, out any) int {
	t.Helper()
	return callJSON(t, "POST", url, token, body, out)
}

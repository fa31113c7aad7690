package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/exchange"
)

// browserPlatform is a 12345 platform on a loopback HTTP server: it checks our signature, refuses feedback for
// good (400) until accept is set, and lists no open orders for the reconciliation.
type browserPlatform struct {
	secret   []byte
	accept   atomic.Bool
	mu       sync.Mutex
	received []string // actions applied
}

func (p *browserPlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get(exchange.HeaderSignature) != exchange.Signature(p.secret, r.Method, r.URL.RequestURI(),
		r.Header.Get(exchange.HeaderTimestamp), r.Header.Get(exchange.HeaderNonce), body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Write([]byte(`{"orders":[]}`))
		return
	}
	if !p.accept.Load() {
		http.Error(w, "order state does not allow sign", http.StatusBadRequest)
		return
	}
	var fb struct{ Action string }
	json.Unmarshal(body, &fb)
	p.mu.Lock()
	p.received = append(p.received, fb.Action)
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// 12345对接 in a real browser: the platform pushes an order with a category code we have no mapping for; the admin
// sees the code under 待映射编码, maps it to one of our categories there, and finds it under 编码映射. Our 签收 of
// the order is refused by the platform for good, so it is dead at once: it shows under 死信 with its error, and
// 重发 — the platform accepting again — turns it 已发送 without a reload. 立即对账 lists a run. A county clerk has
// no 12345对接 in the nav and the API refuses them.
func TestExchangePageInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	secret := []byte("browser-test-secret-of-32-bytes!")
	plat := &browserPlatform{secret: secret}
	srv := httptest.NewServer(plat)
	defer srv.Close()

	e := newUpEnv(t)
	env := append(append([]string{}, e.env...), "HOTLINE_EXCHANGE_PLATFORMS=name=yiyang,url="+srv.URL,
		"HOTLINE_EXCHANGE_SECRETS=yiyang="+string(secret))
	p := startHotline(t, env, "up")
	waitReady(t, p, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	// The platform pushes two orders whose category code 0999 has no mapping, the second also with a region code
	// of its own (YYR-07): both are taken all the same.
	push := func(orderID, region string) {
		t.Helper()
		if code, ack := pushOrder(t, e.base, "yiyang", secret, orderID, map[string]any{
			"content": "家中老人住院,收入下降,申请帮扶", "category_code": "0999", "region_code": region, "appeal_type": "求助"}); code != http.StatusCreated {
			t.Fatalf("push %s: %d %s", orderID, code, ack)
		}
	}
	push("YY-B-1", "430903")
	push("YY-B-2", "YYR-07")
	var ticketID int64
	var number string
	if err := db.QueryRow(ctx, `SELECT t.id, t.number FROM tickets t JOIN exchange_orders o ON o.ticket_id = t.id
		WHERE o.platform = 'yiyang' AND o.order_id = 'YY-B-1'`).Scan(&ticketID, &number); err != nil {
		t.Fatal(err)
	}
	// Our 签收 of it, queued as the ticket hook queues it; the platform refuses it for good, so it is dead at once.
	payload, _ := json.Marshal(exchange.Outbound{OrderID: "YY-B-1", Action: "sign", IdempotencyKey: "browser-sign-1",
		At: time.Now(), Unit: "益阳市赫山区乡村振兴局", Handler: "赫山承办人"})
	var outID int64
	if err := db.QueryRow(ctx, `INSERT INTO exchange_outbound (platform, order_id, ticket_id, event_id, action, idempotency_key, payload)
		VALUES ('yiyang', 'YY-B-1', $1, 990000001, 'sign', 'browser-sign-1', $2) RETURNING id`, ticketID, payload).Scan(&outID); err != nil {
		t.Fatal(err)
	}
	var state string
	for deadline := time.Now().Add(20 * time.Second); state != "dead" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		db.QueryRow(ctx, `SELECT state FROM exchange_outbound WHERE id = $1`, outID).Scan(&state)
	}
	if state != "dead" {
		t.Fatalf("签收 refused for good is %q, want dead\n%s", state, tail(p.out.String(), 3000))
	}

	br := newBrowser(t, ctx, "admin", shots, p, browserOptions{})
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 25*time.Second, actions...)
	}
	signIn := func(user string) chromedp.Tasks { return signInTasks(e.base, user, demoPassword) }

	// 待映射编码: the code, with the two orders that came with it; 映射 to 防返贫监测求助.
	const unmappedRow = `#unmapped-list .unmapped-category-0999`
	var nav, unmappedText, count, waiting string
	run("admin opens 12345对接", signIn("admin"),
		chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery),
		chromedp.Click(`//header//nav/a[text()="12345对接"]`, chromedp.BySearch),
		chromedp.WaitVisible(unmappedRow, chromedp.ByQuery),
		chromedp.Text(unmappedRow, &unmappedText, chromedp.ByQuery),
		chromedp.Text(unmappedRow+` .unmapped-count`, &count, chromedp.ByQuery),
		chromedp.Text(unmappedRow+` .unmapped-waiting`, &waiting, chromedp.ByQuery))
	if !strings.Contains(nav, "12345对接") {
		t.Errorf("admin's nav %q has no 12345对接", nav)
	}
	if !strings.Contains(unmappedText, "类别") || !strings.Contains(unmappedText, "YY-B-2") || strings.TrimSpace(count) != "2" ||
		strings.TrimSpace(waiting) != "2" {
		t.Errorf("unmapped row shows %q (received %q, waiting %q): want 类别, two orders both at the desk and the last one's id", unmappedText, count, waiting)
	}
	run("map the code", press(unmappedRow+` .unmapped-map`),
		chromedp.WaitVisible("#map-category", chromedp.ByID),
		pickOption("#map-category", "防返贫监测求助"),
		press("#map-save"),
		chromedp.WaitNotPresent(unmappedRow, chromedp.ByQuery))
	var mapped string
	if err := db.QueryRow(ctx, `SELECT category FROM exchange_category_map WHERE platform = 'yiyang' AND code = '0999'`).Scan(&mapped); err != nil || mapped != "monitoring_help" {
		t.Errorf("mapping of 0999 saved as %q (%v), want monitoring_help", mapped, err)
	}
	// The region code: 映射 to 益阳市 → 赫山区 with the region picker.
	const regionRow = `#unmapped-list .unmapped-region-YYR-07`
	run("map the region", press(regionRow+` .unmapped-map`),
		chromedp.WaitVisible("#map-pref", chromedp.ByID),
		pickOption("#map-pref", "益阳市"),
		pickOption("#map-county", "赫山区"),
		press("#map-save"),
		chromedp.WaitNotPresent(regionRow, chromedp.ByQuery))
	var region string
	if err := db.QueryRow(ctx, `SELECT region_code FROM exchange_region_map WHERE platform = 'yiyang' AND code = 'YYR-07'`).Scan(&region); err != nil || region != "430903" {
		t.Errorf("mapping of YYR-07 saved as %q (%v), want 430903", region, err)
	}
	const mappingRow = `#mapping-list .mapping-category-0999`
	var mappingText string
	run("编码映射", press("#tab-mappings"), chromedp.WaitVisible(mappingRow, chromedp.ByQuery),
		chromedp.Text(mappingRow, &mappingText, chromedp.ByQuery))
	if !strings.Contains(mappingText, "防返贫监测求助") || !strings.Contains(mappingText, "monitoring_help") {
		t.Errorf("mapping row shows %q", mappingText)
	}

	// Deleting a mapping asks first; confirmed, the row goes and the code is unmapped again.
	const regionMapping = `#mapping-list .mapping-region-YYR-07`
	var confirm, regionText string
	run("delete a mapping", chromedp.WaitVisible(regionMapping, chromedp.ByQuery),
		chromedp.Text(regionMapping, &regionText, chromedp.ByQuery),
		press(regionMapping+` .mapping-delete`),
		chromedp.WaitVisible(`.el-message-box`, chromedp.ByQuery),
		chromedp.Text(`.el-message-box`, &confirm, chromedp.ByQuery),
		press(`.el-message-box__btns .el-button--primary`),
		chromedp.WaitNotPresent(regionMapping, chromedp.ByQuery))
	if !strings.Contains(regionText, "益阳市赫山区（430903）") {
		t.Errorf("region mapping shows %q", regionText)
	}
	if !strings.Contains(confirm, "删除区划编码 YYR-07 的映射") {
		t.Errorf("delete asked %q", confirm)
	}
	var left int
	db.QueryRow(ctx, `SELECT count(*) FROM exchange_region_map WHERE platform = 'yiyang'`).Scan(&left)
	if left != 0 {
		t.Errorf("%d region mappings left after the delete", left)
	}

	// 推送记录, filtered to 死信: the refused 签收 with its error and our ticket's number.
	row := `#outbound-list .outbound-` + strconv.FormatInt(outID, 10)
	var deadText, href string
	var png []byte
	run("死信", press("#tab-outbound"),
		chromedp.WaitVisible(row+` .outbound-state[data-state="dead"]`, chromedp.ByQuery),
		press(`#outbound-filter .filter-dead`),
		chromedp.WaitVisible(row+` .outbound-retry`, chromedp.ByQuery),
		chromedp.Text(row, &deadText, chromedp.ByQuery),
		chromedp.AttributeValue(row+` .outbound-ticket`, "href", &href, nil, chromedp.ByQuery),
		chromedp.WaitNotPresent(`.el-message`, chromedp.ByQuery), // the toasts of the mappings saved, not in the picture
		chromedp.Sleep(400*time.Millisecond),                     // let Element Plus's enter transitions finish
		chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(filepath.Join(shots, "exchange.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"签收", "YY-B-1", number, "死信", "平台拒收（HTTP 400）", "order state does not allow sign"} {
		if !strings.Contains(deadText, want) {
			t.Errorf("dead row shows %q: want %q", deadText, want)
		}
	}
	if href != "/tickets/"+strconv.FormatInt(ticketID, 10) {
		t.Errorf("ticket link %q", href)
	}

	// 重发 with the platform accepting: the row turns 已发送 in place.
	plat.accept.Store(true)
	run("重发", press(row+` .outbound-retry`),
		chromedp.WaitVisible(row+` .outbound-state[data-state="sent"]`, chromedp.ByQuery))
	plat.mu.Lock()
	got := strings.Join(plat.received, ",")
	plat.mu.Unlock()
	if got != "sign" {
		t.Errorf("platform applied %q after 重发, want sign", got)
	}
	var retries int
	run("no 重发 on a sent row", chromedp.Evaluate(`document.querySelectorAll(`+"`"+row+` .outbound-retry`+"`"+`).length`, &retries))
	if retries != 0 {
		t.Errorf("a sent row still offers 重发")
	}

	// Someone else got there first: a dead row on the page went out meanwhile; 重发 says so plainly and the row
	// shows its current state.
	var ticket2 int64
	if err := db.QueryRow(ctx, `SELECT ticket_id FROM exchange_orders WHERE platform = 'yiyang' AND order_id = 'YY-B-2'`).Scan(&ticket2); err != nil {
		t.Fatal(err)
	}
	payload2, _ := json.Marshal(exchange.Outbound{OrderID: "YY-B-2", Action: "reply", IdempotencyKey: "browser-reply-2", At: time.Now(), Reply: "已落实帮扶"})
	var otherID int64
	if err := db.QueryRow(ctx, `INSERT INTO exchange_outbound (platform, order_id, ticket_id, event_id, action, idempotency_key, payload,
		state, attempts, last_error) VALUES ('yiyang', 'YY-B-2', $1, 990000002, 'reply', 'browser-reply-2', $2, 'dead', 12, 'platform answered 502: bad gateway')
		RETURNING id`, ticket2, payload2).Scan(&otherID); err != nil {
		t.Fatal(err)
	}
	other := `#outbound-list .outbound-` + strconv.FormatInt(otherID, 10)
	var otherText string
	run("refresh", press("#outbound-refresh"), chromedp.WaitVisible(other+` .outbound-retry`, chromedp.ByQuery),
		chromedp.Text(other, &otherText, chromedp.ByQuery))
	if !strings.Contains(otherText, "办结答复") || !strings.Contains(otherText, "平台暂时不可用（HTTP 502）") {
		t.Errorf("second dead row shows %q", otherText)
	}
	if _, err := db.Exec(ctx, `UPDATE exchange_outbound SET state = 'sent', sent_at = now(), last_error = '' WHERE id = $1`, otherID); err != nil {
		t.Fatal(err)
	}
	var conflict string
	run("重发 conflict", press(other+` .outbound-retry`),
		chromedp.WaitVisible(`.el-message-box`, chromedp.ByQuery),
		chromedp.Text(`.el-message-box`, &conflict, chromedp.ByQuery),
		press(`.el-message-box__btns button`),
		chromedp.WaitNotPresent(`.el-message-box`, chromedp.ByQuery),
		chromedp.WaitVisible(other+` .outbound-state[data-state="sent"]`, chromedp.ByQuery))
	if !strings.Contains(conflict, "未重发") || !strings.Contains(conflict, "已不是死信") {
		t.Errorf("conflict shown as %q", conflict)
	}

	// 对账: a run now lists under the platform.
	var recText string
	run("立即对账", press("#tab-recon"), press("#recon-run"),
		chromedp.WaitVisible(`//*[@id="recon-list"]//tr[contains(., "手动")]`, chromedp.BySearch),
		chromedp.Text(`#recon-list`, &recText, chromedp.ByQuery))
	if !strings.Contains(recText, "yiyang") || !strings.Contains(recText, "手动") {
		t.Errorf("reconciliations show %q", recText)
	}

	// The ticket page of the order: its 12345工单 card names the platform's order and says our 签收 reached it.
	var card string
	run("ticket page", chromedp.Navigate(e.base+"/tickets/"+strconv.FormatInt(ticketID, 10)),
		chromedp.WaitVisible(`#ticket-exchange[data-sync="synced"] .exchange-send[data-state="sent"]`, chromedp.ByQuery),
		chromedp.Text(`#ticket-exchange`, &card, chromedp.ByQuery))
	for _, want := range []string{"12345工单", "已同步", "YY-B-1", "签收"} {
		if !strings.Contains(card, want) {
			t.Errorf("ticket's 12345 card %q has no %q", card, want)
		}
	}

	// A county clerk: no 12345对接 in the nav, and the API refuses them.
	var status int
	run("clerk", press("#logout"), chromedp.WaitVisible("#login-username", chromedp.ByID),
		signIn("heshan1"), chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery),
		chromedp.Evaluate(`fetch('/api/v1/exchange/outbound?state=dead').then((r) => r.status)`, &status,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if strings.Contains(nav, "12345对接") {
		t.Errorf("clerk's nav %q shows 12345对接", nav)
	}
	if status != http.StatusForbidden {
		t.Errorf("clerk's GET /api/v1/exchange/outbound answered %d, want 403", status)
	}
	br.noErrors()
}

// pickOption opens an Element Plus select (by its input's selector) and clicks the visible option with label; the
// options may come a moment later (the region picker asks the server), and the select is opened again if a click
// was lost.
func pickOption(sel, label string) chromedp.Action {
	return chromedp.Tasks{chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate(fmt.Sprintf(`(() => {
				const it = [...document.querySelectorAll('.el-select-dropdown__item')].find((e) => e.offsetParent !== null && e.textContent.trim() === %q);
				if (it) { it.click(); return true; }
				if (![...document.querySelectorAll('.el-select-dropdown')].some((d) => d.offsetParent !== null)) document.querySelector(%q).click();
				return false; })()`, label, sel), &ok).Do(ctx); err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("option %q of %s: %w", label, sel, ctx.Err())
			case <-time.After(300 * time.Millisecond):
			}
		}
	})}
}

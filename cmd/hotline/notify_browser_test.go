package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// 通知投递 in a real browser: a unit's WeChat Work robot refuses a message for good (errcode 93000), so the delivery
// is dead at once; the admin opens 通知投递, filters 死信, sees it with its error and attempt log, and — the robot
// accepting again — clicks 重试; the row turns 已发送 without a reload. A non-admin has no 通知投递 in the nav.
func TestNotifyPageInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	// A local robot webhook speaking WeChat Work's answer format; it refuses until accept is set.
	var accept atomic.Bool
	var received atomic.Int32
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !accept.Load() {
			w.Write([]byte(`{"errcode":93000,"errmsg":"invalid webhook url"}`))
			return
		}
		received.Add(1)
		w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`))
	}))
	defer robot.Close()

	e, p, ctx, db := upWithDB(t, 2*time.Minute)
	var id int64
	if err := db.QueryRow(ctx, `INSERT INTO notify_deliveries (event_id, topic, recipient, channel, address, address_masked,
		template, body, idem_key, status, attempts, next_at, event_at)
		VALUES ('1-1', 'ticket.dispatch', 'unit:1:group', 'wecom_robot', $1, 'robot:k***', 'unit_dispatched', '### 新工单待签收', 'browser-k', 'pending', 0, now(), now())
		RETURNING id`, robot.URL+"/cgi-bin/webhook/send?key=k1").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The pipeline picks it up and the refusal is permanent: dead after one attempt.
	var status string
	for deadline := time.Now().Add(15 * time.Second); status != "dead" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		db.QueryRow(ctx, `SELECT status FROM notify_deliveries WHERE id = $1`, id).Scan(&status)
	}
	if status != "dead" {
		t.Fatalf("delivery refused for good is %q, want dead\n%s", status, tail(p.out.String(), 3000))
	}

	// A fresh profile, removed once the browser is gone (its helpers may write a moment after it exits).
	br := newBrowser(t, ctx, "admin", shots, p, browserOptions{})
	errs := br.errs
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 20*time.Second, actions...)
	}
	signIn := func(user string) chromedp.Tasks { return signInTasks(e.base, user, demoPassword) }
	row := `#delivery-list .delivery-` + strconv.FormatInt(id, 10)
	// An older delivery that went out, for the filter to leave out.
	var sentID int64
	if err := db.QueryRow(ctx, `INSERT INTO notify_deliveries (event_id, topic, recipient, channel, address, address_masked,
		template, body, idem_key, status, attempts, next_at, event_at, sent_at)
		VALUES ('1-0', 'ticket.dispatch', 'unit:2:group', 'wecom_robot', $1, 'robot:m***', 'unit_dispatched', '### 新工单待签收', 'browser-m', 'sent', 1, now(), now(), now())
		RETURNING id`, robot.URL+"/cgi-bin/webhook/send?key=m1").Scan(&sentID); err != nil {
		t.Fatal(err)
	}
	sentRow := `#delivery-list .delivery-` + strconv.FormatInt(sentID, 10)

	var nav, lastErr, sentText string
	var png []byte
	run("admin opens 通知投递", signIn("admin"),
		chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery),
		chromedp.Click(`//header//nav/a[text()="通知投递"]`, chromedp.BySearch),
		chromedp.WaitVisible(row+` .delivery-status[data-status="dead"]`, chromedp.ByQuery),
		chromedp.WaitVisible(sentRow, chromedp.ByQuery),
		chromedp.Sleep(400*time.Millisecond), // let Element Plus's enter transitions finish
		chromedp.CaptureScreenshot(&png),
		chromedp.Text(sentRow, &sentText, chromedp.ByQuery),
		// Filtered to 死信, the sent delivery leaves the list.
		chromedp.Click(`#delivery-filter .filter-dead`, chromedp.ByQuery),
		chromedp.WaitNotPresent(sentRow, chromedp.ByQuery),
		chromedp.WaitVisible(row+` .delivery-retry`, chromedp.ByQuery),
		chromedp.Text(row, &lastErr, chromedp.ByQuery),
	)
	if err := os.WriteFile(filepath.Join(shots, "notify-deliveries.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nav, "通知投递") {
		t.Errorf("admin's nav %q has no 通知投递", nav)
	}
	if !strings.Contains(sentText, "派单 / unit_dispatched") {
		t.Errorf("sent row shows %q: want its event in Chinese (派单) before the template", sentText)
	}
	if !strings.Contains(lastErr, "93000") || !strings.Contains(lastErr, "robot:k***") {
		t.Errorf("dead row shows %q: want the masked recipient and the last error", lastErr)
	}
	var attemptsText string
	run("attempt log", chromedp.Click(row+` .delivery-open`, chromedp.ByQuery),
		chromedp.WaitVisible(`#delivery-attempts .el-table__row`, chromedp.ByQuery),
		chromedp.Text(`#delivery-attempts`, &attemptsText, chromedp.ByQuery),
		closeDrawer(`#delivery-detail`))
	if !strings.Contains(attemptsText, "失败") || !strings.Contains(attemptsText, "93000") {
		t.Errorf("attempt log shows %q", attemptsText)
	}

	accept.Store(true)
	run("retry", chromedp.Click(row+` .delivery-retry`, chromedp.ByQuery),
		chromedp.WaitVisible(row+` .delivery-status[data-status="sent"]`, chromedp.ByQuery),
		// The detail now lists both attempts: the refusal, then the send.
		chromedp.Click(row+` .delivery-open`, chromedp.ByQuery),
		chromedp.WaitVisible(`#delivery-attempts .el-table__row:nth-child(2)`, chromedp.ByQuery),
		chromedp.Text(`#delivery-attempts`, &attemptsText, chromedp.ByQuery),
		closeDrawer(`#delivery-detail`))
	if !strings.Contains(attemptsText, "成功") {
		t.Errorf("attempt log after the retry shows %q", attemptsText)
	}
	if n := received.Load(); n != 1 {
		t.Errorf("robot received %d messages after the retry, want 1", n)
	}
	// A second retry of the same (now sent) delivery through the API is a conflict; the page offers none.
	var retries int
	run("no retry on a sent row", chromedp.Evaluate(`document.querySelectorAll(`+"`"+row+` .delivery-retry`+"`"+`).length`, &retries))
	if retries != 0 {
		t.Errorf("a sent delivery still offers 重试")
	}

	// Someone else got there first: a dead delivery on the page went out meanwhile; 重试 says so plainly and the
	// row shows its current state.
	var otherID int64
	if err := db.QueryRow(ctx, `INSERT INTO notify_deliveries (event_id, topic, recipient, channel, address, address_masked,
		template, body, idem_key, status, attempts, next_at, event_at, last_error)
		VALUES ('1-2', 'ticket.dispatch', 'unit:3:group', 'wecom_robot', $1, 'robot:n***', 'unit_dispatched', '### 新工单待签收', 'browser-n', 'dead', 10, now(), now(), 'HTTP 502')
		RETURNING id`, robot.URL+"/cgi-bin/webhook/send?key=n1").Scan(&otherID); err != nil {
		t.Fatal(err)
	}
	other := `#delivery-list .delivery-` + strconv.FormatInt(otherID, 10)
	run("refresh", chromedp.Click("#delivery-refresh", chromedp.ByID), chromedp.WaitVisible(other+` .delivery-retry`, chromedp.ByQuery))
	if _, err := db.Exec(ctx, `UPDATE notify_deliveries SET status = 'sent', sent_at = now(), last_error = '' WHERE id = $1`, otherID); err != nil {
		t.Fatal(err)
	}
	var conflict string
	run("retry conflict", chromedp.Click(other+` .delivery-retry`, chromedp.ByQuery),
		chromedp.WaitVisible(`.el-message-box`, chromedp.ByQuery),
		chromedp.Text(`.el-message-box`, &conflict, chromedp.ByQuery),
		chromedp.Click(`.el-message-box__btns button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`.el-message-box`, chromedp.ByQuery),
		chromedp.WaitVisible(other+` .delivery-status[data-status="sent"]`, chromedp.ByQuery))
	if !strings.Contains(conflict, "未重试") || !strings.Contains(conflict, "已不是失败状态") {
		t.Errorf("conflict shown as %q", conflict)
	}

	// 消息模板: edit a template; an unknown placeholder is named plainly, the preview fills sample values, and the
	// edit is saved.
	var badTpl, previewText, tplName string
	run("template with an unknown placeholder", chromedp.Click("#tab-templates", chromedp.ByID),
		chromedp.WaitVisible(`#template-list .template-edit`, chromedp.ByQuery),
		chromedp.Click(`#template-list .template-edit`, chromedp.ByQuery),
		chromedp.WaitVisible("#tpl-body", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("tpl-body").value = ""`, nil),
		chromedp.SendKeys("#tpl-body", "工单{number}已受理{nope}", chromedp.ByID),
		chromedp.Click("#tpl-preview-btn", chromedp.ByID),
		chromedp.WaitVisible(`.el-message-box`, chromedp.ByQuery),
		chromedp.Text(`.el-message-box`, &badTpl, chromedp.ByQuery),
		chromedp.Click(`.el-message-box__btns button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`.el-message-box`, chromedp.ByQuery))
	if !strings.Contains(badTpl, "未知占位符") || !strings.Contains(badTpl, "正文") {
		t.Errorf("unknown placeholder shown as %q", badTpl)
	}
	run("template preview and save", chromedp.Evaluate(`document.getElementById("tpl-body").value = ""`, nil),
		chromedp.SendKeys("#tpl-body", "工单{number}已受理，查询码{query_code}。", chromedp.ByID),
		chromedp.Click("#tpl-preview-btn", chromedp.ByID),
		chromedp.WaitVisible(`//*[@id="tpl-preview"][contains(., "20261201-0042")]`, chromedp.BySearch),
		chromedp.Text("#tpl-preview", &previewText, chromedp.ByID),
		chromedp.Text(`#template-dialog .el-dialog__title`, &tplName, chromedp.ByQuery),
		chromedp.Click("#tpl-save", chromedp.ByID),
		chromedp.WaitNotPresent("#tpl-body", chromedp.ByID))
	if !strings.Contains(previewText, "查询码7KQ2M9XH4D") {
		t.Errorf("preview shows %q", previewText)
	}
	var saved string
	db.QueryRow(ctx, `SELECT body FROM notify_templates WHERE name = $1`, strings.TrimPrefix(tplName, "编辑模板 ")).Scan(&saved)
	if saved != "工单{number}已受理，查询码{query_code}。" {
		t.Errorf("template %q saved as %q", tplName, saved)
	}
	// The co-unit's own alert (协办意见超期) is listed with its Chinese name and edited like the others: its preview
	// names the lead unit (主办单位) from the sample values, and saving it unchanged keeps its text.
	const coRow = `#template-list .template-co_opinion_red`
	var coListed, coPreview string
	run("co-opinion template", chromedp.WaitReady(coRow, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("`+coRow+`").scrollIntoView()`, nil),
		chromedp.Text(coRow, &coListed, chromedp.ByQuery),
		press(coRow+` .template-edit`), // by script: the dialog just saved may still be fading out over it
		chromedp.WaitVisible("#tpl-body", chromedp.ByID),
		chromedp.Click("#tpl-preview-btn", chromedp.ByID),
		chromedp.WaitVisible(`//*[@id="tpl-preview"][contains(., "赫山区乡村振兴局")]`, chromedp.BySearch),
		chromedp.Text("#tpl-preview", &coPreview, chromedp.ByID),
		chromedp.Click("#tpl-save", chromedp.ByID),
		chromedp.WaitNotPresent("#tpl-body", chromedp.ByID))
	if !strings.Contains(coListed, "协办意见超期（协办单位）") || !strings.Contains(coPreview, "主办单位：赫山区乡村振兴局") ||
		!strings.Contains(coPreview, "协办意见期限") {
		t.Errorf("co-opinion template listed as %q, previewed as %q", coListed, coPreview)
	}
	db.QueryRow(ctx, `SELECT description || '|' || body FROM notify_templates WHERE name = 'co_opinion_red'`).Scan(&saved)
	if !strings.HasPrefix(saved, "协办意见超期（协办单位）|") || !strings.Contains(saved, "{lead_unit}") {
		t.Errorf("co_opinion_red saved as %q", saved)
	}

	// A unit clerk has no 通知投递 in the nav.
	run("clerk's nav", chromedp.Navigate(e.base+"/notify"), chromedp.WaitVisible("#delivery-list", chromedp.ByID), chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-username", chromedp.ByID),
		signIn("heshan1"), chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery))
	if strings.Contains(nav, "通知投递") {
		t.Errorf("clerk's nav %q shows 通知投递", nav)
	}
	if es := errs.list(); len(es) > 0 {
		t.Errorf("browser reported errors:\n%s", strings.Join(es, "\n"))
	}
}

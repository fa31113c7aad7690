package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// 通知规则, 单位联系方式 and 安全审计 in a real browser. The admin switches a rule off and on (the API says so each
// time), adds a rule — the server's refusals shown under their fields in Chinese first —, sets a unit's liaison
// phone (shown masked, and masked in the API too), edits the unit again without retyping the phone (kept as
// stored), clears it; then opens 安全审计, where the household ID number the admin revealed before is listed.
// A unit clerk gets none of it: not in the nav, refused by the API.
func TestNotifyAdminInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e, p, ctx, db := upWithDB(t, 3*time.Minute, "HOTLINE_DEMO_HOUSEHOLDS=5")
	admin := login(t, e.base, "admin")

	// A reveal of personal data beforehand, as the household page does it.
	var hh int64
	if err := db.QueryRow(ctx, `SELECT household_id FROM household_members WHERE seq = 1 ORDER BY household_id LIMIT 1`).Scan(&hh); err != nil {
		t.Fatal(err)
	}
	var revealed struct{ Value string }
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/households/%d/reveal", e.base, hh), admin,
		map[string]any{"field": "id_number", "member_seq": 1, "reason": "核对身份：浏览器测试"}, &revealed); code != 200 || revealed.Value == "" {
		t.Fatalf("reveal: %d", code)
	}

	type rule struct {
		ID                        int64
		Topic, Recipient, Channel string
		Template                  string
		Enabled                   bool
	}
	rules := func() []rule {
		var out struct{ Rules []rule }
		if code := callJSON(t, "GET", e.base+"/api/v1/notify/rules", admin, nil, &out); code != 200 {
			t.Fatalf("rules: %d", code)
		}
		return out.Rules
	}
	var urge rule
	for _, r := range rules() {
		if r.Topic == "ticket.urge" && r.Recipient == "unit_head" && r.Enabled {
			urge = r
		}
	}
	if urge.ID == 0 {
		t.Fatalf("no enabled ticket.urge rule for the unit head in %+v", rules())
	}
	// ruleEnabled waits until the API reports the urge rule switched to want.
	ruleEnabled := func(want bool) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			for {
				for _, r := range rules() {
					if r.ID == urge.ID && r.Enabled == want {
						return nil
					}
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("rule %d never became enabled=%v: %w", urge.ID, want, ctx.Err())
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}

	br := newBrowser(t, ctx, "admin", shots, p, browserOptions{})
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 20*time.Second, actions...)
	}
	signIn := func(user string) chromedp.Tasks { return signInTasks(e.base, user, demoPassword) }
	// pick opens the Element Plus select inside wrapper and clicks the visible option labelled label.
	pick := func(wrapper, label string) chromedp.Action {
		return chromedp.Tasks{press(wrapper + " .el-select__wrapper"),
			chromedp.Poll(fmt.Sprintf(`(() => { const li = Array.from(document.querySelectorAll('.el-select-dropdown__item'))
				.find((e) => e.offsetParent !== null && e.textContent.trim() === %q); if (li) li.click(); return !!li; })()`, label),
				nil, chromedp.WithPollingInterval(100*time.Millisecond))}
	}
	fieldError := func(sel string, out *string) chromedp.Action {
		return chromedp.Tasks{chromedp.WaitVisible(sel+" .el-form-item__error", chromedp.ByQuery), chromedp.Text(sel+" .el-form-item__error", out, chromedp.ByQuery)}
	}
	setInput := func(id, v string) chromedp.Action {
		return chromedp.Evaluate(fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %q; el.dispatchEvent(new Event('input')); return true; })()`, id, v), nil)
	}

	// 通知规则: the urge rule in Chinese, switched off and on again.
	urgeRow := "#rule-list .rule-" + strconv.FormatInt(urge.ID, 10)
	var urgeText string
	run("admin opens 通知规则", signIn("admin"),
		chromedp.Navigate(e.base+"/notify"),
		chromedp.WaitVisible("#delivery-list", chromedp.ByID),
		press("#tab-rules"),
		chromedp.WaitVisible(urgeRow+" .rule-enabled.is-checked", chromedp.ByQuery),
		chromedp.Text(urgeRow, &urgeText, chromedp.ByQuery),
		br.shot("notify-rules"),
		press(urgeRow+" .rule-enabled"), ruleEnabled(false),
		chromedp.WaitNotPresent(urgeRow+" .rule-enabled.is-checked", chromedp.ByQuery),
		chromedp.WaitNotPresent(urgeRow+" .rule-enabled.is-disabled", chromedp.ByQuery), // the first save answered
		press(urgeRow+" .rule-enabled"), ruleEnabled(true),
		chromedp.WaitVisible(urgeRow+" .rule-enabled.is-checked", chromedp.ByQuery))
	if !strings.Contains(urgeText, "催办") || !strings.Contains(urgeText, "单位负责人") || !strings.Contains(urgeText, "企业微信") {
		t.Errorf("urge rule shown as %q: want 催办, 单位负责人, 企业微信", urgeText)
	}

	// A new rule: nothing chosen, then a caller by WeChat — each refusal under its field; then by SMS, saved.
	var topicErr, recipientErr, channelErr, templateErr string
	run("new rule refused", press("#rule-new"), chromedp.WaitVisible("#rule-dialog .rule-field-topic", chromedp.ByQuery),
		press("#rule-save"),
		fieldError("#rule-dialog .rule-field-topic", &topicErr), fieldError("#rule-dialog .rule-field-recipient", &recipientErr),
		fieldError("#rule-dialog .rule-field-template", &templateErr))
	if topicErr != "请选择事件" || recipientErr != "请选择接收方" || templateErr != "请选择模板" {
		t.Errorf("empty rule refused with %q / %q / %q", topicErr, recipientErr, templateErr)
	}
	tplLabel := "caller_replied"
	var tplDesc string
	db.QueryRow(ctx, `SELECT description FROM notify_templates WHERE name = 'caller_replied'`).Scan(&tplDesc)
	if tplDesc != "" {
		tplLabel += "（" + tplDesc + "）"
	}
	run("caller by WeChat refused",
		pick("#rule-dialog .rule-field-topic", "催办（ticket.urge）"),
		pick("#rule-dialog .rule-field-recipient", "来电人"),
		pick("#rule-dialog .rule-field-channel", "企业微信群"),
		pick("#rule-dialog .rule-field-template", tplLabel),
		press("#rule-save"),
		chromedp.WaitNotPresent("#rule-dialog .rule-field-topic .el-form-item__error", chromedp.ByQuery),
		fieldError("#rule-dialog .rule-field-channel", &channelErr))
	if channelErr != "来电人只能用短信通知" {
		t.Errorf("caller by WeChat refused with %q", channelErr)
	}
	run("new rule saved", pick("#rule-dialog .rule-field-channel", "短信"), press("#rule-save"),
		chromedp.WaitNotPresent("#rule-dialog .rule-field-topic", chromedp.ByQuery))
	var added rule
	for _, r := range rules() {
		if r.Topic == "ticket.urge" && r.Recipient == "caller" {
			added = r
		}
	}
	if added.Channel != "sms" || added.Template != "caller_replied" || !added.Enabled {
		t.Fatalf("added rule is %+v", added)
	}
	var addedText string
	run("new rule listed", chromedp.WaitVisible("#rule-list .rule-"+strconv.FormatInt(added.ID, 10), chromedp.ByQuery),
		chromedp.Text("#rule-list .rule-"+strconv.FormatInt(added.ID, 10), &addedText, chromedp.ByQuery))
	if !strings.Contains(addedText, "催办") || !strings.Contains(addedText, "来电人") || !strings.Contains(addedText, "短信") {
		t.Errorf("added rule shown as %q", addedText)
	}

	// 单位联系方式: a unit without contacts gets a liaison phone (a wrong one refused first).
	var unitID int64
	var unitName string
	if err := db.QueryRow(ctx, `SELECT id, name FROM units u WHERE active AND NOT EXISTS
		(SELECT 1 FROM notify_unit_channels c WHERE c.unit_id = u.id) ORDER BY id LIMIT 1`).Scan(&unitID, &unitName); err != nil {
		t.Fatal(err)
	}
	unitRow := "#unit-contact-list .unit-contact-" + strconv.FormatInt(unitID, 10)
	var phoneErr, shownPhone string
	run("liaison phone refused", press("#tab-units"), chromedp.WaitVisible("#unit-contact-list", chromedp.ByID),
		press("#unit-contact-new"), chromedp.WaitVisible("#unit-liaison-phone", chromedp.ByID),
		pick("#unit-contact-dialog .unit-field-unit", unitName),
		chromedp.SendKeys("#unit-liaison-phone", "12345", chromedp.ByID),
		chromedp.SendKeys("#unit-email", "liaison@example.gov.cn", chromedp.ByID),
		press("#unit-contact-save"),
		fieldError("#unit-contact-dialog .unit-field-liaison_phone", &phoneErr))
	if phoneErr != "请填写11位手机号码" {
		t.Errorf("bad liaison phone refused with %q", phoneErr)
	}
	run("liaison phone saved", setInput("unit-liaison-phone", "13812345678"), press("#unit-contact-save"),
		chromedp.WaitNotPresent("#unit-liaison-phone", chromedp.ByID),
		chromedp.WaitVisible(unitRow, chromedp.ByQuery),
		chromedp.Text(unitRow+" .unit-liaison-phone", &shownPhone, chromedp.ByQuery))
	if shownPhone != "138****5678" {
		t.Errorf("saved liaison phone shown as %q, want 138****5678", shownPhone)
	}
	apiUnit := func() map[string]any {
		var out struct{ Units []map[string]any }
		if code := callJSON(t, "GET", e.base+"/api/v1/notify/units", admin, nil, &out); code != 200 {
			t.Fatalf("units: %d", code)
		}
		for _, u := range out.Units {
			if int64(u["unit_id"].(float64)) == unitID {
				return u
			}
		}
		return nil
	}
	if u := apiUnit(); u == nil || u["liaison_phone"] != "138****5678" {
		t.Errorf("API shows the unit as %v, want the liaison phone masked", u)
	}
	var sealed0, sealed1 []byte
	db.QueryRow(ctx, `SELECT liaison_phone_sealed FROM notify_unit_channels WHERE unit_id = $1`, unitID).Scan(&sealed0)

	// Edited again, the masked phone left as shown: the stored number stays; the e-mail changes.
	run("unit edited, phone kept", press(unitRow+" .unit-contact-edit"), chromedp.WaitVisible("#unit-email", chromedp.ByID),
		setInput("unit-email", "office@example.gov.cn"), press("#unit-contact-save"),
		chromedp.WaitNotPresent("#unit-email", chromedp.ByID),
		chromedp.WaitVisible(fmt.Sprintf(`//*[contains(@class,"unit-contact-%d")][contains(., "office@example.gov.cn")]`, unitID), chromedp.BySearch),
		chromedp.Text(unitRow+" .unit-liaison-phone", &shownPhone, chromedp.ByQuery))
	db.QueryRow(ctx, `SELECT liaison_phone_sealed FROM notify_unit_channels WHERE unit_id = $1`, unitID).Scan(&sealed1)
	if shownPhone != "138****5678" || len(sealed0) == 0 || !bytes.Equal(sealed0, sealed1) {
		t.Errorf("after an edit leaving the phone as shown: %q, sealed number kept %v", shownPhone, bytes.Equal(sealed0, sealed1))
	}
	// Cleared, it is gone.
	run("liaison phone cleared", press(unitRow+" .unit-contact-edit"), chromedp.WaitVisible("#unit-liaison-phone", chromedp.ByID),
		setInput("unit-liaison-phone", ""), press("#unit-contact-save"),
		chromedp.WaitNotPresent("#unit-liaison-phone", chromedp.ByID),
		chromedp.WaitVisible(fmt.Sprintf(`//*[contains(@class,"unit-contact-%d")]//*[contains(@class,"unit-liaison-phone")][.="—"]`, unitID), chromedp.BySearch))
	if u := apiUnit(); u == nil || u["liaison_phone"] != "" || u["email"] != "office@example.gov.cn" {
		t.Errorf("API shows the cleared unit as %v", u)
	}

	// 安全审计: the reveal is listed with who, what, when and the household; filtered to reveals, the logins go.
	revealRow := "#security-list .security-kind-reveal"
	var revealText string
	run("security audit", chromedp.Navigate(e.base+"/admin?tab=security"),
		chromedp.WaitVisible(revealRow, chromedp.ByQuery),
		chromedp.WaitVisible("#security-list .security-kind-login", chromedp.ByQuery),
		pick("#security-panel", "查看完整个人信息"),
		chromedp.WaitNotPresent("#security-list .security-kind-login", chromedp.ByQuery),
		chromedp.WaitVisible(revealRow, chromedp.ByQuery),
		chromedp.Text(revealRow, &revealText, chromedp.ByQuery),
		br.shot("security-audit"))
	for _, want := range []string{"admin", "查看完整个人信息", fmt.Sprintf("农户 #%d", hh), "身份证号"} {
		if !strings.Contains(revealText, want) {
			t.Errorf("reveal listed as %q: want %q", revealText, want)
		}
	}
	if strings.Contains(revealText, revealed.Value) {
		t.Errorf("the audit shows the revealed ID number")
	}

	// A unit clerk: no 通知投递 nor 系统管理 in the nav; the API refuses the rules, the units and the audit log.
	var nav string
	run("clerk", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-username", chromedp.ByID),
		signIn("heshan1"), chromedp.Text("header.topbar nav", &nav, chromedp.ByQuery))
	if strings.Contains(nav, "通知投递") || strings.Contains(nav, "系统管理") {
		t.Errorf("clerk's nav %q", nav)
	}
	clerk := login(t, e.base, "heshan1")
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/notify/rules"}, {"PUT", "/api/v1/notify/rules/" + strconv.FormatInt(urge.ID, 10)},
		{"GET", "/api/v1/notify/units"}, {"PUT", fmt.Sprintf("/api/v1/notify/units/%d", unitID)}, {"GET", "/api/v1/security-audit"}} {
		if code := callJSON(t, c.method, e.base+c.path, clerk, map[string]any{}, nil); code != 403 {
			t.Errorf("clerk %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	br.noErrors()
}

// callJSON sends a request with a bearer token (and a JSON body unless nil) and decodes the answer into out.
func callJSON(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

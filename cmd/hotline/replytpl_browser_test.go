package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Reply templates (答复模板) in a real browser: a supervisor creates one in the knowledge base's 答复模板 tab (a
// placeholder the server does not fill is refused by name first, and one is inserted from the help list); 赫山区's
// clerk sees the list without any create or edit control, signs a ticket of the unit, opens 办结答复, picks the
// template over a typed draft (asked before replacing it), and the textarea holds the text rendered for this ticket;
// the reply submitted is that text, on the page and through the API; the supervisor then stops the template.
// Any console error fails the test.
func TestReplyTemplatesInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e, p, ctx, db := upWithDB(t, 3*time.Minute, "HOTLINE_DEMO_HOUSEHOLDS=10")
	// A ticket of 赫山区 waiting to be signed, of a category other than 小额信贷 (whose demo template must not be offered).
	var ticketID int64
	var number, category, catName, unitName string
	if err := db.QueryRow(ctx, `SELECT t.id, t.number, t.category, c.name, u.name FROM tickets t JOIN units u ON u.id = t.lead_unit_id
		JOIN ticket_categories c ON c.code = t.category
		WHERE u.code = '430903' AND t.status = 'dispatched' AND t.category NOT IN ('industry_credit', 'monitoring_verify') ORDER BY t.id LIMIT 1`).
		Scan(&ticketID, &number, &category, &catName, &unitName); err != nil {
		t.Fatalf("a demo ticket of 赫山区: %v", err)
	}
	const name = "办结告知（测试）"
	const body = "您好：您反映的问题（工单{number}）已由{unit}办理完毕，感谢您的来电。"
	want := strings.NewReplacer("{number}", number, "{unit}", unitName).Replace(body)

	errs := &browserErrors{}
	super := newBrowser(t, ctx, "supervisor", shots, p, browserOptions{width: 1366, height: 900, errs: errs})
	clerk := newBrowser(t, ctx, "clerk", shots, p, browserOptions{width: 1366, height: 900, errs: errs})
	signIn := func(user string) chromedp.Tasks { return signInTasks(e.base, user, demoPassword) }
	nameCell := fmt.Sprintf(`//span[contains(@class,"tpl-name")][text()=%q]`, name)

	super.run("supervisor creates a template", 40*time.Second, signIn("super1"),
		chromedp.Navigate(e.base+"/kb?tab=templates"), chromedp.WaitVisible("#tpl-list", chromedp.ByID),
		press("#tpl-new"), chromedp.WaitVisible("#tpl-body", chromedp.ByID),
		chromedp.SendKeys("#tpl-name", name, chromedp.ByID),
		// For the ticket's category: typed into the filterable select, then its option chosen.
		press("#tpl-category"), chromedp.SendKeys("#tpl-category", catName, chromedp.ByID), chooseOption(catName),
		// The body without {unit}, then {unit} from the placeholder help, then the rest.
		chromedp.SendKeys("#tpl-body", "您好：您反映的问题（工单{number}）已由", chromedp.ByID),
		press(`#tpl-placeholders [data-ph="{unit}"]`),
		chromedp.SendKeys("#tpl-body", "办理完毕，感谢您的来电。{phone}", chromedp.ByID),
		press("#tpl-save"),
		chromedp.WaitVisible(`//div[contains(@class,"el-form-item__error")][contains(.,"不支持的占位符 {phone}")]`, chromedp.BySearch),
		chromedp.SendKeys("#tpl-body", strings.Repeat(kb.Backspace, len("{phone}")), chromedp.ByID),
		press("#tpl-save"), chromedp.WaitNotVisible("#tpl-dialog", chromedp.ByID),
		chromedp.WaitVisible(nameCell, chromedp.BySearch),
		chromedp.Evaluate(`ElementPlus.ElMessage.closeAll(), true`, nil), super.shot("reply-templates-manage"))

	superTok, clerkTok := login(t, e.base, "super1"), login(t, e.base, "heshan1")
	var list struct {
		Templates []struct {
			ID         int64
			Name, Body string
			Category   string
		}
		Placeholders map[string]string
	}
	code, raw := get(t, e.base+"/api/v1/reply-templates", "Authorization", "Bearer "+superTok)
	if err := json.Unmarshal([]byte(raw), &list); code != 200 || err != nil {
		t.Fatalf("list templates: %d %s", code, raw)
	}
	var tplID int64
	for _, x := range list.Templates {
		if x.Name == name {
			tplID = x.ID
			if x.Body != body || x.Category != category {
				t.Errorf("saved template: body %q category %q, want %q and %s", x.Body, x.Category, body, category)
			}
		}
	}
	if tplID == 0 {
		t.Fatalf("the template made in the console is not listed: %s", raw)
	}

	// The knowledge base opens on its articles as before; 答复模板 is the tab beside them.
	clerk.run("clerk sees the templates read-only", 30*time.Second, signIn("heshan1"),
		chromedp.Navigate(e.base+"/kb"), chromedp.WaitVisible(".kb-hit", chromedp.ByQuery),
		press("#tab-templates"), chromedp.WaitVisible(nameCell, chromedp.BySearch))
	var controls int
	clerk.run("count edit controls", 5*time.Second, chromedp.Evaluate(
		`document.querySelectorAll('#tpl-new, .tpl-edit').length`, &controls))
	if controls != 0 {
		t.Errorf("a clerk sees %d create/edit controls for reply templates", controls)
	}

	page := fmt.Sprintf("%s/tickets/%d", e.base, ticketID)
	pick := fmt.Sprintf(`.tpl-option[data-template="%d"]`, tplID)
	clerk.run("clerk signs and picks the template over a draft", 40*time.Second, chromedp.Navigate(page),
		press(`#ticket-actions [data-action="sign"]`), chromedp.WaitVisible("#act-confirm", chromedp.ByID),
		press("#act-confirm"), chromedp.WaitNotVisible("#action-dialog", chromedp.ByID),
		chromedp.WaitVisible(`#ticket-status[data-status="signed"]`, chromedp.ByQuery),
		press(`#ticket-actions [data-action="reply"]`), chromedp.WaitVisible("#act-reply", chromedp.ByID),
		chromedp.SendKeys("#act-reply", "草稿", chromedp.ByID),
		chromedp.WaitVisible("#tpl-pick", chromedp.ByID), press("#tpl-pick"), chromedp.WaitVisible(pick, chromedp.ByQuery))
	var offered []string
	clerk.run("read the offered templates", 5*time.Second, chromedp.Evaluate(
		`[...document.querySelectorAll('.tpl-option')].map((e) => e.textContent)`, &offered))
	joined := strings.Join(offered, "|")
	if !strings.Contains(joined, "通用办结答复") || strings.Contains(joined, "小额信贷续贷展期") {
		t.Errorf("templates offered for a %s ticket: %v (want the general ones, not 小额信贷's)", category, offered)
	}
	var text string
	clerk.run("replace the draft with the rendered template", 20*time.Second, press(pick),
		chromedp.WaitVisible(".el-message-box", chromedp.ByQuery), press(".el-message-box__btns .el-button--primary"),
		chromedp.Poll(`document.querySelector('#act-reply').value !== '草稿' && document.querySelector('#act-reply').value`, &text,
			chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`ElementPlus.ElMessage.closeAll(), true`, nil), clerk.shot("reply-templates"))
	if text != want {
		t.Errorf("textarea after picking the template: %q, want %q", text, want)
	}
	clerk.run("clerk submits the reply", 30*time.Second, press("#act-confirm"), chromedp.WaitNotVisible("#action-dialog", chromedp.ByID),
		chromedp.WaitVisible("#ticket-reply", chromedp.ByID), chromedp.Text("#ticket-reply", &text, chromedp.ByID))
	if text != want {
		t.Errorf("reply on the page: %q, want %q", text, want)
	}
	var view struct {
		Ticket struct {
			Status    string
			ReplyText string `json:"reply_text"`
		}
	}
	code, raw = get(t, fmt.Sprintf("%s/api/v1/tickets/%d", e.base, ticketID), "Authorization", "Bearer "+clerkTok)
	if err := json.Unmarshal([]byte(raw), &view); code != 200 || err != nil {
		t.Fatalf("read the ticket: %d %s", code, raw)
	}
	if view.Ticket.ReplyText != want || view.Ticket.Status != "replied" {
		t.Errorf("ticket after the reply: status %s reply %q, want replied and %q", view.Ticket.Status, view.Ticket.ReplyText, want)
	}
	// The API refuses what the console hides: a clerk may not create a template.
	if code := postJSON(t, e.base+"/api/v1/reply-templates", clerkTok, map[string]any{"name": "x", "body": "y"}, nil); code != 403 {
		t.Errorf("a clerk creating a template: %d, want 403", code)
	}

	// The supervisor stops the template (asked first): it leaves the list, and rendering it is refused.
	super.run("supervisor stops the template", 30*time.Second,
		press(fmt.Sprintf(`.tpl-edit[data-template="%d"]`, tplID)), chromedp.WaitVisible("#tpl-body", chromedp.ByID),
		press(".el-dialog .el-switch"), press("#tpl-save"),
		chromedp.WaitVisible(".el-message-box", chromedp.ByQuery), press(".el-message-box__btns .el-button--primary"),
		chromedp.WaitNotVisible("#tpl-dialog", chromedp.ByID), chromedp.WaitNotPresent(nameCell, chromedp.BySearch))
	if _, raw := get(t, e.base+"/api/v1/reply-templates", "Authorization", "Bearer "+clerkTok); strings.Contains(raw, name) {
		t.Errorf("a stopped template is still listed: %s", raw)
	}
	if code := postJSON(t, fmt.Sprintf("%s/api/v1/reply-templates/%d/render", e.base, tplID), clerkTok,
		map[string]any{"ticket_id": ticketID}, nil); code != 404 {
		t.Errorf("rendering a stopped template: %d, want 404", code)
	}
	super.noErrors()
}

// chooseOption clicks the option labelled text in the Element Plus dropdown open now (a closed select's options
// stay in the page, hidden), once it shows.
func chooseOption(text string) chromedp.Action {
	return chromedp.Poll(fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll('.el-select-dropdown__item')].find((e) => e.offsetParent !== null && e.textContent.trim() === %q);
		if (!li) return false;
		li.click();
		return true;
	})()`, text), nil, chromedp.WithPollingTimeout(10*time.Second))
}

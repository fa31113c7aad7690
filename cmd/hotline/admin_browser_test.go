package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// 系统管理 and 监测户 in a real browser: the admin creates a user (王芳, an agent of the dispatch desk) on the 用户
// tab, finds the change on the 操作审计 tab with before and after, signs out, and 王芳 signs in with the password
// the admin set. Then the admin searches a household by name, opens its record (numbers masked), reveals one
// member's ID number with a reason, and the reveal is in pii_reveals. Any console error fails the test.
func TestAdminAndHouseholdPagesInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e, p, ctx, db := upWithDB(t, 3*time.Minute, "HOTLINE_DEMO_HOUSEHOLDS=20")

	br := newBrowser(t, ctx, "browser", shots, p, browserOptions{})
	errs := br.errs
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 20*time.Second, actions...)
	}
	shot := br.shot
	signIn := func(user, password string) chromedp.Tasks { return signInTasks(e.base, user, password) }

	// The admin creates 王芳 (role and unit default to an agent of the dispatch desk).
	const newPassword = "Wf-start-2026"
	run("admin opens 系统管理", signIn("admin", demoPassword),
		chromedp.Navigate(e.base+"/admin"),
		chromedp.WaitVisible("#user-list .user-agent1", chromedp.ByQuery),
		chromedp.Click("#admin-new-user", chromedp.ByID),
		chromedp.WaitVisible("#nu-username", chromedp.ByID),
		chromedp.SendKeys("#nu-username", "wangfang", chromedp.ByID),
		chromedp.SendKeys("#nu-display", "王芳", chromedp.ByID),
		chromedp.SendKeys("#nu-password", newPassword, chromedp.ByID),
		shot("admin-new-user"),
		chromedp.Click("#user-save", chromedp.ByID),
		chromedp.WaitVisible("#user-list .user-wangfang", chromedp.ByQuery),
		shot("admin-users"),
	)
	var role, unit string
	if err := db.QueryRow(ctx, `SELECT u.role, n.code FROM users u JOIN units n ON n.id = u.unit_id WHERE u.username = 'wangfang'`).Scan(&role, &unit); err != nil || role != "agent" || unit != "desk" {
		t.Fatalf("the new user: role %q unit %q (%v)", role, unit, err)
	}
	var auditActor string
	if err := db.QueryRow(ctx, `SELECT actor_username FROM admin_audit WHERE action = 'user.create' AND after->>'username' = 'wangfang'`).Scan(&auditActor); err != nil || auditActor != "admin" {
		t.Fatalf("admin audit of the creation: %q (%v)", auditActor, err)
	}
	var auditText string
	run("admin reads the audit tab",
		chromedp.Click("#tab-audit", chromedp.ByID),
		chromedp.WaitVisible("#audit-list .el-table__row", chromedp.ByQuery),
		chromedp.Text("#audit-list", &auditText, chromedp.ByQuery),
		shot("admin-audit"),
	)
	if !strings.Contains(auditText, "新建用户") || !strings.Contains(auditText, "wangfang") {
		t.Errorf("the audit tab does not show the creation:\n%s", auditText)
	}
	run("admin opens the org tree", chromedp.Click("#tab-units", chromedp.ByID), chromedp.WaitVisible("#unit-tree .el-table__row", chromedp.ByQuery), shot("admin-units"))
	// 需审核答复: the admin switches a unit's reply approval on; the database and the admin audit have it, and after
	// a reload the switch is still on.
	var approvalUnit string
	var approvalFound bool
	run("admin switches 需审核答复 on", chromedp.Click("#unit-tree .el-table__expand-icon", chromedp.ByQuery),
		chromedp.WaitVisible("#unit-tree .reply-approval", chromedp.ByQuery),
		chromedp.AttributeValue("#unit-tree .reply-approval", "data-unit", &approvalUnit, &approvalFound, chromedp.ByQuery),
		chromedp.Click("#unit-tree .reply-approval", chromedp.ByQuery),
		chromedp.WaitVisible("#unit-tree .reply-approval.is-checked", chromedp.ByQuery))
	var approvalOn bool
	var approvalAudit int
	if err := db.QueryRow(ctx, `SELECT n.reply_approval, (SELECT count(*) FROM admin_audit a WHERE a.action = 'unit.reply_approval'
		AND a.object = 'unit:' || n.id AND a.actor_username = 'admin') FROM units n WHERE n.code = $1`, approvalUnit).Scan(&approvalOn, &approvalAudit); err != nil ||
		!approvalOn || approvalAudit != 1 {
		t.Fatalf("reply approval of unit %q: on %v, audit rows %d (%v)", approvalUnit, approvalOn, approvalAudit, err)
	}
	run("after a reload 需审核答复 is still on", chromedp.Reload(), chromedp.WaitVisible("#tab-units", chromedp.ByID),
		chromedp.Click("#tab-units", chromedp.ByID), chromedp.WaitVisible("#unit-tree .el-table__expand-icon", chromedp.ByQuery),
		chromedp.Click("#unit-tree .el-table__expand-icon", chromedp.ByQuery),
		chromedp.WaitVisible(fmt.Sprintf(`#unit-tree .reply-approval.is-checked[data-unit=%q]`, approvalUnit), chromedp.ByQuery),
		shot("admin-units-reply-approval"))
	run("admin tries the routing dry run", chromedp.Click("#tab-routing", chromedp.ByID), chromedp.WaitVisible("#dry-run", chromedp.ByID),
		chromedp.Click("#dry-run", chromedp.ByID), chromedp.WaitVisible("#dry-run-answer", chromedp.ByID), shot("admin-routing"))

	// 王芳 signs in with the password the admin set.
	var who string
	run("the new user signs in", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-username", chromedp.ByID),
		signIn("wangfang", newPassword), chromedp.Text("header.topbar .who", &who, chromedp.ByQuery))
	if who != "王芳" {
		t.Errorf("signed in as %q, want 王芳", who)
	}

	// The admin searches a household by its head's name and reveals a member's ID number with a reason.
	var id int64
	var head string
	if err := db.QueryRow(ctx, `SELECT id, head_name FROM households ORDER BY id LIMIT 1`).Scan(&id, &head); err != nil {
		t.Fatal(err)
	}
	var reveals0 int
	db.QueryRow(ctx, `SELECT count(*) FROM pii_reveals`).Scan(&reveals0)
	var masked, shown string
	run("household search", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-username", chromedp.ByID),
		signIn("admin", demoPassword),
		chromedp.Navigate(e.base+"/households"),
		chromedp.WaitVisible("#hh-q", chromedp.ByID),
		chromedp.SendKeys("#hh-q", head, chromedp.ByID),
		chromedp.Click("#hh-go", chromedp.ByID),
		chromedp.WaitVisible(fmt.Sprintf("#hh-list .hh-%d", id), chromedp.ByQuery),
		shot("households-search"),
		chromedp.Navigate(fmt.Sprintf("%s/households/%d", e.base, id)),
		chromedp.WaitVisible("#hh-members .reveal-btn", chromedp.ByQuery),
		chromedp.Text("#hh-members .pii-value", &masked, chromedp.ByQuery),
		chromedp.WaitVisible("#hh-timeline", chromedp.ByID),
		shot("household-record"),
		chromedp.Click("#hh-members .reveal-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#reveal-reason", chromedp.ByID),
		chromedp.SendKeys("#reveal-reason", "核实身份：浏览器测试", chromedp.ByID),
		chromedp.Click("#reveal-go", chromedp.ByID),
		chromedp.Poll(`!document.querySelector('#hh-members .pii-value').textContent.includes('*')`, nil, chromedp.WithPollingInterval(100*time.Millisecond)),
		chromedp.Text("#hh-members .pii-value", &shown, chromedp.ByQuery),
		shot("household-revealed"),
	)
	if !strings.Contains(masked, "*") || strings.Contains(shown, "*") || len(shown) != 18 {
		t.Errorf("ID number masked %q, revealed %q", masked, shown)
	}
	var reveals1 int
	var reason string
	db.QueryRow(ctx, `SELECT count(*) FROM pii_reveals`).Scan(&reveals1)
	db.QueryRow(ctx, `SELECT reason FROM pii_reveals ORDER BY id DESC LIMIT 1`).Scan(&reason)
	if reveals1 != reveals0+1 || reason != "核实身份：浏览器测试" {
		t.Errorf("pii_reveals: %d → %d rows, last reason %q", reveals0, reveals1, reason)
	}
	if es := errs.list(); len(es) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(es, "\n"))
	}
}

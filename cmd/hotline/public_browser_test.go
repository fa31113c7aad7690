package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// wechatUA is the user agent of WeChat's built-in browser on an iPhone.
const wechatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 " +
	"MicroMessenger/8.0.49(0x18003130) NetType/WIFI Language/zh_CN"

// 网上留言 on a phone: at 390×844 with WeChat's user agent, a citizen fills in the form (kind, category, the
// prefecture → county → township picker, content, phone), the page solves the proof-of-work challenge and
// submits; the page shows the ticket number and the 10-character query code; the progress page, opened from
// there, answers the status. The ticket is a web ticket routed to the 赫山区 bureau. Any console error or
// uncaught exception (a script refused by the Content-Security-Policy included) fails the test.
func TestPublicPageInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	e := newUpEnv(t)
	// A lighter proof of work than production's: the test's Chromium shares two cores with everything else.
	p := startHotline(t, append(e.env, "HOTLINE_PUBLIC_POW_BITS=12"), "up")
	waitReady(t, p, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	br := newBrowser(t, ctx, "citizen", shots, p, browserOptions{phone: true, userAgent: wechatUA})
	errs := br.errs
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		br.run(what, 60*time.Second, actions...)
	}
	pick := func(id, value string) chromedp.Action {
		return chromedp.Evaluate(`(function(){var s=document.getElementById('`+id+`'); s.value='`+value+`';
			s.dispatchEvent(new Event('change')); return s.value})()`, nil)
	}
	var form, done, progress []byte
	var number, code, ua string
	run("fill in the form",
		chromedp.Navigate(e.base+"/liuyan"),
		chromedp.WaitReady(`#kind option[value="help"]`, chromedp.ByQuery),
		chromedp.WaitReady(`#category option[value="three_guarantees"]`, chromedp.ByQuery),
		chromedp.WaitReady(`#pref option[value="430900"]`, chromedp.ByQuery),
		chromedp.Evaluate(`navigator.userAgent`, &ua),
		pick("kind", "help"),
		pick("category", "three_guarantees"),
		pick("pref", "430900"),
		chromedp.WaitReady(`#county option[value="430903"]`, chromedp.ByQuery),
		pick("county", "430903"),
		chromedp.WaitReady(`#township option[value="430903001"]`, chromedp.ByQuery),
		pick("township", "430903001"),
		chromedp.SendKeys("#content", "我家在赫山街道龙岭村，自来水停了三天，老人取水困难，请尽快处理。", chromedp.ByID),
		chromedp.SendKeys("#phone", "13807370001", chromedp.ByID),
		chromedp.SendKeys("#name", "李女士", chromedp.ByID),
		chromedp.CaptureScreenshot(&form),
	)
	if !strings.Contains(ua, "MicroMessenger") {
		t.Fatalf("user agent %q", ua)
	}
	run("submit",
		chromedp.Click("#submit", chromedp.ByID),
		chromedp.WaitVisible("#done", chromedp.ByID),
		chromedp.Text("#number", &number, chromedp.ByID),
		chromedp.Text("#code", &code, chromedp.ByID),
		chromedp.CaptureScreenshot(&done),
	)
	if !regexp.MustCompile(`^\d{8}-\d{6}$`).MatchString(number) || !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{10}$`).MatchString(code) {
		t.Fatalf("shown number %q code %q", number, code)
	}
	var status, replies string
	run("query the progress",
		chromedp.Click("#progress-link", chromedp.ByID),
		chromedp.WaitVisible("#q-number", chromedp.ByID),
		chromedp.Click(`#query button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#result", chromedp.ByID),
		chromedp.Text("#r-status", &status, chromedp.ByID),
		chromedp.Text("#r-replies", &replies, chromedp.ByID),
		chromedp.CaptureScreenshot(&progress),
	)
	if status != "已派单，待承办单位签收" || !strings.Contains(replies, "暂无答复") {
		t.Fatalf("progress shows status %q replies %q", status, replies)
	}
	// A wrong code: the same answer as an unknown number.
	var wrong string
	run("wrong code",
		chromedp.SetValue("#q-code", "0000000000", chromedp.ByID),
		chromedp.Click(`#query button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitNotVisible("#result", chromedp.ByID),
		chromedp.Text("#q-error", &wrong, chromedp.ByID),
	)
	if !strings.Contains(wrong, "未找到") {
		t.Fatalf("wrong code shows %q", wrong)
	}
	for name, png := range map[string][]byte{"public-form.png": form, "public-submitted.png": done, "public-progress.png": progress} {
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var source, unit, phone string
	if err := db.QueryRow(ctx, `SELECT t.source, u.code, t.caller_phone FROM tickets t JOIN units u ON u.id = t.lead_unit_id WHERE t.number = $1`,
		number).Scan(&source, &unit, &phone); err != nil || source != "web" || unit != "430903" || phone != "13807370001" {
		t.Fatalf("ticket %s: %v source %q unit %q phone %q", number, err, source, unit, phone)
	}
	if l := errs.list(); len(l) > 0 {
		t.Fatalf("browser errors: %v", l)
	}
}

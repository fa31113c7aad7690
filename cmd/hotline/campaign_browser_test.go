package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

// 外呼任务 in a real browser, against a SIP test peer standing in for the carrier trunk: the campaign manager opens
// 新建外呼任务, narrows the target query and sees the live count follow, uploads an MP3 recorded elsewhere (converted
// to 8 kHz mono on upload; the page plays it back), keeps the defaults but for an all-day window, saves the draft,
// launches it and watches the progress bar, the counts by outcome and the answers arrive until the campaign is
// finished; the Excel export of the results downloads. The households answer and press 1 (a risk signal) or 2.
func TestCampaignPagesInBrowser(t *testing.T) {
	shots := screenshotDir(t)
	// The recording, as an operator would bring it: MP3, 44.1 kHz stereo.
	mp3 := filepath.Join(t.TempDir(), "收入问题.mp3")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", mp3, "synth", "2", "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox (with libsox-fmt-mp3: deploy/install-deps.sh): %v %s", err, out)
	}

	// The trunk: every number answers after a short ring; the first household presses 1, the others 2.
	trunk, err := phonetest.Start(phonetest.Options{Mode: phonetest.Answer, AnswerAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	var calls atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case c := <-trunk.Answered():
				key := "2"
				if calls.Add(1) == 1 {
					key = "1"
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					select {
					case <-time.After(800 * time.Millisecond): // into the prompt: barge-in
						c.SendDigits(key)
					case <-c.Done():
					}
				}()
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	e := newUpEnv(t)
	env := append(e.env, "HOTLINE_DEMO_HOUSEHOLDS=8", "HOTLINE_DIALER_TRUNK="+trunk.Addr())
	p := startHotline(t, env, "up")
	waitReady(t, p, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	br := newBrowser(t, ctx, "campaign1", shots, p, browserOptions{width: 1366, height: 900, fullPage: true})
	errs := br.errs
	run := br.run
	shot := br.shot
	// setInput types into an Element Plus input the way a user's typing reaches Vue (input, then change).
	setInput := func(sel, v string) chromedp.Action {
		return chromedp.Evaluate(fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.focus(); el.value = %q;
			el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); el.blur(); })()`, sel, v), nil)
	}
	count := func(n int) string { return fmt.Sprintf(`#target-count[data-count="%d"]`, n) }

	// campaign1 lands on 外呼任务 and opens a new campaign.
	run("sign in", 120*time.Second,
		chromedp.Navigate(e.base+"/login"),
		chromedp.WaitVisible("#login-username", chromedp.ByID),
		chromedp.SendKeys("#login-username", "campaign1", chromedp.ByID),
		chromedp.SendKeys("#login-password", demoPassword, chromedp.ByID),
		chromedp.Click("#login-submit", chromedp.ByID),
		chromedp.WaitVisible("#campaign-list", chromedp.ByID),
		chromedp.WaitVisible(`//a[contains(@class,"campaign-link")]`, chromedp.BySearch), // the demo's draft
		shot("campaign-list"),
		chromedp.Click("#new-campaign", chromedp.ByID),
		chromedp.WaitVisible("#campaign-build", chromedp.ByID),
		chromedp.WaitVisible(`#cb-span-1-end`, chromedp.ByID), // the default windows arrived
	)
	// The whole province, then a limit: the count follows each change.
	var all string
	run("live count", 60*time.Second,
		chromedp.WaitVisible(`#target-count`, chromedp.ByID),
		chromedp.AttributeValue(`#target-count`, "data-count", &all, nil, chromedp.ByID),
	)
	if all != "8" {
		t.Errorf("the whole province counts %s households, want the 8 demo households", all)
	}
	run("narrow the target", 60*time.Second,
		setInput("#cb-region", "43"),
		chromedp.WaitVisible(count(8), chromedp.ByQuery),
		setInput("#cb-limit", "3"),
		chromedp.WaitVisible(count(3), chromedp.ByQuery),
	)

	// The recording: uploaded, converted, put into the first question, playable.
	run("upload the prompt", 60*time.Second,
		chromedp.SetUploadFiles("#prompt-file", []string{mp3}, chromedp.ByID),
		chromedp.SendKeys("#prompt-name", "income_2027", chromedp.ByID),
		chromedp.Click("#prompt-upload", chromedp.ByID),
		chromedp.WaitVisible(`#q-audio-0[data-prompt="income_2027.wav"]`, chromedp.ByQuery),
	)
	var audio struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Dur    float64
	}
	run("play the prompt", 60*time.Second,
		chromedp.Evaluate(`(async () => { const a = document.querySelector('#q-audio-0'); const r = await fetch(a.src);
			a.load(); await new Promise((ok, no) => { a.onloadedmetadata = ok; a.onerror = () => no(new Error('audio error')); });
			return { status: r.status, type: r.headers.get('Content-Type'), Dur: a.duration }; })()`, &audio,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if audio.Status != 200 || audio.Type != "audio/wav" || audio.Dur < 1.9 || audio.Dur > 2.1 {
		t.Errorf("the uploaded prompt plays as %+v, want a 2 s WAV", audio)
	}
	var stored string
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	db.QueryRow(ctx, `SELECT source_format FROM campaign_prompts WHERE name = 'income_2027.wav'`).Scan(&stored)
	if stored != "mp3" {
		t.Errorf("stored prompt from %q, want mp3", stored)
	}

	// The rest as it comes, but for the window: all day, holidays included, so the test does not depend on the hour.
	run("fill and save", 60*time.Second,
		setInput("#cb-name", "浏览器测试：收入变化排查"),
		setInput("#cb-caller", "073112317"),
		chromedp.Click(`#campaign-build .q-risk .el-checkbox-button`, chromedp.ByQuery), // 1 = 是, income fell: a risk
		chromedp.WaitVisible(`#campaign-build .q-risk .el-checkbox-button.is-checked`, chromedp.ByQuery),
		chromedp.Click(`#campaign-build .span-remove`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`#cb-span-1-end`, chromedp.ByID),
		setInput("#cb-span-0-start", "00:00"),
		setInput("#cb-span-0-end", "24:00"),
		chromedp.Click(`#campaign-build .el-switch`, chromedp.ByQuery),
		chromedp.WaitVisible(`#campaign-build .el-switch.is-checked`, chromedp.ByQuery),
		shot("campaign-build"),
		chromedp.Click("#cb-save", chromedp.ByID),
		chromedp.WaitVisible(`#campaign-status[data-status="draft"]`, chromedp.ByQuery),
	)

	// Launch, confirm, and watch it run to the end.
	run("launch", 60*time.Second,
		chromedp.WaitVisible(`#live-state[data-online="true"]`, chromedp.ByQuery),
		chromedp.Click("#btn-launch", chromedp.ByID),
		chromedp.WaitVisible(`.el-message-box__btns .el-button--primary`, chromedp.ByQuery),
		chromedp.Click(`.el-message-box__btns .el-button--primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#campaign-status[data-status="running"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#btn-pause`, chromedp.ByID),
	)
	run("runs to completion", 180*time.Second,
		chromedp.WaitVisible(`#campaign-status[data-status="finished"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#campaign-progress[data-done="3"][data-total="3"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#campaign-progress .outcome[data-outcome="answered"][data-count="3"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#results[data-total="3"]`, chromedp.ByQuery),
	)
	var answers []string
	run("answers", 60*time.Second,
		// The answers list follows the progress events and a poll: the last answer may arrive after "finished".
		chromedp.Poll(`document.querySelectorAll('#answers .answer').length >= 3`, nil, chromedp.WithPollingInterval(200*time.Millisecond)),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#answers .answer')).map((e) => e.textContent)`, &answers),
		shot("campaign-run"))
	ones, twos := 0, 0
	for _, a := range answers {
		if strings.Contains(a, "q1=1") {
			ones++
		}
		if strings.Contains(a, "q1=2") {
			twos++
		}
	}
	if len(answers) != 3 || ones != 1 || twos != 2 {
		t.Errorf("answers shown %q, want one q1=1 and two q1=2", answers)
	}
	var risky string
	run("risk filter", 60*time.Second,
		chromedp.Click(`#campaign-run label.rf-risk`, chromedp.ByQuery),
		chromedp.WaitVisible(`#results[data-total="1"]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#export-xlsx`, "href", &risky, nil, chromedp.ByID))
	if !strings.Contains(risky, "risk=true") {
		t.Errorf("the Excel export does not carry the filter: %s", risky)
	}
	var xlsx struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Size   int    `json:"size"`
	}
	run("export", 60*time.Second, chromedp.Evaluate(`(async () => { const r = await fetch(document.querySelector('#export-xlsx').href);
		const b = await r.arrayBuffer(); return { status: r.status, type: r.headers.get('Content-Type'), size: b.byteLength }; })()`, &xlsx,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if xlsx.Status != 200 || !strings.Contains(xlsx.Type, "spreadsheetml") || xlsx.Size < 1000 {
		t.Errorf("Excel export: %+v", xlsx)
	}
	if n := trunk.Rang(); n != 3 {
		t.Errorf("the trunk was called %d times, want 3", n)
	}

	// Pause, resume and cancel: a second campaign whose calls find the line busy (retried later, so it keeps running).
	trunk.SetMode(phonetest.Reject)
	var uid int64
	db.QueryRow(ctx, `SELECT id FROM users WHERE username = 'campaign1'`).Scan(&uid)
	tok, err := org.CreateToken(ctx, db, org.UserID(uid), "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var second struct{ ID int64 }
	if code := postJSON(t, e.base+"/api/v1/campaigns", tok, map[string]any{"name": "暂停与取消", "purpose": "notice", "caller_id": "073112317",
		"target_query": map[string]any{"region_prefix": "43", "limit": 2}, "pace": 0.2,
		"windows": map[string]any{"spans": []any{map[string]any{"start": "00:00", "end": "24:00"}}, "call_on_holidays": true},
		"script":  map[string]any{"questions": []any{map[string]any{"id": "ack", "prompt": "income_2027.wav", "keys": "1"}}}}, &second); code != 201 {
		t.Fatalf("second campaign: %d", code)
	}
	confirm := chromedp.Tasks{chromedp.WaitVisible(`.el-message-box__btns .el-button--primary`, chromedp.ByQuery),
		chromedp.Click(`.el-message-box__btns .el-button--primary`, chromedp.ByQuery)}
	// The run page's buttons are pressed by script once visible: a filter's dropdown left in the page can lie
	// over them and take a mouse click.
	run("pause, resume, cancel", 90*time.Second,
		chromedp.Navigate(fmt.Sprintf("%s/campaigns/%d", e.base, second.ID)),
		chromedp.WaitVisible(`#campaign-status[data-status="draft"]`, chromedp.ByQuery),
		chromedp.Click("#btn-launch", chromedp.ByID), confirm,
		chromedp.WaitVisible(`#campaign-status[data-status="running"]`, chromedp.ByQuery),
		press("#btn-pause"),
		chromedp.WaitVisible(`#campaign-status[data-status="paused"]`, chromedp.ByQuery),
		press("#btn-resume"),
		chromedp.WaitVisible(`#campaign-status[data-status="running"]`, chromedp.ByQuery),
		press("#btn-cancel"), confirm,
		chromedp.WaitVisible(`#campaign-status[data-status="cancelled"]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`#btn-cancel`, chromedp.ByID),
	)
	var pending int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_targets WHERE campaign_id = $1 AND state IN ('pending', 'queued')`, second.ID).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d targets still waiting after 取消任务", pending)
	}

	// The other two tabs, for the screenshots and for their errors.
	run("prompts and opt-outs", 60*time.Second,
		chromedp.Navigate(e.base+"/campaigns?tab=prompts"),
		chromedp.WaitVisible(`#prompt-list audio[data-prompt="income_2027.wav"]`, chromedp.ByQuery),
		shot("campaign-prompts"),
		chromedp.Navigate(e.base+"/campaigns?tab=optouts"),
		chromedp.WaitVisible(`#optout-list`, chromedp.ByID),
		setInput("#optout-household", "1"),
		setInput("#optout-reason", "户主来电要求不再接听自动外呼"),
		chromedp.Click("#optout-add", chromedp.ByID),
		chromedp.WaitVisible(`//*[@id="optout-history"]//td[contains(., "户主来电要求不再接听自动外呼")]`, chromedp.BySearch),
		shot("campaign-optouts"),
		// Taking it off again asks for the reason.
		chromedp.Click(`#optout-list .optout-remove`, chromedp.ByQuery),
		chromedp.WaitVisible(`.el-message-box__input input`, chromedp.ByQuery),
		setInput(`.el-message-box__input input`, "户主同意继续接受回访"),
		chromedp.Click(`.el-message-box__btns .el-button--primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`//*[@id="optout-history"]//td[contains(., "户主同意继续接受回访")]`, chromedp.BySearch),
		chromedp.WaitNotPresent(`#optout-list .optout-remove`, chromedp.ByQuery),
	)
	var logged int
	db.QueryRow(ctx, `SELECT count(*) FROM campaign_optout_log l JOIN users u ON u.id = l.actor_id WHERE u.username = 'campaign1'`).Scan(&logged)
	if logged != 2 {
		t.Errorf("%d opt-out changes logged as campaign1's, want 2", logged)
	}
	if es := errs.list(); len(es) > 0 {
		t.Errorf("browser reported errors:\n%s", strings.Join(es, "\n"))
	}
	t.Logf("screenshots in %s", shots)
}

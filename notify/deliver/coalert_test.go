package deliver

import (
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// A co-unit's late opinion (协办意见) has its own notification (sla.co_yellow / sla.co_red and the co_opinion_*
// templates), written to the co-unit: it is named as the 协办单位, the lead unit (主办单位) waiting for its
// opinion is named, its own deadline is the 协办意见期限 line, and it is told to submit its opinion in the system.
// The real sweeper raises the alerts on an injected clock (dispatched Monday 2026-11-30 10:00: the lead's sign-by
// Tuesday 10:00, the co-opinion due Wednesday 10:00, yellow at Tuesday 22:00), and they reach the local WeChat
// Work (robot and application), SMS gateway and SMTP servers. The lead's own overdue alert on the same ticket
// keeps the generic 黄牌 / 红牌 text and goes to the lead only.
func TestCoOpinionAlertReachesTheCoUnit(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	var mu sync.Mutex
	at := cst0("2026-11-30 10:00")
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	set := func(s string) { mu.Lock(); at = cst0(s); mu.Unlock() }
	tickets := ticketing.NewService(r.db, ticketing.Options{Now: clock})

	co := r.unit("div-monitoring")
	const callerPhone = "13912345678"
	tk, err := tickets.Create(r.ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "李四",
		CallerPhone: callerPhone, RegionCode: "430903", Kind: ticketing.KindHelp, Category: "employment", Content: "想参加技能培训"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err = tickets.Do(r.ctx, org.System, tk.ID, ticketing.ActDispatch, ticketing.ActionInput{CoUnitIDs: []org.UnitID{co}})
	if err != nil {
		t.Fatal(err)
	}
	lead := tk.LeadUnitID
	if lead == co || len(tk.CoUnitIDs) != 1 {
		t.Fatalf("dispatch: lead %d co %v", lead, tk.CoUnitIDs)
	}
	var leadName, coName string
	if err := r.db.QueryRow(r.ctx, `SELECT (SELECT name FROM units WHERE id = $1), (SELECT name FROM units WHERE id = $2)`,
		int64(lead), int64(co)).Scan(&leadName, &coName); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		id  org.UnitID
		in  UnitChannelsInput
		key string
	}{
		{co, UnitChannelsInput{RobotWebhook: r.wc.RobotURL("co"), HeadWecomUser: "zhaoliu", LiaisonPhone: "13800001111", Email: "co@monitoring.example.gov.cn"}, "co"},
		{lead, UnitChannelsInput{RobotWebhook: r.wc.RobotURL("lead"), HeadWecomUser: "wangwu", LiaisonPhone: "13800002222", Email: "lead@example.gov.cn"}, "lead"},
	} {
		if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(u.id), u.in); err != nil {
			t.Fatal(err)
		}
	}
	// The co-opinion SMS and e-mail rules ship switched off; an admin switches them on like any rule.
	rules, err := r.svc.Rules(r.ctx, org.System)
	if err != nil {
		t.Fatal(err)
	}
	on, coRules := true, map[string]string{}
	for _, rl := range rules {
		if !strings.HasPrefix(rl.Topic, "sla.co_") {
			continue
		}
		coRules[rl.Topic+" "+rl.Channel] = rl.Template
		if rl.Channel == ChannelSMS || rl.Channel == ChannelEmail {
			if _, err := r.svc.SaveRule(r.ctx, org.System, rl.ID, RuleInput{Topic: rl.Topic, Recipient: rl.Recipient, Channel: rl.Channel,
				Template: rl.Template, Enabled: &on}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, level := range []string{"yellow", "red"} {
		for ch, suffix := range map[string]string{ChannelWecomRobot: "", ChannelWecomApp: "", ChannelSMS: "_sms", ChannelEmail: "_email"} {
			if got := coRules["sla.co_"+level+" "+ch]; got != "co_opinion_"+level+suffix {
				t.Errorf("sla.co_%s over %s uses template %q", level, ch, got)
			}
		}
	}

	// step sweeps at a time and sends what it made; it returns what each server received meanwhile.
	type got struct {
		robot, app map[string][]string // by robot key / WeChat Work user
		sms        map[string][]string // by phone: text
		smsTpl     map[string][]string // by phone: registered template and its parameters
		mail       map[string][]string // by address: subject + body
	}
	var nRobot, nApp, nSMS, nMail int
	step := func(when string) got {
		t.Helper()
		set(when)
		if _, err := tickets.Sweep(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.flow()
		r.sendDue()
		g := got{map[string][]string{}, map[string][]string{}, map[string][]string{}, map[string][]string{}, map[string][]string{}}
		robot, app, sms, mails := r.wc.RobotMessages(), r.wc.AppMessages(), r.gw.Messages(), r.mail.Mails()
		for _, m := range robot[nRobot:] {
			g.robot[m.To] = append(g.robot[m.To], m.Content)
		}
		for _, m := range app[nApp:] {
			g.app[m.To] = append(g.app[m.To], m.Content)
		}
		for _, m := range sms[nSMS:] {
			g.sms[m.Phone] = append(g.sms[m.Phone], m.Text)
			g.smsTpl[m.Phone] = append(g.smsTpl[m.Phone], m.Template+" "+m.Params["number"]+" "+m.Params["lead_unit"]+" "+m.Params["due_at"])
		}
		for _, m := range mails[nMail:] {
			subject, body := readMail(t, m.Data)
			g.mail[m.To[0]] = append(g.mail[m.To[0]], subject+"\n"+body)
		}
		nRobot, nApp, nSMS, nMail = len(robot), len(app), len(sms), len(mails)
		for _, texts := range []map[string][]string{g.robot, g.app, g.sms, g.mail} {
			for _, ts := range texts {
				for _, text := range ts {
					if strings.Contains(text, callerPhone) || strings.Contains(text, "李四") {
						t.Errorf("personal data in a unit's message: %q", text)
					}
				}
			}
		}
		return g
	}
	one := func(what string, texts []string, want ...string) {
		t.Helper()
		if len(texts) != 1 {
			t.Errorf("%s: %d messages, want 1: %q", what, len(texts), texts)
			return
		}
		for _, w := range want {
			if !strings.Contains(texts[0], w) {
				t.Errorf("%s lacks %q:\n%s", what, w, texts[0])
			}
		}
		for _, generic := range []string{"黄牌预警", "红牌超期", "承办单位"} {
			if strings.Contains(texts[0], generic) {
				t.Errorf("%s reads as the lead's generic SLA notice (%q):\n%s", what, generic, texts[0])
			}
		}
	}
	none := func(what string, g got) {
		t.Helper()
		if len(g.robot["lead"])+len(g.app["wangwu"])+len(g.sms["13800002222"])+len(g.mail["lead@example.gov.cn"]) != 0 {
			t.Errorf("%s reached the lead unit: %+v", what, g)
		}
	}

	// Monday 10:30: the ticket's own messages (受理 SMS to the caller, 派单 to the lead's group); no alert yet.
	if g := step("2026-11-30 10:30"); len(g.robot["lead"]) != 1 || len(g.robot["co"])+len(g.app) != 0 {
		t.Errorf("after the dispatch: %+v", g)
	}

	// Tuesday 05:00 and 10:30: the lead's sign clock turns yellow, then red: the lead's generic alerts, nothing
	// for the co-unit.
	g := step("2026-12-01 05:00")
	if len(g.robot["lead"]) != 1 || !strings.Contains(g.robot["lead"][0], "黄牌预警") || !strings.Contains(g.robot["lead"][0], "承办单位："+leadName) ||
		!strings.Contains(g.robot["lead"][0], "签收期限：12月1日 10:00") || strings.Contains(g.robot["lead"][0], "协办") {
		t.Errorf("the lead's yellow alert: %+v", g)
	}
	if len(g.robot["co"])+len(g.app["zhaoliu"]) != 0 {
		t.Errorf("the lead's yellow alert reached the co-unit: %+v", g)
	}
	g = step("2026-12-01 10:30")
	if len(g.app["wangwu"]) != 1 || !strings.Contains(g.app["wangwu"][0], "红牌超期") || !strings.Contains(g.app["wangwu"][0], "承办单位："+leadName) ||
		!strings.Contains(g.app["wangwu"][0], "签收期限：12月1日 10:00") || strings.Contains(g.app["wangwu"][0], "协办") {
		t.Errorf("the lead's red alert: %+v", g)
	}
	if len(g.robot["co"])+len(g.app["zhaoliu"])+len(g.sms["13800001111"])+len(g.mail["co@monitoring.example.gov.cn"]) != 0 {
		t.Errorf("the lead's red alert reached the co-unit: %+v", g)
	}

	for _, c := range []struct{ at, level, headline, smsHead, smsCode string }{
		{"2026-12-01 22:30", "yellow", "协办意见临期", "【协办临期】", "SMS_HOTLINE_CO_YELLOW"},
		{"2026-12-02 10:30", "red", "协办意见超期", "【协办超期】", "SMS_HOTLINE_CO_RED"},
	} {
		g := step(c.at)
		none("the co-opinion "+c.level+" alert", g)
		md := []string{c.headline, "工单号：" + tk.Number, "协办单位：" + coName, "主办单位：" + leadName, "协办意见期限：12月2日 10:00",
			"在系统中提交协办意见", "类别："}
		one(c.level+" robot", g.robot["co"], md...)
		one(c.level+" app", g.app["zhaoliu"], md...)
		one(c.level+" sms", g.sms["13800001111"], c.smsHead, tk.Number+"协办意见", "主办"+leadName, "12月2日 10:00到期", "在系统中提交协办意见")
		one(c.level+" sms template", g.smsTpl["13800001111"], c.smsCode+" "+tk.Number+" "+leadName+" 12月2日 10:00")
		one(c.level+" mail", g.mail["co@monitoring.example.gov.cn"], c.headline, coName+"（协办单位）", "由"+leadName+"主办",
			"协办意见期限：12月2日 10:00", "在系统中提交协办意见", tk.Number)
		for _, s := range g.sms["13800001111"] {
			if n := utf8.RuneCountInString(s); n > 70 {
				t.Errorf("%s SMS is %d characters, more than one segment: %q", c.level, n, s)
			}
		}
	}
	// Nothing more: each alert once.
	if g := step("2026-12-03 09:00"); len(g.robot)+len(g.app)+len(g.sms)+len(g.mail) != 0 {
		t.Errorf("alerts again: %+v", g)
	}
}

// The co-opinion SMS templates fit one segment (70 characters) with the sample values, as the unit SMS does,
// and every co-opinion template previews with no placeholder left unfilled.
func TestCoOpinionTemplatesPreview(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	tpls, err := r.svc.Templates(r.ctx, org.System)
	if err != nil {
		t.Fatal(err)
	}
	desc := map[string]string{}
	for _, tp := range tpls {
		desc[tp.Name] = tp.Description
	}
	for _, name := range []string{"co_opinion_yellow", "co_opinion_red", "co_opinion_yellow_email", "co_opinion_red_email",
		"co_opinion_yellow_sms", "co_opinion_red_sms"} {
		if !strings.Contains(desc[name], "协办") {
			t.Errorf("template %s: description %q", name, desc[name])
		}
		p, err := r.svc.PreviewTemplate(r.ctx, org.System, name, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p.Title+p.Body, "{") || !strings.Contains(p.Body, "赫山区乡村振兴局") || !strings.Contains(p.Body, "提交协办意见") {
			t.Errorf("preview %s: %+v", name, p)
		}
		if strings.HasSuffix(name, "_sms") {
			if n := utf8.RuneCountInString(p.Body); n > 70 {
				t.Errorf("%s is %d characters with the sample values: %q", name, n, p.Body)
			}
			if len(p.Params) != 3 || p.Params[1][1] != "赫山区乡村振兴局" {
				t.Errorf("%s parameters %v", name, p.Params)
			}
		}
		if strings.HasSuffix(name, "_email") && !strings.Contains(p.Title, "20261201-0042") {
			t.Errorf("%s subject %q", name, p.Title)
		}
	}
	ds, err := r.svc.PreviewTemplate(r.ctx, org.System, "unit_dispatched_sms", nil, nil)
	if err != nil || utf8.RuneCountInString(ds.Body) > 70 {
		t.Fatalf("the dispatch SMS no longer fits one segment: %v %q", err, ds.Body)
	}
}

func cst0(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, cst)
	if err != nil {
		panic(err)
	}
	return t
}

// readMail decodes a received message's subject and plain-text body.
func readMail(t *testing.T, data []byte) (string, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return subject, string(b)
}

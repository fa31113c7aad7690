package web

import (
	"strings"
	"testing"

	"hotline/notify/deliver"
	"hotline/ticketing/org"
)

// The co-opinion alert's templates (协办意见临期 / 超期, per channel) are listed with their Chinese names and
// edited like the others through the admin API, {lead_unit} (主办单位) included; their sla.co_* rules are listed
// and an admin can switch one on.
func TestNotifyCoOpinionTemplatesAPI(t *testing.T) {
	f, _, _ := newNotifyAPI(t)
	admin := f.user("coadmin", org.RoleAdmin, "desk")
	staff := f.user("costaff", org.RoleStaff, "div-monitoring")

	var list struct{ Templates []deliver.Template }
	if code := f.call(staff, "GET", "/api/v1/notify/templates", nil, nil, nil); code != 403 {
		t.Fatalf("a unit's staff lists templates: %d", code)
	}
	if code := f.call(admin, "GET", "/api/v1/notify/templates", nil, nil, &list); code != 200 {
		t.Fatalf("templates: %d", code)
	}
	names := map[string]string{}
	for _, tp := range list.Templates {
		names[tp.Name] = tp.Description
	}
	for name, want := range map[string]string{"co_opinion_yellow": "协办意见临期提醒", "co_opinion_red": "协办意见超期",
		"co_opinion_yellow_sms": "协办意见临期短信", "co_opinion_red_sms": "协办意见超期短信",
		"co_opinion_yellow_email": "协办意见临期提醒", "co_opinion_red_email": "协办意见超期"} {
		if !strings.HasPrefix(names[name], want) {
			t.Errorf("template %s listed as %q, want %s…", name, names[name], want)
		}
	}

	edited := "### 协办意见超期\n> 工单号：{number}\n> 协办单位：{unit}\n> 主办单位：{lead_unit}\n> 协办意见期限：{due_at}\n\n请今天在系统中提交协办意见。"
	var saved deliver.Template
	if code := f.call(admin, "PUT", "/api/v1/notify/templates/co_opinion_red", map[string]any{"description": "协办意见超期（协办单位）",
		"body": edited}, nil, &saved); code != 200 || saved.Body != edited {
		t.Fatalf("save: %d %+v", code, saved)
	}
	var p deliver.Preview
	if code := f.call(admin, "POST", "/api/v1/notify/templates/co_opinion_red/preview", map[string]any{"vars": map[string]string{"unit": "防贫监测处"}}, nil, &p); code != 200 ||
		!strings.Contains(p.Body, "协办单位：防贫监测处") || !strings.Contains(p.Body, "主办单位：赫山区乡村振兴局") || !strings.Contains(p.Body, "请今天") {
		t.Fatalf("preview: %d %+v", code, p)
	}
	var apiErr apiError
	if code := f.call(admin, "PUT", "/api/v1/notify/templates/co_opinion_red_sms", map[string]any{"body": "工单{number}{lead_unit_name}",
		"provider_template": "SMS_HOTLINE_CO_RED", "provider_params": []string{"number"}}, nil, &apiErr); code != 400 || apiErr.Fields["body"] == "" {
		t.Fatalf("unknown placeholder: %d %+v", code, apiErr)
	}

	var rules struct{ Rules []deliver.Rule }
	if code := f.call(admin, "GET", "/api/v1/notify/rules", nil, nil, &rules); code != 200 {
		t.Fatalf("rules: %d", code)
	}
	var smsRule *deliver.Rule
	co := map[string]bool{}
	for i, rl := range rules.Rules {
		if strings.HasPrefix(rl.Topic, "sla.co_") {
			co[rl.Topic+" "+rl.Channel+" "+rl.Template] = rl.Enabled
			if rl.Topic == "sla.co_red" && rl.Channel == deliver.ChannelSMS {
				smsRule = &rules.Rules[i]
			}
		}
	}
	if !co["sla.co_red wecom_robot co_opinion_red"] || !co["sla.co_yellow wecom_app co_opinion_yellow"] || smsRule == nil || smsRule.Enabled {
		t.Fatalf("co-opinion rules: %v", co)
	}
	var rl deliver.Rule
	if code := f.call(admin, "PUT", "/api/v1/notify/rules/"+itoa(smsRule.ID), map[string]any{"topic": "sla.co_red", "recipient": "unit_liaison",
		"channel": "sms", "template": "co_opinion_red_sms", "enabled": true}, nil, &rl); code != 200 || !rl.Enabled || rl.Template != "co_opinion_red_sms" {
		t.Fatalf("switch the co-opinion SMS on: %d %+v", code, rl)
	}
}

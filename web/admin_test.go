package web

import (
	"fmt"
	"testing"

	"hotline/ticketing/org"
)

// The admin API over HTTP: bad input is a 400 naming the fields; a created user signs in with the password the
// admin set; disabling ends it; a SIP account is set for an agent; the audit page lists each change with
// before and after; the dry run names the unit a matter would go to.
func TestAdminAPI(t *testing.T) {
	e := newSecEnv(t, 30)
	_, admin := e.user("root", org.RoleAdmin, org.CodeBureau)
	_, head := e.user("heshanhead", org.RoleHead, "430903")
	heshan, _ := org.UnitByCode(e.ctx, e.f.db, "430903")

	code, body, raw := e.do(t, admin, "POST", "/api/v1/admin/users", map[string]any{"username": "A B", "display_name": "",
		"password": "x", "role": "boss", "unit_id": heshan.ID})
	if code != 400 || body["code"] != "invalid" || body["fields"] == nil {
		t.Fatalf("bad user: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, head, "POST", "/api/v1/admin/users", map[string]any{"username": "li", "display_name": "李",
		"password": "good-password", "role": "staff", "unit_id": heshan.ID}); code != 403 {
		t.Fatalf("a head created a user: %d %s", code, raw)
	}
	code, body, raw = e.do(t, admin, "POST", "/api/v1/admin/users", map[string]any{"username": "li", "display_name": "李",
		"password": "good-password", "role": "agent", "unit_id": heshan.ID})
	if code != 201 {
		t.Fatalf("create: %d %s", code, raw)
	}
	id := int64(body["id"].(float64))
	if code, _, raw := e.do(t, "", "POST", "/api/v1/tokens", map[string]any{"username": "li", "password": "good-password"}); code != 201 && code != 200 {
		t.Fatalf("the new user cannot sign in: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, admin, "PUT", fmt.Sprintf("/api/v1/admin/users/%d/sip-account", id),
		map[string]any{"sip_user": "li", "password": "sip-password", "skills": []string{"xiang"}}); code != 204 {
		t.Fatalf("sip account: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, admin, "PUT", fmt.Sprintf("/api/v1/admin/users/%d", id), map[string]any{"active": false}); code != 200 {
		t.Fatalf("disable: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, "", "POST", "/api/v1/tokens", map[string]any{"username": "li", "password": "good-password"}); code != 401 {
		t.Fatalf("a disabled user signed in: %d", code)
	}
	code, body, raw = e.do(t, admin, "GET", fmt.Sprintf("/api/v1/admin/audit?object=user:%d", id), nil)
	entries, _ := body["entries"].([]any)
	if code != 200 || len(entries) != 3 {
		t.Fatalf("audit: %d %s", code, raw)
	}
	actions := []string{}
	for _, en := range entries {
		actions = append(actions, en.(map[string]any)["action"].(string))
	}
	if fmt.Sprint(actions) != "[user.update sip_account.set user.create]" {
		t.Fatalf("audit actions %v", actions)
	}
	last := entries[0].(map[string]any)
	if last["before"].(map[string]any)["active"] != true || last["after"].(map[string]any)["active"] != false || last["actor_username"] != "root" {
		t.Fatalf("audit row %v", last)
	}
	if code, _, _ := e.do(t, head, "GET", "/api/v1/admin/audit", nil); code != 403 {
		t.Fatalf("a head read the admin audit: %d", code)
	}

	// A stored trunk: saved (the password kept only as a digest hash), listed, audited, deleted.
	code, body, raw = e.do(t, admin, "PUT", "/api/v1/admin/trunks/unicom", map[string]any{"networks": []string{"10.8.0.0/24", "10.9.0.5"},
		"numbers": []string{"12345"}, "username": "hl", "password": "trunk-secret"})
	if code != 200 || fmt.Sprint(body["networks"]) != "[10.8.0.0/24 10.9.0.5/32]" || body["has_password"] != true {
		t.Fatalf("save trunk: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, admin, "PUT", "/api/v1/admin/trunks/bad", map[string]any{"networks": []string{"not-a-net"}}); code != 400 {
		t.Fatalf("bad network: %d %s", code, raw)
	}
	if n := e.count(`SELECT count(*) FROM sip_trunks WHERE name = 'unicom' AND ha1 ~ '^[0-9a-f]{32}$' AND ha1 <> 'trunk-secret'`); n != 1 {
		t.Fatal("the trunk's secret is not stored as a digest hash")
	}
	if code, body, raw := e.do(t, admin, "GET", "/api/v1/admin/trunks", nil); code != 200 || len(body["trunks"].([]any)) != 1 {
		t.Fatalf("list trunks: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, head, "GET", "/api/v1/admin/trunks", nil); code != 403 {
		t.Fatalf("a head listed trunks: %d", code)
	}
	if code, _, raw := e.do(t, admin, "DELETE", "/api/v1/admin/trunks/unicom", nil); code != 204 {
		t.Fatalf("delete trunk: %d %s", code, raw)
	}
	if n := e.count(`SELECT count(*) FROM admin_audit WHERE object = 'trunk:unicom' AND NOT (coalesce(after::text, '') || coalesce(before::text, '')) LIKE '%secret%'`); n != 2 {
		t.Fatalf("%d trunk audit rows without the secret, want 2", n)
	}

	// A 防返贫监测求助 from 赫山区 goes to 赫山区's bureau by the seeded directory; a matter nobody claims to the desk.
	code, body, raw = e.do(t, admin, "POST", "/api/v1/routing-rules/dry-run", map[string]any{"kind": "help",
		"category": "monitoring_help", "region_code": "430903", "content": "收入下降"})
	if code != 200 || body["unit"].(map[string]any)["code"] != "430903" || body["rule"] == nil {
		t.Fatalf("dry run: %d %s", code, raw)
	}
	rule := int64(body["rule"].(map[string]any)["id"].(float64))
	if code, body, raw := e.do(t, admin, "GET", fmt.Sprintf("/api/v1/routing-rules/%d/history", rule), nil); code != 200 || len(body["versions"].([]any)) == 0 {
		t.Fatalf("history: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, head, "POST", "/api/v1/routing-rules/dry-run", map[string]any{"kind": "help"}); code != 403 {
		t.Fatalf("a head ran the dry run: %d", code)
	}
}

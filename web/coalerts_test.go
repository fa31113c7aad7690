package web

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// A co-unit's opinion (协办意见) has its own deadline, and the SLA sweeper raises its own alerts on it: yellow when a
// quarter of its working time is left, red at the deadline, once each, addressed to that co-unit (the outbox
// message names it and its deadline) and recorded on the ticket where the lead sees it. A co-unit that has given
// its opinion gets none. Injected clock: dispatched Monday 2026-11-30 10:00, the opinion due two working days
// later (Wednesday 10:00), yellow after 36 of its 48 working hours (Tuesday 22:00).
func TestCoOpinionSLAAlerts(t *testing.T) {
	f := newWorkorderAPI(t, cst("2026-11-30 10:00"), ticketing.Options{}, nil)
	ctx := context.Background()
	disp := f.user("dispatch1", org.RoleDispatcher, org.CodeDesk)
	lead := f.user("heshan1", org.RoleStaff, "430903")
	f.user("monitor1", org.RoleStaff, "div-monitoring")
	policy := f.user("policy1", org.RoleStaff, "div-policy")
	late, done, leadUnit := f.unit("div-monitoring"), f.unit("div-policy"), f.unit("430903")

	tk := f.create(disp, map[string]any{"caller_name": "刘建国", "caller_phone": "13807371234", "region_code": "430903",
		"kind": "help", "category": "monitoring_help", "content": "因病收入下降", "household_id": 5})
	tk = f.must(disp, tk, "dispatch", map[string]any{"co_unit_ids": []org.UnitID{late, done}})
	tk = f.must(lead, tk, "sign", nil)
	f.clock.set(cst("2026-11-30 15:00"))
	tk = f.must(policy, tk, "co_sign", nil)
	tk = f.must(policy, tk, "co_opinion", map[string]any{"opinion": "该户已纳入监测"})

	coAlerts := func(at string) []ticketing.SLAAlert {
		t.Helper()
		f.clock.set(cst(at))
		all, err := f.svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var co []ticketing.SLAAlert
		for _, a := range all {
			if a.DueKind == ticketing.DueCoOpinion {
				co = append(co, a)
			}
		}
		return co
	}
	if al := coAlerts("2026-12-01 21:30"); len(al) != 0 {
		t.Fatalf("co-opinion alerts before its yellow time: %+v", al)
	}
	al := coAlerts("2026-12-01 22:30")
	if len(al) != 1 || al[0].UnitID != late || al[0].Level != "yellow" || al[0].TicketID != tk.ID || !al[0].DueAt.Equal(cst("2026-12-02 10:00")) {
		t.Fatalf("yellow co-opinion alert: %+v", al)
	}
	if al := coAlerts("2026-12-01 23:00"); len(al) != 0 {
		t.Fatalf("the yellow alert again: %+v", al)
	}
	al = coAlerts("2026-12-02 10:30")
	if len(al) != 1 || al[0].UnitID != late || al[0].Level != "red" {
		t.Fatalf("red co-opinion alert: %+v", al)
	}
	if al := coAlerts("2026-12-03 09:00"); len(al) != 0 {
		t.Fatalf("the red alert again: %+v", al)
	}

	// The outbox messages are addressed to the late co-unit with its own deadline.
	rows, err := f.db.Query(ctx, `SELECT topic, payload FROM outbox WHERE topic LIKE 'sla.%' AND payload ? 'notify_unit_id' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for rows.Next() {
		var topic string
		var p struct {
			NotifyUnitID org.UnitID `json:"notify_unit_id"`
			CoDueAt      string     `json:"co_due_at"`
			LeadUnitID   org.UnitID `json:"lead_unit_id"`
		}
		var raw []byte
		if err := rows.Scan(&topic, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.NotifyUnitID != late || p.CoDueAt == "" || p.LeadUnitID != leadUnit {
			t.Fatalf("%s message: %s", topic, raw)
		}
		topics = append(topics, topic)
	}
	if rows.Err() != nil || fmt.Sprint(topics) != "[sla.yellow sla.red]" {
		t.Fatalf("co-opinion alert messages: %v (%v)", topics, rows.Err())
	}

	// The lead sees both alerts on the ticket's timeline, naming the co-unit.
	var evs struct{ Events []ticketing.Event }
	if code := f.call(lead, "GET", fmt.Sprintf("/api/v1/tickets/%d/events", tk.ID), nil, nil, &evs); code != 200 {
		t.Fatalf("events: %d", code)
	}
	var seen []string
	for _, e := range evs.Events {
		if e.Data["due_kind"] == string(ticketing.DueCoOpinion) {
			if fmt.Sprint(e.Data["unit_id"]) != fmt.Sprint(late) {
				t.Fatalf("alert event names unit %v, want %d", e.Data["unit_id"], late)
			}
			seen = append(seen, e.Action)
		}
	}
	if fmt.Sprint(seen) != "[sla_yellow sla_red]" {
		t.Fatalf("co-opinion alerts on the timeline: %v", seen)
	}
}

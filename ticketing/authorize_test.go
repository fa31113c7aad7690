package ticketing_test

import (
	"errors"
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// High 3: a confidential report never shows up as a duplicate suggestion, in lists or searches of someone who may
// not see it — creating a ticket with a suspect's phone must not confirm that the suspect reported someone.
func TestConfidentialNeverLeaks(t *testing.T) {
	f := newFixture(t)
	reporter := f.actor(org.RoleAgent, "desk")
	prober := f.actor(org.RoleAgent, "desk")
	report := f.create(reporter, ticketing.NewTicket{Kind: ticketing.KindReport, Category: "misconduct_report", CallerName: "李四",
		CallerPhone: "13912345678", Content: "村支书优亲厚友", Confidential: true, Dispatch: true})
	probe := f.create(prober, ticketing.NewTicket{Kind: ticketing.KindReport, Category: "misconduct_report",
		CallerPhone: "13912345678", Content: "试探"})
	ds, err := f.svc.DuplicatesFor(f.ctx, prober, probe)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.ID == report.ID {
			t.Fatalf("the confidential report is suggested to another agent: %+v", d)
		}
	}
	if ds, _ := f.svc.Duplicates(f.ctx, prober, probe.ID); len(ds) != 0 {
		t.Fatalf("duplicates: %+v", ds)
	}
	for _, q := range []ticketing.Filter{{}, {Text: report.Number}, {Category: "misconduct_report"}} {
		ts, _, err := f.svc.List(f.ctx, prober, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			if x.ID == report.ID {
				t.Fatalf("list %+v shows the report to another agent", q)
			}
		}
	}
	if _, err := f.svc.Get(f.ctx, prober, report.ID); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("another agent reads the report: %v", err)
	}
	// Those who may see it still do: the discipline team and a supervisor.
	for _, a := range []org.Actor{f.actor(org.RoleStaff, "div-discipline"), f.actor(org.RoleSupervisor, "div-inspection")} {
		ds, err := f.svc.DuplicatesFor(f.ctx, a, probe)
		if err != nil || len(ds) != 1 || ds[0].ID != report.ID {
			t.Fatalf("%s: duplicates %v %v", a.Role, ds, err)
		}
	}
}

// Low: who may create and dispatch at intake; campaign managers read monitoring tickets, not 举报.
func TestCreateRolesAndCampaignManagerReads(t *testing.T) {
	f := newFixture(t)
	nt := heshanHousehold()
	for _, role := range []org.Role{org.RoleStaff, org.RoleHead, org.RoleCampaignManager} {
		if _, err := f.svc.Create(f.ctx, f.actor(role, "430903"), nt); !errors.Is(err, org.ErrForbidden) {
			t.Errorf("%s creates a ticket: %v", role, err)
		}
	}
	nt.Dispatch = true
	if _, err := f.svc.Create(f.ctx, f.actor(org.RoleSupervisor, "div-inspection"), nt); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("a supervisor dispatches at intake: %v", err)
	}
	agent := f.actor(org.RoleAgent, "desk")
	help := f.create(agent, heshanHousehold())
	report := f.create(agent, ticketing.NewTicket{Kind: ticketing.KindReport, Category: "misconduct_report", Content: "虚报冒领"})
	cm := f.actor(org.RoleCampaignManager, "div-monitoring")
	if _, err := f.svc.Get(f.ctx, cm, help.ID); err != nil {
		t.Errorf("campaign manager reads a monitoring ticket: %v", err)
	}
	if _, err := f.svc.Get(f.ctx, cm, report.ID); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("campaign manager reads a 举报: %v", err)
	}
	ts, _, _ := f.svc.List(f.ctx, cm, ticketing.Filter{})
	for _, x := range ts {
		if x.Kind == ticketing.KindReport {
			t.Errorf("campaign manager lists a 举报: %d", x.ID)
		}
	}
}

// Low: an Idempotency-Key sent again with a different request is refused, not answered with the first ticket.
func TestIdempotencyKeyReuseWithAnotherBody(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.IdempotencyKey = "k-1"
	first := f.create(agent, nt)
	again := f.create(agent, nt)
	if !again.Replayed || again.ID != first.ID {
		t.Fatalf("same request replayed: %+v", again)
	}
	nt.Content = "另一件事"
	if _, err := f.svc.Create(f.ctx, agent, nt); !errors.Is(err, ticketing.ErrIdempotencyKeyReused) {
		t.Fatalf("different body, same key: %v", err)
	}
}

// Low: unknown filter values are errors, not empty lists.
func TestUnknownFilterValues(t *testing.T) {
	f := newFixture(t)
	a := f.actor(org.RoleAdmin, "430000")
	for _, q := range []ticketing.Filter{{Status: []ticketing.Status{"nope"}}, {Kind: "nope"}, {Category: "nope"}, {RegionPrefix: "x"}} {
		if _, _, err := f.svc.List(f.ctx, a, q); !errors.Is(err, org.ErrInvalid) {
			t.Errorf("filter %+v: %v", q, err)
		}
	}
}

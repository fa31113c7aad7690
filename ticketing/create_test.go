package ticketing_test

import (
	"regexp"
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

func TestCreateNumbersRoutesAndIsIdempotent(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.IdempotencyKey = "call-1"
	tk := f.create(agent, nt)
	if !regexp.MustCompile(`^20261130-\d{6}$`).MatchString(tk.Number) || !ticketing.ValidQueryCodeShape(tk.QueryCode) || len(tk.QueryCode) != ticketing.QueryCodeLen {
		t.Fatalf("number %q query code %q", tk.Number, tk.QueryCode)
	}
	if tk.Status != ticketing.StatusNew || tk.CallerPhone != "13812345678" {
		t.Fatalf("status %s phone %s", tk.Status, tk.CallerPhone)
	}
	if tk.RouteUnitID == nil || *tk.RouteUnitID != f.unit("430903") {
		t.Fatalf("route unit %v, want 赫山区 %d", tk.RouteUnitID, f.unit("430903"))
	}
	again := f.create(agent, nt)
	if again.ID != tk.ID || !again.Replayed {
		t.Fatalf("retried create gave ticket %d (replayed %v), want %d", again.ID, again.Replayed, tk.ID)
	}
	var n int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM tickets`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d tickets after a retried create, want 1", n)
	}
	nt.IdempotencyKey = ""
	nt.Dispatch = true
	d := f.create(agent, nt)
	if d.Status != ticketing.StatusDispatched || d.LeadUnitID != f.unit("430903") || d.SignBy == nil {
		t.Fatalf("dispatched at create: status %s unit %d sign_by %v", d.Status, d.LeadUnitID, d.SignBy)
	}
	if d.Number == tk.Number {
		t.Fatal("two tickets share a number")
	}
}

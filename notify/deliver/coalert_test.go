package deliver

import (
	"strings"
	"testing"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// A co-unit's late opinion (协办意见): the sweeper's sla.red names the co-unit and its own deadline; the alert
// reaches that unit's head, saying it is about the co-opinion deadline, and not the lead unit's head.
func TestCoOpinionAlertReachesTheCoUnit(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	co := r.unit("div-monitoring")
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(co), UnitChannelsInput{HeadWecomUser: "zhaoliu"}); err != nil {
		t.Fatal(err)
	}
	tk := r.callTicket("13912345678", nil)
	if _, err := r.svc.SetUnitChannels(r.ctx, org.System, int64(tk.LeadUnitID), UnitChannelsInput{HeadWecomUser: "wangwu"}); err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 12, 2, 10, 0, 0, 0, cst)
	if err := ticketing.Publish(r.ctx, r.db, "sla.red", "x", map[string]any{"ticket_id": tk.ID, "lead_unit_id": tk.LeadUnitID,
		"status": "signed", "notify_unit_id": co, "co_due_at": due}); err != nil {
		t.Fatal(err)
	}
	r.flow()
	r.sendDue()
	msgs := r.wc.AppMessages()
	if len(msgs) != 1 || msgs[0].To != "zhaoliu" || !strings.Contains(msgs[0].Content, "协办意见期限：12月2日 10:00") ||
		!strings.Contains(msgs[0].Content, tk.Number) {
		t.Fatalf("co-opinion alert messages: %+v", msgs)
	}
}

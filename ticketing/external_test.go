package ticketing_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// RecordTx puts an outside system's word on a ticket's history without changing its state, and refuses the
// state machine's own action names (those change state and go through Do).
func TestRecordTx(t *testing.T) {
	f := newFixture(t)
	tk := f.create(org.System, heshanHousehold())
	var hooked []string
	f.svc.OnTransition(func(_ context.Context, _ pgx.Tx, _ ticketing.Ticket, ev ticketing.Event) error {
		hooked = append(hooked, ev.Action)
		return nil
	})
	err := pgx.BeginFunc(f.ctx, f.db, func(tx pgx.Tx) error {
		ev, err := f.svc.RecordTx(f.ctx, tx, org.System, tk.ID, "platform_supplement", " 补充材料 ", map[string]any{"update_id": "u1"})
		if err != nil {
			return err
		}
		if ev.ID == 0 || ev.Note != "补充材料" || ev.From != tk.Status || ev.To != tk.Status {
			t.Errorf("event %+v", ev)
		}
		if _, err := f.svc.RecordTx(f.ctx, tx, org.System, tk.ID, string(ticketing.ActSign), "", nil); !errors.Is(err, org.ErrInvalid) {
			t.Errorf("a state-machine action recorded: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.svc.Get(f.ctx, org.System, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != tk.Version || after.Status != tk.Status {
		t.Fatalf("the ticket changed: version %d→%d", tk.Version, after.Version)
	}
	evs, _ := f.svc.Events(f.ctx, org.System, tk.ID)
	if last := evs[len(evs)-1]; last.Action != "platform_supplement" || last.Data["update_id"] != "u1" {
		t.Fatalf("last event %+v", last)
	}
	if len(hooked) != 1 || hooked[0] != "platform_supplement" {
		t.Fatalf("hooks saw %v", hooked)
	}
}

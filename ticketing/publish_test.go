package ticketing_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

func TestCreateTxIsTheCallersTransaction(t *testing.T) {
	f := newQueueFixture(t)
	var hooked []string
	f.svc.OnTransition(func(ctx context.Context, tx pgx.Tx, tk ticketing.Ticket, ev ticketing.Event) error {
		hooked = append(hooked, ev.Action)
		return nil
	})
	nt := heshanHousehold()
	nt.Source = ticketing.SourceVoicemail
	nt.Dispatch = true
	// The caller's own write and the ticket roll back together.
	err := pgx.BeginFunc(f.ctx, f.db, func(tx pgx.Tx) error {
		if _, err := f.svc.CreateTx(f.ctx, tx, org.System, nt); err != nil {
			return err
		}
		if err := ticketing.Publish(f.ctx, tx, "call.voicemail", "call-1", map[string]any{"call_id": "call-1"}); err != nil {
			return err
		}
		return errors.New("the recording could not be stored")
	})
	if err == nil {
		t.Fatal("transaction did not fail")
	}
	var tickets, events, outbox int
	f.db.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM ticket_events), (SELECT count(*) FROM outbox)`).Scan(&tickets, &events, &outbox)
	if tickets+events+outbox != 0 {
		t.Fatalf("rolled back, yet %d tickets, %d events, %d outbox rows remain", tickets, events, outbox)
	}
	// Committed: both rows, both events published in order with topic, key and JSON payload.
	var tk ticketing.Ticket
	err = pgx.BeginFunc(f.ctx, f.db, func(tx pgx.Tx) error {
		var err error
		if tk, err = f.svc.CreateTx(f.ctx, tx, org.System, nt); err != nil {
			return err
		}
		return ticketing.Publish(f.ctx, tx, "screen.pop", "agent1", map[string]any{"ticket_id": tk.ID, "phone": "138****5678"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hooked) != 4 || hooked[2] != "create" || hooked[3] != "dispatch" {
		t.Fatalf("hooks saw %v", hooked)
	}
	f.drain()
	msgs, err := f.rdb.XRange(f.ctx, ticketing.EventsKey(f.prefix), "-", "+").Result()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%d events on the stream (%v), want 3", len(msgs), err)
	}
	last := msgs[2].Values
	var payload map[string]any
	if last["topic"] != "screen.pop" || last["key"] != "agent1" || json.Unmarshal([]byte(last["payload"].(string)), &payload) != nil || payload["phone"] != "138****5678" {
		t.Fatalf("published %v", last)
	}
	if msgs[1].Values["topic"] != "ticket.dispatch" {
		t.Fatalf("second event %v", msgs[1].Values)
	}
	if err := ticketing.Publish(f.ctx, f.db, "", "k", 1); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("publish without a topic: %v", err)
	}
}

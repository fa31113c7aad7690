package web

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hotline/telephony"
)

// A ticket lists every call about it in time order: the inbound call it came from, the agent's click-to-call back
// to the caller (with its recording, playable by those who may see the ticket and only by them) and the standing
// 回访 campaign's automatic call. Another county's staff gets neither the ticket nor the recording.
func TestTicketListsOutboundCalls(t *testing.T) {
	f, agent, staff, other, agentID := newCallsFixture(t)
	ctx := context.Background()
	var inbound int64
	if err := f.db.QueryRow(ctx, `INSERT INTO calls (sip_call_id, caller, offered_at, answered_at, ended_at, agent_id, disposition)
		VALUES ('in-1', '13807371234', $1, $2, $3, $4, 'answered') RETURNING id`, cst("2026-11-30 09:50"),
		cst("2026-11-30 09:50").Add(8*time.Second), cst("2026-11-30 09:55"), agentID).Scan(&inbound); err != nil {
		t.Fatal(err)
	}
	tk := f.create(agent, map[string]any{"call_id": inbound, "region_code": "430903", "kind": "help",
		"category": "monitoring_help", "content": "因病收入下降", "dispatch": true})

	// The 回访 attempt (placed the next day) is inserted before the click-to-call (the same afternoon): the list
	// is ordered by time, not by insertion.
	var campaign, target, attempt int64
	if err := f.db.QueryRow(ctx, `INSERT INTO campaigns (name, purpose, status, standing, script, windows, max_concurrent, pace,
		retry, daily_cap, ring_timeout_ms, caller_id) VALUES ('回访', 'callback', 'running', true, '{}', '[]', 1, 1, '{}', 3, 30000, '12345')
		RETURNING id`).Scan(&campaign); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO campaign_targets (campaign_id, household_id, ticket_id, phone_count, next_at, state)
		VALUES ($1, 0, $2, 1, $3, 'completed') RETURNING id`, campaign, int64(tk.ID), cst("2026-12-01 09:00")).Scan(&target); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO campaign_attempts (campaign_id, target_id, household_id, attempt_no, phone_index,
		phone_masked, worker, started_at, local_day, answered_at, ended_at, outcome)
		VALUES ($1, $2, 0, 1, 0, '138****1234', 'w1', $3, '2026-12-01', $4, $5, 'answered') RETURNING id`, campaign, target,
		cst("2026-12-01 09:00"), cst("2026-12-01 09:00").Add(10*time.Second), cst("2026-12-01 09:01")).Scan(&attempt); err != nil {
		t.Fatal(err)
	}
	var cdr, click, rec int64
	if err := f.db.QueryRow(ctx, `INSERT INTO calls (sip_call_id, direction, dialled, offered_at, answered_at, agent_answered_at,
		ended_at, agent_id, disposition, ticket_id) VALUES ('out-1', 'outbound', '138****1234', $1, $2, $1, $3, $4, 'answered', $5)
		RETURNING id`, cst("2026-11-30 15:00"), cst("2026-11-30 15:00").Add(12*time.Second), cst("2026-11-30 15:04"), agentID,
		int64(tk.ID)).Scan(&cdr); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO click_calls (agent_id, ticket_id, phone_masked, state, cdr_id, created_at, bridged_at, ended_at)
		VALUES ($1, $2, '138****1234', 'ended', $3, $4, $5, $6) RETURNING id`, agentID, int64(tk.ID), cdr, cst("2026-11-30 15:00"),
		cst("2026-11-30 15:00").Add(12*time.Second), cst("2026-11-30 15:04")).Scan(&click); err != nil {
		t.Fatal(err)
	}
	wav := []byte("RIFF....WAVEfmt click-to-call recording")
	rel := filepath.Join("click", "2026", "11", "30", "click-1.wav")
	if err := os.MkdirAll(filepath.Dir(filepath.Join(f.recDir, rel)), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.recDir, rel), wav, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO recordings (call_id, kind, path, channels, bytes, duration_ms, ticket_id, created_at)
		VALUES ($1, 'call', $2, 2, $3, 228000, $4, $5) RETURNING id`, cdr, rel, len(wav), int64(tk.ID), cst("2026-11-30 15:04")).Scan(&rec); err != nil {
		t.Fatal(err)
	}

	code, v := f.get(staff, tk.ID)
	if code != 200 || len(v.Calls) != 3 {
		t.Fatalf("ticket calls: %d %+v", code, v.Calls)
	}
	in, out, survey := v.Calls[0], v.Calls[1], v.Calls[2]
	if int64(in.ID) != inbound || in.Kind != telephony.CallKindInbound || in.Direction != "inbound" || in.Outcome != "answered" {
		t.Fatalf("first the inbound call: %+v", in)
	}
	if int64(out.ID) != cdr || out.Kind != telephony.CallKindClickToCall || out.Direction != "outbound" || out.ClickCallID != click ||
		out.AgentName != "agent1" || out.Outcome != "answered" || out.Caller != "138****1234" || out.EndedAt == nil {
		t.Fatalf("then the click-to-call: %+v", out)
	}
	if len(out.Recordings) != 1 || int64(out.Recordings[0].ID) != rec || out.Recordings[0].URL == "" {
		t.Fatalf("click-to-call recording with its play link: %+v", out.Recordings)
	}
	if survey.Kind != telephony.CallKindCallbackSurv || survey.AttemptID != attempt || survey.Direction != "outbound" ||
		survey.Outcome != "answered" || survey.Caller != "138****1234" || survey.TalkSeconds == nil || *survey.TalkSeconds != 50 {
		t.Fatalf("last the 回访 call: %+v", survey)
	}

	// The play link plays for the county's staff, and the same link is refused to another county's.
	play := func(token string) (int, []byte) {
		req, _ := http.NewRequest("GET", f.srv.URL+out.Recordings[0].URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := play(staff); code != 200 || string(body) != string(wav) {
		t.Fatalf("recording for the county's staff: %d %q", code, body)
	}
	if code, _ := play(other); code != 403 && code != 404 {
		t.Fatalf("recording for another county's staff: %d, want 403/404", code)
	}
	if code, _ := f.get(other, tk.ID); code != 403 && code != 404 {
		t.Fatalf("ticket for another county's staff: %d, want 403/404", code)
	}
	var list struct{ Calls []telephony.TicketCall }
	if code := f.call(other, "GET", "/api/v1/tickets/"+itoa(int64(tk.ID))+"/calls", nil, nil, &list); code != 403 && code != 404 {
		t.Fatalf("calls for another county's staff: %d, want 403/404", code)
	}
}

package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/ticketing/org"
)

func TestCallsAPI(t *testing.T) {
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	recDir := t.TempDir()
	svc := telephony.NewService(telephony.Options{DB: db, RecordingsDir: recDir})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Telephony: svc}))
	t.Cleanup(srv.Close)
	e := &hhEnv{srv: srv}
	ctx := context.Background()
	user := func(name string, role org.Role) (org.UserID, string) {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Role: role, Password: "secret-password"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := org.CreateToken(ctx, db, u.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID, tok
	}
	agentID, agent := user("agent1", org.RoleAgent)
	_, super := user("super1", org.RoleSupervisor)
	_, clerk := user("clerk1", org.RoleStaff)
	if err := telephony.SetSIPAccount(ctx, db, agentID, "agent1", "hotline", "sip-secret-1", nil); err != nil {
		t.Fatal(err)
	}

	if code, m, raw := e.do(t, agent, "PUT", "/api/v1/agents/me/state", map[string]string{"state": "paused", "reason": "培训"}); code != 200 || m["state"] != "paused" {
		t.Fatalf("pause: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, agent, "PUT", "/api/v1/agents/me/state", map[string]string{"state": "paused"}); code != 400 {
		t.Errorf("pause without reason: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, clerk, "PUT", fmt.Sprintf("/api/v1/agents/%d/state", agentID), map[string]string{"state": "ready"}); code != 403 {
		t.Errorf("a clerk set an agent's state: %d", code)
	}
	if code, m, raw := e.do(t, super, "GET", "/api/v1/agents", nil); code != 200 || len(m["agents"].([]any)) != 1 {
		t.Errorf("agents: %d %s", code, raw)
	}

	// A call the agent took, with its recording.
	id, err := svc.StartCall(ctx, telephony.CallStart{SIPCallID: "c1", Trunk: "12345", Caller: "13812345678", OfferedAt: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(recDir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00")
	os.WriteFile(filepath.Join(recDir, "x", "1-call.wav"), wav, 0o644)
	now := time.Now()
	if err := svc.FinishAgentCall(ctx, id, &telephony.NewRecording{CallID: id, Kind: "call", Path: "x/1-call.wav", Channels: 2, Bytes: int64(len(wav))},
		telephony.CallEnd{Disposition: telephony.DispAnswered, AgentID: agentID, AgentAnsweredAt: now.Add(-50 * time.Second), EndedAt: now}); err != nil {
		t.Fatal(err)
	}
	code, m, raw := e.do(t, agent, "GET", "/api/v1/calls", nil)
	if code != 200 || len(m["calls"].([]any)) != 1 {
		t.Fatalf("agent's calls: %d %s", code, raw)
	}
	c := m["calls"].([]any)[0].(map[string]any)
	if c["caller"] != "138****5678" || c["disposition"] != "answered" {
		t.Errorf("call %v", c)
	}
	if code, _, _ := e.do(t, agent, "GET", "/api/v1/calls/kpis?per=day", nil); code != 403 {
		t.Errorf("agent read KPIs: %d", code)
	}
	if code, m, raw := e.do(t, super, "GET", "/api/v1/calls/kpis?per=hour", nil); code != 200 || len(m["kpis"].([]any)) != 1 {
		t.Errorf("KPIs: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, super, "GET", "/api/v1/calls/kpis?per=week", nil); code != 400 {
		t.Errorf("bad bucket: %d", code)
	}
	rid := int64(c["recording_id"].(float64))
	get := func(tok string) *http.Response {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/recordings/%d", srv.URL, rid), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(agent); r.StatusCode != 200 || r.Header.Get("Content-Type") != "audio/wav" || r.ContentLength != int64(len(wav)) {
		t.Errorf("agent download: %d %s %d", r.StatusCode, r.Header.Get("Content-Type"), r.ContentLength)
	}
	if r := get(clerk); r.StatusCode != 403 {
		t.Errorf("clerk download: %d", r.StatusCode)
	}
	// The agent links the call to the ticket it opened; the recording follows the ticket.
	if code, m, raw := e.do(t, agent, "PUT", fmt.Sprintf("/api/v1/calls/%d/ticket", id), map[string]int{"ticket_id": 77}); code != 200 || m["ticket_id"] != 77.0 {
		t.Errorf("link ticket: %d %s", code, raw)
	}
	if rec, err := telephony.GetRecording(ctx, db, telephony.RecordingID(rid)); err != nil || rec.TicketID != 77 {
		t.Errorf("recording after link: %v %+v", err, rec)
	}
	if code, _, _ := e.do(t, agent, "PUT", fmt.Sprintf("/api/v1/calls/%d/ticket", id), map[string]int{"ticket_id": 78}); code != 409 {
		t.Errorf("relink to another ticket: %d", code)
	}
	if code, _, _ := e.do(t, clerk, "PUT", fmt.Sprintf("/api/v1/calls/%d/ticket", id), map[string]int{"ticket_id": 77}); code != 403 {
		t.Errorf("clerk linked a call: %d", code)
	}
	if code, m, raw := e.do(t, agent, "GET", "/api/v1/callbacks", nil); code != 200 || len(m["callbacks"].([]any)) != 0 {
		t.Errorf("callbacks: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, agent, "POST", "/api/v1/callbacks/999/close", map[string]string{"note": "x"}); code != 404 {
		t.Errorf("close unknown callback: %d", code)
	}
}

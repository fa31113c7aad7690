package intake

import (
	"context"
	"encoding/json"
	"hotline/ticketing/phone"
	"math"
	"path/filepath"
	"testing"
	"time"

	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

const caller = "13812345678"

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestAgentCallEndToEnd(t *testing.T) {
	r := newRig(t, rigOpts{})
	hid, tid := r.household(caller)
	agentID := r.agent("agent1")
	agent := r.agentPhone("agent1", phonetest.Options{ToneHz: 1000, AnswerAfter: 300 * time.Millisecond})
	r.setState(agentID, telephony.StateReady, "")
	citizen := r.caller("127.0.0.1", 440)
	base := takeBaseline()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	var ac *phonetest.Call
	select {
	case ac = <-agent.Answered():
	case <-ctx.Done():
		t.Fatal("agent's phone was not rung")
	}
	if ac.From != caller {
		t.Errorf("agent's phone shows caller %q, want %q", ac.From, caller)
	}
	if ac.XCall == nil {
		t.Error("agent INVITE has no X-Hotline-Call header")
	}

	// Screen-pop: published to this agent when the phone rang, with the household and its open tickets.
	ev, ok := r.outboxEvent(telephony.TopicScreenPop)
	if !ok {
		t.Fatal("no screen-pop event")
	}
	var pop telephony.ScreenPop
	if err := json.Unmarshal(ev.Payload, &pop); err != nil {
		t.Fatal(err)
	}
	if ev.Key != itoa(int64(agentID)) || pop.AgentID != agentID || pop.Caller != phone.Mask(caller) || pop.Trunk != "main" {
		t.Errorf("screen-pop key %s payload %+v", ev.Key, pop)
	}
	if len(pop.Households) != 1 || pop.Households[0].ID != int64(hid) || pop.Households[0].Head != "刘建国" ||
		len(pop.Households[0].OpenTickets) != 1 || pop.Households[0].OpenTickets[0].ID != int64(tid) ||
		len(pop.Households[0].RiskFlags) != 1 {
		t.Errorf("screen-pop households %+v (want household %d of 刘建国, open ticket %d)", pop.Households, hid, tid)
	}

	// Audio both ways: the agent hears the citizen's 440 Hz tone, the citizen the agent's 1000 Hz.
	ac.ResetStats()
	call.ResetStats()
	waitFor(t, "audio both ways", func() bool {
		a, c := ac.Stats(), call.Stats()
		return a.Seconds > 1 && c.Seconds > 1
	})
	if s := ac.Stats(); s.RMS < 0.05 || !near(s.FreqHz, 440, 40) {
		t.Errorf("agent hears %+v, want the caller's 440 Hz tone", s)
	}
	if s := call.Stats(); s.RMS < 0.05 || !near(s.FreqHz, 1000, 60) {
		t.Errorf("caller hears %+v, want the agent's 1000 Hz tone", s)
	}
	if countUDPSockets() < base.udp+4 { // caller leg and agent leg: RTP and RTCP each
		t.Errorf("RTP sockets not visible during the call (%d, baseline %d): the leak check would be blind", countUDPSockets(), base.udp)
	}
	if st := agentRow(t, r.db, agentID); st.State != telephony.StateBusy || st.Reason != telephony.ReasonTalking {
		t.Errorf("agent state during call %s/%s", st.State, st.Reason)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	<-ac.Done()

	c := r.endedCDR("CDR of the answered call")
	if *c.Disposition != telephony.DispAnswered || c.AgentID != agentID || c.Caller != caller || c.Trunk != "main" ||
		c.AgentAnsweredAt == nil || c.TalkSeconds == nil || *c.TalkSeconds <= 0 || c.HouseholdID != int64(hid) || c.EndReason != "caller_hangup" {
		t.Errorf("CDR %+v", c)
	}
	if c.RecordingID == 0 {
		t.Fatal("no recording linked to the CDR")
	}
	rec, err := telephony.GetRecording(context.Background(), r.db, c.RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := media.Levels(filepath.Join(r.recDir, rec.Path))
	if err != nil {
		t.Fatal(err)
	}
	if len(lv) != 2 || lv[0] < 0.02 || lv[1] < 0.02 {
		t.Errorf("recording levels %v: want audio from both parties", lv)
	}
	// The call is on the household's timeline.
	tl, err := r.msvc.Timeline(context.Background(), org.System, hid, 20)
	if err != nil {
		t.Fatal(err)
	}
	onTimeline := false
	for _, e := range tl {
		onTimeline = onTimeline || (e.Kind == "inbound_call" && e.Ref == "call:"+itoa(int64(c.ID)))
	}
	if !onTimeline {
		t.Errorf("call %d not on the household's timeline %+v", c.ID, tl)
	}
	waitFor(t, "agent back to ready", func() bool { return agentRow(t, r.db, agentID).State == telephony.StateReady })
	checkNoLeaks(t, base)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

var _ = org.System

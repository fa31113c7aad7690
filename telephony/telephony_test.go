package telephony

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

func newSvc(t *testing.T) (*Service, org.UserID, org.UserID) {
	t.Helper()
	db := testenv.DB(t)
	ctx := context.Background()
	svc := NewService(Options{DB: db, ACW: time.Hour})
	var ids []org.UserID
	for _, n := range []string{"agent1", "agent2"} {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: n, DisplayName: n, Password: "password-" + n, Role: org.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		skills := []string{}
		if n == "agent2" {
			skills = []string{"xiang"}
		}
		if err := SetSIPAccount(ctx, db, u.ID, n, "hotline", "secret-"+n, skills); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	return svc, ids[0], ids[1]
}

func TestAgentStates(t *testing.T) {
	svc, a1, a2 := newSvc(t)
	ctx := context.Background()
	me := org.Actor{UserID: a1, Role: org.RoleAgent}
	if _, err := svc.SetAgentState(ctx, me, a2, StateReady, ""); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("agent set another agent's state: %v", err)
	}
	if _, err := svc.SetAgentState(ctx, me, a1, StatePaused, ""); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("pause without reason: %v", err)
	}
	if _, err := svc.SetAgentState(ctx, me, a1, StateBusy, ""); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("busy by API: %v", err)
	}
	if ag, err := svc.SetAgentState(ctx, me, a1, StateReady, ""); err != nil || ag.State != StateReady {
		t.Fatalf("ready: %v %+v", err, ag)
	}
	if _, err := svc.SetAgentState(ctx, org.System, a2, StateReady, ""); err != nil {
		t.Fatal(err)
	}
	// ACD: longest idle first; skills must fit; busy agents are not offered again.
	call, err := svc.StartCall(ctx, CallStart{SIPCallID: "c1", Trunk: "t", Caller: "13812345678", OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := svc.ReserveAgent(ctx, call, []string{"xiang"}, nil); err != nil || a.UserID != a2 {
		t.Fatalf("dialect seat: %v %+v", err, a)
	}
	if a, err := svc.ReserveAgent(ctx, call, nil, nil); err != nil || a.UserID != a1 {
		t.Fatalf("longest idle: %v %+v", err, a)
	}
	if _, err := svc.ReserveAgent(ctx, call, nil, nil); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("third reservation: %v", err)
	}
	if _, err := svc.SetAgentState(ctx, me, a1, StatePaused, "lunch"); !errors.Is(err, org.ErrState) {
		t.Errorf("agent left a call by API: %v", err)
	}
	if err := svc.ReleaseAgent(ctx, a1, call, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := svc.ReleaseAgent(ctx, a2, call, false, ReasonNoAnswer); err != nil {
		t.Fatal(err)
	}
	if ag, _ := GetAgent(ctx, svc.db, a1); ag.State != StateACW {
		t.Errorf("after a call: %s, want acw", ag.State)
	}
	if ag, _ := GetAgent(ctx, svc.db, a2); ag.State != StatePaused || ag.Reason != ReasonNoAnswer {
		t.Errorf("after no answer: %s/%s", ag.State, ag.Reason)
	}
	// The agent may end after-call work early.
	if ag, err := svc.SetAgentState(ctx, me, a1, StateReady, ""); err != nil || ag.State != StateReady {
		t.Errorf("end acw: %v", err)
	}
	var n int
	svc.db.QueryRow(ctx, `SELECT count(*) FROM agent_state_log WHERE user_id = $1`, a1).Scan(&n)
	if n != 4 { // ready, busy (ringing), acw, ready

		t.Errorf("state log has %d rows", n)
	}
}

func TestCallbacksAndKPIs(t *testing.T) {
	svc, a1, _ := newSvc(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, calendar.CST)
	mk := func(off time.Duration, caller string, e CallEnd) CallID {
		id, err := svc.StartCall(ctx, CallStart{SIPCallID: "x", Trunk: "t", Caller: caller, OfferedAt: t0.Add(off)})
		if err != nil {
			t.Fatal(err)
		}
		e.Caller = caller
		if e.EndedAt.IsZero() {
			e.EndedAt = t0.Add(off + 30*time.Second)
		}
		if err := svc.EndCall(ctx, id, e); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// 09:00 answered in 5 s; 09:10 answered in 20 s; 09:20 abandoned after 40 s; 09:30 abandoned again (same number).
	mk(0, "13800000001", CallEnd{Disposition: DispAnswered, AgentID: a1, AgentAnsweredAt: t0.Add(5 * time.Second)})
	mk(10*time.Minute, "13800000002", CallEnd{Disposition: DispAnswered, AgentID: a1, AgentAnsweredAt: t0.Add(10*time.Minute + 20*time.Second)})
	mk(20*time.Minute, "13800000003", CallEnd{Disposition: DispAbandoned, EndedAt: t0.Add(20*time.Minute + 40*time.Second)})
	mk(30*time.Minute, "13800000003", CallEnd{Disposition: DispAbandoned})
	if _, err := svc.RejectCall(ctx, CallStart{SIPCallID: "r", Trunk: "t", OfferedAt: t0.Add(40 * time.Minute)}, 503, "capacity"); err != nil {
		t.Fatal(err)
	}
	cbs, err := ListCallbacks(ctx, svc.db, "open", 10)
	if err != nil || len(cbs) != 1 || cbs[0].Misses != 2 || cbs[0].Caller != "13800000003" {
		t.Fatalf("callbacks %v %+v", err, cbs)
	}
	// An answered call from that number closes the task; so does an agent closing it by hand.
	mk(50*time.Minute, "13800000003", CallEnd{Disposition: DispAnswered, AgentID: a1, AgentAnsweredAt: t0.Add(50*time.Minute + 3*time.Second)})
	if cbs, _ := ListCallbacks(ctx, svc.db, "open", 10); len(cbs) != 0 {
		t.Errorf("task still open after the caller was reached: %+v", cbs)
	}
	mk(55*time.Minute, "13800000004", CallEnd{Disposition: DispAbandoned})
	cbs, _ = ListCallbacks(ctx, svc.db, "open", 10)
	agent := org.Actor{UserID: a1, Role: org.RoleAgent}
	if cb, err := svc.CloseCallback(ctx, agent, cbs[0].ID, "回拨已接通，已答复"); err != nil || cb.Status != "done" || cb.ClosedBy != a1 {
		t.Fatalf("close: %v %+v", err, cb)
	}
	if _, err := svc.CloseCallback(ctx, agent, cbs[0].ID, ""); !errors.Is(err, org.ErrState) {
		t.Errorf("closing twice: %v", err)
	}

	ks, err := KPIs(ctx, svc.db, "hour", t0.Add(-time.Hour), t0.Add(2*time.Hour))
	if err != nil || len(ks) != 1 {
		t.Fatalf("KPIs %v %+v", err, ks)
	}
	k := ks[0]
	// Offered 6 (the rejected call apart), answered 3, two of them within 15 s, abandoned 3, longest wait 40 s.
	if k.Offered != 6 || k.Answered != 3 || k.AnsweredIn15s != 2 || k.Abandoned != 3 || k.Rejected != 1 || k.MaxWait < 39.9 || k.MaxWait > 40.1 {
		t.Errorf("KPI %+v", k)
	}
	if k.AnswerRate != 0.5 || k.Answer15Rate != 2.0/6 || k.AbandonRate != 0.5 {
		t.Errorf("rates %+v", k)
	}
	if !k.Bucket.Equal(t0) {
		t.Errorf("bucket %s, want %s", k.Bucket, t0)
	}
	if _, err := svc.KPIs(ctx, agent, "hour", t0, t0.Add(time.Hour)); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("agent read KPIs: %v", err)
	}
	cs, err := svc.CDRs(ctx, agent, CDRFilter{})
	if err != nil || len(cs) != 3 || cs[0].Caller != "138****0003" {
		t.Errorf("agent's CDRs (own calls, masked numbers): %v %+v", err, cs)
	}
}

// The database's constraint violations come back as validation errors naming the field (org.SQLState with the
// named PostgreSQL codes).
func TestConstraintViolationsNameTheField(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	var ids []org.UserID
	for _, n := range []string{"agent1", "agent2"} {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: n, DisplayName: n, Password: "password-" + n, Role: org.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	field := func(err error) string {
		var ve *org.ValidationError
		if errors.As(err, &ve) && len(ve.Fields) == 1 {
			for f := range ve.Fields {
				return f
			}
		}
		return fmt.Sprintf("not a one-field validation error: %v", err)
	}
	for _, c := range []struct {
		name, want string
		nu         org.NewUser
	}{
		{"unique", "username", org.NewUser{Username: "agent1", DisplayName: "x", Password: "password-x", Role: org.RoleAgent}},
		{"check", "username", org.NewUser{Username: "a b", DisplayName: "x", Password: "password-x", Role: org.RoleAgent}},
		{"foreign key", "unit_id", org.NewUser{Username: "nounit", DisplayName: "x", Password: "password-x", Role: org.RoleStaff, UnitID: 999999}},
	} {
		if _, err := org.CreateUser(ctx, db, c.nu); field(err) != c.want {
			t.Errorf("%s: %s, want field %q", c.name, field(err), c.want)
		}
	}
	if err := SetSIPAccount(ctx, db, ids[0], "1001", "hotline", "secret-1", nil); err != nil {
		t.Fatal(err)
	}
	if err := SetSIPAccount(ctx, db, ids[1], "1001", "hotline", "secret-2", nil); field(err) != "sip_user" {
		t.Errorf("SIP user taken: %s", field(err))
	}
}

package dialer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

type staticAgent struct{ uri sip.Uri }

func (s staticAgent) AgentContacts(context.Context, org.UserID) ([]sip.Uri, error) {
	return []sip.Uri{s.uri}, nil
}

type timelineContacts struct{ mon *monitoring.Service }

func (c timelineContacts) RecordCallContact(ctx context.Context, tx pgx.Tx, cc telephony.CallContact) error {
	_, err := c.mon.AddContactTx(ctx, tx, monitoring.Contact{HouseholdID: org.HouseholdID(cc.HouseholdID),
		Kind: monitoring.ContactOutboundCall, At: cc.At, Summary: "click-to-call", Ref: fmt.Sprintf("call:%d", cc.CallID)})
	return err
}

// TestClickToCall: the agent's test phone rings first and answers, then the household (a second test phone behind
// the trunk); their audio is bridged both ways, recorded in stereo, and the CDR links the agent, the household and
// the recording, with the call on the household's timeline. The agent never gets the number.
func TestClickToCall(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	mon := monitoring.New(monitoring.Config{DB: db, Box: box})
	svc := campaign.NewService(db, campaign.Options{})
	agentPhone, err := phonetest.Start(phonetest.Options{ToneHz: 440, AnswerAfter: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer agentPhone.Close()
	householdPhone, err := phonetest.Start(phonetest.Options{ToneHz: 1000, AnswerAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer householdPhone.Close()
	u, err := org.CreateUser(ctx, db, org.NewUser{Username: "agent7", DisplayName: "话务员", Role: org.RoleAgent, Password: "secret-password"})
	if err != nil {
		t.Fatal(err)
	}
	agent := u.Actor()
	h := household(t, mon, "C001", "430903", "13912345678")

	ua, err := NewUA(UAConfig{BindHost: "127.0.0.1", PromptDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	uaCtx, stopUA := context.WithCancel(ctx)
	ready := make(chan struct{})
	go ua.Serve(uaCtx, func() { close(ready) })
	defer stopUA()
	<-ready
	recDir := testenv.TempDir(t)
	tel := telephony.NewService(telephony.Options{DB: db, RecordingsDir: recDir, Contacts: timelineContacts{mon}})
	hh, hp, _ := net.SplitHostPort(householdPhone.Addr())
	hport, _ := strconv.Atoi(hp)
	var agentURI sip.Uri
	sip.ParseUri("sip:agent7@"+agentPhone.Addr(), &agentURI)
	k := &Clicker{UA: ua, Campaigns: svc, Phones: campaign.Phones{DB: db, Households: mon}, Agents: staticAgent{agentURI}, CDRs: tel, Callbacks: tel,
		Trunk: Trunk{Name: "default", Host: hh, Port: hport}, CallerID: "12345", Ring: 5 * time.Second, Log: testLog()}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { k.Run(runCtx); close(runDone) }()
	defer func() { stop(); <-runDone }()
	time.Sleep(50 * time.Millisecond)

	if _, err := k.Dial(ctx, org.Actor{Role: org.RoleDispatcher}, campaign.ClickRequest{HouseholdID: campaign.HouseholdID(h.ID)}); err == nil {
		t.Fatal("a dispatcher placed a click-to-call")
	}
	if _, err := k.Dial(ctx, agent, campaign.ClickRequest{HouseholdID: campaign.HouseholdID(h.ID), PhoneIndex: 3}); err == nil {
		t.Fatal("a phone index beyond the household's phones was accepted")
	}
	c, err := k.Dial(ctx, agent, campaign.ClickRequest{HouseholdID: campaign.HouseholdID(h.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if c.PhoneMasked != "139****5678" {
		t.Fatalf("masked number %q", c.PhoneMasked)
	}
	var agentCall, householdCall *phonetest.Call
	// The agent is rung first; the household only once the agent has answered.
	for i := 0; i < 100 && agentPhone.Rang() == 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if agentPhone.Rang() != 1 || householdPhone.Rang() != 0 {
		t.Fatalf("while the agent's phone rings: agent rang %d, household rang %d", agentPhone.Rang(), householdPhone.Rang())
	}
	select {
	case agentCall = <-agentPhone.Answered():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's phone was not called")
	}
	select {
	case householdCall = <-householdPhone.Answered():
	case <-time.After(10 * time.Second):
		t.Fatal("the household was not called")
	}
	time.Sleep(300 * time.Millisecond)
	agentCall.ResetStats()
	householdCall.ResetStats()
	time.Sleep(1500 * time.Millisecond)
	as, hs := agentCall.Stats(), householdCall.Stats()
	t.Logf("agent heard %+v, household heard %+v", as, hs)
	if as.RMS < 0.01 || as.FreqHz < 900 || as.FreqHz > 1100 {
		t.Errorf("the agent did not hear the household's 1000 Hz tone: %+v", as)
	}
	if hs.RMS < 0.01 || hs.FreqHz < 400 || hs.FreqHz > 480 {
		t.Errorf("the household did not hear the agent's 440 Hz tone: %+v", hs)
	}
	if cc, _ := svc.GetClick(ctx, agent, c.ID); cc.State != campaign.ClickBridged {
		t.Errorf("state while talking: %s", cc.State)
	}
	householdCall.Hangup(ctx)
	select {
	case <-agentCall.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's leg was not released when the household hung up")
	}
	var cc *campaign.ClickCall
	for i := 0; i < 50; i++ {
		if cc, _ = svc.GetClick(ctx, agent, c.ID); cc.State == campaign.ClickEnded {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cc.State != campaign.ClickEnded || cc.Reason != "household_hangup" || cc.CDRID == 0 {
		t.Fatalf("click-to-call at the end: %+v", cc)
	}
	cdr, err := telephony.GetCDR(ctx, db, telephony.CallID(cc.CDRID))
	if err != nil {
		t.Fatal(err)
	}
	if cdr.AgentID != agent.UserID || cdr.HouseholdID != int64(h.ID) || cdr.RecordingID == 0 || cdr.Disposition == nil ||
		*cdr.Disposition != telephony.DispAnswered || cdr.Dialled != "139****5678" {
		t.Fatalf("CDR: %+v", cdr)
	}
	// Click-to-call is an outbound call: it must not count in the inbound answer-rate KPIs.
	var direction string
	if err := db.QueryRow(ctx, `SELECT direction FROM calls WHERE id = $1`, cdr.ID).Scan(&direction); err != nil || direction != "outbound" {
		t.Fatalf("CDR direction %q (%v), want outbound", direction, err)
	}
	rec, err := telephony.GetRecording(ctx, db, cdr.RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	levels, err := media.Levels(filepath.Join(recDir, rec.Path))
	if err != nil || len(levels) != 2 || levels[0] < 0.01 || levels[1] < 0.01 {
		t.Fatalf("recording %s: levels %v %v", rec.Path, levels, err)
	}
	var ref string
	if err := db.QueryRow(ctx, `SELECT ref FROM household_contacts WHERE household_id = $1`, int64(h.ID)).Scan(&ref); err != nil ||
		ref != fmt.Sprintf("call:%d", cdr.ID) {
		t.Fatalf("household timeline: %q %v", ref, err)
	}

	clickBack(t, ctx, db, k, tel, agent, agentPhone, householdPhone)
}

// clickBack: a callback task of an abandoned call (no ticket, no household) is called back by task id. Only those
// who work the callback list may; the agent's phone rings first, then the task's caller number through the trunk;
// no answer the agent gets holds the number; the CDR is outbound and names the task, which is closed once reached.
func clickBack(t *testing.T, ctx context.Context, db org.DB, k *Clicker, tel *telephony.Service, agent org.Actor,
	agentPhone, callerPhone *phonetest.Phone) {
	t.Helper()
	const number = "13687654321"
	missed, err := tel.StartCall(ctx, telephony.CallStart{SIPCallID: "missed-1", Trunk: "12345", Caller: number, OfferedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var task int64
	if err := db.QueryRow(ctx, `INSERT INTO callback_tasks (caller, reason, call_id) VALUES ($1, 'abandoned', $2) RETURNING id`,
		number, int64(missed)).Scan(&task); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Dial(ctx, org.Actor{UserID: agent.UserID, Role: org.RoleDispatcher}, campaign.ClickRequest{CallbackID: task}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a dispatcher called a callback task back: %v", err)
	}
	if _, err := k.Dial(ctx, agent, campaign.ClickRequest{CallbackID: task + 1000}); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("an unknown callback task: %v", err)
	}
	agentRang, callerRang := agentPhone.Rang(), callerPhone.Rang()
	c, err := k.Dial(ctx, agent, campaign.ClickRequest{CallbackID: task})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(c); strings.Contains(string(raw), number) || c.PhoneMasked != "136****4321" || c.CallbackID != task {
		t.Fatalf("click-to-call answer: %s", raw)
	}
	var agentCall, callerCall *phonetest.Call
	select {
	case agentCall = <-agentPhone.Answered():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's phone was not called")
	}
	if strings.Contains(agentCall.From, "4321") {
		t.Errorf("the agent's phone was shown the caller's number: %q", agentCall.From)
	}
	select {
	case callerCall = <-callerPhone.Answered():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller was not called back")
	}
	if agentPhone.Rang() != agentRang+1 || callerPhone.Rang() != callerRang+1 || callerCall.To != number {
		t.Fatalf("rang agent %d→%d, caller %d→%d, dialled %q", agentRang, agentPhone.Rang(), callerRang, callerPhone.Rang(), callerCall.To)
	}
	var status string
	var closedBy int64
	for i := 0; i < 50; i++ {
		if err := db.QueryRow(ctx, `SELECT status, coalesce(closed_by, 0) FROM callback_tasks WHERE id = $1`, task).Scan(&status, &closedBy); err == nil && status == "done" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != "done" || closedBy != int64(agent.UserID) {
		t.Errorf("callback task once the caller is reached: %s closed by %d", status, closedBy)
	}
	callerCall.Hangup(ctx)
	select {
	case <-agentCall.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's leg was not released when the caller hung up")
	}
	var cc *campaign.ClickCall
	for i := 0; i < 50; i++ {
		if cc, _ = k.Campaigns.GetClick(ctx, agent, c.ID); cc.State == campaign.ClickEnded {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if raw, _ := json.Marshal(cc); cc.State != campaign.ClickEnded || cc.CDRID == 0 || strings.Contains(string(raw), number) {
		t.Fatalf("click-to-call at the end: %s", raw)
	}
	var direction string
	var linked, agentID, rec int64
	if err := db.QueryRow(ctx, `SELECT direction, coalesce(callback_id, 0), coalesce(agent_id, 0), coalesce(recording_id, 0) FROM calls WHERE id = $1`,
		cc.CDRID).Scan(&direction, &linked, &agentID, &rec); err != nil {
		t.Fatal(err)
	}
	if direction != "outbound" || linked != task || agentID != int64(agent.UserID) || rec == 0 {
		t.Fatalf("CDR: direction %s, callback %d (want %d), agent %d, recording %d", direction, linked, task, agentID, rec)
	}
}

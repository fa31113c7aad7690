package intake

import (
	"context"
	"errors"
	"hotline/ticketing/phone"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/prometheus/client_golang/prometheus"

	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

func unitID(t *testing.T, r *rig, code string) org.UnitID {
	u, err := org.UnitByCode(context.Background(), r.db, code)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestVoicemailWhenNobodyIsStaffed(t *testing.T) {
	r := newRig(t, rigOpts{})
	hid, _ := r.household(caller)
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// Greeting, voicemail prompt and tone: then speak for a while and end with #.
	prompts := media.ShortPrompt().Duration()*2 + media.DefaultPrompts().Beep.Duration()
	waitFor(t, "prompts heard", func() bool { return call.Stats().Seconds >= prompts-0.1 })
	time.Sleep(1500 * time.Millisecond)
	if err := call.SendDigits("#"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done(): // hotline thanks and hangs up
	case <-ctx.Done():
		t.Fatal("hotline did not hang up after #")
	}
	call.Hangup(ctx)
	c := r.endedCDR("voicemail CDR")
	if *c.Disposition != telephony.DispVoicemail || c.TicketID == 0 || c.RecordingID == 0 || c.EndReason != "unstaffed/hash" {
		t.Fatalf("CDR %+v", c)
	}
	rec, err := telephony.GetRecording(ctx, r.db, c.RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != "voicemail" || rec.Channels != 1 || rec.TicketID != c.TicketID || rec.Duration < 1 {
		t.Errorf("recording %+v", rec)
	}
	lv, err := media.Levels(filepath.Join(r.recDir, rec.Path))
	if err != nil || len(lv) != 1 || lv[0] < 0.05 {
		t.Errorf("voicemail levels %v %v: want the caller's voice", lv, err)
	}
	tk, err := r.tsvc.Get(ctx, org.System, org.TicketID(c.TicketID))
	if err != nil {
		t.Fatal(err)
	}
	if tk.Source != ticketing.SourceVoicemail || tk.CallerPhone != caller || tk.Status != ticketing.StatusNew ||
		tk.HouseholdID == nil || *tk.HouseholdID != int64(hid) || c.HouseholdID != int64(hid) ||
		!strings.Contains(tk.Content, "录音 #"+strconv.FormatInt(int64(rec.ID), 10)) {
		t.Errorf("voicemail ticket %+v", tk)
	}
	// Only those who may see the ticket hear the message: the dispatch desk's staff may, a county clerk may not.
	clerk := org.Actor{UserID: 0, Username: "heshan1", Role: org.RoleStaff, UnitID: unitID(t, r, "430903")}
	if _, f, err := r.svc.OpenRecording(ctx, clerk, rec.ID); err == nil {
		f.Close()
		t.Error("a county clerk may hear a recording of a ticket not in its unit")
	}
	if _, f, err := r.svc.OpenRecording(ctx, org.System, rec.ID); err != nil {
		t.Errorf("admin cannot open the recording: %v", err)
	} else {
		f.Close()
	}
	cbs := r.openCallbacks()
	if len(cbs) != 1 || cbs[0].Caller != caller || cbs[0].Reason != "voicemail" || cbs[0].TicketID != c.TicketID {
		t.Errorf("callback tasks %+v", cbs)
	}
}

func TestCallerCancelsBeforeAnswer(t *testing.T) {
	r := newRig(t, rigOpts{answerDelay: time.Minute})
	citizen := r.caller("127.0.0.1", 440)
	base := takeBaseline()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller}); err == nil {
		t.Fatal("call was answered")
	}
	c := r.endedCDR("abandoned CDR")
	if *c.Disposition != telephony.DispAbandoned || c.EndReason != "caller_cancel" || c.AnsweredAt != nil {
		t.Errorf("CDR %+v", c)
	}
	if cbs := r.openCallbacks(); len(cbs) != 1 || cbs[0].Caller != caller || cbs[0].Reason != "abandoned" {
		t.Errorf("callback tasks %+v", cbs)
	}
	// The event the consoles get carries the number masked; the task itself keeps it for the call-back.
	if ev, ok := r.outboxEvent(telephony.TopicCallback); !ok || strings.Contains(string(ev.Payload), caller) ||
		!strings.Contains(string(ev.Payload), phone.Mask(caller)) {
		t.Errorf("callback event %s: want the caller masked (%s)", ev.Payload, phone.Mask(caller))
	}
	checkNoLeaks(t, base)
}

func TestCallerHangsUpWhileQueued(t *testing.T) {
	r := newRig(t, rigOpts{})
	id := r.agent("agent1")
	r.setState(id, telephony.StatePaused, "meeting") // staffed, but nobody ready: callers queue
	citizen := r.caller("127.0.0.1", 440)
	base := takeBaseline()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		waitFor(t, "queued with hold music", func() bool { return r.intake.Waiting() == 1 && call.Stats().Seconds > 1.5 })
		if err := call.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		c := r.endedCDR("abandoned CDR")
		if *c.Disposition != telephony.DispAbandoned || c.EndReason != "caller_hangup" || c.AnsweredAt == nil || c.WaitSeconds == nil {
			t.Errorf("CDR %+v", c)
		}
		waitFor(t, "queue empty", func() bool { return r.intake.Waiting() == 0 })
	}
	cbs := r.openCallbacks()
	if len(cbs) != 1 || cbs[0].Misses != 2 || cbs[0].Reason != "abandoned" {
		t.Errorf("callback tasks %+v: want one task with two misses", cbs)
	}
	checkNoLeaks(t, base)
}

func TestAgentNoAnswerRingsNextAndPausesFirst(t *testing.T) {
	r := newRig(t, rigOpts{ringTimeout: time.Second})
	a1, a2 := r.agent("agent1"), r.agent("agent2")
	p1 := r.agentPhone("agent1", phonetest.Options{Mode: phonetest.Ignore})
	p2 := r.agentPhone("agent2", phonetest.Options{ToneHz: 1000})
	r.setState(a1, telephony.StateReady, "") // idle longest: rung first
	r.setState(a2, telephony.StateReady, "")
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.Answered():
	case <-ctx.Done():
		t.Fatal("second agent not rung")
	}
	if p1.Rang() != 1 {
		t.Errorf("first agent rang %d times", p1.Rang())
	}
	if st := agentRow(t, r.db, a1); st.State != telephony.StatePaused || st.Reason != telephony.ReasonNoAnswer {
		t.Errorf("first agent %s/%s, want paused/no_answer", st.State, st.Reason)
	}
	call.Hangup(ctx)
	c := r.endedCDR("CDR")
	if *c.Disposition != telephony.DispAnswered || c.AgentID != a2 || c.AgentsTried != 2 {
		t.Errorf("CDR %+v", c)
	}
}

func TestUnknownSourceForbidden(t *testing.T) {
	r := newRig(t, rigOpts{})
	stranger := r.caller("127.0.0.2", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := stranger.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 403 {
		t.Fatalf("call from an unknown source: %v, want 403", err)
	}
	// A known trunk calling a number it does not serve: 404, and a rejected CDR.
	known := r.caller("127.0.0.1", 440)
	_, err = known.Dial(ctx, r.uri("10086"), phonetest.DialOptions{From: caller})
	if !errors.As(err, &de) || de.Res.StatusCode != 404 {
		t.Fatalf("call to a number not served: %v, want 404", err)
	}
	if c := r.endedCDR("rejected CDR"); *c.Disposition != telephony.DispRejected || c.SIPStatus == nil || *c.SIPStatus != 404 {
		t.Errorf("CDR %+v", c)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestFloodFromOneSourceRefusedOtherTrunkServed(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed (deploy/install-deps.sh test)")
	}
	reg := prometheus.NewRegistry()
	r := newRig(t, rigOpts{rate: 20, registry: reg})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 600 INVITEs at 300/s from 127.0.0.4, far over its limit of 20/s.
	sipp := exec.CommandContext(ctx, "sipp", "-sn", "uac", "127.0.0.1:"+strconv.Itoa(r.port), "-s", "12345",
		"-i", "127.0.0.4", "-p", strconv.Itoa(freeUDP(t)), "-r", "300", "-m", "600", "-d", "200", "-timeout", "30s",
		"-nostdin")
	sipp.Dir = t.TempDir()
	done := make(chan error, 1)
	go func() { done <- sipp.Run() }()
	waitFor(t, "flood refused", func() bool { return counter(t, reg, "hotline_sip_refused_total", "status", "503") > 50 })
	// Meanwhile another trunk's caller gets through.
	other := r.caller("127.0.0.3", 440)
	call, err := other.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: "13900001111"})
	if err != nil {
		t.Fatalf("call from the other trunk during the flood: %v", err)
	}
	call.Hangup(ctx)
	<-done // sipp reports failed calls (the refused ones) in its exit code; its end is all we wait for
	if n := counter(t, reg, "hotline_sip_refused_total", "status", "503"); n < 100 {
		t.Errorf("only %v INVITEs refused", n)
	}
}

func TestMalformedMessagesLeaveServerUp(t *testing.T) {
	r := newRig(t, rigOpts{})
	addr := "127.0.0.1:" + strconv.Itoa(r.port)
	udp, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	junk := []string{
		"\x00\x01\x02garbage\r\n\r\n",
		"INVITE sip:12345@127.0.0.1 SIP/2.0\r\n\r\n",
		"INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nContent-Length: 9999\r\n\r\nv=0",
		"REGISTER sip:x SIP/2.0\r\nTo: <sip:a\x00b@x>\r\n\r\n",
		strings.Repeat("A", 60000),
	}
	for _, j := range junk {
		udp.Write([]byte(j))
	}
	// An INVITE without an offer, from a trunk: 488.
	noSDP := "INVITE sip:12345@" + addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + udp.LocalAddr().String() + ";branch=z9hG4bKnosdp1\r\n" +
		"From: <sip:13812345678@127.0.0.1>;tag=a1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: nosdp-1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:13812345678@" + udp.LocalAddr().String() + ">\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	udp.Write([]byte(noSDP))
	udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	got488 := false
	for !got488 {
		n, err := udp.Read(buf)
		if err != nil {
			t.Fatalf("no answer to an INVITE without SDP: %v", err)
		}
		got488 = strings.HasPrefix(string(buf[:n]), "SIP/2.0 488")
	}
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp.Write([]byte("INVITE sip:x SIP/2.0\r\nContent-Length: 5\r\n\r\n" + strings.Repeat("B", 70000)))
	tcp.Write([]byte("\r\n\r\n\x00\xff"))
	tcp.Close()

	// Still serving.
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatalf("call after malformed messages: %v", err)
	}
	call.Hangup(ctx)
}

func TestDrainRefusesNewCallsWhileCallsFinish(t *testing.T) {
	r := newRig(t, rigOpts{})
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	waitFor(t, "draining", r.sip.Draining)
	_, err = r.caller("127.0.0.1", 440).Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: "13900001111"})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("new call while draining: %v, want 503", err)
	}
	select {
	case <-stopped:
		t.Fatal("server stopped with a call up")
	case <-call.Done():
		t.Fatal("call in progress was cut")
	case <-time.After(300 * time.Millisecond):
	}
	call.Hangup(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("server did not stop after the last call")
	}
}

func TestTrunkWithDigestCredentials(t *testing.T) {
	r := newRig(t, rigOpts{})
	county := r.caller("127.0.0.5", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := county.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller, Username: "county", Password: "wrong"})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 403 {
		t.Fatalf("wrong trunk password: %v, want 403", err)
	}
	call, err := county.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller, Username: "county", Password: "trunk-secret"})
	if err != nil {
		t.Fatalf("trunk with the right password: %v", err)
	}
	call.Hangup(ctx)
	if c := r.endedCDR("CDR"); c.Trunk != "auth" {
		t.Errorf("CDR trunk %q", c.Trunk)
	}
}

func TestMaxConcurrentCalls(t *testing.T) {
	r := newRig(t, rigOpts{maxCalls: 1})
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.caller("127.0.0.1", 440).Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: "13900001111"})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("call beyond the maximum: %v, want 503", err)
	}
	if c := r.endedCDR("rejected CDR"); *c.Disposition != telephony.DispRejected || c.Caller != "13900001111" || *c.SIPStatus != 503 {
		t.Errorf("CDR %+v", c)
	}
	first.Hangup(ctx)
}

// TestSetupBacklogRefusedBeforeCDR: with the calls in setup at the admission limit (here one call, held ringing
// by the answer delay), a new INVITE gets 503 with Retry-After at the door — no CDR row, no answer, no SDP —
// while the call already admitted goes on to be answered and ends with its CDR (issue 15).
func TestSetupBacklogRefusedBeforeCDR(t *testing.T) {
	r := newRig(t, rigOpts{maxSetups: 1, answerDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	firstCtx, hangUpFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() {
		_, err := r.caller("127.0.0.1", 440).Dial(firstCtx, r.uri("12345"), phonetest.DialOptions{From: caller})
		firstDone <- err
	}()
	rows := func(number string) int {
		var n int
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM calls WHERE caller = $1`, number).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, "first call in setup (its CDR row written, ringing)", func() bool { return rows(caller) == 1 })

	_, err := r.caller("127.0.0.1", 440).Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: "13900001111"})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("INVITE beyond the setup limit: %v, want 503", err)
	}
	if de.Res.GetHeader("Retry-After") == nil || len(de.Res.Body()) != 0 {
		t.Errorf("503 without Retry-After or with a body: %v", de.Res)
	}
	if n := rows("13900001111"); n != 0 {
		t.Errorf("%d CDR rows for the refused INVITE, want none (refusals cost no database write)", n)
	}
	hangUpFirst() // CANCEL while ringing
	<-firstDone
	if c := r.endedCDR("first call's CDR"); c.Caller != caller || *c.Disposition != telephony.DispAbandoned {
		t.Errorf("admitted call's CDR %+v", c)
	}
}

func TestOutsideServiceHoursGoesToVoicemail(t *testing.T) {
	// Open one minute a day, twelve hours from now: closed now.
	at := time.Now().In(calendar.CST).Add(12 * time.Hour)
	hours := at.Format("15:04") + "-" + at.Add(time.Minute).Format("15:04")
	if at.Add(time.Minute).Format("15:04") < at.Format("15:04") {
		hours = "00:00-00:01"
	}
	r := newRig(t, rigOpts{hours: hours})
	id := r.agent("agent1")
	r.agentPhone("agent1", phonetest.Options{})
	r.setState(id, telephony.StateReady, "") // ready, but it is after hours
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatal(err)
	}
	prompts := media.ShortPrompt().Duration()*2 + media.DefaultPrompts().Beep.Duration()
	waitFor(t, "prompts heard", func() bool { return call.Stats().Seconds >= prompts-0.1 })
	time.Sleep(1200 * time.Millisecond)
	call.SendDigits("#")
	<-call.Done()
	if c := r.endedCDR("CDR"); *c.Disposition != telephony.DispVoicemail || c.EndReason != "closed/hash" || c.AgentsTried != 0 {
		t.Errorf("CDR %+v", c)
	}
}

func TestQueueLimitLeadsToVoicemail(t *testing.T) {
	r := newRig(t, rigOpts{queueLimit: 2 * time.Second})
	id := r.agent("agent1")
	r.setState(id, telephony.StatePaused, "meeting") // staffed, nobody ready
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "queued", func() bool { return r.intake.Waiting() == 1 })
	waitFor(t, "out of the queue", func() bool { return r.intake.Waiting() == 0 })
	// Voicemail prompt and tone, then a message.
	heard := call.Stats().Seconds
	waitFor(t, "voicemail prompt", func() bool { return call.Stats().Seconds >= heard+1.2 })
	time.Sleep(1200 * time.Millisecond)
	call.SendDigits("#")
	<-call.Done()
	c := r.endedCDR("CDR")
	if *c.Disposition != telephony.DispVoicemail || c.EndReason != "queue_timeout/hash" || c.TicketID == 0 || *c.WaitSeconds < 2 {
		t.Errorf("CDR %+v", c)
	}
}

package dialer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/zaf/g711"

	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/sipua"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// AgentPhones finds where an agent's phone can be rung (registrar bindings, or a configured static contact).
type AgentPhones interface {
	AgentContacts(ctx context.Context, agent org.UserID) ([]sip.Uri, error)
}

// CDRs is what click-to-call needs of telephony's call records: the CDR, its recording, and (through the
// service's contact recorder) the household's timeline.
type CDRs interface {
	StartCall(ctx context.Context, c telephony.CallStart) (telephony.CallID, error)
	FinishAgentCall(ctx context.Context, id telephony.CallID, rec *telephony.NewRecording, e telephony.CallEnd) error
	EndCall(ctx context.Context, id telephony.CallID, e telephony.CallEnd) error
	RecordingsDir() string
}

// CallbackBook is what click-to-call needs of telephony's callback tasks (漏接回拨): the missed caller's number,
// read under the callback list's rule and kept in the process, and the task closed once the caller is reached.
type CallbackBook interface {
	CallbackNumber(ctx context.Context, a org.Actor, id telephony.CallbackID) (string, error)
	CallbackCalled(ctx context.Context, id telephony.CallbackID, by org.UserID, cdr telephony.CallID) error
}

// Clicker places agents' click-to-calls: the agent's phone first, then the household through the trunk, then
// both legs bridged and recorded (stereo: left the household, right the agent). The number stays inside the
// process. Run owns the calls' goroutines: when its context ends, calls in progress are hung up and waited for.
type Clicker struct {
	UA        *UA
	Campaigns *campaign.Service
	Phones    PhoneBook
	Agents    AgentPhones
	CDRs      CDRs
	Callbacks CallbackBook // nil: call-backs by task id are refused
	Trunk     Trunk
	CallerID  string
	Ring      time.Duration
	Log       *slog.Logger

	mu   sync.Mutex
	base context.Context
	wg   sync.WaitGroup
}

// Run lets calls be placed until ctx ends, then waits for them.
func (k *Clicker) Run(ctx context.Context) error {
	k.mu.Lock()
	k.base = ctx
	k.mu.Unlock()
	<-ctx.Done()
	k.mu.Lock()
	k.base = nil
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

// ErrNotRunning is the reason Dial refuses before Run (or after it ended); it wraps ticketing.ErrState.
var ErrNotRunning = fmt.Errorf("click-to-call is not running: %w", org.ErrState)

// Dial starts a click-to-call and returns at once with its record; the call proceeds in the background.
func (k *Clicker) Dial(ctx context.Context, a org.Actor, r campaign.ClickRequest) (*campaign.ClickCall, error) {
	if err := r.Validate(a); err != nil {
		return nil, err
	}
	var number string
	if r.CallbackID != 0 {
		// The task is read (and the actor checked against the callback list's rule) before anything rings.
		if k.Callbacks == nil {
			return nil, &org.StateError{Action: "click_to_call", State: "no_callbacks", Allowed: []string{}, Reason: org.ErrState}
		}
		n, err := k.Callbacks.CallbackNumber(ctx, a, telephony.CallbackID(r.CallbackID))
		if err != nil {
			return nil, err
		}
		number = n
	}
	contacts, err := k.Agents.AgentContacts(ctx, a.UserID)
	if err != nil {
		return nil, err
	}
	if len(contacts) == 0 {
		return nil, &org.StateError{Action: "click_to_call", State: "agent_phone_not_registered", Allowed: []string{}, Reason: org.ErrState}
	}
	if r.CallbackID == 0 {
		phones, err := k.Phones.Phones(ctx, r.HouseholdID, r.TicketID)
		if err != nil {
			return nil, err
		}
		if r.PhoneIndex >= len(phones) {
			return nil, org.Invalid("phone_index", fmt.Sprintf("there are %d numbers", len(phones)))
		}
		number = phones[r.PhoneIndex]
	}
	k.mu.Lock()
	base := k.base
	if base != nil {
		k.wg.Add(1)
	}
	k.mu.Unlock()
	if base == nil {
		return nil, &org.StateError{Action: "click_to_call", State: "dialer_stopped", Allowed: []string{}, Reason: ErrNotRunning}
	}
	c, err := k.Campaigns.StartClick(ctx, a.UserID, r, phone.Mask(number))
	if err != nil {
		k.wg.Done()
		return nil, err
	}
	go func() {
		defer k.wg.Done()
		k.run(base, c, a, contacts[0], number)
	}()
	return c, nil
}

func (k *Clicker) update(c *campaign.ClickCall, u campaign.ClickUpdate) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Campaigns.UpdateClick(ctx, c.ID, u); err != nil {
		k.Log.Error("click-to-call state", "click_id", c.ID, "err", err)
	}
}

// leg places one outbound INVITE with a ring timeout.
func (k *Clicker) leg(ctx context.Context, to sip.Uri, headers []sip.Header, auth bool) (*diago.DialogClientSession, *diago.DialogMedia, int, error) {
	d, err := k.UA.dg.NewDialog(to, diago.NewDialogOptions{})
	if err != nil {
		return nil, nil, 0, err
	}
	ring := media.NewRing(ctx, k.Ring)
	opts := diago.InviteClientOptions{OnResponse: ring.OnResponse, Headers: headers}
	if auth {
		opts.Username, opts.Password = k.Trunk.Username, k.Trunk.Password
	}
	med, err := d.Invite(ring.Ctx, opts)
	ring.Stop()
	if err != nil {
		ring.Release()
		d.Close()
		return nil, nil, sipua.ClassifyInvite(ctx, ring, err).SIPCode, err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.Ack(actx); err != nil {
		med.Close()
		d.Close()
		ring.Release()
		return nil, nil, 0, err
	}
	return d, med, 200, nil
}

func (k *Clicker) run(ctx context.Context, c *campaign.ClickCall, a org.Actor, agentURI sip.Uri, number string) {
	log := k.Log.With("click_id", c.ID, "agent", a.Username)
	started := time.Now()
	hangup := func(d *diago.DialogClientSession) {
		if d.Context().Err() == nil {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			d.Hangup(hctx)
			cancel()
		}
	}
	// The agent's leg shows who is being called (household/ticket), never the number.
	from := &sip.FromHeader{DisplayName: "click-to-call", Address: sip.Uri{Scheme: "sip", User: k.CallerID, Host: k.UA.host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	xh := sip.NewHeader("X-Hotline-Click", strconv.FormatInt(int64(c.ID), 10))
	aD, aMed, code, err := k.leg(ctx, agentURI, []sip.Header{from, xh}, false)
	if err != nil {
		log.Info("agent did not answer", "sip_code", code, "err", err)
		k.update(c, campaign.ClickUpdate{State: campaign.ClickFailed, SIPCode: code, Reason: "agent_no_answer"})
		return
	}
	defer aD.Close()
	defer aMed.Close()
	agentAt := time.Now()
	k.update(c, campaign.ClickUpdate{State: campaign.ClickRingingHousehold})
	uri, err := dialURI(k.Trunk, number)
	if err != nil {
		hangup(aD)
		k.update(c, campaign.ClickUpdate{State: campaign.ClickFailed, Reason: "bad_number"})
		return
	}
	hFrom := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: k.CallerID, Host: k.UA.host}, Params: sip.NewParams()}
	hFrom.Params.Add("tag", sip.GenerateTagN(16))
	hD, hMed, code, err := k.leg(ctx, uri, []sip.Header{hFrom}, true)
	cdr, cerr := k.CDRs.StartCall(context.WithoutCancel(ctx), telephony.CallStart{SIPCallID: callIDOf(hD), Trunk: k.Trunk.Name,
		Dialled: phone.Mask(number), OfferedAt: started, Direction: "outbound", CallbackID: telephony.CallbackID(c.CallbackID)})
	if cerr != nil {
		log.Error("click-to-call CDR", "err", cerr)
	}
	end := telephony.CallEnd{AgentID: a.UserID, AgentAnsweredAt: agentAt, AgentsTried: 1, TicketID: int64(c.TicketID),
		HouseholdID: int64(c.HouseholdID)}
	if err != nil {
		log.Info("household did not answer", "sip_code", code, "err", err)
		hangup(aD)
		end.Disposition, end.Reason, end.SIPStatus, end.EndedAt = telephony.DispFailed, "household_no_answer", code, time.Now()
		if cdr != 0 {
			if err := k.CDRs.EndCall(context.WithoutCancel(ctx), cdr, end); err != nil {
				log.Error("click-to-call CDR", "err", err)
			}
		}
		k.update(c, campaign.ClickUpdate{State: campaign.ClickFailed, SIPCode: code, Reason: "household_no_answer", CDRID: int64(cdr)})
		return
	}
	defer hD.Close()
	defer hMed.Close()
	end.AnsweredAt = time.Now()
	k.update(c, campaign.ClickUpdate{State: campaign.ClickBridged, CDRID: int64(cdr)})
	if c.CallbackID != 0 && k.Callbacks != nil {
		// The missed caller is reached: the task leaves the open list now, while the call goes on.
		if err := k.Callbacks.CallbackCalled(context.WithoutCancel(ctx), telephony.CallbackID(c.CallbackID), a.UserID, cdr); err != nil {
			log.Error("click-to-call callback task", "callback_id", c.CallbackID, "err", err)
		}
	}
	rel := filepath.Join("click", time.Now().Format("2006/01/02"), fmt.Sprintf("click-%d.wav", c.ID))
	rec, reason := k.bridge(ctx, aD, aMed, hD, hMed, filepath.Join(k.CDRs.RecordingsDir(), rel), log)
	end.Disposition, end.Reason, end.EndedAt = telephony.DispAnswered, reason, time.Now()
	var nr *telephony.NewRecording
	if rec != nil {
		if size, dur, err := rec.Close(); err == nil {
			nr = &telephony.NewRecording{CallID: cdr, Kind: "call", Path: rel, Channels: 2, Bytes: size, Duration: dur}
		} else {
			log.Warn("click-to-call recording not saved", "err", err)
		}
	}
	if cdr != 0 {
		if err := k.CDRs.FinishAgentCall(context.WithoutCancel(ctx), cdr, nr, end); err != nil {
			log.Error("click-to-call CDR", "err", err)
		}
	}
	k.update(c, campaign.ClickUpdate{State: campaign.ClickEnded, Reason: reason})
}

func callIDOf(d *diago.DialogClientSession) string {
	if d == nil || d.InviteRequest == nil || d.InviteRequest.CallID() == nil {
		return ""
	}
	return d.InviteRequest.CallID().Value()
}

// bridge forwards audio both ways (transcoding A-law/µ-law if the legs differ), records it, and ends both legs
// when either hangs up or ctx ends. It returns the recorder (to close) and why the call ended.
func (k *Clicker) bridge(ctx context.Context, aD *diago.DialogClientSession, aMed *diago.DialogMedia,
	hD *diago.DialogClientSession, hMed *diago.DialogMedia, path string, log *slog.Logger) (*media.Recorder, string) {
	var aProps, hProps diago.MediaProps
	aR, err1 := aMed.AudioReader(diago.WithAudioReaderMediaProps(&aProps))
	aW, err2 := aMed.AudioWriter()
	hR, err3 := hMed.AudioReader(diago.WithAudioReaderMediaProps(&hProps))
	hW, err4 := hMed.AudioWriter()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		log.Warn("click-to-call media", "err", err)
		return nil, "media_failed"
	}
	rec, err := media.NewRecorder(path, 2, hProps.Codec)
	if err != nil {
		log.Warn("click-to-call not recorded", "err", err)
		rec = nil
	} else {
		rec.Start(time.Now())
	}
	conv := func(from, to dmedia.Codec) func([]byte) []byte {
		switch {
		case from.Name == to.Name:
			return func(b []byte) []byte { return b }
		case from.Name == "PCMA" || from.Name == "pcma":
			return g711.Alaw2Ulaw
		default:
			return g711.Ulaw2Alaw
		}
	}
	hToA, aToH := conv(hProps.Codec, aProps.Codec), conv(aProps.Codec, hProps.Codec)
	hPT, _ := media.TelephoneEventPT(hMed)
	aPT, _ := media.TelephoneEventPT(aMed)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		media.ReadPackets(hMed, hR, func(pt uint8, _ uint32, _ bool, p []byte) {
			if pt == hPT {
				return // keypad events stay off the agent leg and out of the recording (B8)
			}
			if rec != nil {
				rec.Write(0, p, time.Now())
			}
			aW.Write(hToA(p))
		})
	}()
	go func() {
		defer wg.Done()
		media.ReadPackets(aMed, aR, func(pt uint8, _ uint32, _ bool, p []byte) {
			if pt == aPT {
				return
			}
			if rec != nil {
				rec.Write(1, p, time.Now())
			}
			hW.Write(aToH(p))
		})
	}()
	reason := ""
	select {
	case <-aD.Context().Done():
		reason = "agent_hangup"
	case <-hD.Context().Done():
		reason = "household_hangup"
	case <-ctx.Done():
		reason = "shutdown"
	}
	for _, d := range []*diago.DialogClientSession{aD, hD} {
		if d.Context().Err() == nil {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			d.Hangup(hctx)
			cancel()
		}
	}
	aMed.Close()
	hMed.Close()
	wg.Wait()
	return rec, reason
}

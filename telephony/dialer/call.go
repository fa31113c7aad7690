package dialer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
	"hotline/telephony/sipua"
	"hotline/ticketing/campaign"
	"hotline/ticketing/phone"
)

// Trunk is where outbound calls go: every INVITE is sip:<number>@Host:Port.
type Trunk struct {
	Name      string
	Host      string
	Port      int
	Transport string // udp (default) or tcp
	Username  string // digest credentials, if the trunk challenges
	Password  string
	Channels  int // simultaneous calls the carrier allows, shared by all dialer processes
}

// UAConfig is the dialer's SIP user agent.
type UAConfig struct {
	BindHost   string // e.g. 127.0.0.1 or 0.0.0.0
	BindPort   int
	ExternalIP string // public address for SDP/Contact behind NAT
	Transport  string // udp (default) or tcp
	PromptDir  string
	// Fetch, if set, makes sure a prompt is a file in PromptDir before it is played (uploaded prompts live in
	// PostgreSQL and are written into the directory of each process on first use).
	Fetch func(ctx context.Context, dir, name string) (bool, error)
	Log   *slog.Logger
}

// UA is the dialer's SIP side: a diago instance with our INFO handler, placing campaign calls and
// click-to-call legs.
type UA struct {
	dg      *diago.Diago
	ua      *sipgo.UserAgent
	info    *sipua.Digits
	prompts string
	fetch   func(ctx context.Context, dir, name string) (bool, error)
	log     *slog.Logger
	host    string
}

// NewUA creates the user agent; Serve must run before calls are placed.
func NewUA(c UAConfig) (*UA, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Transport == "" {
		c.Transport = "udp"
	}
	host := c.BindHost
	if host == "" || host == "0.0.0.0" {
		host = c.ExternalIP
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("hotline-dialer"), sipgo.WithUserAgentHostname(host))
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip server: %w", err)
	}
	// China's trunks are G.711 A-law; one codec keeps click-to-call legs bridgeable (diago does not transcode).
	mc := diago.MediaConfig{Codecs: []dmedia.Codec{dmedia.CodecAudioAlaw, dmedia.CodecAudioUlaw, dmedia.CodecTelephoneEvent8000}}
	tr := diago.Transport{Transport: c.Transport, BindHost: c.BindHost, BindPort: c.BindPort}
	if c.ExternalIP != "" {
		tr.ExternalHost = c.ExternalIP
		tr.MediaExternalIP = net.ParseIP(c.ExternalIP)
	}
	dg := diago.NewDiago(ua, diago.WithTransport(tr), diago.WithMediaConfig(mc), diago.WithServer(srv), diago.WithLogger(c.Log))
	u := &UA{dg: dg, ua: ua, info: &sipua.Digits{}, prompts: c.PromptDir, fetch: c.Fetch, log: c.Log, host: host}
	// Registered after NewDiago: the last registration wins, replacing diago's 406 (B3).
	srv.OnInfo(u.info.Handle)
	return u, nil
}

// SharedUA places the dialer's calls through a SIP user agent the process already runs (telephony/sipua's
// server: one SIP identity, one port per process, as DESIGN.md says). dg is that agent's media stack, info its
// SIP INFO dispatcher, host what goes in our From. The owner of dg listens and closes it; Serve is not used.
func SharedUA(dg *diago.Diago, info *sipua.Digits, host, promptDir string, log *slog.Logger) *UA {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UA{dg: dg, info: info, prompts: promptDir, log: log, host: host}
}

// WithFetch sets the hook that writes an uploaded prompt into the prompt directory before it is played (see
// UAConfig.Fetch); it returns u.
func (u *UA) WithFetch(f func(ctx context.Context, dir, name string) (bool, error)) *UA {
	u.fetch = f
	return u
}

// Serve listens until ctx ends. Nobody calls the dialer: inbound INVITEs are refused.
func (u *UA) Serve(ctx context.Context, ready func()) error {
	if u.ua == nil {
		return errors.New("dialer: a shared user agent is served by its owner")
	}
	defer u.ua.Close()
	if err := u.dg.ServeBackground(ctx, func(in *diago.DialogServerSession) {
		_ = in.Respond(sip.StatusForbidden, "Forbidden", nil)
	}); err != nil {
		return fmt.Errorf("dialer sip listen: %w", err)
	}
	// B5: sipgo reports ready before the UDP listener is in its pool; an INVITE right away may try to bind again.
	time.Sleep(150 * time.Millisecond)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}

// dialURI builds the request URI of a number on a trunk. Only digits reach the header (B9: sipgo writes header
// values verbatim).
func dialURI(t Trunk, number string) (sip.Uri, error) {
	if number == "" || len(number) > 20 || strings.Trim(number, "0123456789") != "" {
		return sip.Uri{}, fmt.Errorf("number %q is not dialable", phone.Mask(number))
	}
	u := sip.Uri{Scheme: "sip", User: number, Host: t.Host, Port: t.Port}
	if t.Transport == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u, nil
}

// CallPlan is one campaign call to place.
type CallPlan struct {
	Trunk       Trunk
	Number      string
	CallerID    string
	RingTimeout time.Duration
	Script      campaign.Script
	OptOutKey   string
}

// outcomeOf words an INVITE's result class (sipua.ClassifyInvite reads the SIP answer) as a campaign outcome.
// A 603 Decline reached the household but not now: it is retried like no answer (the longer delay), never
// counted as a contact.
func outcomeOf(c sipua.ResultClass) campaign.Outcome {
	switch c {
	case sipua.Answered:
		return campaign.OutcomeAnswered
	case sipua.Busy:
		return campaign.OutcomeBusy
	case sipua.NoAnswer, sipua.Declined:
		return campaign.OutcomeNoAnswer
	case sipua.Cancelled:
		return campaign.OutcomeInterrupted // we are shutting down hard
	}
	return campaign.OutcomeFailed
}

// Place calls the number, plays the script and collects the keypad answers. It never returns an error: every
// way a call can end is an outcome.
func (u *UA) Place(ctx context.Context, p CallPlan) campaign.Result {
	res := campaign.Result{PhoneMasked: phone.Mask(p.Number)}
	uri, err := dialURI(p.Trunk, p.Number)
	if err != nil {
		res.Outcome, res.EndedAt = campaign.OutcomeFailed, time.Now()
		return res
	}
	d, err := u.dg.NewDialog(uri, diago.NewDialogOptions{Transport: p.Trunk.Transport})
	if err != nil {
		res.Outcome, res.EndedAt = campaign.OutcomeFailed, time.Now()
		return res
	}
	defer d.Close()
	// Our own Call-ID, known before the INVITE leaves, so SIP INFO keys find the call from the first moment.
	res.CallID = newCallID()
	cid := sip.CallIDHeader(res.CallID)
	digits := make(chan rune, 16)
	u.info.Register(res.CallID, digits, nil)
	defer u.info.Unregister(res.CallID)

	ring := media.NewRing(ctx, p.RingTimeout) // B4: CANCEL after a 1xx, no 32 s wait without one
	defer ring.Release()
	opts := diago.InviteClientOptions{Username: p.Trunk.Username, Password: p.Trunk.Password, OnResponse: ring.OnResponse}
	opts.WithCaller("", p.CallerID, u.host)
	opts.Headers = append(opts.Headers, &cid)
	med, err := d.Invite(ring.Ctx, opts)
	ring.Stop()
	if err != nil {
		res.EndedAt = time.Now()
		r := sipua.ClassifyInvite(ctx, ring, err)
		res.SIPCode, res.Outcome = r.SIPCode, outcomeOf(r.Class)
		return res
	}
	defer med.Close()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = d.Ack(actx)
	cancel()
	now := time.Now()
	res.AnsweredAt, res.SIPCode, res.Outcome = &now, 200, campaign.OutcomeAnswered
	if err != nil {
		u.log.Warn("ack failed", "call_id", res.CallID, "err", err)
	}
	res.Answers, res.OptedOut = u.runScript(ctx, d, med, digits, p)
	if d.Context().Err() == nil {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = d.Hangup(hctx)
		cancel()
	}
	res.EndedAt = time.Now()
	return res
}

// runScript plays the questions with barge-in, reads keys (RFC 4733 and SIP INFO into one channel), repeats a
// question once on silence, then moves on; the opt-out key ends the call.
func (u *UA) runScript(ctx context.Context, d *diago.DialogClientSession, med *diago.DialogMedia, digits chan rune, p CallPlan) (map[string]string, bool) {
	answers := map[string]string{}
	callCtx := d.Context()
	// One reader for the whole call: RTP → our DTMF detector. Nothing is detected unless something reads.
	// B1: telephony/media's detector, not diago's (which loses digits from Duration=0 senders).
	if base, err := med.AudioReader(); err == nil {
		pt, ok := media.TelephoneEventPT(med)
		if !ok {
			pt = 255 // not negotiated: only SIP INFO digits
		}
		det := &media.DTMFDetector{PT: pt, OnDigit: func(r rune) {
			select {
			case digits <- r:
			default:
			}
		}}
		go media.ReadPackets(med, base, func(pt uint8, ts uint32, marker bool, payload []byte) {
			det.Observe(pt, ts, marker, payload)
		})
	}
	silence := p.Script.Silence()
	if u.fetch != nil {
		for _, q := range p.Script.Questions {
			if _, err := u.fetch(ctx, u.prompts, q.Prompt); err != nil {
				u.log.Warn("prompt not fetched", "prompt", q.Prompt, "err", err)
			}
		}
		if p.Script.Final != "" {
			if _, err := u.fetch(ctx, u.prompts, p.Script.Final); err != nil {
				u.log.Warn("prompt not fetched", "prompt", p.Script.Final, "err", err)
			}
		}
	}
	play := func(name string) (rune, bool) {
		pb, err := med.PlaybackControlCreate()
		if err != nil {
			return 0, false
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = pb.PlayFile(filepath.Join(u.prompts, name))
		}()
		select {
		case r := <-digits:
			pb.Stop()
			<-done
			return r, true
		case <-done:
			return 0, true
		case <-callCtx.Done():
			pb.Stop()
			<-done
			return 0, false
		case <-ctx.Done():
			pb.Stop()
			<-done
			return 0, false
		}
	}
	i, more := 0, len(p.Script.Questions) > 0
	for more {
		q := p.Script.Questions[i]
		key := ""
	ask:
		for try := 0; try < 2; try++ {
			r, alive := play(q.Prompt)
			if !alive {
				return answers, false
			}
			wait := time.NewTimer(silence)
			for {
				if r != 0 {
					k := string(r)
					if p.OptOutKey != "" && k == p.OptOutKey {
						wait.Stop()
						return answers, true
					}
					if strings.Contains(q.Keys, k) {
						key = k
						wait.Stop()
						break ask
					}
					r = 0 // not a valid key: keep waiting
				}
				select {
				case r = <-digits:
				case <-wait.C:
					continue ask // silence: repeat once
				case <-callCtx.Done():
					wait.Stop()
					return answers, false
				case <-ctx.Done():
					wait.Stop()
					return answers, false
				}
			}
		}
		answers[q.ID] = key
		i, more = p.Script.NextQuestion(i, key)
	}
	if p.Script.Final != "" {
		play(p.Script.Final)
	}
	return answers, false
}

func newCallID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@hotline-dialer"
}

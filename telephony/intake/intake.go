// Package intake is the inbound call flow of the 12345 line: answer, a short greeting, the queue with hold music,
// ACD ringing of the longest-idle ready agent whose skills fit (ring timeout → the next agent, the silent one
// paused), the screen-pop event, bridging through this process with a stereo recording, and voicemail (a
// ticket of source voicemail plus a callback task) when no agent answers within the queue limit or outside
// service hours. There is no keypad menu (GB/T 33358).
//
// Time to an agent is what the line is judged by (the 15-second answer rate), so the caller joins the queue the
// moment the call is answered and the agent's phone rings while the greeting plays. When the agent answers, the
// caller is put through once the greeting has played Config.GreetingMin (the recording notice: the caller is told
// the call is recorded before anyone speaks) and the rest of the greeting is cut; Config.GreetingFull plays it
// to the end first, for centres whose rules require that.
//
// Each call runs in the goroutine sipua gives it (HandleCall) and owns at most three more: the reader of the
// caller's audio, the reader of the agent's audio and the player of what the caller hears while waiting
// (greeting, queue prompt, hold music); all end, and are waited for, before HandleCall returns. Run owns the
// queue's dispatcher.
package intake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"

	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/sipua"
	"hotline/ticketing/calendar"
	"hotline/ticketing/phone"
)

// Config is the call flow's configuration.
type Config struct {
	QueueLimit   time.Duration // longest wait for an agent before voicemail (default 60 s)
	RingTimeout  time.Duration // ring time per agent (default 15 s)
	VoicemailMax time.Duration // longest message (default 120 s)
	MinMessage   time.Duration // shorter messages count as none (default 1 s)
	AnswerDelay  time.Duration // ring the caller this long before answering (default 0)
	// GreetingMin is how much of the greeting the caller hears before being put through to an agent who
	// answered early (the recording notice at its start); the rest is cut. 0: cut at once.
	GreetingMin time.Duration
	// GreetingFull plays the whole greeting before the caller is put through (the agent is still rung during it).
	GreetingFull bool
	Hours        Hours
	Prompts      media.Prompts
	Poll         time.Duration // queue poll for agents made ready elsewhere (default 500 ms)
}

// Intake runs inbound calls; it implements sipua.Handler.
type Intake struct {
	cfg   Config
	svc   *telephony.Service
	sip   *sipua.Server
	log   *slog.Logger
	queue *queue
	pacer *media.Pacer // greeting and hold music for every call, from a few pacing loops
}

// New returns an Intake for calls arriving on sip.
func New(cfg Config, svc *telephony.Service, sip *sipua.Server, log *slog.Logger) *Intake {
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 60 * time.Second
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 15 * time.Second
	}
	if cfg.VoicemailMax <= 0 {
		cfg.VoicemailMax = 120 * time.Second
	}
	if cfg.MinMessage <= 0 {
		cfg.MinMessage = time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Prompts.Greeting.WAV == nil {
		cfg.Prompts = media.DefaultPrompts()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("prompt pacer", "engine", media.PacerEngine)
	return &Intake{cfg: cfg, svc: svc, sip: sip, log: log, queue: newQueue(svc, log, cfg.Poll), pacer: &media.Pacer{}}
}

// Run dispatches the queue until ctx ends. The pacer's loops end with the last call playing audio, which ends
// before the SIP server's Run returns.
func (in *Intake) Run(ctx context.Context) error { return in.queue.run(ctx) }

// Waiting is the number of callers in this process's queue.
func (in *Intake) Waiting() int { return in.queue.len() }

// Refused writes the CDR of a call from a known trunk refused before answer.
func (in *Intake) Refused(t *sipua.Trunk, req *sip.Request, err error) {
	st := in.start(t, req.From().Address.User, req.To().Address.User, req.CallID().Value())
	code, _ := sipua.Status(err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := in.svc.RejectCall(ctx, st, code, err.Error()); err != nil {
		in.log.Warn("CDR of refused call failed", "sip_call_id", st.SIPCallID, "err", err)
	}
}

func (in *Intake) start(t *sipua.Trunk, from, to, callID string) telephony.CallStart {
	norm, _, err := phone.Normalize(from)
	if err != nil {
		norm = ""
	}
	return telephony.CallStart{SIPCallID: callID, Trunk: t.Name, Caller: norm, CallerRaw: from, Dialled: to, OfferedAt: time.Now()}
}

// call is one inbound call in progress.
type call struct {
	in    *Intake
	c     *sipua.Call
	d     *diago.DialogServerSession
	ctx   context.Context // ends when the caller hangs up or the server gives up draining
	hard  context.Context // ends when the server gives up draining
	id    telephony.CallID
	start telephony.CallStart
	log   *slog.Logger
	end   telephony.CallEnd

	med    *diago.DialogMedia
	codec  dmedia.Codec
	out    io.Writer // the caller's audio writer
	digits chan rune
	rec    atomic.Pointer[media.Recorder] // caller audio → channel 0 while set
	fwd    atomic.Pointer[sink]           // caller audio → agent while set
	wg     sync.WaitGroup                 // readers

	households []telephony.Household
}

type sink struct{ w io.Writer }

// HandleCall is the call (sipua.Handler).
func (in *Intake) HandleCall(hard context.Context, c *sipua.Call) {
	ctx, cancel := context.WithCancel(c.Dialog.Context())
	defer cancel()
	defer context.AfterFunc(hard, cancel)()
	k := &call{in: in, c: c, d: c.Dialog, ctx: ctx, hard: hard, digits: make(chan rune, 32),
		start: in.start(c.Trunk, c.Caller, c.Dialled, c.SIPCallID)}
	k.log = in.log.With("sip_call_id", c.SIPCallID, "trunk", c.Trunk.Name)
	// 180 at once, before any database work: sipgo sends its own 100 Trying if the INVITE has no provisional
	// answer after 200 ms, and a second 100 after ours (under load) makes strict callers such as SIPp fail the call.
	c.Dialog.Ringing()
	bg := context.WithoutCancel(ctx)
	id, err := in.svc.StartCall(bg, k.start)
	if err != nil {
		k.log.Error("cannot start CDR; refusing call", "err", err)
		c.Dialog.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil, sip.NewHeader("Retry-After", "1"))
		return
	}
	k.id = id
	k.end.Caller = k.start.Caller
	k.log = k.log.With("call_id", id)
	k.end.Disposition, k.end.Reason = telephony.DispFailed, "internal"
	finished := false
	defer func() {
		k.teardown()
		if !finished {
			if k.end.EndedAt.IsZero() {
				k.end.EndedAt = time.Now()
			}
			if err := in.svc.EndCall(bg, k.id, k.end); err != nil {
				k.log.Error("cannot end CDR", "err", err)
			}
		}
	}()
	finished = k.run()
}

// run carries the call; it returns true when it stored the CDR's end itself.
func (k *call) run() bool {
	d, cfg := k.d, k.in.cfg
	if cfg.AnswerDelay > 0 {
		t := time.NewTimer(cfg.AnswerDelay)
		select {
		case <-t.C:
		case <-k.ctx.Done():
			t.Stop()
			k.abandoned("caller_cancel")
			return false
		}
	}
	med, err := d.Answer(diago.AnswerOptions{})
	if err != nil {
		if k.ctx.Err() != nil {
			k.abandoned("caller_cancel")
		} else {
			k.log.Warn("answer failed", "err", err)
			k.end.Reason = "answer_failed"
		}
		return false
	}
	k.med = med
	k.end.AnsweredAt = time.Now()
	if err := k.startReader(); err != nil {
		k.log.Warn("media setup failed", "err", err)
		k.end.Reason = "media_failed"
		return false
	}
	k.lookupCaller()
	// Closed or nobody staffed: the greeting, then the message prompt. Otherwise the greeting plays while the
	// caller already waits in the queue (queueAndRing).
	if !cfg.Hours.Open(time.Now()) {
		return k.greetThenVoicemail(cfg.Prompts.Closed, "closed")
	}
	if staffed, err := k.in.svc.Staffed(k.ctx, k.c.Trunk.Skills); err == nil && !staffed {
		return k.greetThenVoicemail(cfg.Prompts.Voicemail, "unstaffed")
	}
	return k.queueAndRing()
}

func (k *call) greetThenVoicemail(prompt media.Prompt, why string) bool {
	k.play(k.in.cfg.Prompts.Greeting)
	if k.ctx.Err() != nil {
		k.abandoned("caller_hangup")
		return false
	}
	return k.voicemail(prompt, why)
}

// lookupCaller finds the caller's households for the screen-pop, the CDR and a voicemail ticket.
func (k *call) lookupCaller() {
	lk := k.in.svc.Callers()
	if lk == nil || k.start.Caller == "" {
		return
	}
	hh, err := lk.LookupCaller(k.ctx, k.start.Caller)
	if err != nil {
		k.log.Warn("caller lookup failed", "err", err)
		return
	}
	k.households = hh
	if len(hh) == 1 {
		k.end.HouseholdID = hh[0].ID
	}
}

func (k *call) abandoned(reason string) {
	k.end.Disposition, k.end.Reason, k.end.EndedAt = telephony.DispAbandoned, reason, time.Now()
}

// startReader starts the one reader of the caller's audio for the whole call (DTMF is only seen while
// something reads): keypad digits go to k.digits, audio to the recorder and the agent while they are set.
func (k *call) startReader() error {
	r, err := k.med.AudioReader(diago.WithAudioReaderMediaProps(&diago.MediaProps{}))
	if err != nil {
		return err
	}
	props := diago.MediaProps{}
	w, err := k.med.AudioWriter(diago.WithAudioWriterMediaProps(&props))
	if err != nil {
		return err
	}
	k.out, k.codec = w, props.Codec
	pt, ok := media.TelephoneEventPT(k.med)
	if !ok {
		pt = 255 // no telephone-event negotiated: only SIP INFO digits
	}
	det := &media.DTMFDetector{PT: pt, OnDigit: func(r rune) {
		select {
		case k.digits <- r:
		default:
		}
	}}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		media.ReadPackets(k.med, r, func(pt uint8, ts uint32, marker bool, payload []byte) {
			if det.Observe(pt, ts, marker, payload) {
				return // keypad events stay out of recordings (B8) and off the agent leg
			}
			if rec := k.rec.Load(); rec != nil {
				rec.Write(0, payload, time.Now())
			}
			if f := k.fwd.Load(); f != nil {
				f.w.Write(payload)
			}
		})
	}()
	return nil
}

// teardown closes media and waits for the readers.
func (k *call) teardown() {
	if k.med != nil {
		if k.med.RTPPacketWriter != nil {
			k.in.pacer.Release(k.med.RTPPacketWriter) // the pacer's silence after the last prompt stops here
		}
		k.med.Close()
	}
	k.wg.Wait()
}

// play plays a prompt to the caller; it stops early when ctx (the call's, by default) ends.
func (k *call) play(p media.Prompt) { k.playCtx(k.ctx, p) }

func (k *call) playCtx(ctx context.Context, p media.Prompt) error { return k.playPrompt(ctx, p, false) }

// playPrompt plays p (looped until ctx ends, with loop) through the intake's pacer: one pacing loop for many
// calls, the prompt encoded once. Codecs other than G.711 (none are offered today) fall back to diago's playback.
func (k *call) playPrompt(ctx context.Context, p media.Prompt, loop bool) error {
	if len(p.WAV) == 0 || ctx.Err() != nil {
		return ctx.Err()
	}
	if audio := p.Payload(k.codec); audio != nil && k.med.RTPPacketWriter != nil {
		err := k.in.pacer.Play(ctx, k.med.RTPPacketWriter, k.codec, audio, loop)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	for {
		pb, err := k.med.PlaybackControlCreate()
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, pb.Stop)
		_, err = pb.Play(bytes.NewReader(p.WAV), "audio/wav")
		stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || !loop {
			return err
		}
	}
}

// nextDigit waits for a keypad digit (RFC 4733 or SIP INFO) until ctx ends.
func (k *call) nextDigit(ctx context.Context) (rune, bool) {
	select {
	case r := <-k.digits:
		return r, true
	case r := <-k.c.Digits:
		return r, true
	case <-ctx.Done():
		return 0, false
	}
}

func (k *call) drainDigits() {
	for {
		select {
		case <-k.digits:
		case <-k.c.Digits:
		default:
			return
		}
	}
}

// recordingPath returns the absolute and the stored (relative) path of a recording of this call.
func (k *call) recordingPath(kind string) (string, string) {
	t := k.start.OfferedAt.In(calendar.CST)
	rel := filepath.Join(t.Format("2006"), t.Format("01"), t.Format("02"), strconv.FormatInt(int64(k.id), 10)+"-"+kind+".wav")
	return filepath.Join(k.in.svc.RecordingsDir(), rel), rel
}

// waiting is what the caller hears in the queue: the greeting, then (if no agent was found while it played)
// the queue prompt "坐席忙，请稍候", then hold music in a loop, until stop.
type waiting struct {
	cancel      context.CancelFunc
	done        chan struct{} // the player has returned
	greeted     chan struct{} // the greeting has ended (played out or cut)
	greetStart  time.Time
	agentFound  atomic.Bool // an agent was handed to this call: no "please wait" announcement
	stopOnce    sync.Once
	min         time.Duration
	full        bool
	greetLength time.Duration
}

// startWaiting starts the player in a goroutine of its own; stop waits for it.
func (k *call) startWaiting() *waiting {
	ctx, cancel := context.WithCancel(k.ctx)
	p := k.in.cfg.Prompts
	w := &waiting{cancel: cancel, done: make(chan struct{}), greeted: make(chan struct{}), greetStart: time.Now(),
		min: k.in.cfg.GreetingMin, full: k.in.cfg.GreetingFull, greetLength: time.Duration(p.Greeting.Duration() * float64(time.Second))}
	go func() {
		defer close(w.done)
		err := k.playCtx(ctx, p.Greeting)
		close(w.greeted)
		if err != nil {
			return
		}
		if !w.agentFound.Load() && k.playCtx(ctx, p.Queue) != nil {
			return
		}
		k.playPrompt(ctx, p.Hold, true)
	}()
	return w
}

// greetingHeard waits until the caller has heard as much of the greeting as must be heard before being put
// through (GreetingMin, or all of it with GreetingFull), or until ctx ends.
func (w *waiting) greetingHeard(ctx context.Context) {
	if w.full {
		select {
		case <-w.greeted:
		case <-ctx.Done():
		}
		return
	}
	left := time.Until(w.greetStart.Add(min(w.min, w.greetLength)))
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.greeted:
	case <-ctx.Done():
	}
}

// stop ends the player (cutting the greeting or the music) and waits for it, so the caller's writer is free.
func (w *waiting) stop() { w.stopOnce.Do(func() { w.cancel(); <-w.done }) }

// queueAndRing waits for agents and rings them until one answers, the caller leaves or the queue limit passes.
func (k *call) queueAndRing() bool {
	cfg := k.in.cfg
	deadline := time.NewTimer(time.Until(k.start.OfferedAt.Add(cfg.QueueLimit)))
	defer deadline.Stop()
	w := &waiter{call: k.id, skills: k.c.Trunk.Skills}
	// Queue first, then the greeting: an idle agent is reserved and rung while the caller hears it.
	k.in.queue.join(w)
	hold := k.startWaiting()
	defer hold.stop()
	for {
		var a telephony.Agent
		select {
		case a = <-w.got:
			hold.agentFound.Store(true)
		case <-deadline.C:
			if a2, ok := k.in.queue.leave(w); ok {
				k.release(a2, false, "")
			}
			hold.stop()
			return k.voicemail(cfg.Prompts.Voicemail, "queue_timeout")
		case <-k.ctx.Done():
			if a2, ok := k.in.queue.leave(w); ok {
				k.release(a2, false, "")
			}
			k.abandoned("caller_hangup")
			return false
		}
		k.end.AgentsTried++
		done, talked := k.ringAgent(a, hold)
		if done {
			return talked
		}
		w.exclude = append(w.exclude, a.UserID)
		hold.agentFound.Store(false) // back to waiting: if the greeting is still on, "please wait" follows it
		k.in.queue.join(w)
	}
}

func (k *call) release(a telephony.Agent, talked bool, pause string) {
	if err := k.in.svc.ReleaseAgent(context.WithoutCancel(k.ctx), a.UserID, k.id, talked, pause); err != nil {
		k.log.Warn("release agent failed", "agent", a.UserID, "err", err)
	}
}

// ringAgent rings a reserved agent. done is false when the call should go back to the queue; finished reports
// whether the CDR end was stored.
func (k *call) ringAgent(a telephony.Agent, hold *waiting) (done, finished bool) {
	log := k.log.With("agent", a.Username)
	contacts, err := k.in.sip.Registrar().Contacts(k.ctx, a.SIPUser)
	if err != nil || len(contacts) == 0 {
		log.Info("agent has no registered phone; paused", "err", err)
		k.release(a, false, telephony.ReasonUnreachable)
		return false, false
	}
	if err := k.in.svc.PublishScreenPop(k.ctx, telephony.ScreenPop{CallID: k.id, AgentID: a.UserID, Caller: k.start.Caller,
		CallerRaw: k.start.CallerRaw, Trunk: k.start.Trunk, Dialled: k.start.Dialled, OfferedAt: k.start.OfferedAt,
		Households: k.households}); err != nil {
		log.Warn("screen-pop not published", "err", err)
	}
	hdr := []sip.Header{sip.NewHeader("X-Hotline-Call", strconv.FormatInt(int64(k.id), 10))}
	leg, outcome := k.in.sip.RingContacts(k.ctx, k.d, contacts, k.in.cfg.RingTimeout, hdr)
	switch outcome {
	case sipua.Answered:
	case sipua.Cancelled:
		k.release(a, false, "")
		k.abandoned("caller_hangup")
		return true, false
	case sipua.NoAnswer:
		log.Info("agent did not answer; paused")
		k.release(a, false, telephony.ReasonNoAnswer)
		return false, false
	case sipua.Busy, sipua.Declined: // the agent pressed "busy" or "decline"
		log.Info("agent declined; paused")
		k.release(a, false, "declined")
		return false, false
	default:
		log.Info("agent's phone unreachable; paused")
		k.release(a, false, telephony.ReasonUnreachable)
		return false, false
	}
	return true, k.talk(a, leg, hold, log)
}

// talk bridges the caller and the agent through this process, records both, and ends when either hangs up.
func (k *call) talk(a telephony.Agent, leg *sipua.Leg, hold *waiting, log *slog.Logger) bool {
	k.end.AgentID, k.end.AgentAnsweredAt = a.UserID, time.Now()
	bg := context.WithoutCancel(k.ctx)
	// The agent answered while the greeting may still be playing: the caller hears its required part (the
	// recording notice), then the rest is cut and the two are put through.
	hold.greetingHeard(k.ctx)
	hold.stop()
	// The player may have stopped between two prompts, with the pacer keeping the caller's RTP going with
	// silence: that ends before the agent's audio is written to the caller.
	k.in.pacer.Release(k.med.RTPPacketWriter)
	now := time.Now()
	log.Info("agent answered; bridged")

	path, rel := k.recordingPath("call")
	rec, err := media.NewRecorder(path, 2, k.codec)
	if err != nil {
		k.in.svc.RecordingFailed(err)
		rec = nil
	} else {
		rec.Start(now)
		k.rec.Store(rec)
	}
	agentR, err1 := leg.Media.AudioReader()
	agentW, err2 := leg.Media.AudioWriter()
	if err := errors.Join(err1, err2); err != nil {
		log.Warn("agent media failed", "err", err)
		k.end.Reason = "media_failed"
	} else {
		k.fwd.Store(&sink{w: agentW})
		agentPT, ok := media.TelephoneEventPT(leg.Media)
		if !ok {
			agentPT = 255
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			media.ReadPackets(leg.Media, agentR, func(pt uint8, _ uint32, _ bool, payload []byte) {
				if pt == agentPT {
					return
				}
				if rec != nil {
					rec.Write(1, payload, time.Now())
				}
				k.out.Write(payload)
			})
		}()
		// The agent's state is written once the two hear each other: a database round trip is not worth
		// holding the caller for.
		if err := k.in.svc.MarkTalking(bg, a.UserID, k.id); err != nil {
			log.Warn("agent state not updated", "err", err)
		}
		select {
		case <-k.ctx.Done():
			k.end.Reason = "caller_hangup"
			if k.hard.Err() != nil {
				k.end.Reason = "shutdown" // drain timeout: hotline hangs up both sides
			}
			hctx, cancel := context.WithTimeout(bg, 5*time.Second)
			leg.Dialog.Hangup(hctx)
			cancel()
		case <-leg.Dialog.Context().Done():
			k.end.Reason = "agent_hangup"
			hctx, cancel := context.WithTimeout(bg, 5*time.Second)
			k.d.Hangup(hctx)
			cancel()
		}
	}
	k.end.Disposition, k.end.EndedAt = telephony.DispAnswered, time.Now()
	k.fwd.Store(nil)
	k.rec.Store(nil)
	leg.Close()
	k.teardown() // both readers have stopped once this returns
	var nr *telephony.NewRecording
	if rec != nil {
		size, dur, err := rec.Close()
		if err != nil {
			k.in.svc.RecordingFailed(err)
			os.Remove(path)
		} else {
			k.in.svc.RecordingSaved()
			nr = &telephony.NewRecording{CallID: k.id, Kind: "call", Path: rel, Channels: 2, Bytes: size, Duration: dur}
		}
	}
	if err := k.in.svc.FinishAgentCall(bg, k.id, nr, k.end); err != nil {
		log.Error("cannot end CDR", "err", err)
	}
	k.release(a, true, "")
	return true
}

// voicemail records a message after prompt and a tone, until '#', the limit, or hang-up.
func (k *call) voicemail(prompt media.Prompt, why string) bool {
	cfg := k.in.cfg
	k.play(prompt)
	k.play(cfg.Prompts.Beep)
	if k.ctx.Err() != nil {
		k.abandoned("caller_hangup")
		return false
	}
	path, rel := k.recordingPath("voicemail")
	rec, err := media.NewRecorder(path, 1, k.codec)
	if err != nil {
		// The disk is full (or the directory unwritable): the caller still leaves the message and gets a ticket
		// and a callback task; only the recording is missing.
		k.in.svc.RecordingFailed(err)
		rec = nil
	}
	k.drainDigits()
	began := time.Now()
	if rec != nil {
		rec.Start(began)
		k.rec.Store(rec)
	}
	mctx, cancel := context.WithTimeout(k.ctx, cfg.VoicemailMax)
	reason := "message_limit"
	for {
		r, ok := k.nextDigit(mctx)
		if !ok {
			if k.ctx.Err() != nil {
				reason = "caller_hangup"
			}
			break
		}
		if r == '#' {
			reason = "hash"
			break
		}
	}
	cancel()
	k.end.EndedAt = time.Now()
	k.end.Reason = why + "/" + reason
	var nr *telephony.NewRecording
	dur := k.end.EndedAt.Sub(began)
	if rec != nil {
		k.rec.Store(nil)
		size, rdur, err := rec.Close()
		switch {
		case err == nil:
			k.in.svc.RecordingSaved()
			dur = rdur
			nr = &telephony.NewRecording{CallID: k.id, Kind: "voicemail", Path: rel, Channels: 1, Bytes: size, Duration: rdur}
		case errors.Is(err, os.ErrNotExist):
		default:
			k.in.svc.RecordingFailed(err)
			os.Remove(path)
		}
	}
	if dur < cfg.MinMessage {
		if nr != nil {
			os.Remove(path)
		}
		k.end.Disposition = telephony.DispAbandoned // no message: still a missed call to ring back
		return false
	}
	region := ""
	if len(k.households) == 1 {
		region = k.households[0].Region
	}
	ticket, err := k.in.svc.FinishVoicemail(context.WithoutCancel(k.ctx), k.id, k.start.Caller, region, nr, dur, k.end)
	if err != nil {
		k.log.Error("voicemail not stored", "err", err)
		k.end.Disposition, k.end.Reason = telephony.DispFailed, "voicemail_store_failed"
		return false
	}
	k.log.Info("voicemail stored", "ticket_id", ticket, "seconds", dur.Seconds())
	if k.ctx.Err() == nil {
		k.play(cfg.Prompts.Thanks)
	}
	return true
}

var _ sipua.Handler = (*Intake)(nil)

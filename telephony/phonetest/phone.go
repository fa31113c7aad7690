// Package phonetest is a SIP phone on diago for tests: it registers to hotline's registrar as an agent (or calls
// in as a citizen through a trunk), answers or ignores or rejects calls, sends a tone and keypad digits, measures
// the audio and digits it receives, and hangs up. It talks real SIP and RTP on loopback.
//
// A Phone runs until Close; each call it is part of owns two goroutines (the audio reader and the tone writer),
// which end with the call and are waited for by Hangup/Close.
package phonetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/zaf/g711"

	"hotline/telephony/media"
)

// Mode is what the phone does with an incoming call.
type Mode int

const (
	Answer Mode = iota // ring, then answer after AnswerAfter
	Ignore             // ring until the caller gives up
	Reject             // 486 Busy Here
)

// Options configure a phone.
type Options struct {
	Host        string        // default 127.0.0.1
	Mode        Mode          // incoming calls
	AnswerAfter time.Duration // ring this long before answering
	ToneHz      float64       // tone it sends while in a call; 0: silence
	Log         *slog.Logger
}

// Phone is a SIP phone.
type Phone struct {
	opts   Options
	ua     *sipgo.UserAgent
	dg     *diago.Diago
	addr   string
	ctx    context.Context // ends at Close: calls still up are hung up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	mode     Mode
	rang     int
	answered chan *Call
	reg      *diago.RegisterTransaction
}

// Start listens on a free UDP port and serves incoming calls.
func Start(o Options) (*Phone, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	port, err := freeUDPPort(o.Host)
	if err != nil {
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("hotline-phonetest"), sipgo.WithUserAgentHostname(o.Host))
	if err != nil {
		return nil, err
	}
	dg := diago.NewDiago(ua, diago.WithLogger(o.Log), diago.WithTransport(diago.Transport{Transport: "udp", BindHost: o.Host, BindPort: port}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []dmedia.Codec{dmedia.CodecAudioAlaw, dmedia.CodecAudioUlaw, dmedia.CodecTelephoneEvent8000}}))
	ctx, cancel := context.WithCancel(context.Background())
	p := &Phone{opts: o, ua: ua, dg: dg, addr: net.JoinHostPort(o.Host, strconv.Itoa(port)), ctx: ctx, cancel: cancel, mode: o.Mode,
		answered: make(chan *Call, 8)}
	if err := dg.ServeBackground(ctx, p.serve); err != nil {
		cancel()
		ua.Close()
		return nil, err
	}
	time.Sleep(100 * time.Millisecond) // B5: the listener is not in the connection pool yet when "ready"
	return p, nil
}

func freeUDPPort(host string) (int, error) {
	c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// Addr is the phone's SIP address (host:port).
func (p *Phone) Addr() string { return p.addr }

// SetMode changes what the phone does with the next incoming calls.
func (p *Phone) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// Rang is how many INVITEs the phone received.
func (p *Phone) Rang() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rang
}

// Answered delivers the calls the phone answered.
func (p *Phone) Answered() <-chan *Call { return p.answered }

// Register registers user at the registrar (e.g. "sip:agent1@127.0.0.1:5060") once, answering the digest
// challenge with password.
func (p *Phone) Register(ctx context.Context, registrar, user, password string, expiry time.Duration) error {
	var u sip.Uri
	if err := sip.ParseUri(registrar, &u); err != nil {
		return err
	}
	t, err := p.dg.RegisterTransaction(ctx, u, diago.RegisterOptions{Username: user, Password: password, Expiry: expiry})
	if err != nil {
		return err
	}
	if err := t.Register(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.reg = t
	p.mu.Unlock()
	return nil
}

// Unregister removes the phone's bindings.
func (p *Phone) Unregister(ctx context.Context) error {
	p.mu.Lock()
	t := p.reg
	p.mu.Unlock()
	if t == nil {
		return errors.New("not registered")
	}
	return t.Unregister(ctx)
}

// Close stops the phone, hanging up its calls.
func (p *Phone) Close() {
	p.cancel()
	p.wg.Wait()
	p.ua.Close()
}

func (p *Phone) serve(d *diago.DialogServerSession) {
	p.wg.Add(1)
	defer p.wg.Done()
	p.mu.Lock()
	p.rang++
	mode := p.mode
	p.mu.Unlock()
	d.Trying()
	switch mode {
	case Reject:
		d.Respond(sip.StatusBusyHere, "Busy Here", nil)
		return
	case Ignore:
		d.Ringing()
		select {
		case <-d.Context().Done():
		case <-p.ctx.Done():
		}
		return
	}
	d.Ringing()
	if p.opts.AnswerAfter > 0 {
		select {
		case <-time.After(p.opts.AnswerAfter):
		case <-d.Context().Done():
			return
		case <-p.ctx.Done():
			return
		}
	}
	med, err := d.Answer(diago.AnswerOptions{})
	if err != nil {
		return
	}
	c := newCall(med, d.Context(), d.Hangup, p.opts.ToneHz)
	c.XCall = d.InviteRequest.GetHeader("X-Hotline-Call")
	c.From = d.FromUser()
	c.To = d.InviteRequest.Recipient.User
	select {
	case p.answered <- c:
	default:
	}
	select {
	case <-d.Context().Done():
	case <-p.ctx.Done():
		// Closing with a call up (its peer may be gone without a BYE): hang up rather than wait forever.
		hctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = d.Hangup(hctx)
		cancel()
	}
	c.stop()
}

// DialOptions configure an outgoing call.
type DialOptions struct {
	From     string // caller number put in From
	Username string // digest credentials if the far end challenges
	Password string
}

// Dial calls uri and waits for the answer.
func (p *Phone) Dial(ctx context.Context, uri string, o DialOptions) (*Call, error) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return nil, err
	}
	d, err := p.dg.NewDialog(u, diago.NewDialogOptions{})
	if err != nil {
		return nil, err
	}
	io := diago.InviteClientOptions{Username: o.Username, Password: o.Password}
	if o.From != "" {
		io.WithCaller("", o.From, p.opts.Host)
	}
	med, err := d.Invite(ctx, io)
	if err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		d.Close()
		return nil, err
	}
	c := newCall(med, d.Context(), d.Hangup, p.opts.ToneHz)
	c.closeDialog = d.Close
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-d.Context().Done():
		case <-c.done:
		}
		c.stop()
	}()
	return c, nil
}

// Call is one call of the phone, answered.
type Call struct {
	XCall sip.Header // the X-Hotline-Call header of an incoming call (hotline's CDR id)
	From  string
	To    string // the user part of an incoming call's Request-URI: the number dialled

	med         *diago.DialogMedia
	ctx         context.Context
	hangup      func(context.Context) error
	closeDialog func() error
	done        chan struct{}
	stopOnce    sync.Once
	wg          sync.WaitGroup

	// writeMu is held by the tone writer around each packet and by SendDigits for all its digits: diago's RTP
	// writer is not safe for two writers, and RFC 4733 events must not be interleaved with audio packets that
	// move the RTP timestamp (a receiver would take each end packet for a new event).
	writeMu sync.Mutex

	mu      sync.Mutex
	sumSq   float64
	n       int
	zc      int
	last    int16
	digits  []rune
	packets int
}

func newCall(med *diago.DialogMedia, ctx context.Context, hangup func(context.Context) error, tone float64) *Call {
	c := &Call{med: med, ctx: ctx, hangup: hangup, done: make(chan struct{})}
	props := diago.MediaProps{}
	r, err := med.AudioReader(diago.WithAudioReaderMediaProps(&props))
	if err != nil {
		return c
	}
	alaw := props.Codec.Name == "pcma"
	pt, ok := media.TelephoneEventPT(med)
	if !ok {
		pt = 255
	}
	det := &media.DTMFDetector{PT: pt, OnDigit: func(d rune) {
		c.mu.Lock()
		c.digits = append(c.digits, d)
		c.mu.Unlock()
	}}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		media.ReadPackets(med, r, func(pt uint8, ts uint32, marker bool, payload []byte) {
			if det.Observe(pt, ts, marker, payload) {
				return
			}
			var pcm []byte
			if alaw {
				pcm = g711.DecodeAlaw(payload)
			} else {
				pcm = g711.DecodeUlaw(payload)
			}
			c.mu.Lock()
			c.packets++
			for i := 0; i+1 < len(pcm); i += 2 {
				v := int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8)
				f := float64(v) / 32768
				c.sumSq += f * f
				if (v >= 0) != (c.last >= 0) {
					c.zc++
				}
				c.last = v
				c.n++
			}
			c.mu.Unlock()
		})
	}()
	if tone > 0 {
		w, err := med.AudioWriter()
		if err == nil {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.sendTone(w, tone, alaw)
			}()
		}
	}
	return c
}

func (c *Call) sendTone(w interface{ Write([]byte) (int, error) }, hz float64, alaw bool) {
	pcm := make([]byte, 320)
	phase := 0.0
	for {
		select {
		case <-c.done:
			return
		default:
		}
		for i := 0; i < 160; i++ {
			v := int16(0.3 * 32767 * math.Sin(phase))
			phase += 2 * math.Pi * hz / 8000
			pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
		}
		var enc []byte
		if alaw {
			enc = g711.EncodeAlaw(pcm)
		} else {
			enc = g711.EncodeUlaw(pcm)
		}
		c.writeMu.Lock()
		_, err := w.Write(enc) // paced at 20 ms by diago's RTP writer
		c.writeMu.Unlock()
		if err != nil {
			return
		}
	}
}

// Stats is what the phone heard since the last ResetStats.
type Stats struct {
	RMS     float64 // 0..1
	FreqHz  float64 // estimated from zero crossings (meaningful for a tone)
	Seconds float64
	Packets int
}

// Stats returns what was heard.
func (c *Call) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Seconds: float64(c.n) / 8000, Packets: c.packets}
	if c.n > 0 {
		s.RMS = math.Sqrt(c.sumSq / float64(c.n))
		s.FreqHz = float64(c.zc) / 2 / s.Seconds
	}
	return s
}

// ResetStats starts a new measurement.
func (c *Call) ResetStats() {
	c.mu.Lock()
	c.sumSq, c.n, c.zc, c.packets = 0, 0, 0, 0
	c.mu.Unlock()
}

// Digits returns the keypad digits received.
func (c *Call) Digits() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.digits)
}

// SendDigits sends RFC 4733 keypad digits (with the B2 timestamp fix).
func (c *Call) SendDigits(digits string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return media.SendDigits(c.med, digits, 150*time.Millisecond)
}

// Done is closed when the call ended (either side).
func (c *Call) Done() <-chan struct{} { return c.ctx.Done() }

// Hangup sends BYE and waits for the call's goroutines.
func (c *Call) Hangup(ctx context.Context) error {
	var err error
	if c.ctx.Err() == nil {
		err = c.hangup(ctx)
	}
	c.stop()
	return err
}

func (c *Call) stop() {
	c.stopOnce.Do(func() {
		close(c.done)
		c.med.Close()
		c.wg.Wait()
		if c.closeDialog != nil {
			c.closeDialog()
		}
	})
}

// String describes the call for test logs.
func (c *Call) String() string {
	s := c.Stats()
	return fmt.Sprintf("call rms=%.3f freq=%.0fHz", s.RMS, s.FreqHz)
}

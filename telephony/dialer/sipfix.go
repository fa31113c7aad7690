package dialer

// Workarounds for sipgo v1.7.3 / diago v0.42.1 (see the telephony notes, defects B1, B3, B4). They live here,
// in our own files, because diago is MPL-2.0 and we do not ship modified copies of its files.

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// dtmfDetector is an io.Reader stage that detects RFC 4733 telephone-events (B1): diago's reader drops every
// digit from senders whose first event packet has Duration=0 (SIPp's pcaps, some SBCs). An event is keyed on
// its RTP timestamp, marker and event code, and fires once, on its first End packet.
type dtmfDetector struct {
	r       io.Reader
	pr      *media.RTPPacketReader
	pt      uint8
	have    bool
	lastTS  uint32
	lastEv  uint8
	emitted bool
	onDigit func(rune)
}

func telephoneEventPT(med *diago.DialogMedia) (uint8, bool) {
	ms := med.MediaSession()
	if ms == nil {
		return 0, false
	}
	for _, c := range ms.CommonCodecs() {
		if strings.EqualFold(c.Name, "telephone-event") && c.SampleRate == 8000 {
			return c.PayloadTypeRecv(), true
		}
	}
	return 0, false
}

func (d *dtmfDetector) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if err != nil {
		return n, err
	}
	h := d.pr.PacketHeader
	if h.PayloadType != d.pt || n < 4 {
		return n, nil
	}
	ev := media.DTMFEvent{}
	if err := media.DTMFDecode(b[:n], &ev); err != nil {
		return n, nil
	}
	if !d.have || h.Timestamp != d.lastTS || h.Marker || ev.Event != d.lastEv {
		d.have, d.lastTS, d.lastEv, d.emitted = true, h.Timestamp, ev.Event, false
	}
	if ev.EndOfEvent && !d.emitted {
		d.emitted = true
		d.onDigit(media.DTMFToRune(ev.Event))
	}
	return n, nil
}

// ringContext returns the context for an outbound INVITE that gives up after ring (B4). sipgo sends CANCEL on
// context expiry only after a 1xx, and without one waits for Timer B (32 s); with the cause
// WaitAnswerForceCancelErr it returns at once but never sends CANCEL. So: a 1xx seen → expire normally (CANCEL);
// none → force-return. timedOut reports whether the ring timer (not the parent) ended the wait.
func ringContext(parent context.Context, ring time.Duration) (ctx context.Context, onResponse func(*sip.Response) error, timedOut func() bool, stop func()) {
	cctx, cancel := context.WithCancelCause(parent)
	var provisional, fired atomic.Bool
	t := time.AfterFunc(ring, func() {
		fired.Store(true)
		if provisional.Load() {
			cancel(context.DeadlineExceeded)
		} else {
			cancel(sipgo.WaitAnswerForceCancelErr)
		}
	})
	onResponse = func(res *sip.Response) error {
		if res.IsProvisional() && res.StatusCode > 100 {
			provisional.Store(true)
		}
		return nil
	}
	return cctx, onResponse, fired.Load, func() { t.Stop(); cancel(context.Canceled) }
}

// infoDigits routes SIP INFO keypad events (B3: diago answers application/dtmf-relay with 406) to the call they
// belong to, by Call-ID: only calls this dialer placed are registered.
type infoDigits struct {
	calls sync.Map // Call-ID → chan rune
}

func (r *infoDigits) register(callID string, ch chan rune) { r.calls.Store(callID, ch) }
func (r *infoDigits) unregister(callID string)             { r.calls.Delete(callID) }

// handle answers an INFO: 200 with a digit delivered, 481 for an unknown call, 415/400 for other bodies.
func (r *infoDigits) handle(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	cid := req.CallID()
	if cid == nil {
		respond(sip.StatusBadRequest, "Bad Request")
		return
	}
	v, ok := r.calls.Load(cid.Value())
	if !ok {
		respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	digit, code := parseInfoDTMF(req)
	if code != sip.StatusOK {
		respond(code, "Unsupported")
		return
	}
	respond(sip.StatusOK, "OK")
	select {
	case v.(chan rune) <- digit:
	default:
	}
}

// parseInfoDTMF reads "Signal=5" (application/dtmf-relay) or "5" (application/dtmf).
func parseInfoDTMF(req *sip.Request) (rune, int) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.Split(h.Value(), ";")[0]))
	}
	var digit rune
	switch ct {
	case "application/dtmf-relay":
		sc := bufio.NewScanner(strings.NewReader(string(req.Body())))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "Signal") {
				if v = strings.TrimSpace(v); v != "" {
					digit = rune(v[0])
				}
			}
		}
	case "application/dtmf":
		if b := strings.TrimSpace(string(req.Body())); b != "" {
			digit = rune(b[0])
		}
	default:
		return 0, sip.StatusUnsupportedMediaType
	}
	if digit == 0 || !strings.ContainsRune("0123456789*#ABCD", digit) {
		return 0, sip.StatusBadRequest
	}
	return digit, sip.StatusOK
}

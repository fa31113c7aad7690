package sipua

import (
	"sync"

	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
)

// Digits routes keypad digits sent as SIP INFO (B3: diago answers every application/dtmf-relay INFO with 406) to
// the call they belong to, by Call-ID. One handler for both sides: the SIP server registers its inbound calls,
// the dialer the calls it places (it chooses their Call-ID before the INVITE leaves, so an INFO finds the call
// from the first moment). Both used to have a handler of their own. Register it with sipgo's OnInfo after diago.NewDiago: the last registration wins.
type Digits struct {
	calls sync.Map // Call-ID → digitSink
}

type digitSink struct {
	ch    chan rune
	check func(*sip.Request, sip.ServerTransaction) error // in-dialog checks (CSeq order); nil: none
}

// Register routes the INFO digits of the call to ch (dropped when ch is full: a keypad is slow). check, when not
// nil, validates an INFO against its dialog first (diago's ReadRequest).
func (r *Digits) Register(callID string, ch chan rune, check func(*sip.Request, sip.ServerTransaction) error) {
	r.calls.Store(callID, digitSink{ch: ch, check: check})
}

// Unregister stops routing the call's digits.
func (r *Digits) Unregister(callID string) { r.calls.Delete(callID) }

// Handle answers an INFO: 200 with a digit delivered, 481 for a call we do not have, 415 for other bodies.
func (r *Digits) Handle(req *sip.Request, tx sip.ServerTransaction) {
	cid := req.CallID()
	if cid == nil {
		tx.Respond(Response(req, ErrMalformed))
		return
	}
	v, ok := r.calls.Load(cid.Value())
	if !ok {
		tx.Respond(Response(req, ErrNoSuchCall))
		return
	}
	sink := v.(digitSink)
	if sink.check != nil {
		if err := sink.check(req, tx); err != nil {
			tx.Respond(Response(req, ErrMalformed))
			return
		}
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	digit, ok := media.ParseINFODigit(ct, req.Body())
	if !ok {
		tx.Respond(Response(req, ErrUnsupportedMediaType))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	select {
	case sink.ch <- digit:
	default:
	}
}

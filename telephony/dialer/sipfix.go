package dialer

// SIP INFO keypad digits on the dialer's outbound calls (B3). telephony/sipua handles INFO on inbound (server)
// dialogs; the dialer's calls are client dialogs, matched here by the Call-ID the dialer chose.

import (
	"sync"

	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
)

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
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	digit, ok := media.ParseINFODigit(ct, req.Body())
	if !ok {
		respond(sip.StatusUnsupportedMediaType, "Unsupported Media Type")
		return
	}
	respond(sip.StatusOK, "OK")
	select {
	case v.(chan rune) <- digit:
	default:
	}
}

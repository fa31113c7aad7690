package sipua

import (
	"context"
	"errors"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
)

// Why an INVITE is refused. These errors are the vocabulary between the gate, intake and the registrar;
// Response turns them into SIP responses, in this one place.
var (
	ErrMalformed        = errors.New("malformed request")
	ErrUnknownSource    = errors.New("source is not a configured trunk")
	ErrAuthRequired     = errors.New("authentication required")
	ErrBadCredentials   = errors.New("bad credentials")
	ErrNumberNotServed  = errors.New("dialled number not served on this trunk")
	ErrRateLimited      = errors.New("too many requests from this source")
	ErrOverCapacity     = errors.New("maximum of concurrent calls reached")
	ErrDraining         = errors.New("shutting down")
	ErrInternal         = errors.New("internal error")
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrNoOffer          = errors.New("INVITE without an SDP offer (late offer is not supported)")

	ErrTooManyHops          = errors.New("Max-Forwards reached 0")
	ErrVersionNotSupported  = errors.New("SIP version not supported")
	ErrUnsupportedURIScheme = errors.New("request URI scheme not supported")
	ErrBadExtension         = errors.New("required extension not supported")
	ErrUnsupportedMediaType = errors.New("INVITE body is not application/sdp")
	ErrUnusableOffer        = errors.New("SDP offer has no usable audio stream")
	ErrOverloaded           = errors.New("overloaded: measured pressure above the admission limit")
	ErrTooManyFailures      = errors.New("too many failed authentications")
	ErrNoSuchCall           = errors.New("no such call")
)

// ExtensionError is ErrBadExtension with the option tags at fault (for the Unsupported header).
type ExtensionError struct{ Options []string }

func (e *ExtensionError) Error() string {
	return ErrBadExtension.Error() + ": " + strings.Join(e.Options, ", ")
}
func (e *ExtensionError) Unwrap() error { return ErrBadExtension }

// AllowedMethods are the methods hotline's SIP side answers (Allow in 405s).
const AllowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"

// Status returns the SIP status code and reason phrase for a refusal.
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, ErrMalformed):
		return sip.StatusBadRequest, "Bad Request"
	case errors.Is(err, ErrUnknownSource), errors.Is(err, ErrBadCredentials):
		return sip.StatusForbidden, "Forbidden"
	case errors.Is(err, ErrAuthRequired):
		return sip.StatusUnauthorized, "Unauthorized"
	case errors.Is(err, ErrNumberNotServed):
		return sip.StatusNotFound, "Not Found"
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrOverCapacity), errors.Is(err, ErrDraining),
		errors.Is(err, ErrOverloaded), errors.Is(err, ErrTooManyFailures):
		return sip.StatusServiceUnavailable, "Service Unavailable"
	case errors.Is(err, ErrNoOffer), errors.Is(err, ErrUnusableOffer):
		return sip.StatusNotAcceptableHere, "Not Acceptable Here"
	case errors.Is(err, ErrTooManyHops):
		return sip.StatusTooManyHops, "Too Many Hops"
	case errors.Is(err, ErrVersionNotSupported):
		return sip.StatusVersionNotSupported, "Version Not Supported"
	case errors.Is(err, ErrUnsupportedURIScheme):
		return 416, "Unsupported URI Scheme"
	case errors.Is(err, ErrBadExtension):
		return sip.StatusBadExtension, "Bad Extension"
	case errors.Is(err, ErrUnsupportedMediaType):
		return sip.StatusUnsupportedMediaType, "Unsupported Media Type"
	case errors.Is(err, ErrNoSuchCall):
		return sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist"
	case errors.Is(err, ErrMethodNotAllowed):
		return sip.StatusMethodNotAllowed, "Method Not Allowed"
	}
	return sip.StatusInternalServerError, "Server Internal Error"
}

// Response builds the response to req for a refusal. Overload answers carry Retry-After so well-behaved trunks
// back off instead of retrying at once.
func Response(req *sip.Request, err error) *sip.Response {
	code, reason := Status(err)
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	switch {
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrOverCapacity):
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	case errors.Is(err, ErrOverloaded):
		// Short: the pressure that refused this call is measured every few milliseconds and passes quickly.
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
	case errors.Is(err, ErrTooManyFailures):
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
	case errors.Is(err, ErrDraining):
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
	case errors.Is(err, ErrUnsupportedMediaType) && req.Method == sip.INFO:
		res.AppendHeader(sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
	case errors.Is(err, ErrUnsupportedMediaType):
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	case errors.Is(err, ErrMethodNotAllowed):
		res.AppendHeader(sip.NewHeader("Allow", AllowedMethods))
	}
	var ext *ExtensionError
	if errors.As(err, &ext) {
		res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(ext.Options, ", ")))
	}
	return res
}

// Result is what became of an outbound INVITE — an agent's phone rung by the ACD, a household called by the
// dialer, either leg of a click-to-call. ClassifyInvite is the one place that reads SIP answers into it; the
// callers map the few classes to their own words (agent states, campaign outcomes) without looking at codes.
type Result struct {
	Class   ResultClass
	SIPCode int // the final answer's code; 487 when we cancelled a ringing call; 0 when none came
}

// ResultClass is the class of an INVITE's outcome.
type ResultClass int

const (
	Answered    ResultClass = iota
	NoAnswer                // rang out (we sent CANCEL), or 408, 480, 487
	Busy                    // 486 Busy Here, 600 Busy Everywhere
	Declined                // 603 Decline: reached, and the person refused the call
	Unreachable             // anything else: transport error, 404, 484, 5xx, no answer at all
	Cancelled               // our side gave up (the caller hung up, shutdown) before an answer
)

func (c ResultClass) String() string {
	return [...]string{"answered", "no_answer", "busy", "declined", "unreachable", "cancelled"}[c]
}

// ClassifyInvite reads the result of an INVITE placed with ring (media.Ring: B4 ring timeouts). parent is the
// context the call was placed for (the caller's, or the dialer's); when it has ended before an answer the call was
// given up by us, not refused by them.
func ClassifyInvite(parent context.Context, ring *media.Ring, err error) Result {
	if err == nil {
		return Result{Class: Answered, SIPCode: sip.StatusOK}
	}
	var code int
	var de *sipgo.ErrDialogResponse
	var dv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		code = de.Res.StatusCode
	case errors.As(err, &dv):
		code = dv.Res.StatusCode
	}
	switch {
	case parent.Err() != nil:
		return Result{Class: Cancelled, SIPCode: code}
	case ring != nil && ring.RangOut():
		return Result{Class: NoAnswer, SIPCode: sip.StatusRequestTerminated}
	}
	switch code {
	case sip.StatusRequestTimeout, sip.StatusTemporarilyUnavailable, sip.StatusRequestTerminated:
		return Result{Class: NoAnswer, SIPCode: code}
	case sip.StatusBusyHere, sip.StatusGlobalBusyEverywhere:
		return Result{Class: Busy, SIPCode: code}
	case sip.StatusGlobalDecline:
		return Result{Class: Declined, SIPCode: code}
	}
	return Result{Class: Unreachable, SIPCode: code}
}

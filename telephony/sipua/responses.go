package sipua

import (
	"context"
	"errors"

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
)

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
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrOverCapacity), errors.Is(err, ErrDraining):
		return sip.StatusServiceUnavailable, "Service Unavailable"
	case errors.Is(err, ErrNoOffer):
		return sip.StatusNotAcceptableHere, "Not Acceptable Here"
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
	case errors.Is(err, ErrDraining):
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
	}
	return res
}

// AgentOutcome is what became of ringing an agent's phone.
type AgentOutcome int

const (
	AgentAnswered    AgentOutcome = iota
	AgentNoAnswer                 // rang out (we sent CANCEL), or answered 408/480
	AgentUnreachable              // no registered contact, transport error, 404, 5xx
	AgentDeclined                 // 486/600/603: the agent pressed "busy"/"decline"
	CallerGone                    // the caller hung up while the agent's phone rang
)

func (o AgentOutcome) String() string {
	return [...]string{"answered", "no_answer", "unreachable", "declined", "caller_gone"}[o]
}

// ClassifyInvite maps the result of an INVITE to an agent's phone to an outcome. callerCtx is the caller's
// context and ring the INVITE's ring (see media.Ring).
func ClassifyInvite(callerCtx context.Context, ring *media.Ring, err error) AgentOutcome {
	if err == nil {
		return AgentAnswered
	}
	if callerCtx.Err() != nil {
		return CallerGone
	}
	if ring.RangOut() {
		return AgentNoAnswer
	}
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		switch de.Res.StatusCode {
		case sip.StatusRequestTimeout, sip.StatusTemporarilyUnavailable, sip.StatusRequestTerminated:
			return AgentNoAnswer
		case sip.StatusBusyHere, sip.StatusGlobalBusyEverywhere, sip.StatusGlobalDecline:
			return AgentDeclined
		}
		return AgentUnreachable
	}
	return AgentUnreachable
}

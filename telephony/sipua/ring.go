package sipua

import (
	"context"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
)

// Leg is an answered outbound call leg (an agent's phone).
type Leg struct {
	Dialog *diago.DialogClientSession
	Media  *diago.DialogMedia
	Ring   *media.Ring
}

// Close ends the leg's media and dialog (after Hangup).
func (l *Leg) Close() {
	l.Media.Close()
	l.Dialog.Close()
	l.Ring.Release()
}

type forkResult struct {
	i   int
	d   *diago.DialogClientSession
	med *diago.DialogMedia
	err error
}

// RingContacts rings every contact of an agent at once for at most ring, on behalf of the caller's dialog
// (diago's Originator: the agent sees the caller's number, and is offered the caller's codec so the legs can be
// bridged without transcoding). The first contact to answer wins and the others are cancelled. It returns when
// every fork has finished, so no goroutine outlives it. Of several failed forks the most telling class is
// reported: the caller gone, then rang out, then refused (busy or declined), then unreachable.
func (s *Server) RingContacts(ctx context.Context, caller *diago.DialogServerSession, contacts []sip.Uri, ring time.Duration, headers []sip.Header) (*Leg, ResultClass) {
	if len(contacts) == 0 {
		return nil, Unreachable
	}
	for _, h := range headers {
		if SafeHeaderValue(h.Value()) != nil {
			return nil, Unreachable
		}
	}
	rings := make([]*media.Ring, len(contacts))
	results := make(chan forkResult, len(contacts))
	for i, c := range contacts {
		rings[i] = media.NewRing(ctx, ring)
		go func(i int, c sip.Uri) {
			d, err := s.dg.NewDialog(c, diago.NewDialogOptions{})
			if err != nil {
				results <- forkResult{i: i, err: err}
				return
			}
			med, err := d.Invite(rings[i].Ctx, diago.InviteClientOptions{Originator: caller, OnResponse: rings[i].OnResponse, Headers: headers})
			results <- forkResult{i: i, d: d, med: med, err: err}
		}(i, c)
	}
	var win *forkResult
	outcome := Unreachable
	for range contacts {
		r := <-results
		rings[r.i].Stop()
		if r.err == nil {
			if win == nil {
				win = &r
				for j := range rings {
					if j != r.i {
						rings[j].Abort()
					}
				}
				continue
			}
			// A second phone answered in the same instant: take it down again.
			r.d.Ack(rings[r.i].Ctx)
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.d.Hangup(hctx)
			cancel()
			r.med.Close()
		}
		if r.d != nil {
			r.d.Close()
		}
		if r.err != nil {
			switch o := ClassifyInvite(ctx, rings[r.i], r.err).Class; {
			case o == Cancelled:
				outcome = Cancelled
			case o == NoAnswer && outcome != Cancelled:
				outcome = NoAnswer
			case (o == Busy || o == Declined) && outcome == Unreachable:
				outcome = o
			}
			s.log.Debug("agent contact did not take the call", "contact", contacts[r.i].String(), "err", r.err)
		}
		if win == nil || r.i != win.i {
			rings[r.i].Release()
		}
	}
	if win == nil {
		return nil, outcome
	}
	if err := win.d.Ack(rings[win.i].Ctx); err != nil {
		win.med.Close()
		win.d.Close()
		rings[win.i].Release()
		return nil, Unreachable
	}
	return &Leg{Dialog: win.d, Media: win.med, Ring: rings[win.i]}, Answered
}

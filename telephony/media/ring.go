package media

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Ring is the context of one outbound INVITE that must give up after a ring time, or when told to (B4).
// sipgo's WaitAnswer sends CANCEL on context end only after a provisional response; with no 1xx it waits for
// Timer B (32 s). With cause sipgo.WaitAnswerForceCancelErr it returns at once but never sends CANCEL. So every
// way of ending the ring (time up, Abort, the parent ending) picks: DeadlineExceeded/Canceled if a 1xx was seen
// (CANCEL goes out and the phone stops ringing), else the forced return.
//
// Pass OnResponse as the INVITE's OnResponse and Ctx as its context; call Stop when the INVITE returned.
type Ring struct {
	Ctx         context.Context
	provisional atomic.Bool
	rangOut     atomic.Bool
	cancel      context.CancelCauseFunc
	timer       *time.Timer
	stopParent  func() bool
}

// NewRing starts a ring of at most d under parent.
func NewRing(parent context.Context, d time.Duration) *Ring {
	r := &Ring{}
	// The INVITE's context must not inherit parent's cancellation directly (that would end it with cause
	// Canceled and no 1xx: a 32 s wait); it follows parent through Abort instead.
	r.Ctx, r.cancel = context.WithCancelCause(context.WithoutCancel(parent))
	r.timer = time.AfterFunc(d, func() { r.rangOut.Store(true); r.end(context.DeadlineExceeded) })
	r.stopParent = context.AfterFunc(parent, r.Abort)
	return r
}

func (r *Ring) end(cause error) {
	if r.provisional.Load() {
		r.cancel(cause)
	} else {
		r.cancel(sipgo.WaitAnswerForceCancelErr)
	}
}

// OnResponse notes provisional responses.
func (r *Ring) OnResponse(res *sip.Response) error {
	if res.IsProvisional() {
		r.provisional.Store(true)
	}
	return nil
}

// Abort ends the ring now (another phone answered, or the caller left).
func (r *Ring) Abort() { r.end(context.Canceled) }

// RangOut reports whether the ring time was used up.
func (r *Ring) RangOut() bool { return r.rangOut.Load() }

// Stop releases the timer; call it once the INVITE returned. The context stays usable for the ACK.
func (r *Ring) Stop() {
	r.timer.Stop()
	r.stopParent()
}

// Release cancels the ring's context; call it when the call leg is over.
func (r *Ring) Release() { r.cancel(context.Canceled) }

package campaign

import (
	"fmt"
	"hotline/ticketing/org"
	"math"
	"time"
)

// Retry is the rule for one unsuccessful outcome: after it, the target is tried again DelayMS later, as long as
// it has had fewer than MaxAttempts attempts in all.
type Retry struct {
	DelayMS     int64 `json:"delay_ms"`
	MaxAttempts int   `json:"max_attempts"`
}

// RetryRules per outcome. Interrupted (a dialer process died during the call) follows its own rule; when it is
// zero, the failed rule applies.
type RetryRules struct {
	NoAnswer    Retry `json:"no_answer"`
	Busy        Retry `json:"busy"`
	Failed      Retry `json:"failed"`
	Interrupted Retry `json:"interrupted,omitempty"`
}

// DefaultRetry: no answer → again in 2 h, up to 3 attempts; busy → in 10 min, up to 4; failed → in 30 min, up to 2.
func DefaultRetry() RetryRules {
	return RetryRules{
		NoAnswer: Retry{DelayMS: (2 * time.Hour).Milliseconds(), MaxAttempts: 3},
		Busy:     Retry{DelayMS: (10 * time.Minute).Milliseconds(), MaxAttempts: 4},
		Failed:   Retry{DelayMS: (30 * time.Minute).Milliseconds(), MaxAttempts: 2},
	}
}

func (r RetryRules) validate(v *org.ValidationError) {
	for name, x := range map[string]Retry{"no_answer": r.NoAnswer, "busy": r.Busy, "failed": r.Failed} {
		if x.MaxAttempts < 1 || x.MaxAttempts > 20 {
			v.Add("retry."+name+".max_attempts", "1 to 20")
		}
		if x.DelayMS < 0 || x.DelayMS > (7*24*time.Hour).Milliseconds() {
			v.Add("retry."+name+".delay_ms", "0 to 7 days")
		}
	}
	if r.Interrupted.MaxAttempts < 0 || r.Interrupted.MaxAttempts > 20 || r.Interrupted.DelayMS < 0 {
		v.Add("retry.interrupted", "max_attempts 0 to 20, delay not negative")
	}
}

// For returns the rule of an outcome; ok is false for outcomes that are never retried.
func (r RetryRules) For(o Outcome) (Retry, bool) {
	switch o {
	case OutcomeNoAnswer:
		return r.NoAnswer, true
	case OutcomeBusy:
		return r.Busy, true
	case OutcomeFailed:
		return r.Failed, true
	case OutcomeInterrupted:
		if r.Interrupted.MaxAttempts > 0 {
			return r.Interrupted, true
		}
		return r.Failed, true
	}
	return Retry{}, false
}

// MaxAttempts is the most attempts any rule allows a target.
func (r RetryRules) MaxAttempts() int {
	m := 0
	for _, x := range []Retry{r.NoAnswer, r.Busy, r.Failed, r.Interrupted} {
		m = max(m, x.MaxAttempts)
	}
	return m
}

// Decision is what happens to a target after an attempt.
type Decision struct {
	State  TargetState
	NextAt time.Time // for TargetPending
}

// Decide applies the rules after attempt number `attempts` ended with outcome o at `now`. answered calls and opt-outs
// are final; an unsuccessful one is retried after its delay, moved into the next calling window, unless the
// target has used its attempts. A callback (回访) target that ran out of attempts becomes a manual task.
func Decide(c *Campaign, attempts int, o Outcome, optedOut bool, now time.Time, hol Holidays) Decision {
	if optedOut {
		return Decision{State: TargetOptedOut}
	}
	exhausted := TargetExhausted
	if c.Purpose == PurposeCallback {
		exhausted = TargetManual
	}
	if o == OutcomeAnswered {
		return Decision{State: TargetCompleted}
	}
	rule, ok := c.Retry.For(o)
	if !ok || attempts >= rule.MaxAttempts {
		return Decision{State: exhausted}
	}
	next, open := c.Windows.NextOpen(now.Add(time.Duration(rule.DelayMS)*time.Millisecond), hol)
	if !open {
		return Decision{State: exhausted}
	}
	return Decision{State: TargetPending, NextAt: next}
}

// Pacer is the token arithmetic behind a campaign's pace: tokens accrue at Rate per second up to Burst; each
// attempt put on the stream spends one. A pause in scheduling (window closed, campaign paused) must not let a
// burst through afterwards, so Burst is small: at most a tenth of a second's worth, and at least one.
type Pacer struct {
	Rate   float64
	Burst  float64
	tokens float64
	last   time.Time
}

// NewPacer returns a pacer for rate attempts per second.
func NewPacer(rate float64) *Pacer {
	return &Pacer{Rate: rate, Burst: math.Max(1, rate/10)}
}

// Take returns how many attempts may start at now (at most want) and spends them.
func (p *Pacer) Take(now time.Time, want int) int {
	if p.last.IsZero() {
		p.last, p.tokens = now, 1
	}
	if dt := now.Sub(p.last).Seconds(); dt > 0 {
		p.tokens = math.Min(p.Burst, p.tokens+dt*p.Rate)
		p.last = now
	}
	n := int(math.Floor(p.tokens))
	if n > want {
		n = want
	}
	if n < 0 {
		n = 0
	}
	p.tokens -= float64(n)
	return n
}

// Refund gives back tokens that were taken but not used (fewer targets were due than allowed).
func (p *Pacer) Refund(n int) {
	p.tokens = math.Min(p.Burst, p.tokens+float64(n))
}

// Reset forgets accrued tokens (after a pause), so a campaign resumes at its pace rather than with a burst.
func (p *Pacer) Reset() { p.last = time.Time{} }

// EstimateFinish is when the remaining attempts would be done at the pace, counting only calling time inside
// windows in a coarse way (whole remaining seconds from now).
func EstimateFinish(now time.Time, remaining int, rate float64) time.Time {
	if remaining <= 0 || rate <= 0 {
		return now
	}
	return now.Add(time.Duration(float64(remaining) / rate * float64(time.Second)))
}

// lifecycle lists the allowed transitions: action → from states → to state.
var lifecycle = map[string]struct {
	from []Status
	to   Status
}{
	"launch": {[]Status{StatusDraft}, StatusRunning},
	"pause":  {[]Status{StatusRunning}, StatusPaused},
	"resume": {[]Status{StatusPaused}, StatusRunning},
	"cancel": {[]Status{StatusDraft, StatusRunning, StatusPaused}, StatusCancelled},
	"finish": {[]Status{StatusRunning}, StatusFinished},
}

// Transition returns the state after action from `from`, or a *ticketing.StateError.
func Transition(from Status, action string) (Status, error) {
	t, ok := lifecycle[action]
	if !ok {
		return "", org.Invalid("action", fmt.Sprintf("unknown action %q", action))
	}
	for _, f := range t.from {
		if f == from {
			return t.to, nil
		}
	}
	var allowed []string
	for a, t := range lifecycle {
		for _, f := range t.from {
			if f == from && a != "finish" {
				allowed = append(allowed, a)
			}
		}
	}
	return "", &org.StateError{Action: action, State: string(from), Allowed: sortStrings(allowed), Reason: org.ErrState}
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

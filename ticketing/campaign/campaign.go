// Package campaign owns outbound call campaigns as data: what a campaign asks (its script), whom it calls (a
// target list frozen from monitoring records at launch), when (calling windows that skip public holidays), how
// fast (pace and concurrency), how often (retry rules per outcome and a daily cap per household), and what came of
// every attempt. The telephony side (telephony/dialer) runs the calls; everything it decides is recorded here, one
// PostgreSQL transaction per change, so a dialer process can die at any moment without a household being called
// more often than its rules allow or being forgotten.
package campaign

import (
	"fmt"
	"hotline/ticketing/org"
	"strings"
	"time"
)

// Named IDs so that one cannot be passed for another.
type (
	ID          int64
	TargetID    int64
	AttemptID   int64
	HouseholdID int64
	TicketID    int64
)

// Purpose of a campaign; a household's opt-out applies to one purpose.
type Purpose string

const (
	PurposeCheckin  Purpose = "checkin"  // 监测回访: monitoring check-in survey
	PurposeCallback Purpose = "callback" // 工单回访: satisfaction callback of a replied ticket
	PurposeNotice   Purpose = "notice"   // 政策通知: a notice, perhaps with an acknowledgement key
)

func (p Purpose) Valid() bool {
	return p == PurposeCheckin || p == PurposeCallback || p == PurposeNotice
}

// Status is the lifecycle state: draft → running ⇄ paused → finished | cancelled.
type Status string

const (
	StatusDraft     Status = "draft"
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"
	StatusFinished  Status = "finished"
	StatusCancelled Status = "cancelled"
)

// Outcome of one attempt.
type Outcome string

const (
	OutcomeInProgress  Outcome = "in_progress"
	OutcomeAnswered    Outcome = "answered"
	OutcomeNoAnswer    Outcome = "no_answer"
	OutcomeBusy        Outcome = "busy"
	OutcomeFailed      Outcome = "failed"
	OutcomeInterrupted Outcome = "interrupted" // the dialer process died during the call
)

// TargetState is where a target stands.
type TargetState string

const (
	TargetPending   TargetState = "pending"   // waiting for next_at
	TargetQueued    TargetState = "queued"    // on the Redis stream, not yet taken
	TargetDialing   TargetState = "dialing"   // an attempt is in progress
	TargetCompleted TargetState = "completed" // answered (final)
	TargetExhausted TargetState = "exhausted" // no more attempts under the rules (final)
	TargetOptedOut  TargetState = "opted_out" // pressed the opt-out key, or had before (final)
	TargetManual    TargetState = "manual"    // handed to an agent as a manual callback task (final)
	TargetCancelled TargetState = "cancelled" // the campaign was cancelled (final)
)

// Final reports whether no more attempts will be made.
func (s TargetState) Final() bool {
	switch s {
	case TargetCompleted, TargetExhausted, TargetOptedOut, TargetManual, TargetCancelled:
		return true
	}
	return false
}

// Question is one recorded question of a script.
type Question struct {
	ID     string `json:"id"`
	Prompt string `json:"prompt"` // WAV file name in the prompt directory (8 kHz 16-bit mono)
	Keys   string `json:"keys"`   // valid keys, e.g. "12"
	// RiskKeys are the keys that mark the answer as a risk signal (e.g. "1" = 是, income fell).
	RiskKeys string `json:"risk_keys,omitempty"`
	// Next maps a key to the ID of the next question; a key absent here goes to the next question in order,
	// "end" ends the script.
	Next map[string]string `json:"next,omitempty"`
}

// Script is what an answered call plays.
type Script struct {
	Questions []Question `json:"questions"`
	Final     string     `json:"final,omitempty"` // closing prompt, played before hanging up
	// SilenceMS is how long to wait for a key after a prompt; the question is repeated once, then skipped.
	SilenceMS int `json:"silence_ms,omitempty"`
}

// Silence returns the silence timeout (default 5 s).
func (s Script) Silence() time.Duration {
	if s.SilenceMS <= 0 {
		return 5 * time.Second
	}
	return time.Duration(s.SilenceMS) * time.Millisecond
}

// Question returns the question with the given ID.
func (s Script) Question(id string) (Question, int, bool) {
	for i, q := range s.Questions {
		if q.ID == id {
			return q, i, true
		}
	}
	return Question{}, -1, false
}

// NextQuestion says where the script goes after question index i was answered with key ("" = no answer).
// ok is false when the script ends.
func (s Script) NextQuestion(i int, key string) (int, bool) {
	q := s.Questions[i]
	if key != "" {
		if to, has := q.Next[key]; has {
			if to == "end" {
				return 0, false
			}
			_, j, ok := s.Question(to)
			return j, ok
		}
	}
	if i+1 < len(s.Questions) {
		return i + 1, true
	}
	return 0, false
}

const validKeys = "0123456789*#"

func (s Script) validate(v *org.ValidationError, optOut string) {
	if len(s.Questions) == 0 {
		v.Add("script.questions", "at least one question")
	}
	if len(s.Questions) > 20 {
		v.Add("script.questions", "at most 20 questions")
	}
	ids := map[string]bool{}
	for i, q := range s.Questions {
		f := fmt.Sprintf("script.questions[%d]", i)
		if q.ID == "" || q.ID == "end" || ids[q.ID] {
			v.Add(f+".id", "required, unique, not \"end\"")
		}
		ids[q.ID] = true
		if err := promptName(q.Prompt); err != nil {
			v.Add(f+".prompt", err.Error())
		}
		if q.Keys == "" || strings.Trim(q.Keys, validKeys) != "" {
			v.Add(f+".keys", "one or more of 0-9 * #")
		}
		if optOut != "" && strings.Contains(q.Keys, optOut) {
			v.Add(f+".keys", "must not contain the opt-out key")
		}
		for _, k := range q.RiskKeys {
			if !strings.ContainsRune(q.Keys, k) {
				v.Add(f+".risk_keys", "must be among the valid keys")
			}
		}
	}
	for i, q := range s.Questions {
		for k, to := range q.Next {
			if len(k) != 1 || !strings.Contains(q.Keys, k) {
				v.Add(fmt.Sprintf("script.questions[%d].next", i), "keys must be among the valid keys")
			}
			if to != "end" && !ids[to] {
				v.Add(fmt.Sprintf("script.questions[%d].next", i), "unknown question "+to)
			}
		}
	}
	if s.Final != "" {
		if err := promptName(s.Final); err != nil {
			v.Add("script.final", err.Error())
		}
	}
	if s.SilenceMS < 0 || s.SilenceMS > 60000 {
		v.Add("script.silence_ms", "0 to 60000")
	}
}

// promptName accepts a plain file name: prompts are looked up in one directory, never by path.
func promptName(s string) error {
	if s == "" || len(s) > 100 || strings.ContainsAny(s, "/\\\x00") || strings.HasPrefix(s, ".") || !strings.HasSuffix(s, ".wav") {
		return fmt.Errorf("a .wav file name without a path")
	}
	return nil
}

// TargetQuery selects monitored households at launch.
type TargetQuery struct {
	RegionPrefix        string   `json:"region_prefix,omitempty"` // e.g. "4309" (益阳市) or "430903"
	MonitoringTypes     []string `json:"monitoring_types,omitempty"`
	RiskTypes           []string `json:"risk_types,omitempty"` // any of
	Statuses            []string `json:"statuses,omitempty"`
	MinDaysSinceContact int      `json:"min_days_since_contact,omitempty"`
	Limit               int      `json:"limit,omitempty"` // 0 = all
}

// Campaign is one campaign.
type Campaign struct {
	ID            ID          `json:"id"`
	Name          string      `json:"name"`
	Purpose       Purpose     `json:"purpose"`
	Status        Status      `json:"status"`
	Standing      bool        `json:"standing"`
	Query         TargetQuery `json:"target_query"`
	Script        Script      `json:"script"`
	Windows       Windows     `json:"windows"`
	MaxConcurrent int         `json:"max_concurrent"`
	Pace          float64     `json:"pace"` // attempts per second
	Retry         RetryRules  `json:"retry"`
	DailyCap      int         `json:"daily_cap"`
	RingTimeoutMS int         `json:"ring_timeout_ms"`
	CallerID      string      `json:"caller_id"`
	Trunk         string      `json:"trunk"`
	OptOutKey     string      `json:"optout_key"`
	CreatedBy     int64       `json:"created_by,omitempty"`
	CreatedAt     time.Time   `json:"created_at"`
	LaunchedAt    *time.Time  `json:"launched_at,omitempty"`
	EndedAt       *time.Time  `json:"ended_at,omitempty"`
}

// RingTimeout is how long an attempt may ring before CANCEL.
func (c *Campaign) RingTimeout() time.Duration {
	return time.Duration(c.RingTimeoutMS) * time.Millisecond
}

// NewCampaign is what a campaign manager submits; zero fields take the defaults.
type NewCampaign struct {
	Name          string      `json:"name"`
	Purpose       Purpose     `json:"purpose"`
	Standing      bool        `json:"standing,omitempty"`
	Query         TargetQuery `json:"target_query"`
	Script        Script      `json:"script"`
	Windows       *Windows    `json:"windows,omitempty"`
	MaxConcurrent int         `json:"max_concurrent,omitempty"`
	Pace          float64     `json:"pace,omitempty"`
	Retry         *RetryRules `json:"retry,omitempty"`
	DailyCap      int         `json:"daily_cap,omitempty"`
	RingTimeoutMS int         `json:"ring_timeout_ms,omitempty"`
	CallerID      string      `json:"caller_id"`
	Trunk         string      `json:"trunk,omitempty"`
	OptOutKey     string      `json:"optout_key,omitempty"`
}

// Defaults applied to a NewCampaign's zero fields.
const (
	DefaultMaxConcurrent = 30
	DefaultPace          = 5.0
	DefaultDailyCap      = 3
	DefaultRingTimeoutMS = 30000
)

// normalize fills defaults and validates; it returns the campaign to store.
func (n NewCampaign) normalize() (Campaign, error) {
	v := &org.ValidationError{}
	c := Campaign{
		Name: strings.TrimSpace(n.Name), Purpose: n.Purpose, Standing: n.Standing, Query: n.Query, Script: n.Script,
		MaxConcurrent: n.MaxConcurrent, Pace: n.Pace, DailyCap: n.DailyCap, RingTimeoutMS: n.RingTimeoutMS,
		CallerID: strings.TrimSpace(n.CallerID), Trunk: n.Trunk, OptOutKey: n.OptOutKey, Status: StatusDraft,
	}
	if c.Name == "" || len([]rune(c.Name)) > 200 {
		v.Add("name", "1 to 200 characters")
	}
	if !c.Purpose.Valid() {
		v.Add("purpose", "one of checkin, callback, notice")
	}
	if c.Standing && c.Purpose != PurposeCallback {
		v.Add("standing", "only the 回访 (callback) campaign is standing")
	}
	if n.Windows != nil {
		c.Windows = *n.Windows
	} else {
		c.Windows = DefaultWindows()
	}
	c.Windows.validate(v)
	if n.Retry != nil {
		c.Retry = *n.Retry
	} else {
		c.Retry = DefaultRetry()
	}
	c.Retry.validate(v)
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxConcurrent < 1 || c.MaxConcurrent > 10000 {
		v.Add("max_concurrent", "1 to 10000")
	}
	if c.Pace == 0 {
		c.Pace = DefaultPace
	}
	if c.Pace < 0.01 || c.Pace > 2000 {
		v.Add("pace", "0.01 to 2000 attempts per second")
	}
	if c.DailyCap == 0 {
		c.DailyCap = DefaultDailyCap
	}
	if c.DailyCap < 1 || c.DailyCap > 20 {
		v.Add("daily_cap", "1 to 20 attempts per household per day")
	}
	if c.RingTimeoutMS == 0 {
		c.RingTimeoutMS = DefaultRingTimeoutMS
	}
	if c.RingTimeoutMS < 100 || c.RingTimeoutMS > 120000 {
		v.Add("ring_timeout_ms", "100 to 120000")
	}
	// The caller ID goes into a SIP header: digits only, so nothing can be injected (sipgo writes headers verbatim).
	if c.CallerID == "" || len(c.CallerID) > 20 || strings.Trim(c.CallerID, "0123456789") != "" {
		v.Add("caller_id", "1 to 20 digits")
	}
	if c.Trunk == "" {
		c.Trunk = "default"
	}
	if len(c.Trunk) > 40 || strings.Trim(strings.ToLower(c.Trunk), "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		v.Add("trunk", "a trunk name: letters, digits, - and _")
	}
	if len(c.OptOutKey) > 1 || strings.Trim(c.OptOutKey, validKeys) != "" {
		v.Add("optout_key", "empty or one key")
	}
	c.Script.validate(v, c.OptOutKey)
	q := c.Query
	if q.RegionPrefix != "" && (len(q.RegionPrefix) > 12 || !strings.HasPrefix(q.RegionPrefix, "43") || strings.Trim(q.RegionPrefix, "0123456789") != "") {
		v.Add("target_query.region_prefix", "digits of a Hunan region code, starting 43")
	}
	if q.MinDaysSinceContact < 0 || q.Limit < 0 {
		v.Add("target_query", "negative numbers are not allowed")
	}
	return c, v.Err()
}

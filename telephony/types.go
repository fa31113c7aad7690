package telephony

import (
	"context"
	"hotline/ticketing/org"
	"time"

	"github.com/jackc/pgx/v5"
)

// CallID is the id of a CDR row (table calls), not the SIP Call-ID.
type CallID int64

// RecordingID is the id of a recording row.
type RecordingID int64

// CallbackID is the id of a callback task.
type CallbackID int64

// Disposition is how a call ended.
type Disposition string

const (
	DispAnswered  Disposition = "answered"  // an agent talked to the caller
	DispAbandoned Disposition = "abandoned" // the caller hung up before an agent answered (and left no message)
	DispVoicemail Disposition = "voicemail" // the caller left a message
	DispRejected  Disposition = "rejected"  // refused before answer (capacity, draining, number not served)
	DispFailed    Disposition = "failed"    // our side failed
)

// AgentState is where an agent is.
type AgentState string

const (
	StateOffline AgentState = "offline"
	StateReady   AgentState = "ready"
	StatePaused  AgentState = "paused"
	StateBusy    AgentState = "busy" // ringing or talking
	StateACW     AgentState = "acw"  // after-call work, back to ready by itself after the configured time
)

// Reasons the system sets on agent states.
const (
	ReasonNoAnswer    = "no_answer"   // the phone rang out: paused so the next call does not ring an empty seat
	ReasonUnreachable = "unreachable" // no registered phone or it refused the call
	ReasonRinging     = "ringing"
	ReasonTalking     = "talking"
)

// Event topics published on the event stream.
const (
	TopicScreenPop  = "call.screen_pop"  // key: agent user id; the agent's phone is ringing
	TopicAgentState = "agent.state"      // key: agent user id
	TopicCallEnded  = "call.ended"       // key: call id
	TopicCallback   = "callback.changed" // key: callback task id
)

// EventPublisher writes an event in the caller's transaction (ticketing's outbox), so the event exists exactly
// when the state change does.
type EventPublisher interface {
	Publish(ctx context.Context, db org.DB, topic, key string, payload any) error
}

// PublishFunc adapts a function (ticketing.Publish) to EventPublisher.
type PublishFunc func(ctx context.Context, db org.DB, topic, key string, payload any) error

func (f PublishFunc) Publish(ctx context.Context, db org.DB, topic, key string, payload any) error {
	return f(ctx, db, topic, key, payload)
}

// Household is what the screen-pop shows of a monitored household matching the caller's number. Personal data
// arrives masked from the monitoring records.
type Household struct {
	ID          int64       `json:"id"`
	Head        string      `json:"head"`        // masked name of the head of household
	Region      string      `json:"region"`      // region code
	RegionName  string      `json:"region_name"` // full name
	Monitoring  string      `json:"monitoring_type,omitempty"`
	RiskFlags   []string    `json:"risk_flags"`
	OpenTickets []TicketRef `json:"open_tickets"`
}

// TicketRef is a ticket listed on a screen-pop.
type TicketRef struct {
	ID     int64  `json:"id"`
	Number string `json:"number,omitempty"`
	Title  string `json:"title"`
	Status string `json:"status"`
}

// CallerLookup finds the households (with their open tickets) behind a caller's number.
type CallerLookup interface {
	LookupCaller(ctx context.Context, phone string) ([]Household, error)
}

// Voicemail is a message left by a caller; it becomes a ticket of source voicemail.
type Voicemail struct {
	CallID        CallID
	CallerPhone   string // normalised
	RecordingID   RecordingID
	RecordingPath string // relative to the recordings directory
	Duration      time.Duration
	HouseholdID   int64  // 0 when the number matched no single household
	RegionCode    string // the household's region, when there is one
	ReceivedAt    time.Time
}

// VoicemailTickets opens the ticket for a voicemail inside the transaction that stores the voicemail.
type VoicemailTickets interface {
	CreateVoicemailTicket(ctx context.Context, tx pgx.Tx, v Voicemail) (ticketID int64, err error)
}

// CallContact is a call as it goes on a household's timeline.
type CallContact struct {
	CallID      CallID
	HouseholdID int64
	Phone       string
	Disposition Disposition
	AgentID     org.UserID
	TicketID    int64
	At          time.Time
	Talk        time.Duration
}

// ContactRecorder puts a call on a household's timeline, inside the transaction that ends the call.
type ContactRecorder interface {
	RecordCallContact(ctx context.Context, tx pgx.Tx, c CallContact) error
}

// TicketAccess says whether an actor may see a ticket (nil), or why not (ticketing.ErrForbidden/ErrNotFound).
// Recordings linked to a ticket are served only to those who may see it.
type TicketAccess interface {
	CanSeeTicket(ctx context.Context, actor org.Actor, ticketID int64) error
}

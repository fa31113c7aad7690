package ticketing

import (
	"hotline/ticketing/org"
	"slices"
	"time"
)

// Status of a ticket along the 12345 work-order loop.
type Status string

const (
	StatusNew        Status = "new"        // 受理
	StatusDispatched Status = "dispatched" // 派单, waiting to be signed for
	StatusSigned     Status = "signed"     // 签收, being handled
	StatusReplied    Status = "replied"    // 办结答复, waiting for the callback
	StatusCallback   Status = "callback"   // 回访 under way
	StatusClosed     Status = "closed"     // 归档
	StatusReturned   Status = "returned"   // 退单, back at the dispatch desk
)

// Statuses lists every status.
var Statuses = []Status{StatusNew, StatusDispatched, StatusSigned, StatusReplied, StatusCallback, StatusClosed, StatusReturned}

// Open reports whether work is still to be done on the ticket.
func (s Status) Open() bool { return s != StatusClosed }

// Source is where a matter came from.
type Source string

const (
	SourcePhone     Source = "phone"
	SourceVoicemail Source = "voicemail"
	SourceCampaign  Source = "campaign"
	SourceWeb       Source = "web"
	SourceAPI       Source = "api"
	Source12345     Source = "12345"
)

// Sources lists every source.
var Sources = []Source{SourcePhone, SourceVoicemail, SourceCampaign, SourceWeb, SourceAPI, Source12345}

// Kind of matter.
type Kind string

const (
	KindConsultation Kind = "consultation" // 咨询
	KindHelp         Kind = "help"         // 求助
	KindComplaint    Kind = "complaint"    // 投诉
	KindReport       Kind = "report"       // 举报
	KindSuggestion   Kind = "suggestion"   // 建议
)

// Kinds lists every kind.
var Kinds = []Kind{KindConsultation, KindHelp, KindComplaint, KindReport, KindSuggestion}

// Urgency of a ticket: urgent tickets run on clocks in hours and go ahead of normal ones in the queues.
type Urgency string

const (
	UrgencyNormal Urgency = "normal"
	UrgencyUrgent Urgency = "urgent"
)

// Category codes other features use.
const (
	CategoryMonitoringHelp   = "monitoring_help"   // 防返贫监测求助
	CategoryMonitoringVerify = "monitoring_verify" // 防返贫监测核实: the verification ticket for a household
)

// Satisfaction results of a callback (回访).
const (
	Satisfied          = "satisfied"           // 满意
	BasicallySatisfied = "basically_satisfied" // 基本满意
	Unsatisfied        = "unsatisfied"         // 不满意
)

// DueKind names the clock that is running.
type DueKind string

const (
	DueSign     DueKind = "sign"
	DueReply    DueKind = "reply"
	DueCallback DueKind = "callback"
	// DueCoOpinion is not a clock of the ticket row: it names a co-unit's own deadline for its opinion (协办意见)
	// in SLA alerts.
	DueCoOpinion DueKind = "co_opinion"
)

// Ticket is a work order (工单).
type Ticket struct {
	ID               org.TicketID  `json:"id"`
	Number           string        `json:"number"`
	QueryCode        string        `json:"query_code,omitempty"`
	Source           Source        `json:"source"`
	CallerName       string        `json:"caller_name"`
	CallerPhone      string        `json:"caller_phone"`
	RegionCode       string        `json:"region_code"`
	HouseholdID      *int64        `json:"household_id,omitempty"`
	Kind             Kind          `json:"kind"`
	Category         string        `json:"category"`
	Urgency          Urgency       `json:"urgency"`
	Content          string        `json:"content"`
	Confidential     bool          `json:"confidential"`
	Status           Status        `json:"status"`
	LeadUnitID       org.UnitID    `json:"lead_unit_id"`
	CoUnitIDs        []org.UnitID  `json:"co_unit_ids"`
	AssigneeID       *org.UserID   `json:"assignee_id,omitempty"`
	RouteUnitID      *org.UnitID   `json:"route_unit_id,omitempty"`
	RouteRuleID      *int64        `json:"route_rule_id,omitempty"`
	RouteRuleVersion *int          `json:"route_rule_version,omitempty"`
	SignBy           *time.Time    `json:"sign_by,omitempty"`
	ReplyBy          *time.Time    `json:"reply_by,omitempty"`
	CallbackBy       *time.Time    `json:"callback_by,omitempty"`
	DueKind          *DueKind      `json:"due_kind,omitempty"`
	DueAt            *time.Time    `json:"due_at,omitempty"`
	YellowAt         *time.Time    `json:"yellow_at,omitempty"`
	ExtensionStatus  string        `json:"extension_status"`
	ExtensionDays    int           `json:"extension_days"`
	UrgeCount        int           `json:"urge_count"`
	Supervised       bool          `json:"supervised"`
	ReplyText        string        `json:"reply_text"`
	Outcome          string        `json:"outcome,omitempty"`
	Satisfaction     string        `json:"satisfaction,omitempty"`
	ReopenCount      int           `json:"reopen_count"`
	MergedInto       *org.TicketID `json:"merged_into,omitempty"`
	CreatedBy        org.UserID    `json:"created_by"`
	CreatedAt        time.Time     `json:"created_at"`
	UpdatedAt        time.Time     `json:"updated_at"`
	DispatchedAt     *time.Time    `json:"dispatched_at,omitempty"`
	ClosedAt         *time.Time    `json:"closed_at,omitempty"`
	Version          int           `json:"version"`
	// ReviewStatus is the reply approval (审核) sub-state: none, pending (待审核: PendingReply waits for the head)
	// or returned (退回修改: the head sent it back).
	ReviewStatus   string `json:"review_status"`
	PendingReply   string `json:"pending_reply,omitempty"`
	PendingOutcome string `json:"pending_outcome,omitempty"`
	// SuspendStatus is the suspension (挂起) sub-state: none, requested or suspended; while suspended the reply
	// clock is stopped with SuspendLeftMS milliseconds of working time left on it.
	SuspendStatus string     `json:"suspend_status"`
	SuspendedAt   *time.Time `json:"suspended_at,omitempty"`
	SuspendLeftMS *int64     `json:"suspend_left_ms,omitempty"`
	// CoUnsigned and CoPending are the co-units (协办) that have not signed their part and those whose opinion is
	// outstanding.
	CoUnsigned []org.UnitID `json:"co_unsigned"`
	CoPending  []org.UnitID `json:"co_pending"`
	// BeyondCalendar: a deadline of the ticket lies past the last year of the holiday calendar, so it was counted
	// on weekends alone and may move when the State Council publishes that year.
	BeyondCalendar bool `json:"beyond_calendar"`

	// Replayed is set by Create when the Idempotency-Key matched an earlier ticket, which is returned instead.
	Replayed bool `json:"-"`
	// DuplicateIDs is set by Create: the open tickets DuplicatesFor would suggest (found in the same statement).
	DuplicateIDs []org.TicketID `json:"-"`
}

// SLA returns the colour of the running clock at now: "", "green", "yellow" or "red".
func (t Ticket) SLA(now time.Time) string {
	if t.DueAt == nil {
		return ""
	}
	switch {
	case !now.Before(*t.DueAt):
		return "red"
	case t.YellowAt != nil && !now.Before(*t.YellowAt):
		return "yellow"
	}
	return "green"
}

// NewTicket is what Create needs.
type NewTicket struct {
	Source       Source
	CallerName   string
	CallerPhone  string
	RegionCode   string
	HouseholdID  *int64
	Kind         Kind
	Category     string
	Urgency      Urgency // default normal
	Content      string
	Confidential bool // only for 举报
	// SMSConsent: the caller agreed at intake to SMS about a confidential report (notify sends none otherwise).
	// Kept in the create event's data, so the consent is on the record as given.
	SMSConsent     bool
	IdempotencyKey string
	// Dispatch routes the ticket and dispatches it in the same transaction (12345 imports, campaigns and agents
	// who dispatch at once). A ticket the directory cannot route stays new at the dispatch desk.
	Dispatch bool
}

// Event is one row of a ticket's history.
type Event struct {
	ID        int64          `json:"id"`
	TicketID  org.TicketID   `json:"ticket_id"`
	At        time.Time      `json:"at"`
	ActorID   org.UserID     `json:"actor_id"`
	ActorName string         `json:"actor_name"`
	ActorRole org.Role       `json:"actor_role"`
	Action    string         `json:"action"`
	From      Status         `json:"from_status"`
	To        Status         `json:"to_status"`
	Note      string         `json:"note"`
	Data      map[string]any `json:"data"`
}

// Category is a matter category of the directory.
type Category struct {
	Code             string `json:"code"`
	Name             string `json:"name"`
	LeadUnitCode     string `json:"lead_unit_code"`
	FallbackUnitCode string `json:"fallback_unit_code,omitempty"`
	ReplyDays        *int   `json:"reply_days,omitempty"`
	UrgentReplyHours *int   `json:"urgent_reply_hours,omitempty"`
	Active           bool   `json:"active"`
}

func validKind(k Kind) bool     { return slices.Contains(Kinds, k) }
func validSource(s Source) bool { return slices.Contains(Sources, s) }

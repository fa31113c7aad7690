package exchange

import (
	"fmt"
	"sort"
	"time"
)

// Message types of the platform (normalised by the dialect).
const (
	MsgOrder      = "order"      // a new work order (派单 to us)
	MsgSupplement = "supplement" // 补充材料
	MsgUrge       = "urge"       // 催办 from the platform
	MsgWithdraw   = "withdraw"   // 撤单
)

// Message is one inbound message of a platform, whatever its dialect.
type Message struct {
	Type        string
	OrderID     string
	UpdateID    string // updates only: unique per order, makes a repeated update a no-op
	Order       *Order // MsgOrder only
	Note        string // updates: the text (补充说明, 催办意见, 撤单原因)
	Attachments []Attachment
}

// Order is a work order as the platform wrote it.
type Order struct {
	Title        string
	Content      string
	CallerName   string
	CallerPhone  string
	CategoryCode string // the platform's code; mapping.go maps it to ours
	RegionCode   string
	Kind         string // our ticketing.Kind, mapped by the dialect
	Urgent       bool
	Deadline     *time.Time // the platform's reply deadline
}

// Attachment is a file the platform holds; we fetch it (attachments.go).
type Attachment struct {
	Name string
	URL  string
}

// Outbound is one of our actions for the platform, as the sender hands it to a dialect.
type Outbound struct {
	OrderID        string
	Action         string // sign, reply, return, extension, callback, interim_reply, suspend, resume
	IdempotencyKey string
	At             time.Time
	Unit           string // the handling unit's name
	Handler        string // who did it
	Reply          string // reply, interim_reply
	Reason         string // return, extension, suspend
	Days           int    // extension
	Result         string // callback: satisfied, basically_satisfied, unsatisfied
}

// RemoteOrder is an order as the platform lists it for reconciliation.
type RemoteOrder struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// Dialect is one platform's wire format. Signing is shared (sign.go); everything else is the dialect's.
type Dialect interface {
	// ParseMessage decodes a pushed message (or one element of a poll answer); a field at fault is an
	// *org.ValidationError.
	ParseMessage(body []byte) (Message, error)
	// Ack is the body of our answer to an accepted message.
	Ack(m Message, ticketNumber string, duplicate bool) any
	// Feedback is the request target (path below the platform's URL) and body that send o to the platform.
	Feedback(o Outbound) (path string, body []byte, err error)
	// PollTarget is the request target of a poll after cursor; ParsePoll decodes the answer.
	PollTarget(cursor string) string
	ParsePoll(body []byte) (msgs [][]byte, next string, err error)
	// OpenOrdersTarget is the request target listing the platform's open orders for us; ParseOpenOrders decodes it.
	OpenOrdersTarget() string
	ParseOpenOrders(body []byte) ([]RemoteOrder, error)
}

var dialects = map[string]Dialect{}

// register makes a dialect available by name (each dialect file registers itself in init).
func register(name string, d Dialect) { dialects[name] = d }

// DialectNames lists the dialects built in.
func DialectNames() []string {
	out := make([]string, 0, len(dialects))
	for n := range dialects {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func dialectByName(name string) (Dialect, error) {
	d, ok := dialects[name]
	if !ok {
		return nil, fmt.Errorf("no platform dialect %q (have %v)", name, DialectNames())
	}
	return d, nil
}

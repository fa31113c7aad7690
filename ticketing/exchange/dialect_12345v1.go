package exchange

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"hotline/ticketing/org"
)

// v1 is the province's 12345 exchange contract as documented in web/openapi/exchange.yaml: JSON bodies, times in
// RFC 3339, appeal types as the platform writes them (咨询, 求助, 投诉, 举报, 建议).
type v1 struct{}

func init() { register("12345v1", v1{}) }

type v1Attachment struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type v1Order struct {
	Title        string `json:"title"`
	Content      string `json:"content"`
	CallerName   string `json:"caller_name"`
	CallerPhone  string `json:"caller_phone"`
	CategoryCode string `json:"category_code"`
	RegionCode   string `json:"region_code"`
	AppealType   string `json:"appeal_type"`
	Urgent       bool   `json:"urgent"`
	Deadline     string `json:"deadline"`
}

type v1Message struct {
	Type        string         `json:"type"`
	OrderID     string         `json:"order_id"`
	UpdateID    string         `json:"update_id"`
	Order       *v1Order       `json:"order"`
	Note        string         `json:"note"`
	Attachments []v1Attachment `json:"attachments"`
}

// v1IDs are order and update ids: they appear in request targets, so a small alphabet.
var v1IDs = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

var v1Kinds = map[string]string{"咨询": "consultation", "求助": "help", "投诉": "complaint", "举报": "report", "建议": "suggestion",
	"consultation": "consultation", "help": "help", "complaint": "complaint", "report": "report", "suggestion": "suggestion"}

func (v1) ParseMessage(body []byte) (Message, error) {
	var w v1Message
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Message{}, org.Invalid("body", "not a 12345v1 message: "+err.Error())
	}
	v := &org.ValidationError{}
	m := Message{Type: w.Type, OrderID: w.OrderID, UpdateID: w.UpdateID, Note: strings.TrimSpace(w.Note)}
	if !v1IDs.MatchString(w.OrderID) {
		v.Add("order_id", "1-100 characters of A-Z a-z 0-9 . _ -")
	}
	for _, a := range w.Attachments {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Add("attachments", "each needs an http(s) url")
			continue
		}
		name := strings.TrimSpace(a.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			v.Add("attachments", "each needs a name of at most 200 characters")
			continue
		}
		m.Attachments = append(m.Attachments, Attachment{Name: name, URL: a.URL})
	}
	if len(m.Attachments) > 20 {
		v.Add("attachments", "at most 20")
	}
	switch w.Type {
	case MsgOrder:
		if w.Order == nil {
			v.Add("order", "required for type order")
			break
		}
		o := w.Order
		m.Order = &Order{Title: strings.TrimSpace(o.Title), Content: strings.TrimSpace(o.Content), CallerName: o.CallerName,
			CallerPhone: o.CallerPhone, CategoryCode: strings.TrimSpace(o.CategoryCode), RegionCode: strings.TrimSpace(o.RegionCode),
			Urgent: o.Urgent}
		if m.Order.Content == "" {
			v.Add("order.content", "required")
		}
		if m.Order.CategoryCode == "" {
			v.Add("order.category_code", "required")
		}
		kind, ok := v1Kinds[strings.TrimSpace(o.AppealType)]
		if !ok {
			v.Add("order.appeal_type", "one of 咨询, 求助, 投诉, 举报, 建议")
		}
		m.Order.Kind = kind
		if o.Deadline != "" {
			d, err := time.Parse(time.RFC3339, o.Deadline)
			if err != nil {
				v.Add("order.deadline", "RFC 3339 time, e.g. 2026-12-10T18:00:00+08:00")
			} else {
				m.Order.Deadline = &d
			}
		}
	case MsgSupplement, MsgUrge, MsgWithdraw:
		if !v1IDs.MatchString(w.UpdateID) {
			v.Add("update_id", "required for updates: 1-100 characters of A-Z a-z 0-9 . _ -")
		}
		if w.Order != nil {
			v.Add("order", "only for type order")
		}
		if m.Note == "" && (w.Type != MsgSupplement || len(m.Attachments) == 0) {
			v.Add("note", "required")
		}
	default:
		v.Add("type", "one of order, supplement, urge, withdraw")
	}
	return m, v.Err()
}

type v1Ack struct {
	Result       string `json:"result"`
	OrderID      string `json:"order_id"`
	UpdateID     string `json:"update_id,omitempty"`
	TicketNumber string `json:"ticket_number"`
	Duplicate    bool   `json:"duplicate"`
}

func (v1) Ack(m Message, number string, dup bool) any {
	return v1Ack{Result: "accepted", OrderID: m.OrderID, UpdateID: m.UpdateID, TicketNumber: number, Duplicate: dup}
}

type v1Feedback struct {
	OrderID        string `json:"order_id"`
	Action         string `json:"action"`
	IdempotencyKey string `json:"idempotency_key"`
	At             string `json:"at"`
	Unit           string `json:"unit,omitempty"`
	Handler        string `json:"handler,omitempty"`
	Reply          string `json:"reply,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Days           int    `json:"days,omitempty"`
	Result         string `json:"result,omitempty"`
}

func (v1) Feedback(o Outbound) (string, []byte, error) {
	b, err := json.Marshal(v1Feedback{OrderID: o.OrderID, Action: o.Action, IdempotencyKey: o.IdempotencyKey,
		At: o.At.Format(time.RFC3339), Unit: o.Unit, Handler: o.Handler, Reply: o.Reply, Reason: o.Reason, Days: o.Days, Result: o.Result})
	return "/orders/" + url.PathEscape(o.OrderID) + "/feedback", b, err
}

func (v1) PollTarget(cursor string) string {
	return "/orders/changes?cursor=" + url.QueryEscape(cursor)
}

func (v1) ParsePoll(body []byte) ([][]byte, string, error) {
	var w struct {
		Messages   []json.RawMessage `json:"messages"`
		NextCursor string            `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, "", org.Invalid("body", "not a 12345v1 poll answer: "+err.Error())
	}
	out := make([][]byte, len(w.Messages))
	for i, m := range w.Messages {
		out[i] = m
	}
	return out, w.NextCursor, nil
}

func (v1) OpenOrdersTarget() string { return "/orders?status=open" }

func (v1) ParseOpenOrders(body []byte) ([]RemoteOrder, error) {
	var w struct {
		Orders []RemoteOrder `json:"orders"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, org.Invalid("body", "not a 12345v1 order list: "+err.Error())
	}
	return w.Orders, nil
}

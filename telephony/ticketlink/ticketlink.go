// Package ticketlink connects telephony to the ticketing core and the monitoring records: it implements
// telephony's small interfaces (VoicemailTickets, CallerLookup, ContactRecorder, TicketAccess, EventPublisher)
// with ticketing.Service, ticketing.Publish and monitoring.Service. telephony itself knows none of their types;
// cmd/hotline builds these adapters, and the end-to-end tests use them against the real services.
package ticketlink

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// Events publishes through ticketing's outbox (the relay puts the rows on the Redis event stream).
var Events telephony.EventPublisher = telephony.PublishFunc(ticketing.Publish)

// Tickets opens voicemail tickets with the ticket service.
type Tickets struct {
	Svc *ticketing.Service
	// Callers, when set, gives the ticket the household (and its region) of a number that matches one household.
	Callers *monitoring.Service
}

// CreateVoicemailTicket creates a ticket of source voicemail at the dispatch desk (it is not dispatched: a
// dispatcher listens to the message, sets the matter and dispatches), inside the voicemail's transaction.
func (t Tickets) CreateVoicemailTicket(ctx context.Context, tx pgx.Tx, v telephony.Voicemail) (int64, error) {
	secs := int(math.Round(v.Duration.Seconds()))
	shown := "未知号码"
	if v.CallerPhone != "" {
		shown = phone.Mask(v.CallerPhone)
	}
	content := fmt.Sprintf("12345 热线语音留言：来电 %s 于 %s 留言 %d 秒（录音 #%d，通话 #%d）。请收听录音，补充诉求、更正类别后派单，并回拨来电人。",
		shown, v.ReceivedAt.In(calendar.CST).Format("2006-01-02 15:04"), secs, v.RecordingID, v.CallID)
	if v.RecordingID == 0 { // the message could not be written (disk full): ring the caller back for it
		content = fmt.Sprintf("12345 热线语音留言：来电 %s 于 %s 留言约 %d 秒，录音保存失败（通话 #%d）。请回拨来电人了解诉求。",
			shown, v.ReceivedAt.In(calendar.CST).Format("2006-01-02 15:04"), secs, v.CallID)
	}
	nt := ticketing.NewTicket{
		Source: ticketing.SourceVoicemail, CallerPhone: v.CallerPhone, Kind: ticketing.KindConsultation, Category: "policy_question",
		Content:        content,
		IdempotencyKey: "voicemail:" + strconv.FormatInt(int64(v.CallID), 10),
	}
	if v.HouseholdID != 0 {
		id := v.HouseholdID
		nt.HouseholdID, nt.Kind, nt.Category = &id, ticketing.KindHelp, "monitoring_help"
		nt.RegionCode = v.RegionCode
	}
	tk, err := t.Svc.CreateTx(ctx, tx, org.System, nt)
	if err != nil {
		return 0, err
	}
	return int64(tk.ID), nil
}

// Access answers whether an actor may see a ticket (and so hear its recordings).
type Access struct{ Svc *ticketing.Service }

func (a Access) CanSeeTicket(ctx context.Context, actor org.Actor, id int64) error {
	_, err := a.Svc.Get(ctx, actor, org.TicketID(id))
	return err
}

// Callers looks callers up in the monitoring records.
type Callers struct{ Svc *monitoring.Service }

func (c Callers) LookupCaller(ctx context.Context, number string) ([]telephony.Household, error) {
	ms, err := c.Svc.LookupPhone(ctx, number)
	if err != nil {
		return nil, err
	}
	out := make([]telephony.Household, 0, len(ms))
	for _, m := range ms {
		h := telephony.Household{ID: int64(m.HouseholdID), Head: m.HeadName, Region: m.RegionCode, RegionName: m.RegionName,
			Monitoring: string(m.MonitoringType), RiskFlags: m.RiskNames, OpenTickets: []telephony.TicketRef{}}
		if h.RiskFlags == nil {
			h.RiskFlags = []string{}
		}
		for _, t := range m.OpenTickets {
			h.OpenTickets = append(h.OpenTickets, telephony.TicketRef{ID: t.ID, Number: t.Number, Title: t.Category, Status: t.Status})
		}
		out = append(out, h)
	}
	return out, nil
}

// Contacts puts calls on households' timelines.
type Contacts struct{ Svc *monitoring.Service }

func (c Contacts) RecordCallContact(ctx context.Context, tx pgx.Tx, cc telephony.CallContact) error {
	var summary string
	switch cc.Disposition {
	case telephony.DispAnswered:
		summary = fmt.Sprintf("来电 12345 热线，坐席接听，通话 %d 秒", int(cc.Talk.Seconds()))
	case telephony.DispVoicemail:
		summary = "来电 12345 热线，无人接听，已留言（已生成工单并加入回拨）"
	case telephony.DispAbandoned:
		summary = "来电 12345 热线，等待中挂断（已加入回拨）"
	default:
		summary = "来电 12345 热线，未接通"
	}
	if cc.TicketID != 0 {
		summary += fmt.Sprintf("，工单 #%d", cc.TicketID)
	}
	_, err := c.Svc.AddContactTx(ctx, tx, monitoring.Contact{HouseholdID: org.HouseholdID(cc.HouseholdID),
		Kind: monitoring.ContactInboundCall, At: cc.At, Summary: summary, Ref: "call:" + strconv.FormatInt(int64(cc.CallID), 10)})
	return err
}

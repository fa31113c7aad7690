package campaign

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// This file joins campaigns to the other parts of ticketing: the holiday calendar, the monitoring records
// (households, their phones, their timeline, risk leads) and tickets (回访).

// CalendarHolidays adapts the working-day calendar: a public holiday is an off day that is not an ordinary
// weekend. The calendar knows off days and make-up working days; an off weekend day counts as a holiday when the
// run of off days it belongs to contains a weekday (国庆 from Thursday to the next Wednesday), so an ordinary
// Saturday stays callable while the Saturday inside a holiday block does not.
//
// Current, when set, gives the calendar in force at each call (the ticket service's, which follows uploads);
// otherwise Cal is used.
type CalendarHolidays struct {
	Cal     *calendar.Calendar
	Current func() *calendar.Calendar
}

func (h CalendarHolidays) IsHoliday(day time.Time) bool {
	cal := h.Cal
	if h.Current != nil {
		cal = h.Current()
	}
	if cal == nil || cal.IsWorkday(day) {
		return false
	}
	weekday := func(t time.Time) bool {
		wd := t.In(calendar.CST).Weekday()
		return wd != time.Saturday && wd != time.Sunday
	}
	if weekday(day) {
		return true
	}
	for _, step := range []int{-1, 1} {
		for i := 1; i <= 10; i++ {
			d := day.AddDate(0, 0, step*i)
			if cal.IsWorkday(d) {
				break
			}
			if weekday(d) {
				return true
			}
		}
	}
	return false
}

// MonitoringDirectory selects targets from the monitoring records with their search; several monitoring types,
// risk types or statuses are a union. Households without a phone are left out (nothing to call).
type MonitoringDirectory struct {
	Households *monitoring.Service
}

func (d MonitoringDirectory) SelectHouseholds(ctx context.Context, db org.DB, q TargetQuery) ([]Household, error) {
	or := func(xs []string) []string {
		if len(xs) == 0 {
			return []string{""}
		}
		return xs
	}
	seen := map[HouseholdID]*Household{}
	var order []HouseholdID
	for _, mt := range or(q.MonitoringTypes) {
		for _, rt := range or(q.RiskTypes) {
			for _, st := range or(q.Statuses) {
				mq := monitoring.Query{Region: q.RegionPrefix, MonitoringType: monitoring.MonitoringType(mt),
					RiskType: monitoring.RiskType(rt), Status: monitoring.Status(st), NoContactDays: q.MinDaysSinceContact, Limit: 500}
				for {
					// Campaign managers are province-wide; the campaign service has checked their role.
					page, err := d.Households.SearchTx(ctx, db, org.System, mq)
					if err != nil {
						return nil, err
					}
					for _, h := range page.Households {
						id := HouseholdID(h.ID)
						if _, ok := seen[id]; !ok {
							seen[id] = &Household{ID: id, RegionCode: h.TownshipCode}
							order = append(order, id)
						}
					}
					if page.Next == nil || (q.Limit > 0 && len(order) >= q.Limit) {
						break
					}
					mq.After = *page.Next
				}
			}
		}
	}
	if q.Limit > 0 && len(order) > q.Limit {
		order = order[:q.Limit]
	}
	ids := make([]int64, len(order))
	for i, id := range order {
		ids[i] = int64(id)
	}
	rows, err := db.Query(ctx, `SELECT household_id, count(*) FROM household_phones WHERE household_id = ANY($1) GROUP BY 1`, ids)
	if err != nil {
		return nil, fmt.Errorf("count phones: %w", err)
	}
	var hid int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&hid, &n}, func() error { seen[HouseholdID(hid)].PhoneCount = n; return nil }); err != nil {
		return nil, fmt.Errorf("count phones: %w", err)
	}
	out := make([]Household, 0, len(order))
	for _, id := range order {
		if h := seen[id]; h.PhoneCount > 0 {
			out = append(out, *h)
		}
	}
	return out, nil
}

// Phones resolves numbers at dial time: a household's phones (monitoring's DialPhones, unsealed, head's first),
// or for a 回访 the caller's number on the ticket. Numbers never leave this process except in the INVITE.
type Phones struct {
	DB         org.DB
	Households *monitoring.Service
}

func (p Phones) Phones(ctx context.Context, h HouseholdID, ticket TicketID) ([]string, error) {
	if ticket != 0 {
		var phone string
		err := p.DB.QueryRow(ctx, `SELECT caller_phone FROM tickets WHERE id = $1`, ticket).Scan(&phone)
		if err != nil {
			return nil, fmt.Errorf("phone of ticket %d: %w", ticket, err)
		}
		if phone != "" {
			return []string{phone}, nil
		}
	}
	if h == 0 {
		return nil, nil
	}
	ps, err := p.Households.DialPhones(ctx, p.DB, org.HouseholdID(h))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, x := range ps {
		out[i] = x.Number
	}
	return out, nil
}

// outcomeNames are the Chinese words of outcomes on a timeline.
var outcomeNames = map[Outcome]string{OutcomeAnswered: "已接通", OutcomeNoAnswer: "无人接听", OutcomeBusy: "忙线",
	OutcomeFailed: "呼叫失败", OutcomeInterrupted: "呼叫中断"}

// callbackResults maps the 回访 keys: 1 满意, 2 基本满意, 3 不满意.
var callbackResults = map[string]string{"1": ticketing.Satisfied, "2": ticketing.BasicallySatisfied, "3": ticketing.Unsatisfied}

// LinkHooks returns the hooks that put attempts on households' timelines, raise risk leads (verification tickets
// for the county bureau) and record 回访 results on tickets; either service may be nil.
func LinkHooks(mon *monitoring.Service, tickets *ticketing.Service) Hooks {
	var h Hooks
	if mon != nil {
		h.Contact = func(ctx context.Context, tx pgx.Tx, c *Campaign, t *Target, a *Attempt) error {
			if t.HouseholdID == 0 {
				return nil
			}
			kind := monitoring.ContactOutboundAttempt
			if a.Outcome == OutcomeAnswered {
				kind = monitoring.ContactOutboundCall
			}
			summary := fmt.Sprintf("外呼「%s」第%d次：%s", c.Name, a.No, outcomeNames[a.Outcome])
			if a.SIPCode != 0 && a.Outcome != OutcomeAnswered {
				summary += fmt.Sprintf("（SIP %d）", a.SIPCode)
			}
			var answers map[string]string
			if a.Outcome == OutcomeAnswered && len(a.Answers) > 0 {
				answers = a.Answers
			}
			_, err := mon.AddContactTx(ctx, tx, monitoring.Contact{HouseholdID: org.HouseholdID(t.HouseholdID), Kind: kind,
				At: a.StartedAt, Summary: summary, Ref: fmt.Sprintf("campaign:%d/target:%d", c.ID, t.ID), Answers: answers,
				ActorName: "外呼系统"})
			if errors.Is(err, org.ErrNotFound) {
				return nil // the record was removed since launch; the attempt stays in the campaign
			}
			return err
		}
		h.Risk = func(ctx context.Context, tx pgx.Tx, c *Campaign, t *Target, a *Attempt, questions []string) error {
			if t.HouseholdID == 0 {
				return nil
			}
			var parts []string
			for _, q := range questions {
				parts = append(parts, fmt.Sprintf("%s=%s", q, a.Answers[q]))
			}
			_, err := mon.RaiseLeadTx(ctx, tx, org.System, monitoring.Lead{HouseholdID: org.HouseholdID(t.HouseholdID),
				Source:  ticketing.SourceCampaign,
				Summary: fmt.Sprintf("外呼「%s」按键回答提示风险：%s", c.Name, strings.Join(parts, "，")),
				Ref:     fmt.Sprintf("campaign:%d/target:%d", c.ID, t.ID)})
			return err
		}
	}
	if tickets != nil {
		h.CallbackResult = func(ctx context.Context, tx pgx.Tx, id TicketID, key string) error {
			result, ok := callbackResults[key]
			if !ok {
				return nil
			}
			_, err := tickets.CallbackResultTx(ctx, tx, org.System, org.TicketID(id), result, "自动回访按键 "+key)
			var se *org.StateError
			if errors.As(err, &se) {
				return nil // the ticket moved on meanwhile (an agent did the callback by hand)
			}
			return err
		}
		h.ManualCallback = func(ctx context.Context, tx pgx.Tx, t *Target) error {
			return ticketing.Publish(ctx, tx, "callback.manual", fmt.Sprint(t.TicketID),
				map[string]any{"ticket_id": t.TicketID, "household_id": t.HouseholdID, "campaign_id": t.CampaignID,
					"target_id": t.ID, "attempts": t.Attempts, "last_outcome": t.LastOutcome})
		}
	}
	return h
}

// CallbackOnReply returns the ticketing transition hook that puts a replied ticket's 回访 into the standing
// callback campaign, in the reply's transaction. Verification tickets (answered by a county bureau, not a
// caller) and tickets without a caller's number get none.
func (s *Service) CallbackOnReply() ticketing.TransitionHook {
	return func(ctx context.Context, tx pgx.Tx, t ticketing.Ticket, ev ticketing.Event) error {
		if ev.Action != string(ticketing.ActReply) || t.CallerPhone == "" || t.Category == ticketing.CategoryMonitoringVerify {
			return nil
		}
		var hid HouseholdID
		if t.HouseholdID != nil {
			hid = HouseholdID(*t.HouseholdID)
		}
		_, err := s.AddCallbackTx(ctx, tx, TicketID(t.ID), Household{ID: hid, RegionCode: t.RegionCode, PhoneCount: 1})
		if errors.Is(err, ErrNoStandingCampaign) {
			s.log.Warn("ticket replied but no standing 回访 campaign exists: callback left to agents", "ticket_id", t.ID)
			return nil
		}
		return err
	}
}

// ManualCallbacks lists 回访 targets that ran out of attempts: the agents' manual callback tasks.
func (s *Service) ManualCallbacks(ctx context.Context, limit int) ([]Target, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+targetCols+` FROM campaign_targets WHERE state = 'manual' ORDER BY updated_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("manual callbacks: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Target, error) {
		t, err := scanTarget(r)
		if err != nil {
			return Target{}, err
		}
		return *t, nil
	})
}

// CancelCallbackByHand returns the ticketing transition hook that cancels a ticket's pending automatic 回访 call
// when a person starts or records the 回访 by hand (an agent phoned the caller): the caller is not phoned again.
// A call already being dialled is left to finish; its result then finds the ticket moved on and is dropped.
func (s *Service) CancelCallbackByHand() ticketing.TransitionHook {
	return func(ctx context.Context, tx pgx.Tx, t ticketing.Ticket, ev ticketing.Event) error {
		if ev.ActorID == 0 || (ev.Action != string(ticketing.ActStartCallback) && ev.Action != string(ticketing.ActCallbackResult)) {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = 'cancelled', updated_at = now()
			WHERE ticket_id = $1 AND state IN ('pending', 'queued')
				AND campaign_id IN (SELECT id FROM campaigns WHERE purpose = 'callback')`, int64(t.ID))
		if err != nil {
			return fmt.Errorf("cancel automatic 回访 of ticket %d: %w", t.ID, err)
		}
		if tag.RowsAffected() > 0 {
			s.log.Info("automatic 回访 cancelled: done by hand", "ticket_id", t.ID, "actor_id", ev.ActorID)
		}
		return nil
	}
}

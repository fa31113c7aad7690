package ticketing

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Action is a step of the work-order loop.
type Action string

const (
	ActDispatch          Action = "dispatch"            // 派单 (and re-dispatch after 退单)
	ActSign              Action = "sign"                // 签收
	ActReply             Action = "reply"               // 办结答复
	ActReturn            Action = "return"              // 退单
	ActRequestExtension  Action = "request_extension"   // 延期申请
	ActApproveExtension  Action = "approve_extension"   // 延期批准
	ActRefuseExtension   Action = "refuse_extension"    // 延期驳回
	ActUrge              Action = "urge"                // 催办
	ActSupervise         Action = "supervise"           // 督办
	ActAssign            Action = "assign"              // 负责人分派承办人
	ActStartCallback     Action = "start_callback"      // 开始回访
	ActCallbackResult    Action = "callback_result"     // 回访结果: satisfied closes, unsatisfied reopens
	ActReopen            Action = "reopen"              // 重办
	ActMerge             Action = "merge"               // 合并 a duplicate into an open ticket
	ActCloseFirstContact Action = "close_first_contact" // 咨询 answered at first contact
)

// Actions lists every action in the order they are shown.
var Actions = []Action{ActDispatch, ActSign, ActReply, ActReturn, ActRequestExtension, ActApproveExtension,
	ActRefuseExtension, ActUrge, ActSupervise, ActAssign, ActStartCallback, ActCallbackResult, ActReopen, ActMerge,
	ActCloseFirstContact}

var openStates = []Status{StatusNew, StatusDispatched, StatusSigned, StatusReplied, StatusCallback, StatusReturned}

// actionRule says from which states and by which roles an action may be taken. Scoped actions are, for division
// staff and heads, limited to tickets their own unit leads.
type actionRule struct {
	from   []Status
	roles  []org.Role
	scoped bool
}

var actionRules = map[Action]actionRule{
	ActDispatch:          {from: []Status{StatusNew, StatusReturned}, roles: []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleAdmin}},
	ActSign:              {from: []Status{StatusDispatched}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActReply:             {from: []Status{StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActReturn:            {from: []Status{StatusDispatched, StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActRequestExtension:  {from: []Status{StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActApproveExtension:  {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActRefuseExtension:   {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActUrge:              {from: openStates, roles: []org.Role{org.RoleDispatcher, org.RoleSupervisor, org.RoleAdmin}},
	ActSupervise:         {from: openStates, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActAssign:            {from: []Status{StatusDispatched, StatusSigned}, roles: []org.Role{org.RoleHead, org.RoleAdmin}, scoped: true},
	ActStartCallback:     {from: []Status{StatusReplied}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
	ActCallbackResult:    {from: []Status{StatusReplied, StatusCallback}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
	ActReopen:            {from: []Status{StatusCallback}, roles: []org.Role{org.RoleAgent, org.RoleSupervisor, org.RoleAdmin}},
	ActMerge:             {from: []Status{StatusNew, StatusDispatched, StatusReturned}, roles: []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleAdmin}},
	ActCloseFirstContact: {from: []Status{StatusNew}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
}

// Permitted reports whether the state machine lets role take action from status: stateOK (the action exists from
// this status) and roleOK (the role may take it at all).
func Permitted(st Status, act Action, role org.Role) (stateOK, roleOK bool) {
	r, ok := actionRules[act]
	if !ok {
		return false, false
	}
	return slices.Contains(r.from, st), slices.Contains(r.roles, role)
}

// AllowedActions lists what the actor may do to the ticket now (state, role, unit scope and the extension
// sub-state considered).
func AllowedActions(t Ticket, a org.Actor) []string {
	out := []string{}
	for _, act := range Actions {
		if allowed(t, a, act) == nil {
			out = append(out, string(act))
		}
	}
	return out
}

func allowed(t Ticket, a org.Actor, act Action) error {
	r, ok := actionRules[act]
	if !ok {
		return org.Invalid("action", "unknown action")
	}
	stateOK, roleOK := Permitted(t.Status, act, a.Role)
	if !roleOK {
		return org.ErrForbidden
	}
	if !stateOK {
		return org.ErrState
	}
	if r.scoped && (a.Role == org.RoleStaff || a.Role == org.RoleHead) && a.UnitID != t.LeadUnitID {
		return org.ErrForbidden
	}
	switch act {
	case ActRequestExtension:
		if t.ExtensionStatus == "requested" {
			return org.ErrState
		}
	case ActApproveExtension, ActRefuseExtension:
		if t.ExtensionStatus != "requested" {
			return org.ErrState
		}
	case ActCloseFirstContact:
		if t.Kind != KindConsultation {
			return org.ErrState
		}
	}
	return nil
}

// ActionInput carries what an action needs; each action reads its own fields.
type ActionInput struct {
	// Version is the version the caller saw; a different current version is a conflict. 0 skips the check
	// (automated callers such as the dialer act on the latest state).
	Version    int
	Note       string
	UnitID     org.UnitID   // dispatch: override the routing directory (needs Reason)
	CoUnitIDs  []org.UnitID // dispatch: co-handling units (协办)
	Reason     string       // return, refuse_extension, dispatch override
	Reply      string       // reply, close_first_contact
	Outcome    string       // reply of a monitoring_verify ticket: identified, not_included, already_monitored
	Days       int          // request_extension
	Result     string       // callback_result: satisfied, basically_satisfied, unsatisfied (满意, 基本满意, 不满意)
	TargetID   org.TicketID // merge: the open ticket the duplicate goes into
	AssigneeID org.UserID   // assign
}

// Do takes an action on a ticket in a transaction of its own.
func (s *Service) Do(ctx context.Context, a org.Actor, id org.TicketID, act Action, in ActionInput) (Ticket, error) {
	var t Ticket
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		t, err = s.doTx(ctx, tx, a, id, act, in)
		return err
	})
	if err != nil {
		return Ticket{}, err
	}
	s.kick()
	return t, nil
}

// DoTx takes an action inside the caller's transaction.
func (s *Service) DoTx(ctx context.Context, tx pgx.Tx, a org.Actor, id org.TicketID, act Action, in ActionInput) (Ticket, error) {
	return s.doTx(ctx, tx, a, id, act, in)
}

// Dispatch, Sign, Reply, CallbackResult are shorthands of Do.
func (s *Service) Dispatch(ctx context.Context, a org.Actor, id org.TicketID, in ActionInput) (Ticket, error) {
	return s.Do(ctx, a, id, ActDispatch, in)
}
func (s *Service) Sign(ctx context.Context, a org.Actor, id org.TicketID, version int) (Ticket, error) {
	return s.Do(ctx, a, id, ActSign, ActionInput{Version: version})
}
func (s *Service) Reply(ctx context.Context, a org.Actor, id org.TicketID, in ActionInput) (Ticket, error) {
	return s.Do(ctx, a, id, ActReply, in)
}

// CallbackResult records the caller's satisfaction (the dialer calls it as ticketing.System): satisfied and
// basically satisfied close the ticket, unsatisfied reopens it (重办) with a new reply deadline.
func (s *Service) CallbackResult(ctx context.Context, a org.Actor, id org.TicketID, result, note string) (Ticket, error) {
	return s.Do(ctx, a, id, ActCallbackResult, ActionInput{Result: result, Note: note})
}

// CallbackResultTx is CallbackResult inside the caller's transaction.
func (s *Service) CallbackResultTx(ctx context.Context, tx pgx.Tx, a org.Actor, id org.TicketID, result, note string) (Ticket, error) {
	return s.doTx(ctx, tx, a, id, ActCallbackResult, ActionInput{Result: result, Note: note})
}

// queuedAt is the unit whose queue holds the ticket in a status: the desk for new and returned tickets, the lead
// unit for dispatched (unsigned) ones, none otherwise.
func queuedAt(t Ticket, desk org.UnitID) org.UnitID {
	switch t.Status {
	case StatusNew, StatusReturned:
		return desk
	case StatusDispatched:
		return t.LeadUnitID
	}
	return 0
}

func normaliseResult(r string) string {
	switch strings.TrimSpace(r) {
	case Satisfied, "满意":
		return Satisfied
	case BasicallySatisfied, "基本满意":
		return BasicallySatisfied
	case Unsatisfied, "不满意":
		return Unsatisfied
	}
	return ""
}

func textLimit(v *org.ValidationError, field, s string, required bool, limit int) {
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if required && n == 0 {
		v.Add(field, "required")
	}
	if n > limit {
		v.Add(field, fmt.Sprintf("at most %d characters", limit))
	}
}

func (s *Service) doTx(ctx context.Context, tx pgx.Tx, a org.Actor, id org.TicketID, act Action, in ActionInput) (Ticket, error) {
	if _, ok := actionRules[act]; !ok {
		return Ticket{}, fmt.Errorf("ticket %d: %w", id, org.Invalid("action", "unknown action "+string(act)))
	}
	t, err := getTicket(ctx, tx, id, true)
	if err != nil {
		return Ticket{}, err
	}
	if !s.mayRead(ctx, a, t) {
		// Checked before the version: a ticket outside the actor's reach tells nothing of its state or version.
		return Ticket{}, fmt.Errorf("%s ticket %d: %w", act, id, errNotYours)
	}
	if in.Version != 0 && in.Version != t.Version {
		return Ticket{}, fmt.Errorf("%s ticket %d: version %d is stale (now %d): %w", act, id, in.Version, t.Version, org.ErrConflict)
	}
	if err := allowed(t, a, act); err != nil {
		if errors.Is(err, org.ErrForbidden) || errors.Is(err, org.ErrState) {
			return Ticket{}, &org.StateError{Action: string(act), State: string(t.Status), Allowed: AllowedActions(t, a), Reason: err}
		}
		return Ticket{}, err
	}
	desk, err := s.unitByCodeCached(ctx, tx, org.CodeDesk)
	if err != nil {
		return Ticket{}, fmt.Errorf("%s ticket %d: dispatch desk: %w", act, id, err)
	}
	now := s.now()
	before := t
	data := map[string]any{}
	v := &org.ValidationError{}
	textLimit(v, "note", in.Note, false, 2000)
	setClock := func(c clock) { t.DueKind, t.DueAt, t.YellowAt = c.kind, c.due, c.yellow }
	stopClock := func() { t.DueKind, t.DueAt, t.YellowAt = nil, nil, nil }
	var cat Category
	if act == ActDispatch || act == ActCallbackResult || act == ActReopen {
		if cat, err = s.category(ctx, tx, t.Category); err != nil && !errors.Is(err, org.ErrNotFound) {
			return Ticket{}, err
		}
	}
	reopen := func() {
		t.Status = StatusSigned
		t.ReopenCount++
		rb := s.cal.Add(now, s.replyAllowed(t, cat))
		t.ReplyBy, t.CallbackBy = &rb, nil
		t.ExtensionStatus, t.ExtensionDays = "none", 0
		setClock(s.runClock(DueReply, now, rb))
		data["reply_by"] = rb
	}
	var mergeTarget *Ticket

	switch act {
	case ActDispatch:
		var unit org.UnitID
		if in.UnitID != 0 {
			textLimit(v, "reason", in.Reason, true, 1000)
			u, err := org.GetUnit(ctx, tx, in.UnitID)
			switch {
			case errors.Is(err, org.ErrNotFound):
				v.Add("unit_id", "no such unit")
			case err != nil:
				return Ticket{}, err
			case !u.Active || u.ID == desk.ID:
				v.Add("unit_id", "not a unit that handles tickets")
			}
			unit = in.UnitID
			data["override"], data["reason"] = true, strings.TrimSpace(in.Reason)
		}
		rt, err := s.route(ctx, tx, routeInput{Kind: t.Kind, Category: t.Category, RegionCode: t.RegionCode,
			HasHousehold: t.HouseholdID != nil, Content: t.Content})
		if err != nil {
			return Ticket{}, err
		}
		if unit == 0 {
			if rt.UnitID == desk.ID {
				v.Add("unit_id", "no routing rule matches this ticket: choose the unit")
			}
			unit = rt.UnitID
		}
		if rt.UnitID != 0 {
			ru := rt.UnitID
			t.RouteUnitID = &ru
		}
		if rt.RuleID != 0 {
			rid, rv := rt.RuleID, rt.RuleVersion
			t.RouteRuleID, t.RouteRuleVersion = &rid, &rv
			data["rule_id"], data["rule_version"] = rid, rv
		} else {
			t.RouteRuleID, t.RouteRuleVersion = nil, nil
		}
		data["route_unit_id"] = rt.UnitID
		co := []org.UnitID{}
		for _, c := range in.CoUnitIDs {
			if c == unit || slices.Contains(co, c) {
				continue
			}
			if _, err := org.GetUnit(ctx, tx, c); err != nil {
				v.Add("co_unit_ids", fmt.Sprintf("no such unit %d", c))
			}
			co = append(co, c)
		}
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		for k, v := range s.applyDispatch(&t, unit, co, rt, cat, now) {
			data[k] = v
		}

	case ActSign:
		t.Status = StatusSigned
		if a.UserID != 0 {
			uid := a.UserID
			t.AssigneeID = &uid
		}
		if t.ReplyBy != nil && t.DispatchedAt != nil {
			setClock(s.runClock(DueReply, *t.DispatchedAt, *t.ReplyBy))
		}

	case ActReply:
		textLimit(v, "reply", in.Reply, true, 10000)
		if words, ok := s.outcomes[t.Category]; ok {
			if !slices.Contains(words, in.Outcome) {
				v.Add("outcome", "a reply to this category needs an outcome: "+strings.Join(words, ", "))
			}
		} else if in.Outcome != "" {
			v.Add("outcome", "a reply to this category has no outcome")
		}
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		t.Status, t.ReplyText, t.Outcome = StatusReplied, strings.TrimSpace(in.Reply), in.Outcome
		cb := s.cal.Add(now, s.callbackAllowed())
		t.CallbackBy = &cb
		setClock(s.runClock(DueCallback, now, cb))
		data["reply"], data["callback_by"] = t.ReplyText, cb
		if in.Outcome != "" {
			data["outcome"] = in.Outcome
		}

	case ActReturn:
		textLimit(v, "reason", in.Reason, true, 1000)
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		data["from_unit_id"], data["reason"] = t.LeadUnitID, strings.TrimSpace(in.Reason)
		t.Status, t.LeadUnitID, t.AssigneeID = StatusReturned, desk.ID, nil
		stopClock()

	case ActRequestExtension:
		textLimit(v, "reason", in.Reason, true, 1000)
		if in.Days < 1 || in.Days > 30 {
			v.Add("days", "1 to 30 working days")
		}
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		if t.ReplyBy != nil && !now.Before(*t.ReplyBy) {
			return Ticket{}, &org.StateError{Action: string(act), State: string(t.Status), Allowed: AllowedActions(t, a),
				Reason: fmt.Errorf("%w: the reply deadline has passed", org.ErrState)}
		}
		t.ExtensionStatus, t.ExtensionDays = "requested", in.Days
		data["days"], data["reason"] = in.Days, strings.TrimSpace(in.Reason)

	case ActApproveExtension:
		if t.ReplyBy == nil || !now.Before(*t.ReplyBy) {
			return Ticket{}, &org.StateError{Action: string(act), State: string(t.Status), Allowed: []string{string(ActRefuseExtension)},
				Reason: fmt.Errorf("%w: the reply deadline has passed", org.ErrState)}
		}
		rb := s.cal.Add(*t.ReplyBy, time.Duration(t.ExtensionDays)*workDay)
		data["old_reply_by"], data["reply_by"], data["days"] = *t.ReplyBy, rb, t.ExtensionDays
		t.ReplyBy = &rb
		t.ExtensionStatus = "approved"
		start := now
		if t.DispatchedAt != nil {
			start = *t.DispatchedAt
		}
		setClock(s.runClock(DueReply, start, rb))

	case ActRefuseExtension:
		textLimit(v, "reason", in.Reason, true, 1000)
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		t.ExtensionStatus = "refused"
		data["reason"] = strings.TrimSpace(in.Reason)

	case ActUrge, ActSupervise:
		textLimit(v, "note", in.Note, true, 2000)
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		if act == ActUrge {
			t.UrgeCount++
			data["urge_count"] = t.UrgeCount
		} else {
			t.Supervised = true
		}

	case ActAssign:
		u, err := org.GetUser(ctx, tx, in.AssigneeID)
		if errors.Is(err, org.ErrNotFound) || (err == nil && (u.UnitID != t.LeadUnitID || !u.Active)) {
			return Ticket{}, org.Invalid("assignee_id", "not an active user of the lead unit")
		}
		if err != nil {
			return Ticket{}, err
		}
		uid := u.ID
		t.AssigneeID = &uid
		data["assignee_id"] = uid

	case ActStartCallback:
		t.Status = StatusCallback

	case ActCallbackResult:
		res := normaliseResult(in.Result)
		if res == "" {
			return Ticket{}, org.Invalid("result", "satisfied, basically_satisfied or unsatisfied (满意, 基本满意, 不满意)")
		}
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		t.Satisfaction = res
		data["result"] = res
		if res == Unsatisfied {
			reopen()
			data["reopened"] = true
		} else {
			t.Status, t.ClosedAt = StatusClosed, &now
			stopClock()
		}

	case ActReopen:
		textLimit(v, "note", in.Note, true, 2000)
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		reopen()

	case ActMerge:
		if in.TargetID == 0 || in.TargetID == t.ID {
			return Ticket{}, org.Invalid("target_id", "the open ticket to merge into")
		}
		target, err := getTicket(ctx, tx, in.TargetID, true)
		if errors.Is(err, org.ErrNotFound) {
			return Ticket{}, org.Invalid("target_id", "no such ticket")
		}
		if err != nil {
			return Ticket{}, err
		}
		if !target.Status.Open() || target.MergedInto != nil {
			return Ticket{}, org.Invalid("target_id", "the target ticket is closed")
		}
		mergeTarget = &target
		tid := target.ID
		t.MergedInto, t.Status, t.ClosedAt = &tid, StatusClosed, &now
		stopClock()
		data["target_id"], data["target_number"] = target.ID, target.Number

	case ActCloseFirstContact:
		textLimit(v, "reply", in.Reply, true, 10000)
		if err := v.Err(); err != nil {
			return Ticket{}, err
		}
		t.Status, t.ReplyText, t.ClosedAt = StatusClosed, strings.TrimSpace(in.Reply), &now
		stopClock()
		data["reply"] = t.ReplyText
	}
	if err := v.Err(); err != nil {
		return Ticket{}, err
	}

	t.UpdatedAt = now
	t, err = updateTicket(ctx, tx, t, before.Version)
	if err != nil {
		return Ticket{}, fmt.Errorf("%s ticket %d: %w", act, id, err)
	}
	var q *queueOps
	if from, to := queuedAt(before, desk.ID), queuedAt(t, desk.ID); from != to || (to != 0 && act == ActDispatch) {
		q = &queueOps{}
		if from != 0 {
			q.Remove = []org.UnitID{from}
		}
		if to != 0 {
			q.Add = &queueAdd{Unit: to, Urgent: t.Urgency == UrgencyUrgent, Seq: t.Version}
		}
	}
	evs, err := s.record(ctx, tx, a, t, pendingEvent{action: string(act), from: before.Status, to: t.Status,
		note: strings.TrimSpace(in.Note), data: data, topic: "ticket." + string(act), q: q})
	if err != nil {
		return Ticket{}, err
	}
	ev := evs[0]
	if mergeTarget != nil {
		_, err := s.record(ctx, tx, a, *mergeTarget, pendingEvent{action: "merged_from", from: mergeTarget.Status,
			to: mergeTarget.Status, note: strings.TrimSpace(in.Note), topic: "ticket.merged_from",
			data: map[string]any{"duplicate_id": t.ID, "duplicate_number": t.Number}})
		if err != nil {
			return Ticket{}, err
		}
	}
	if err := s.runHooks(ctx, tx, t, ev); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// applyDispatch sets what a dispatch sets (unit, clocks) and returns the event data.
func (s *Service) applyDispatch(t *Ticket, unit org.UnitID, co []org.UnitID, rt Route, cat Category, now time.Time) map[string]any {
	t.Status, t.LeadUnitID, t.CoUnitIDs, t.AssigneeID = StatusDispatched, unit, co, nil
	t.DispatchedAt = &now
	sb, rb := s.cal.Add(now, s.signAllowed(*t)), s.cal.Add(now, s.replyAllowed(*t, cat))
	t.SignBy, t.ReplyBy, t.CallbackBy = &sb, &rb, nil
	t.ExtensionStatus, t.ExtensionDays = "none", 0
	c := s.runClock(DueSign, now, sb)
	t.DueKind, t.DueAt, t.YellowAt = c.kind, c.due, c.yellow
	data := map[string]any{"unit_id": unit, "co_unit_ids": co, "sign_by": sb, "reply_by": rb, "route_unit_id": rt.UnitID}
	if rt.RuleID != 0 {
		data["rule_id"], data["rule_version"] = rt.RuleID, rt.RuleVersion
	}
	return data
}

func updateTicket(ctx context.Context, tx pgx.Tx, t Ticket, version int) (Ticket, error) {
	co := make([]int64, len(t.CoUnitIDs))
	for i, c := range t.CoUnitIDs {
		co[i] = int64(c)
	}
	rows, err := tx.Query(ctx, `UPDATE tickets SET status = $3, lead_unit_id = $4, co_unit_ids = $5, assignee_id = $6,
			route_unit_id = $7, route_rule_id = $8, route_rule_version = $9, sign_by = $10, reply_by = $11,
			callback_by = $12, due_kind = $13, due_at = $14, yellow_at = $15, extension_status = $16,
			extension_days = $17, urge_count = $18, supervised = $19, reply_text = $20, outcome = $21,
			satisfaction = $22, reopen_count = $23, merged_into = $24, updated_at = $25, dispatched_at = $26,
			closed_at = $27, version = version + 1
		WHERE id = $1 AND version = $2 RETURNING `+ticketColumns,
		int64(t.ID), version, string(t.Status), int64(t.LeadUnitID), co, t.AssigneeID, t.RouteUnitID, t.RouteRuleID,
		t.RouteRuleVersion, t.SignBy, t.ReplyBy, t.CallbackBy, t.DueKind, t.DueAt, t.YellowAt, t.ExtensionStatus,
		t.ExtensionDays, t.UrgeCount, t.Supervised, t.ReplyText, t.Outcome, t.Satisfaction, t.ReopenCount, t.MergedInto,
		t.UpdatedAt, t.DispatchedAt, t.ClosedAt)
	if err != nil {
		return Ticket{}, err
	}
	nt, err := pgx.CollectExactlyOneRow(rows, scanTicket)
	if errors.Is(err, pgx.ErrNoRows) {
		return Ticket{}, org.ErrConflict
	}
	return nt, err
}

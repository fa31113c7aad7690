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
	ActCorrect           Action = "correct"             // 工单修改: kind, category, region, household, caller name, content
	ActCoSign            Action = "co_sign"             // 协办签收: a co-unit signs its part
	ActCoOpinion         Action = "co_opinion"          // 协办意见: a co-unit's opinion for the lead unit
	ActApproveReply      Action = "approve_reply"       // 审核通过: the head lets a clerk's reply go out
	ActReturnReply       Action = "return_reply"        // 审核退回: the head sends a clerk's reply back with a comment
	ActNote              Action = "note"                // 办理过程: an internal note on the handling
	ActInterimReply      Action = "interim_reply"       // 阶段性答复: an interim reply the caller sees
	ActRequestSuspend    Action = "request_suspend"     // 挂起申请
	ActApproveSuspend    Action = "approve_suspend"     // 挂起批准: the reply clock stops
	ActRefuseSuspend     Action = "refuse_suspend"      // 挂起驳回
	ActResume            Action = "resume"              // 解除挂起: the reply clock runs on with the time that was left
)

// Actions lists every action in the order they are shown.
var Actions = []Action{ActDispatch, ActSign, ActReply, ActReturn, ActRequestExtension, ActApproveExtension,
	ActRefuseExtension, ActUrge, ActSupervise, ActAssign, ActStartCallback, ActCallbackResult, ActReopen, ActMerge,
	ActCloseFirstContact, ActCorrect, ActCoSign, ActCoOpinion, ActApproveReply, ActReturnReply, ActNote, ActInterimReply,
	ActRequestSuspend, ActApproveSuspend, ActRefuseSuspend, ActResume}

var openStates = []Status{StatusNew, StatusDispatched, StatusSigned, StatusReplied, StatusCallback, StatusReturned}

// actionRule says from which states and by which roles an action may be taken. Scoped actions are, for division
// staff and heads, limited to tickets their own unit leads; co-scoped ones to tickets their unit co-handles.
type actionRule struct {
	from     []Status
	roles    []org.Role
	scoped   bool
	coScoped bool
}

var unitRoles = []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}

var actionRules = map[Action]actionRule{
	ActDispatch:         {from: []Status{StatusNew, StatusReturned}, roles: []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleAdmin}},
	ActSign:             {from: []Status{StatusDispatched}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActReply:            {from: []Status{StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActReturn:           {from: []Status{StatusDispatched, StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActRequestExtension: {from: []Status{StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleAdmin}, scoped: true},
	ActApproveExtension: {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActRefuseExtension:  {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	// Staff and heads urge only as the prefecture bureau (市州) over the ticket's county bureau (allowed).
	ActUrge:              {from: openStates, roles: []org.Role{org.RoleDispatcher, org.RoleSupervisor, org.RoleAdmin, org.RoleStaff, org.RoleHead}},
	ActSupervise:         {from: openStates, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActAssign:            {from: []Status{StatusDispatched, StatusSigned}, roles: []org.Role{org.RoleHead, org.RoleAdmin}, scoped: true},
	ActStartCallback:     {from: []Status{StatusReplied}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
	ActCallbackResult:    {from: []Status{StatusReplied, StatusCallback}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
	ActReopen:            {from: []Status{StatusCallback}, roles: []org.Role{org.RoleAgent, org.RoleSupervisor, org.RoleAdmin}},
	ActMerge:             {from: []Status{StatusNew, StatusDispatched, StatusReturned}, roles: []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleAdmin}},
	ActCloseFirstContact: {from: []Status{StatusNew}, roles: []org.Role{org.RoleAgent, org.RoleAdmin}},
	ActCorrect:           {from: []Status{StatusNew, StatusReturned, StatusDispatched, StatusSigned}, roles: []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleAdmin}},
	ActCoSign:            {from: []Status{StatusDispatched, StatusSigned}, roles: unitRoles, coScoped: true},
	ActCoOpinion:         {from: []Status{StatusDispatched, StatusSigned}, roles: unitRoles, coScoped: true},
	ActApproveReply:      {from: []Status{StatusSigned}, roles: []org.Role{org.RoleHead, org.RoleAdmin}, scoped: true},
	ActReturnReply:       {from: []Status{StatusSigned}, roles: []org.Role{org.RoleHead, org.RoleAdmin}, scoped: true},
	ActNote:              {from: []Status{StatusDispatched, StatusSigned}, roles: unitRoles, scoped: true},
	ActInterimReply:      {from: []Status{StatusSigned}, roles: unitRoles, scoped: true},
	ActRequestSuspend:    {from: []Status{StatusSigned}, roles: unitRoles, scoped: true},
	ActApproveSuspend:    {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActRefuseSuspend:     {from: []Status{StatusSigned}, roles: []org.Role{org.RoleSupervisor, org.RoleAdmin}},
	ActResume:            {from: []Status{StatusSigned}, roles: []org.Role{org.RoleStaff, org.RoleHead, org.RoleSupervisor, org.RoleAdmin}, scoped: true},
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

// AllowedActions lists what the actor may do to the ticket now: state, role, unit scope, the sub-states
// (extension, review, suspension, co-handling) and the statutory clocks considered, so every action listed would
// succeed now (given valid input).
func (s *Service) AllowedActions(ctx context.Context, a org.Actor, t Ticket) []string {
	return allowedList(t, a, s.facts(ctx, s.db, a, t))
}

func allowedList(t Ticket, a org.Actor, f facts) []string {
	out := []string{}
	for _, act := range Actions {
		if allowed(t, a, act, f) == nil {
			out = append(out, string(act))
		}
	}
	return out
}

// facts are what allowed needs beyond the ticket and the actor; Service.facts gathers them.
type facts struct {
	now      time.Time
	oversees bool // the actor's unit is the prefecture bureau (市州) over the ticket's lead unit
	coBlock  bool // an outstanding co-unit opinion blocks the lead's reply (else it only warns)
}

// errClock is ErrState for an action the statutory clock no longer allows.
var errClock = fmt.Errorf("%w: the reply deadline has passed", org.ErrState)

func allowed(t Ticket, a org.Actor, act Action, f facts) error {
	r, ok := actionRules[act]
	if !ok {
		return org.Invalid("action", "unknown action")
	}
	stateOK, roleOK := Permitted(t.Status, act, a.Role)
	if !roleOK {
		return org.ErrForbidden
	}
	unitUser := a.Role == org.RoleStaff || a.Role == org.RoleHead
	if act == ActUrge && unitUser && !f.oversees {
		return org.ErrForbidden
	}
	if r.coScoped && unitUser && !slices.Contains(t.CoUnitIDs, a.UnitID) {
		return org.ErrForbidden // a co-unit's action is never the lead unit's, whatever the state
	}
	if !stateOK {
		return org.ErrState
	}
	if r.scoped && unitUser && a.UnitID != t.LeadUnitID {
		return org.ErrForbidden
	}
	pastReply := t.ReplyBy != nil && !f.now.Before(*t.ReplyBy)
	suspended := t.SuspendStatus == "suspended"
	switch act {
	case ActRequestExtension:
		if t.ExtensionStatus == "requested" || suspended {
			return org.ErrState
		}
		if pastReply {
			return errClock
		}
	case ActApproveExtension:
		if t.ExtensionStatus != "requested" || suspended { // a suspended clock is not moved: approve after resuming
			return org.ErrState
		}
		if pastReply || t.ReplyBy == nil {
			return errClock
		}
	case ActRefuseExtension:
		if t.ExtensionStatus != "requested" {
			return org.ErrState
		}
	case ActCloseFirstContact:
		if t.Kind != KindConsultation {
			return org.ErrState
		}
	case ActReply:
		if suspended || t.ReviewStatus == "pending" {
			return org.ErrState
		}
		if f.coBlock && len(t.CoPending) > 0 {
			return fmt.Errorf("%w: a co-unit's opinion (协办意见) is outstanding", org.ErrState)
		}
	case ActReturn:
		if suspended || t.ReviewStatus == "pending" {
			return org.ErrState
		}
	case ActApproveReply, ActReturnReply:
		if t.ReviewStatus != "pending" {
			return org.ErrState
		}
	case ActCoSign:
		if len(t.CoUnsigned) == 0 || (unitUser && !slices.Contains(t.CoUnsigned, a.UnitID)) {
			return org.ErrState
		}
	case ActCoOpinion:
		if len(t.CoPending) == 0 || (unitUser && !slices.Contains(t.CoPending, a.UnitID)) {
			return org.ErrState
		}
	case ActRequestSuspend:
		if t.SuspendStatus != "none" || t.ReviewStatus == "pending" {
			return org.ErrState
		}
		if pastReply || t.ReplyBy == nil {
			return errClock
		}
	case ActApproveSuspend:
		if t.SuspendStatus != "requested" {
			return org.ErrState
		}
		if pastReply || t.ReplyBy == nil {
			return errClock
		}
	case ActRefuseSuspend:
		if t.SuspendStatus != "requested" {
			return org.ErrState
		}
	case ActResume:
		if !suspended {
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
	Changes    *Correction  // correct (UnitID and Reason: override the routing directory)
	Opinion    string       // co_opinion (UnitID: the co-unit an admin acts for; co_sign too)
	// Cite: close_first_contact names the knowledge-base article (and the version) the answer came from.
	Cite *Citation
}

// Citation names a knowledge-base article at the version that was read out (kb_article_versions).
type Citation struct {
	ArticleID int64 `json:"kb_article_id"`
	Version   int   `json:"kb_version"`
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

// doing is one action under way: the locked ticket being changed in place, what the action reads, and what it
// records.
type doing struct {
	ctx    context.Context
	tx     pgx.Tx
	a      org.Actor
	act    Action
	in     ActionInput
	t      Ticket
	desk   org.UnitID
	now    time.Time
	v      org.ValidationError
	data   map[string]any // the event's data
	merged *Ticket        // merge: the target, which gets an event of its own
	facts  facts
	event  string               // the event's action when it is not the action's name (a reply sent for approval)
	after  []func(Ticket) error // statements of the action's own tables, run in its transaction after the row
}

// actionFuncs applies each action to the ticket; doTx does what every action shares (lock, version, permission,
// write, event, queues, hooks).
var actionFuncs = map[Action]func(*Service, *doing) error{
	ActDispatch: (*Service).dispatch, ActSign: (*Service).sign, ActReply: (*Service).reply, ActReturn: (*Service).giveBack,
	ActRequestExtension: (*Service).requestExtension, ActApproveExtension: (*Service).approveExtension,
	ActRefuseExtension: (*Service).refuseExtension, ActUrge: (*Service).urge, ActSupervise: (*Service).urge,
	ActAssign: (*Service).assign, ActStartCallback: (*Service).startCallback, ActCallbackResult: (*Service).callbackResult,
	ActReopen: (*Service).reopen, ActMerge: (*Service).merge, ActCloseFirstContact: (*Service).closeFirstContact,
	ActCorrect: (*Service).correct, ActCoSign: (*Service).coSign, ActCoOpinion: (*Service).coOpinion,
	ActApproveReply: (*Service).approveReply, ActReturnReply: (*Service).returnReply, ActNote: (*Service).note,
	ActInterimReply: (*Service).interimReply, ActRequestSuspend: (*Service).requestSuspend,
	ActApproveSuspend: (*Service).approveSuspend, ActRefuseSuspend: (*Service).refuseSuspend, ActResume: (*Service).resume,
}

func (s *Service) doTx(ctx context.Context, tx pgx.Tx, a org.Actor, id org.TicketID, act Action, in ActionInput) (Ticket, error) {
	apply, ok := actionFuncs[act]
	if !ok {
		return Ticket{}, fmt.Errorf("ticket %d: %w", id, org.Invalid("action", "unknown action "+string(act)))
	}
	before, err := getTicket(ctx, tx, id, true)
	if err != nil {
		return Ticket{}, err
	}
	if !s.mayReadIn(ctx, tx, a, before) {
		// Checked before the version: a ticket outside the actor's reach tells nothing of its state or version.
		return Ticket{}, fmt.Errorf("%s ticket %d: %w", act, id, errNotYours)
	}
	if in.Version != 0 && in.Version != before.Version {
		return Ticket{}, fmt.Errorf("%s ticket %d: version %d is stale (now %d): %w", act, id, in.Version, before.Version, org.ErrConflict)
	}
	f := s.facts(ctx, tx, a, before)
	if err := allowed(before, a, act, f); err != nil {
		if errors.Is(err, org.ErrForbidden) || errors.Is(err, org.ErrState) {
			return Ticket{}, before.refusal(act, a, f, err)
		}
		return Ticket{}, err
	}
	desk, err := s.unitByCodeCached(ctx, tx, org.CodeDesk)
	if err != nil {
		return Ticket{}, fmt.Errorf("%s ticket %d: dispatch desk: %w", act, id, err)
	}
	d := &doing{ctx: ctx, tx: tx, a: a, act: act, in: in, t: before, desk: desk.ID, now: f.now, data: map[string]any{}, facts: f}
	textLimit(&d.v, "note", in.Note, false, 2000)
	if err := apply(s, d); err != nil {
		return Ticket{}, err
	}
	if err := d.v.Err(); err != nil {
		return Ticket{}, err
	}
	t := d.t
	t.UpdatedAt, t.Version = d.now, before.Version+1
	if t.BeyondCalendar = s.beyondCalendar(t); t.BeyondCalendar && !before.BeyondCalendar {
		d.data["beyond_calendar"] = true
		s.log.Warn("a ticket deadline lies past the holiday calendar: counted on weekends alone", "ticket_id", t.ID,
			"calendar_until", s.calendarLastYear())
	}
	evAction := string(act)
	if d.event != "" {
		evAction = d.event
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
	t, evs, err := s.write(ctx, tx, a, t, update(t, before.Version), pendingEvent{action: evAction, from: before.Status,
		to: t.Status, note: strings.TrimSpace(in.Note), data: d.data, topic: "ticket." + evAction, q: q})
	if errors.Is(err, errNoRow) {
		err = org.ErrConflict
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("%s ticket %d: %w", act, id, err)
	}
	if m := d.merged; m != nil {
		_, err := s.record(ctx, tx, a, *m, pendingEvent{action: "merged_from", from: m.Status, to: m.Status,
			note: strings.TrimSpace(in.Note), topic: "ticket.merged_from",
			data: map[string]any{"duplicate_id": t.ID, "duplicate_number": t.Number}})
		if err != nil {
			return Ticket{}, err
		}
	}
	for _, after := range d.after {
		if err := after(t); err != nil {
			return Ticket{}, fmt.Errorf("%s ticket %d: %w", act, id, err)
		}
	}
	if err := s.runHooks(ctx, tx, t, evs[0]); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// refusal is the error of an action the state machine does not allow now, with what is allowed instead.
func (t Ticket) refusal(act Action, a org.Actor, f facts, reason error) error {
	return &org.StateError{Action: string(act), State: string(t.Status), Allowed: allowedList(t, a, f), Reason: reason}
}

// categoryOf is the ticket's category (the zero Category when it no longer exists: defaults apply).
func (s *Service) categoryOf(d *doing) (Category, error) {
	cat, err := s.category(d.ctx, d.tx, d.t.Category)
	if err != nil && !errors.Is(err, org.ErrNotFound) {
		return Category{}, err
	}
	return cat, nil
}

// setRoute records what routing found (the event data of a dispatch carries it too: applyDispatch).
func (t *Ticket) setRoute(rt Route) {
	t.RouteUnitID, t.RouteRuleID, t.RouteRuleVersion = nil, nil, nil
	if rt.UnitID != 0 {
		ru := rt.UnitID
		t.RouteUnitID = &ru
	}
	if rt.RuleID != 0 {
		rid, rv := rt.RuleID, rt.RuleVersion
		t.RouteRuleID, t.RouteRuleVersion = &rid, &rv
	}
}

func (t *Ticket) setClock(c clock) { t.DueKind, t.DueAt, t.YellowAt = c.kind, c.due, c.yellow }
func (t *Ticket) stopClock()       { t.DueKind, t.DueAt, t.YellowAt = nil, nil, nil }

// dispatch (派单) sends the ticket to the unit its routing finds, or to the one chosen with a reason.
func (s *Service) dispatch(d *doing) error {
	t, in := &d.t, d.in
	var unit org.UnitID
	if in.UnitID != 0 {
		textLimit(&d.v, "reason", in.Reason, true, 1000)
		u, err := org.GetUnit(d.ctx, d.tx, in.UnitID)
		switch {
		case errors.Is(err, org.ErrNotFound):
			d.v.Add("unit_id", "no such unit")
		case err != nil:
			return err
		case !u.Active || u.ID == d.desk:
			d.v.Add("unit_id", "not a unit that handles tickets")
		}
		unit = in.UnitID
		d.data["override"], d.data["reason"] = true, strings.TrimSpace(in.Reason)
	}
	rt, err := s.route(d.ctx, d.tx, routeInput{Kind: t.Kind, Category: t.Category, RegionCode: t.RegionCode,
		HasHousehold: t.HouseholdID != nil, Content: t.Content})
	if err != nil {
		return err
	}
	if unit == 0 {
		if rt.UnitID == d.desk {
			d.v.Add("unit_id", "no routing rule matches this ticket: choose the unit")
		}
		unit = rt.UnitID
	}
	t.setRoute(rt)
	co := []org.UnitID{}
	for _, c := range in.CoUnitIDs {
		if c == unit || slices.Contains(co, c) {
			continue
		}
		if _, err := org.GetUnit(d.ctx, d.tx, c); err != nil {
			d.v.Add("co_unit_ids", fmt.Sprintf("no such unit %d", c))
		}
		co = append(co, c)
	}
	if err := d.v.Err(); err != nil {
		return err
	}
	cat, err := s.categoryOf(d)
	if err != nil {
		return err
	}
	for k, v := range s.applyDispatch(t, unit, co, rt, cat, d.now) {
		d.data[k] = v
	}
	s.assignCoUnits(d, co)
	return nil
}

// sign (签收): the signer becomes the assignee and the reply clock runs.
func (s *Service) sign(d *doing) error {
	t := &d.t
	t.Status = StatusSigned
	if d.a.UserID != 0 {
		uid := d.a.UserID
		t.AssigneeID = &uid
	}
	if t.ReplyBy != nil && t.DispatchedAt != nil {
		t.setClock(s.runClock(DueReply, *t.DispatchedAt, *t.ReplyBy))
	}
	return nil
}

// reply (办结答复), with the outcome its category requires; the callback clock runs.
func (s *Service) reply(d *doing) error {
	t, in := &d.t, d.in
	textLimit(&d.v, "reply", in.Reply, true, 10000)
	if words, ok := s.outcomes[t.Category]; ok {
		if !slices.Contains(words, in.Outcome) {
			d.v.Add("outcome", "a reply to this category needs an outcome: "+strings.Join(words, ", "))
		}
	} else if in.Outcome != "" {
		d.v.Add("outcome", "a reply to this category has no outcome")
	}
	if err := d.v.Err(); err != nil {
		return err
	}
	if len(t.CoPending) > 0 {
		// Warn policy (block refused it in allowed): the reply goes, and says which opinions it went without.
		d.data["co_pending"] = t.CoPending
	}
	if d.a.Role == org.RoleStaff {
		var review bool
		if err := d.tx.QueryRow(d.ctx, `SELECT reply_approval FROM units WHERE id = $1`, int64(t.LeadUnitID)).Scan(&review); err != nil {
			return fmt.Errorf("reply approval of unit %d: %w", t.LeadUnitID, err)
		}
		if review {
			// 审核: the reply waits for the head; the reply clock keeps running until it goes out (README).
			t.ReviewStatus, t.PendingReply, t.PendingOutcome = "pending", strings.TrimSpace(in.Reply), in.Outcome
			d.event = "reply_submitted"
			d.data["reply"] = t.PendingReply
			if in.Outcome != "" {
				d.data["outcome"] = in.Outcome
			}
			return nil
		}
	}
	s.sendReply(d, strings.TrimSpace(in.Reply), in.Outcome)
	return nil
}

// sendReply makes the reply go out (办结答复): the ticket is replied and the callback clock runs.
func (s *Service) sendReply(d *doing, reply, outcome string) {
	t := &d.t
	t.Status, t.ReplyText, t.Outcome = StatusReplied, reply, outcome
	t.ReviewStatus, t.PendingReply, t.PendingOutcome = "none", "", ""
	cb := s.Calendar().Add(d.now, s.callbackAllowed())
	t.CallbackBy = &cb
	t.setClock(s.runClock(DueCallback, d.now, cb))
	d.data["reply"], d.data["callback_by"] = t.ReplyText, cb
	if outcome != "" {
		d.data["outcome"] = outcome
	}
}

// giveBack (退单) returns the ticket to the dispatch desk with a reason.
func (s *Service) giveBack(d *doing) error {
	t := &d.t
	textLimit(&d.v, "reason", d.in.Reason, true, 1000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.data["from_unit_id"], d.data["reason"] = t.LeadUnitID, strings.TrimSpace(d.in.Reason)
	t.Status, t.LeadUnitID, t.AssigneeID = StatusReturned, d.desk, nil
	t.stopClock()
	return nil
}

// requestExtension (延期申请), before the reply deadline.
func (s *Service) requestExtension(d *doing) error {
	t, in := &d.t, d.in
	textLimit(&d.v, "reason", in.Reason, true, 1000)
	if in.Days < 1 || in.Days > 30 {
		d.v.Add("days", "1 to 30 working days")
	}
	if err := d.v.Err(); err != nil {
		return err
	}
	if t.ReplyBy != nil && !d.now.Before(*t.ReplyBy) {
		return t.refusal(d.act, d.a, d.facts, errClock)
	}
	t.ExtensionStatus, t.ExtensionDays = "requested", in.Days
	d.data["days"], d.data["reason"] = in.Days, strings.TrimSpace(in.Reason)
	return nil
}

// approveExtension (延期批准) moves the reply deadline by the days asked; past the deadline only refusal remains.
func (s *Service) approveExtension(d *doing) error {
	t := &d.t
	if t.ReplyBy == nil || !d.now.Before(*t.ReplyBy) {
		return &org.StateError{Action: string(d.act), State: string(t.Status), Allowed: []string{string(ActRefuseExtension)},
			Reason: fmt.Errorf("%w: the reply deadline has passed", org.ErrState)}
	}
	rb := s.Calendar().Add(*t.ReplyBy, time.Duration(t.ExtensionDays)*workDay)
	d.data["old_reply_by"], d.data["reply_by"], d.data["days"] = *t.ReplyBy, rb, t.ExtensionDays
	t.ReplyBy = &rb
	t.ExtensionStatus = "approved"
	start := d.now
	if t.DispatchedAt != nil {
		start = *t.DispatchedAt
	}
	t.setClock(s.runClock(DueReply, start, rb))
	return nil
}

// refuseExtension (延期驳回), with a reason.
func (s *Service) refuseExtension(d *doing) error {
	textLimit(&d.v, "reason", d.in.Reason, true, 1000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.t.ExtensionStatus = "refused"
	d.data["reason"] = strings.TrimSpace(d.in.Reason)
	return nil
}

// urge (催办) counts; supervise (督办) marks the ticket supervised. Both need a note.
func (s *Service) urge(d *doing) error {
	textLimit(&d.v, "note", d.in.Note, true, 2000)
	if err := d.v.Err(); err != nil {
		return err
	}
	if d.act == ActUrge {
		d.t.UrgeCount++
		d.data["urge_count"] = d.t.UrgeCount
	} else {
		d.t.Supervised = true
	}
	return nil
}

// assign (分派承办人) names an active user of the lead unit.
func (s *Service) assign(d *doing) error {
	u, err := org.GetUser(d.ctx, d.tx, d.in.AssigneeID)
	if errors.Is(err, org.ErrNotFound) || (err == nil && (u.UnitID != d.t.LeadUnitID || !u.Active)) {
		return org.Invalid("assignee_id", "not an active user of the lead unit")
	}
	if err != nil {
		return err
	}
	uid := u.ID
	d.t.AssigneeID = &uid
	d.data["assignee_id"] = uid
	return nil
}

func (s *Service) startCallback(d *doing) error {
	d.t.Status = StatusCallback
	return nil
}

// callbackResult (回访结果): satisfied and basically satisfied close the ticket, unsatisfied reopens it.
func (s *Service) callbackResult(d *doing) error {
	res := normaliseResult(d.in.Result)
	if res == "" {
		return org.Invalid("result", "satisfied, basically_satisfied or unsatisfied (满意, 基本满意, 不满意)")
	}
	if err := d.v.Err(); err != nil {
		return err
	}
	d.t.Satisfaction = res
	d.data["result"] = res
	if res != Unsatisfied {
		d.t.Status, d.t.ClosedAt = StatusClosed, &d.now
		d.t.stopClock()
		return nil
	}
	d.data["reopened"] = true
	return s.reopened(d)
}

// reopen (重办), with a note.
func (s *Service) reopen(d *doing) error {
	textLimit(&d.v, "note", d.in.Note, true, 2000)
	if err := d.v.Err(); err != nil {
		return err
	}
	return s.reopened(d)
}

// reopened puts the ticket back to signed with a new reply deadline.
func (s *Service) reopened(d *doing) error {
	cat, err := s.categoryOf(d)
	if err != nil {
		return err
	}
	t := &d.t
	t.Status = StatusSigned
	t.ReopenCount++
	rb := s.Calendar().Add(d.now, s.replyAllowed(*t, cat))
	t.ReplyBy, t.CallbackBy = &rb, nil
	t.ExtensionStatus, t.ExtensionDays = "none", 0
	t.setClock(s.runClock(DueReply, d.now, rb))
	d.data["reply_by"] = rb
	return nil
}

// merge (合并) closes a duplicate into an open ticket, which records it too.
func (s *Service) merge(d *doing) error {
	t := &d.t
	if d.in.TargetID == 0 || d.in.TargetID == t.ID {
		return org.Invalid("target_id", "the open ticket to merge into")
	}
	target, err := getTicket(d.ctx, d.tx, d.in.TargetID, true)
	if errors.Is(err, org.ErrNotFound) {
		return org.Invalid("target_id", "no such ticket")
	}
	if err != nil {
		return err
	}
	if !target.Status.Open() || target.MergedInto != nil {
		return org.Invalid("target_id", "the target ticket is closed")
	}
	d.merged = &target
	tid := target.ID
	t.MergedInto, t.Status, t.ClosedAt = &tid, StatusClosed, &d.now
	t.stopClock()
	d.data["target_id"], d.data["target_number"] = target.ID, target.Number
	return nil
}

// closeFirstContact closes a consultation (咨询) answered at first contact.
func (s *Service) closeFirstContact(d *doing) error {
	textLimit(&d.v, "reply", d.in.Reply, true, 10000)
	if err := d.v.Err(); err != nil {
		return err
	}
	if c := d.in.Cite; c != nil {
		var title string
		err := d.tx.QueryRow(d.ctx, `SELECT title FROM kb_article_versions WHERE article_id = $1 AND version = $2`,
			c.ArticleID, c.Version).Scan(&title)
		if errors.Is(err, pgx.ErrNoRows) {
			return org.Invalid("kb_article_id", "no such article version")
		}
		if err != nil {
			return fmt.Errorf("cited article %d: %w", c.ArticleID, err)
		}
		d.data["kb_article_id"], d.data["kb_version"], d.data["kb_title"] = c.ArticleID, c.Version, title
	}
	d.t.Status, d.t.ReplyText, d.t.ClosedAt = StatusClosed, strings.TrimSpace(d.in.Reply), &d.now
	d.t.stopClock()
	d.data["reply"] = d.t.ReplyText
	return nil
}

// applyDispatch sets what a dispatch sets (unit, clocks) and returns the event data.
func (s *Service) applyDispatch(t *Ticket, unit org.UnitID, co []org.UnitID, rt Route, cat Category, now time.Time) map[string]any {
	t.Status, t.LeadUnitID, t.CoUnitIDs, t.AssigneeID = StatusDispatched, unit, co, nil
	t.DispatchedAt = &now
	sb, rb := s.Calendar().Add(now, s.signAllowed(*t)), s.Calendar().Add(now, s.replyAllowed(*t, cat))
	t.SignBy, t.ReplyBy, t.CallbackBy = &sb, &rb, nil
	t.ExtensionStatus, t.ExtensionDays = "none", 0
	t.setClock(s.runClock(DueSign, now, sb))
	data := map[string]any{"unit_id": unit, "co_unit_ids": co, "sign_by": sb, "reply_by": rb, "route_unit_id": rt.UnitID}
	if rt.RuleID != 0 {
		data["rule_id"], data["rule_version"] = rt.RuleID, rt.RuleVersion
	}
	return data
}

// update is the statement that writes an action's change, if the row is still at version.
func update(t Ticket, version int) change {
	return change{row: `UPDATE tickets SET status = $3, lead_unit_id = $4, co_unit_ids = $5, assignee_id = $6,
			route_unit_id = $7, route_rule_id = $8, route_rule_version = $9, sign_by = $10, reply_by = $11,
			callback_by = $12, due_kind = $13, due_at = $14, yellow_at = $15, extension_status = $16,
			extension_days = $17, urge_count = $18, supervised = $19, reply_text = $20, outcome = $21,
			satisfaction = $22, reopen_count = $23, merged_into = $24, updated_at = $25, dispatched_at = $26,
			closed_at = $27, version = version + 1, kind = $28, category = $29, region_code = $30, household_id = $31,
			caller_name = $32, content = $33, review_status = $34, pending_reply = $35, pending_outcome = $36,
			suspend_status = $37, suspended_at = $38, suspend_left_ms = $39, co_unsigned = $40, co_pending = $41,
			beyond_calendar = $42
		WHERE id = $1 AND version = $2 RETURNING *`,
		args: []any{int64(t.ID), version, string(t.Status), int64(t.LeadUnitID), t.CoUnitIDs, t.AssigneeID, t.RouteUnitID,
			t.RouteRuleID, t.RouteRuleVersion, t.SignBy, t.ReplyBy, t.CallbackBy, t.DueKind, t.DueAt, t.YellowAt,
			t.ExtensionStatus, t.ExtensionDays, t.UrgeCount, t.Supervised, t.ReplyText, t.Outcome, t.Satisfaction,
			t.ReopenCount, t.MergedInto, t.UpdatedAt, t.DispatchedAt, t.ClosedAt, string(t.Kind), t.Category, t.RegionCode,
			t.HouseholdID, t.CallerName, t.Content, t.ReviewStatus, t.PendingReply, t.PendingOutcome, t.SuspendStatus,
			t.SuspendedAt, t.SuspendLeftMS, nonNil(t.CoUnsigned), nonNil(t.CoPending), t.BeyondCalendar}}
}

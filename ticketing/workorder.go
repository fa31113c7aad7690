package ticketing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// The whole work order beyond the main path (issue 11): correction (工单修改), co-handling (协办), reply approval
// (审核), notes and interim replies (办理过程, 阶段性答复), suspension (挂起), prefecture oversight and the calendar
// horizon. Each action goes through doTx like every other: one transaction, one event, one outbox row.

// Correction names what a correction (工单修改) changes; nil fields stay as they are.
type Correction struct {
	Kind            *Kind   `json:"kind,omitempty"`
	Category        *string `json:"category,omitempty"`
	RegionCode      *string `json:"region_code,omitempty"`
	HouseholdID     *int64  `json:"household_id,omitempty"`
	UnlinkHousehold bool    `json:"unlink_household,omitempty"` // remove the household link
	CallerName      *string `json:"caller_name,omitempty"`
	Content         *string `json:"content,omitempty"`
}

// facts gathers what allowed needs beyond the ticket and the actor.
func (s *Service) facts(ctx context.Context, db org.DB, a org.Actor, t Ticket) facts {
	f := facts{now: s.now(), coBlock: !s.opt.CoOpinionWarn}
	if (a.Role == org.RoleStaff || a.Role == org.RoleHead) && a.UnitID != 0 && a.UnitID != t.LeadUnitID {
		f.oversees = s.oversees(ctx, db, a.UnitID, t.LeadUnitID)
	}
	return f
}

// oversees reports whether unit is the prefecture bureau (市州乡村振兴局) above the county bureau lead: it reads
// and urges (催办) that bureau's tickets, and does nothing else to them.
func (s *Service) oversees(ctx context.Context, db org.DB, unit, lead org.UnitID) bool {
	u, err := s.unitByID(ctx, db, unit)
	if err != nil || u.Kind != org.UnitPrefecture {
		return false
	}
	l, err := s.unitByID(ctx, db, lead)
	return err == nil && l.ParentID != nil && *l.ParentID == unit
}

// isPrefecture reports whether the unit is a prefecture bureau.
func (s *Service) isPrefecture(ctx context.Context, db org.DB, unit org.UnitID) bool {
	u, err := s.unitByID(ctx, db, unit)
	return err == nil && u.Kind == org.UnitPrefecture
}

// unitByID reads the unit tree once through db (about 150 units) and keeps it: the kind and parent of a unit do
// not change while the service runs. A unit added since is read on its own.
func (s *Service) unitByID(ctx context.Context, db org.DB, id org.UnitID) (org.Unit, error) {
	s.cacheMu.Lock()
	u, ok := s.unitIDs[id]
	loaded := s.unitIDs != nil
	s.cacheMu.Unlock()
	if ok {
		return u, nil
	}
	if !loaded {
		us, err := org.ListUnits(ctx, db)
		if err != nil {
			return org.Unit{}, err
		}
		s.cacheMu.Lock()
		s.unitIDs = map[org.UnitID]org.Unit{}
		for _, u := range us {
			s.unitIDs[u.ID] = u
		}
		u, ok = s.unitIDs[id]
		s.cacheMu.Unlock()
		if ok {
			return u, nil
		}
	}
	u, err := org.GetUnit(ctx, db, id)
	if err != nil {
		return org.Unit{}, err
	}
	s.cacheMu.Lock()
	s.unitIDs[id] = u
	s.cacheMu.Unlock()
	return u, nil
}

func nonNil(us []org.UnitID) []org.UnitID {
	if us == nil {
		return []org.UnitID{}
	}
	return us
}

func without(us []org.UnitID, u org.UnitID) []org.UnitID {
	return slices.DeleteFunc(slices.Clone(nonNil(us)), func(x org.UnitID) bool { return x == u })
}

// correct (工单修改) changes the matter's description. On a dispatched or signed ticket a change that routing
// looks at routes the ticket again (or the unit chosen with a reason): another unit gets it as a fresh dispatch,
// with fresh sign and reply clocks and its queue entry moved; the same unit keeps its clocks, except that a new
// kind or category recomputes the reply deadline from the dispatch with the new allowance.
func (s *Service) correct(d *doing) error {
	t, c := &d.t, d.in.Changes
	if c == nil {
		return org.Invalid("changes", "what to correct: kind, category, region_code, household_id, unlink_household, caller_name, content")
	}
	changes := map[string]any{}
	diff := func(field string, before, after any) {
		changes[field] = map[string]any{"before": before, "after": after}
	}
	routing := false
	if c.Kind != nil && *c.Kind != t.Kind {
		switch {
		case !validKind(*c.Kind):
			d.v.Add("changes.kind", "one of consultation, help, complaint, report, suggestion")
		case t.Confidential && *c.Kind != KindReport:
			d.v.Add("changes.kind", "a confidential report stays a report (举报)")
		default:
			diff("kind", t.Kind, *c.Kind)
			t.Kind, routing = *c.Kind, true
		}
	}
	if c.Category != nil && *c.Category != t.Category {
		cat, err := s.category(d.ctx, d.tx, *c.Category)
		switch {
		case errors.Is(err, org.ErrNotFound) || (err == nil && !cat.Active):
			d.v.Add("changes.category", "unknown category")
		case err != nil:
			return err
		default:
			diff("category", t.Category, cat.Code)
			t.Category, routing = cat.Code, true
		}
	}
	if c.RegionCode != nil && strings.TrimSpace(*c.RegionCode) != t.RegionCode {
		rc := strings.TrimSpace(*c.RegionCode)
		if _, ok := region.Lookup(rc); rc != "" && (!ok || !strings.HasPrefix(rc, "43")) {
			d.v.Add("changes.region_code", "not a Hunan region code")
		} else {
			diff("region_code", t.RegionCode, rc)
			t.RegionCode, routing = rc, true
		}
	}
	switch {
	case c.UnlinkHousehold && c.HouseholdID != nil:
		d.v.Add("changes.household_id", "either a household or unlink_household")
	case c.UnlinkHousehold && t.HouseholdID != nil:
		diff("household_id", *t.HouseholdID, nil)
		t.HouseholdID, routing = nil, true
	case c.HouseholdID != nil && (t.HouseholdID == nil || *t.HouseholdID != *c.HouseholdID):
		var exists bool
		if err := d.tx.QueryRow(d.ctx, `SELECT EXISTS (SELECT 1 FROM households WHERE id = $1)`, *c.HouseholdID).Scan(&exists); err != nil {
			return fmt.Errorf("correct: household %d: %w", *c.HouseholdID, err)
		}
		if !exists {
			d.v.Add("changes.household_id", "the household does not exist")
		} else {
			var before any
			if t.HouseholdID != nil {
				before = *t.HouseholdID
			}
			diff("household_id", before, *c.HouseholdID)
			hid := *c.HouseholdID
			t.HouseholdID, routing = &hid, true
		}
	}
	if c.CallerName != nil && strings.TrimSpace(*c.CallerName) != t.CallerName {
		name := strings.TrimSpace(*c.CallerName)
		if utf8.RuneCountInString(name) > 100 {
			d.v.Add("changes.caller_name", "at most 100 characters")
		} else if t.Confidential {
			// Who reported is kept from most readers of the ticket; its history must not tell them either.
			changes["caller_name"] = map[string]any{"changed": true}
			t.CallerName = name
		} else {
			diff("caller_name", t.CallerName, name)
			t.CallerName = name
		}
	}
	if c.Content != nil && strings.TrimSpace(*c.Content) != t.Content {
		content := strings.TrimSpace(*c.Content)
		switch n := utf8.RuneCountInString(content); {
		case n == 0:
			d.v.Add("changes.content", "required")
		case n > 10000:
			d.v.Add("changes.content", "at most 10000 characters")
		default:
			diff("content", t.Content, content)
			t.Content, routing = content, true
		}
	}
	override := d.in.UnitID != 0
	if override {
		if t.Status == StatusNew || t.Status == StatusReturned {
			d.v.Add("unit_id", "a ticket at the dispatch desk gets its unit when it is dispatched")
		}
		textLimit(&d.v, "reason", d.in.Reason, true, 1000)
		s.checkUnit(d, d.in.UnitID)
	}
	if err := d.v.Err(); err != nil {
		return err
	}
	if len(changes) == 0 && !override {
		return org.Invalid("changes", "nothing to correct: every value is as it was")
	}
	d.data["changes"] = changes
	if !routing && !override {
		return nil
	}
	rt, err := s.route(d.ctx, d.tx, routeInput{Kind: t.Kind, Category: t.Category, RegionCode: t.RegionCode,
		HasHousehold: t.HouseholdID != nil, Content: t.Content})
	if err != nil {
		return err
	}
	t.setRoute(rt)
	d.data["route_unit_id"] = rt.UnitID
	if rt.RuleID != 0 {
		d.data["rule_id"], d.data["rule_version"] = rt.RuleID, rt.RuleVersion
	}
	if t.Status == StatusNew || t.Status == StatusReturned {
		return nil // routed again when dispatched
	}
	unit := rt.UnitID
	if override {
		unit = d.in.UnitID
		d.data["override"], d.data["reason"] = true, strings.TrimSpace(d.in.Reason)
	} else if unit == d.desk {
		d.data["route"] = "no routing rule matches the corrected ticket: the unit is kept"
		unit = t.LeadUnitID
	}
	cat, err := s.categoryOf(d)
	if err != nil {
		return err
	}
	if unit != t.LeadUnitID {
		// Another unit: a fresh dispatch to it. The co-units keep their part (and their opinions).
		from := t.LeadUnitID
		unsigned, pending := without(t.CoUnsigned, unit), without(t.CoPending, unit)
		for k, v := range s.applyDispatch(t, unit, without(t.CoUnitIDs, unit), rt, cat, d.now) {
			d.data[k] = v
		}
		t.CoUnsigned, t.CoPending = unsigned, pending
		t.ReviewStatus, t.PendingReply, t.PendingOutcome = "none", "", ""
		t.SuspendStatus, t.SuspendedAt, t.SuspendLeftMS = "none", nil, nil
		d.data["rerouted"], d.data["from_unit_id"] = true, from
		return nil
	}
	if _, kind := changes["kind"]; kind || changes["category"] != nil {
		if t.DispatchedAt == nil || t.SuspendStatus == "suspended" {
			return nil // a suspended clock keeps the time it had left; the new allowance applies from the next dispatch
		}
		rb := s.Calendar().Add(*t.DispatchedAt, s.replyAllowed(*t, cat))
		if t.ExtensionStatus == "approved" {
			rb = s.Calendar().Add(rb, time.Duration(t.ExtensionDays)*workDay)
		}
		if t.ReplyBy != nil {
			d.data["old_reply_by"] = *t.ReplyBy
		}
		d.data["reply_by"] = rb
		t.ReplyBy = &rb
		if t.Status == StatusSigned {
			t.setClock(s.runClock(DueReply, *t.DispatchedAt, rb))
		}
	}
	return nil
}

// checkUnit validates a unit chosen by hand (dispatch or correction override).
func (s *Service) checkUnit(d *doing, id org.UnitID) {
	u, err := org.GetUnit(d.ctx, d.tx, id)
	switch {
	case errors.Is(err, org.ErrNotFound):
		d.v.Add("unit_id", "no such unit")
	case err != nil:
		d.v.Add("unit_id", "cannot read the unit")
	case !u.Active || u.ID == d.desk:
		d.v.Add("unit_id", "not a unit that handles tickets")
	}
}

// coAllowed is the time a co-unit has for its opinion.
func (s *Service) coAllowed(t Ticket) time.Duration {
	if t.Urgency == UrgencyUrgent {
		return time.Duration(s.opt.SLA.UrgentCoHours) * time.Hour
	}
	return time.Duration(s.opt.SLA.CoOpinionDays) * workDay
}

// assignCoUnits gives each co-unit of a dispatch its part: unsigned, its opinion due by its own deadline.
func (s *Service) assignCoUnits(d *doing, co []org.UnitID) {
	t := &d.t
	t.CoUnsigned, t.CoPending = slices.Clone(nonNil(co)), slices.Clone(nonNil(co))
	if len(co) == 0 {
		return
	}
	due := s.Calendar().Add(d.now, s.coAllowed(*t))
	d.data["co_due_at"] = due
	d.after = append(d.after, func(t Ticket) error {
		_, err := d.tx.Exec(d.ctx, `INSERT INTO ticket_co_units (ticket_id, unit_id, assigned_at, due_at)
			SELECT $1, u, $2, $3 FROM unnest($4::bigint[]) AS u
			ON CONFLICT (ticket_id, unit_id) DO UPDATE SET assigned_at = excluded.assigned_at, due_at = excluded.due_at,
				signed_at = NULL, signed_by = NULL, opinion = '', opinion_at = NULL, opinion_by = ''`,
			int64(t.ID), d.now, due, co)
		if err != nil {
			return fmt.Errorf("co-units: %w", err)
		}
		return nil
	})
}

// coUnit is the co-unit an actor acts for: their own unit, or for an admin the unit named in the input.
func coUnit(d *doing, among []org.UnitID) (org.UnitID, error) {
	if d.a.Role == org.RoleStaff || d.a.Role == org.RoleHead {
		return d.a.UnitID, nil
	}
	if d.in.UnitID == 0 || !slices.Contains(among, d.in.UnitID) {
		return 0, org.Invalid("unit_id", "the co-unit you act for")
	}
	return d.in.UnitID, nil
}

// coSign (协办签收): the co-unit takes its part.
func (s *Service) coSign(d *doing) error {
	unit, err := coUnit(d, d.t.CoUnsigned)
	if err != nil {
		return err
	}
	d.t.CoUnsigned = without(d.t.CoUnsigned, unit)
	d.data["unit_id"] = unit
	d.after = append(d.after, func(t Ticket) error {
		_, err := d.tx.Exec(d.ctx, `UPDATE ticket_co_units SET signed_at = $3, signed_by = $4
			WHERE ticket_id = $1 AND unit_id = $2`, int64(t.ID), int64(unit), d.now, int64(d.a.UserID))
		return err
	})
	return nil
}

// coOpinion (协办意见): the co-unit's opinion for the lead unit; it signs the part too if not yet signed.
func (s *Service) coOpinion(d *doing) error {
	unit, err := coUnit(d, d.t.CoPending)
	if err != nil {
		return err
	}
	textLimit(&d.v, "opinion", d.in.Opinion, true, 5000)
	if err := d.v.Err(); err != nil {
		return err
	}
	opinion := strings.TrimSpace(d.in.Opinion)
	d.t.CoPending, d.t.CoUnsigned = without(d.t.CoPending, unit), without(d.t.CoUnsigned, unit)
	d.data["unit_id"], d.data["opinion"] = unit, opinion
	name := d.a.Name
	if name == "" {
		name = d.a.Username
	}
	d.after = append(d.after, func(t Ticket) error {
		_, err := d.tx.Exec(d.ctx, `UPDATE ticket_co_units SET opinion = $3, opinion_at = $4, opinion_by = $5,
				signed_at = coalesce(signed_at, $4), signed_by = coalesce(signed_by, $6)
			WHERE ticket_id = $1 AND unit_id = $2`, int64(t.ID), int64(unit), opinion, d.now, name, int64(d.a.UserID))
		return err
	})
	return nil
}

// approveReply (审核通过): the clerk's reply goes out as the unit's reply; its event is a reply like any other
// (ticket.reply), so whoever listens for replies needs nothing more.
func (s *Service) approveReply(d *doing) error {
	t := &d.t
	d.data["approved"] = true
	s.sendReply(d, t.PendingReply, t.PendingOutcome)
	d.event = string(ActReply)
	return nil
}

// returnReply (审核退回): back to the clerk with the head's comment; the text stays for the clerk to rework.
func (s *Service) returnReply(d *doing) error {
	textLimit(&d.v, "reason", d.in.Reason, true, 1000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.t.ReviewStatus = "returned"
	d.data["reason"] = strings.TrimSpace(d.in.Reason)
	return nil
}

// note (办理过程): an internal note on the handling; the note is the event's note.
func (s *Service) note(d *doing) error {
	textLimit(&d.v, "note", d.in.Note, true, 2000)
	return d.v.Err()
}

// interimReply (阶段性答复): shown to the caller in the public progress query.
func (s *Service) interimReply(d *doing) error {
	textLimit(&d.v, "reply", d.in.Reply, true, 5000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.data["reply"] = strings.TrimSpace(d.in.Reply)
	return nil
}

// requestSuspend (挂起申请), with a reason, before the reply deadline.
func (s *Service) requestSuspend(d *doing) error {
	textLimit(&d.v, "reason", d.in.Reason, true, 1000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.t.SuspendStatus = "requested"
	d.data["reason"] = strings.TrimSpace(d.in.Reason)
	return nil
}

// approveSuspend (挂起批准) stops the reply clock and keeps the working time that was left on it.
func (s *Service) approveSuspend(d *doing) error {
	t := &d.t
	left := s.Calendar().Between(d.now, *t.ReplyBy).Milliseconds()
	now := d.now
	t.SuspendStatus, t.SuspendedAt, t.SuspendLeftMS = "suspended", &now, &left
	t.stopClock()
	d.data["reply_by_was"], d.data["left_ms"] = *t.ReplyBy, left
	return nil
}

// refuseSuspend (挂起驳回), with a reason.
func (s *Service) refuseSuspend(d *doing) error {
	textLimit(&d.v, "reason", d.in.Reason, true, 1000)
	if err := d.v.Err(); err != nil {
		return err
	}
	d.t.SuspendStatus = "none"
	d.data["reason"] = strings.TrimSpace(d.in.Reason)
	return nil
}

// resume (解除挂起): the reply clock runs on with the working time it had left, counted on the calendar from
// now, so days off during and after the suspension do not count.
func (s *Service) resume(d *doing) error {
	t := &d.t
	var left time.Duration
	if t.SuspendLeftMS != nil {
		left = time.Duration(*t.SuspendLeftMS) * time.Millisecond
	}
	rb := s.Calendar().Add(d.now, left)
	if t.SuspendedAt != nil {
		d.data["suspended_at"] = *t.SuspendedAt
	}
	t.ReplyBy = &rb
	t.SuspendStatus, t.SuspendedAt, t.SuspendLeftMS = "none", nil, nil
	t.setClock(s.runClock(DueReply, d.now, rb))
	d.data["reply_by"], d.data["left_ms"] = rb, left.Milliseconds()
	return nil
}

// CoTask is a co-unit's part of a ticket as the ticket page shows it.
type CoTask struct {
	UnitID     org.UnitID `json:"unit_id"`
	UnitName   string     `json:"unit_name"`
	AssignedAt time.Time  `json:"assigned_at"`
	DueAt      time.Time  `json:"due_at"`
	SignedAt   *time.Time `json:"signed_at,omitempty"`
	Opinion    string     `json:"opinion"`
	OpinionAt  *time.Time `json:"opinion_at,omitempty"`
	OpinionBy  string     `json:"opinion_by,omitempty"`
	Overdue    bool       `json:"overdue"` // no opinion and past its deadline
}

// CoTasks lists the co-units' parts of a ticket, with their opinions, for whoever may read the ticket.
func (s *Service) CoTasks(ctx context.Context, a org.Actor, id org.TicketID) ([]CoTask, error) {
	t, err := s.Get(ctx, a, id)
	if err != nil {
		return nil, err
	}
	out := []CoTask{}
	if len(t.CoUnitIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT c.unit_id, u.name, c.assigned_at, c.due_at, c.signed_at, c.opinion, c.opinion_at, c.opinion_by
		FROM ticket_co_units c JOIN units u ON u.id = c.unit_id
		WHERE c.ticket_id = $1 AND c.unit_id = ANY($2) ORDER BY c.unit_id`, int64(id), t.CoUnitIDs)
	if err != nil {
		return nil, fmt.Errorf("co-units of ticket %d: %w", id, err)
	}
	now := s.now()
	out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (CoTask, error) {
		var c CoTask
		err := row.Scan(&c.UnitID, &c.UnitName, &c.AssignedAt, &c.DueAt, &c.SignedAt, &c.Opinion, &c.OpinionAt, &c.OpinionBy)
		c.Overdue = c.OpinionAt == nil && !now.Before(c.DueAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("co-units of ticket %d: %w", id, err)
	}
	return out, nil
}

// SetReplyApproval turns the reply approval (审核) of a unit on or off: its clerks' replies then wait for a head.
// Admins and the unit's own heads may change it.
func (s *Service) SetReplyApproval(ctx context.Context, a org.Actor, src org.Source, unit org.UnitID, required bool) error {
	if err := AuthorizeReplyApproval(a, unit, true); err != nil {
		return err
	}
	// One transaction: the setting, its admin audit row (who switched it, from where, before and after) and the event.
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var before bool
		err := tx.QueryRow(ctx, `SELECT reply_approval FROM units WHERE id = $1 FOR UPDATE`, int64(unit)).Scan(&before)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("unit %d: %w", unit, org.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reply approval of unit %d: %w", unit, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE units SET reply_approval = $2 WHERE id = $1`, int64(unit), required); err != nil {
			return fmt.Errorf("reply approval of unit %d: %w", unit, err)
		}
		if err := org.WriteAdminAudit(ctx, tx, a, src, org.AdminUnitReplyApproval, fmt.Sprintf("unit:%d", unit),
			map[string]bool{"reply_approval": before}, map[string]bool{"reply_approval": required}); err != nil {
			return err
		}
		return Publish(ctx, tx, "unit.reply_approval", fmt.Sprint(unit), map[string]any{"unit_id": unit, "required": required, "actor_id": a.UserID})
	})
}

// AuthorizeReplyApproval: a unit's own users, supervisors and admins may read its reply-approval setting;
// admins and the unit's heads may change it.
func AuthorizeReplyApproval(a org.Actor, unit org.UnitID, change bool) error {
	own := a.UnitID != 0 && a.UnitID == unit
	ok := a.Role == org.RoleAdmin || (change && a.Role == org.RoleHead && own) ||
		(!change && (own || a.Role == org.RoleSupervisor))
	if !ok {
		return fmt.Errorf("reply approval of unit %d: %w", unit, org.ErrForbidden)
	}
	return nil
}

// ReplyApproval reports whether the unit's replies need a head's approval.
func (s *Service) ReplyApproval(ctx context.Context, a org.Actor, unit org.UnitID) (bool, error) {
	if err := AuthorizeReplyApproval(a, unit, false); err != nil {
		return false, err
	}
	var on bool
	err := s.db.QueryRow(ctx, `SELECT reply_approval FROM units WHERE id = $1`, int64(unit)).Scan(&on)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("unit %d: %w", unit, org.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("reply approval of unit %d: %w", unit, err)
	}
	return on, nil
}

// beyondCalendar reports whether a deadline of the ticket lies past the last year of the holiday calendar.
func (s *Service) beyondCalendar(t Ticket) bool {
	limit := time.Date(s.calendarLastYear()+1, 1, 1, 0, 0, 0, 0, calendar.CST)
	for _, d := range []*time.Time{t.SignBy, t.ReplyBy, t.CallbackBy, t.DueAt} {
		if d != nil && d.After(limit) {
			return true
		}
	}
	return false
}

func (s *Service) calendarLastYear() int {
	_, last := s.Calendar().Years()
	return last
}

// CalendarStatus says how far the holiday calendar reaches; from 1 October it warns when next year is missing
// (the State Council publishes it in October or November).
type CalendarStatus struct {
	FirstYear       int    `json:"first_year"`
	LastYear        int    `json:"last_year"`
	NextYearMissing bool   `json:"next_year_missing"`
	Warning         string `json:"warning,omitempty"`
}

// CalendarStatus reports the calendar's horizon at the service's now.
func (s *Service) CalendarStatus() CalendarStatus {
	first, last := s.Calendar().Years()
	st := CalendarStatus{FirstYear: first, LastYear: last}
	now := s.now().In(calendar.CST)
	switch {
	case last < now.Year():
		st.NextYearMissing = true
		st.Warning = fmt.Sprintf("节假日日历只到%d年，今年（%d年）的节假日未载入：期限只按周末计算。请用 HOTLINE_HOLIDAYS_FILE 载入国务院办公厅公布的安排。", last, now.Year())
	case now.Month() >= time.October && last < now.Year()+1:
		st.NextYearMissing = true
		st.Warning = fmt.Sprintf("节假日日历只到%d年，%d年的节假日尚未载入：跨年期限只按周末计算并在工单上标记。国务院办公厅公布后请用 HOTLINE_HOLIDAYS_FILE 载入。", last, now.Year()+1)
	}
	return st
}

// AuthorizeCalendar: the calendar's status is for admins (who load a newer one).
func AuthorizeCalendar(a org.Actor) error {
	if a.Role != org.RoleAdmin {
		return fmt.Errorf("calendar status: %w", org.ErrForbidden)
	}
	return nil
}

// warnCalendar logs the calendar warning at most once a day (the sweeper calls it on every round).
func (s *Service) warnCalendar() {
	st := s.CalendarStatus()
	if !st.NextYearMissing {
		return
	}
	day := s.now().In(calendar.CST).Format("2006-01-02")
	s.cacheMu.Lock()
	seen := s.calWarned == day
	s.calWarned = day
	s.cacheMu.Unlock()
	if !seen {
		s.log.Warn("holiday calendar: next year missing", "calendar_until", st.LastYear, "warning", st.Warning)
	}
}

// CalendarCollector is the gauge hotline_calendar_next_year_missing: 1 while the warning stands.
func (s *Service) CalendarCollector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_calendar_next_year_missing",
		Help: "1 when the holiday calendar lacks the next year from 1 October (or lacks this year)."},
		func() float64 {
			if s.CalendarStatus().NextYearMissing {
				return 1
			}
			return 0
		})
}

package ticketing

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// View hides what the actor may not see: the identity of a confidential report's caller (shown only to the
// discipline-inspection unit, supervisors and holders of the confidential permission), the full phone number
// (masked without reveal_pii) and the caller's query code (agents and admins only).
func (s *Service) View(ctx context.Context, t Ticket, a org.Actor) Ticket {
	if t.Confidential && !a.Can(org.PermConfidential) && a.Role != org.RoleSupervisor {
		disc, err := s.unitByCodeCached(ctx, s.db, "div-discipline")
		if err != nil || a.UnitID != disc.ID {
			t.CallerName, t.CallerPhone = "", ""
		}
	}
	if t.CallerPhone != "" && !a.Can(org.PermRevealPII) {
		t.CallerPhone = phone.Mask(t.CallerPhone)
	}
	if a.Role != org.RoleAgent && a.Role != org.RoleAdmin {
		t.QueryCode = ""
	}
	return t
}

// Get returns a ticket as the actor may see it.
func (s *Service) Get(ctx context.Context, a org.Actor, id org.TicketID) (Ticket, error) {
	t, err := getTicket(ctx, s.db, id, false)
	if err != nil {
		return Ticket{}, err
	}
	if err := s.Authorize(ctx, a, ActRead, t); err != nil {
		return Ticket{}, err
	}
	return s.View(ctx, t, a), nil
}

// Filter selects tickets for List. Zero fields do not filter.
type Filter struct {
	UnitID       org.UnitID
	Status       []Status
	Kind         Kind
	Category     string
	RegionPrefix string
	Overdue      bool // the running clock is past its deadline
	Yellow       bool // the running clock is yellow (not yet red)
	Text         string
	From, To     time.Time // created_at range [From, To)
	HouseholdID  int64
	DueToday     bool // the running clock ends between now and midnight China time (not yet overdue)
	Pressed      bool // supervised (督办) or urged (催办) at least once
	CoHandling   bool // the actor's unit co-handles (协办) rather than leads
	SentBack     bool // 被退回: returned to the desk (the desk's list) or reopened after an unsatisfied callback (重办)
	Phone        string
	CallerName   string
	// ByDeadline orders by the running clock's deadline, soonest first (tickets without one last) instead of
	// newest first; pages are then not cursored (Limit only).
	ByDeadline bool
	Before     org.TicketID // page: tickets with a smaller id (newest first)
	Limit      int          // default 50, at most 200
}

// endOfToday is the next midnight in China time after now.
func endOfToday(now time.Time) time.Time {
	n := now.In(calendar.CST)
	return time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, calendar.CST)
}

// List returns tickets newest first, and the cursor for the next page (0: none).
func (s *Service) List(ctx context.Context, a org.Actor, f Filter) ([]Ticket, org.TicketID, error) {
	// An unknown filter value is a mistake to report, not a filter that silently matches nothing.
	bad := &org.ValidationError{}
	for _, st := range f.Status {
		if !slices.Contains(Statuses, st) {
			bad.Add("status", fmt.Sprintf("unknown status %q", st))
		}
	}
	if f.Kind != "" && !validKind(f.Kind) {
		bad.Add("kind", fmt.Sprintf("unknown kind %q", f.Kind))
	}
	if f.Category != "" {
		if _, err := s.category(ctx, s.db, f.Category); errors.Is(err, org.ErrNotFound) {
			bad.Add("category", fmt.Sprintf("unknown category %q", f.Category))
		} else if err != nil {
			return nil, 0, err
		}
	}
	if f.RegionPrefix != "" && (!strings.HasPrefix(f.RegionPrefix, "43") || strings.Trim(f.RegionPrefix, "0123456789") != "") {
		bad.Add("region", "a prefix of a Hunan region code (digits)")
	}
	if err := bad.Err(); err != nil {
		return nil, 0, err
	}
	var where []string
	var args []any
	var match, tsq string // the search's tsquery and its parameter, if any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// units: whose tickets hold every ticket the list may show, for a search (search.go): the unit filtered on
	// (the lead unit is one of a ticket's units), else the user's scope's units, if it has any.
	var units []org.UnitID
	if a.Role == org.RoleStaff || a.Role == org.RoleHead {
		if f.UnitID != 0 && f.UnitID != a.UnitID && !s.oversees(ctx, s.db, a.UnitID, f.UnitID) {
			return nil, 0, fmt.Errorf("list tickets of unit %d: %w", f.UnitID, org.ErrForbidden)
		}
		if f.UnitID != 0 {
			// Their own unit (or, for a prefecture bureau, one of its counties) named: the tickets it leads.
			where = append(where, "lead_unit_id = "+arg(int64(f.UnitID)))
			units = []org.UnitID{f.UnitID}
		}
	} else if f.UnitID != 0 {
		where = append(where, "lead_unit_id = "+arg(int64(f.UnitID)))
		units = []org.UnitID{f.UnitID}
	}
	if cond := s.readableSQL(ctx, a, arg); cond != "" {
		where = append(where, cond)
	}
	if len(f.Status) > 0 {
		ss := make([]string, len(f.Status))
		for i, st := range f.Status {
			ss[i] = string(st)
		}
		where = append(where, "status = ANY("+arg(ss)+")")
	}
	if f.Kind != "" {
		where = append(where, "kind = "+arg(string(f.Kind)))
	}
	if f.Category != "" {
		where = append(where, "category = "+arg(f.Category))
	}
	if f.RegionPrefix != "" {
		where = append(where, "region_code LIKE "+arg(org.EscapeLike(f.RegionPrefix)+"%"))
	}
	now := s.now()
	if f.Overdue {
		where = append(where, "due_at <= "+arg(now))
	}
	if f.Yellow {
		p := arg(now)
		where = append(where, "yellow_at <= "+p+" AND due_at > "+p)
	}
	if t := strings.TrimSpace(f.Text); t != "" {
		// Full text through the ticket_search index (search.go; the number is in it too), or the number exactly
		// when nothing searchable was typed.
		if tsq = SearchQuery(t); tsq != "" {
			match = arg(tsq) + "::tsquery"
		} else {
			where = append(where, "number = "+arg(t))
		}
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < "+arg(f.To))
	}
	if f.HouseholdID != 0 {
		where = append(where, "household_id = "+arg(f.HouseholdID))
	}
	if f.DueToday {
		where = append(where, "due_at >= "+arg(now)+" AND due_at < "+arg(endOfToday(now)))
	}
	if f.SentBack {
		where = append(where, sentBack)
	}
	if f.Pressed {
		where = append(where, "(supervised OR urge_count > 0)")
	}
	if f.CoHandling {
		if a.UnitID == 0 {
			return nil, 0, org.Invalid("co_handling", "only for a unit's users")
		}
		p := arg(int64(a.UnitID))
		where = append(where, "lead_unit_id <> "+p+" AND "+p+" = ANY(co_unit_ids)")
	}
	if f.Phone != "" {
		n, _, err := phone.Normalize(f.Phone)
		if err != nil {
			return nil, 0, org.Invalid("phone", "not a phone number")
		}
		where = append(where, "caller_phone = "+arg(n))
	}
	if f.CallerName != "" {
		where = append(where, "caller_name = "+arg(strings.TrimSpace(f.CallerName)))
	}
	if (f.Phone != "" || f.CallerName != "") && !a.Can(org.PermConfidential) && a.Role != org.RoleSupervisor {
		// Finding a confidential report by its caller would disclose who reported; View hides the identity,
		// so the search must not match on it either.
		where = append(where, "NOT confidential")
	}
	if f.Before != 0 && !f.ByDeadline {
		where = append(where, "id < "+arg(int64(f.Before)))
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var ts []Ticket
	var err error
	if match != "" && !f.ByDeadline {
		if units == nil {
			if units, err = s.scopeUnits(ctx, a); err != nil {
				return nil, 0, err
			}
		}
		ts, err = s.search(ctx, where, args, match, tsq, f.Limit+1, units, f.Before)
	} else {
		if match != "" {
			where = append(where, "id IN (SELECT ticket_id FROM ticket_search WHERE words @@ "+match+")")
		}
		q := `SELECT ` + ticketColumns + ` FROM tickets`
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		if f.ByDeadline {
			q += " ORDER BY due_at ASC NULLS LAST, id DESC LIMIT " + arg(f.Limit+1)
		} else {
			q += " ORDER BY id DESC LIMIT " + arg(f.Limit+1)
		}
		ts, err = s.query(ctx, q, args)
	}
	if err != nil {
		return nil, 0, err
	}
	var next org.TicketID
	if len(ts) > f.Limit {
		ts = ts[:f.Limit]
		if !f.ByDeadline {
			next = ts[len(ts)-1].ID
		}
	}
	for i := range ts {
		ts[i] = s.View(ctx, ts[i], a)
	}
	return ts, next, nil
}

// Events returns a ticket's history, oldest first.
func (s *Service) Events(ctx context.Context, a org.Actor, id org.TicketID) ([]Event, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	return listEvents(ctx, s.db, id)
}

func listEvents(ctx context.Context, db org.DB, id org.TicketID) ([]Event, error) {
	rows, err := db.Query(ctx, `SELECT id, ticket_id, at, coalesce(actor_id, 0), actor_name, actor_role, action,
			from_status, to_status, note, data
		FROM ticket_events WHERE ticket_id = $1 ORDER BY id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("events of ticket %d: %w", id, err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		err := row.Scan(&e.ID, &e.TicketID, &e.At, &e.ActorID, &e.ActorName, &e.ActorRole, &e.Action, &e.From, &e.To, &e.Note, &e.Data)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of ticket %d: %w", id, err)
	}
	return evs, nil
}

// Duplicates returns merge suggestions for a ticket: open tickets from the same phone or household with the
// same category created in the last DuplicateDays days.
func (s *Service) Duplicates(ctx context.Context, a org.Actor, id org.TicketID) ([]Ticket, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	raw, err := getTicket(ctx, s.db, id, false)
	if err != nil {
		return nil, err
	}
	return s.DuplicatesFor(ctx, a, raw)
}

// DuplicatesFor is Duplicates for a ticket the caller holds unredacted (as Create returns it), in one query; for
// a ticket fresh from Create that found none, in none.
func (s *Service) DuplicatesFor(ctx context.Context, a org.Actor, t Ticket) ([]Ticket, error) {
	if (t.CallerPhone == "" && t.HouseholdID == nil) || (t.DuplicateIDs != nil && len(t.DuplicateIDs) == 0) {
		return []Ticket{}, nil
	}
	since := s.now().AddDate(0, 0, -s.opt.DuplicateDays)
	rows, err := s.db.Query(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE id <> $1 AND id IN (`+duplicateCandidates("$4", "$5::bigint", "$2", "$3")+`)
		ORDER BY id DESC LIMIT 20`, int64(t.ID), t.Category, since, t.CallerPhone, t.HouseholdID)
	if err != nil {
		return nil, fmt.Errorf("duplicates of ticket %d: %w", t.ID, err)
	}
	ts, err := pgx.CollectRows(rows, scanTicket)
	if err != nil {
		return nil, fmt.Errorf("duplicates of ticket %d: %w", t.ID, err)
	}
	// A confidential report never shows as a suggestion to someone who may not know who made it: the suggestion
	// alone would confirm that this phone or household reported someone.
	conf := s.maySeeConfidential(ctx, a)
	out := []Ticket{}
	for _, d := range ts {
		if (conf || !d.Confidential) && s.mayRead(ctx, a, d) {
			out = append(out, s.View(ctx, d, a))
		}
	}
	return out, nil
}

// Progress is what the public progress query shows: no personal data, only the state and the replies (the
// interim ones, 阶段性答复, marked interim).
type Progress struct {
	Number    string          `json:"number"`
	Status    Status          `json:"status"`
	Suspended bool            `json:"suspended"`  // 挂起中
	StateText string          `json:"state_text"` // the state in words for the caller, e.g. 挂起中
	Kind      Kind            `json:"kind"`
	Category  string          `json:"category"`
	CreatedAt time.Time       `json:"created_at"`
	ClosedAt  *time.Time      `json:"closed_at,omitempty"`
	Replies   []ProgressReply `json:"replies"`
}

// ProgressReply is one reply to the caller.
type ProgressReply struct {
	At      time.Time `json:"at"`
	Text    string    `json:"text"`
	Interim bool      `json:"interim,omitempty"` // 阶段性答复: the matter is still being handled
}

// progressText is the state of a ticket in the caller's words.
func progressText(t Ticket) string {
	if t.SuspendStatus == "suspended" {
		return "挂起中"
	}
	switch t.Status {
	case StatusNew, StatusReturned:
		return "已受理"
	case StatusDispatched, StatusSigned:
		return "办理中"
	case StatusReplied, StatusCallback:
		return "已答复"
	}
	return "已办结"
}

// PublicProgress answers the caller's query by ticket number and query code. A wrong code and an unknown number
// are the same ErrNotFound, so numbers cannot be probed.
func (s *Service) PublicProgress(ctx context.Context, number, code string) (Progress, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE number = $1`, number)
	if err != nil {
		return Progress{}, fmt.Errorf("progress query: %w", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTicket)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare([]byte(t.QueryCode), []byte(code)) != 1) {
		return Progress{}, fmt.Errorf("progress query: %w", org.ErrNotFound)
	}
	if err != nil {
		return Progress{}, fmt.Errorf("progress query: %w", err)
	}
	p := Progress{Number: t.Number, Status: t.Status, Kind: t.Kind, Category: t.Category, CreatedAt: t.CreatedAt,
		ClosedAt: t.ClosedAt, Replies: []ProgressReply{}, Suspended: t.SuspendStatus == "suspended", StateText: progressText(t)}
	evs, err := listEvents(ctx, s.db, t.ID)
	if err != nil {
		return Progress{}, err
	}
	for _, e := range evs {
		if e.Action == string(ActReply) || e.Action == string(ActCloseFirstContact) || e.Action == string(ActInterimReply) {
			if text, ok := e.Data["reply"].(string); ok {
				p.Replies = append(p.Replies, ProgressReply{At: e.At, Text: text, Interim: e.Action == string(ActInterimReply)})
			}
		}
	}
	return p, nil
}

// MergedFrom returns the duplicates merged into a ticket (the other direction of Ticket.MergedInto).
func (s *Service) MergedFrom(ctx context.Context, a org.Actor, id org.TicketID) ([]org.TicketID, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM tickets WHERE merged_into = $1 ORDER BY id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("merged into ticket %d: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[org.TicketID])
	if err != nil {
		return nil, fmt.Errorf("merged into ticket %d: %w", id, err)
	}
	return ids, nil
}

// duplicateCandidates is the SQL of merge suggestions: open tickets of the same category from the same phone or
// household since a time, newest first, at most 21 (one more than shown, as the ticket itself may be among
// them). Each branch walks its own index (phone, household) so the cost does not grow with the table; one query
// with OR between the two would walk the primary key over every ticket.
func duplicateCandidates(phone, household, category, since string) string {
	return `SELECT id FROM (
		(SELECT id FROM tickets WHERE caller_phone = ` + phone + ` AND caller_phone <> '' AND category = ` + category + `
			AND status <> 'closed' AND created_at >= ` + since + ` ORDER BY created_at DESC LIMIT 21)
		UNION
		(SELECT id FROM tickets WHERE household_id = ` + household + ` AND category = ` + category + `
			AND status <> 'closed' AND created_at >= ` + since + ` ORDER BY created_at DESC LIMIT 21)
	) d ORDER BY id DESC LIMIT 20`
}

// sentBack selects what came back to its unit: a ticket returned to the desk, or one reopened for rework.
const sentBack = "(status = 'returned' OR (reopen_count > 0 AND status IN ('dispatched', 'signed')))"

// Counts are the division console's list sizes for the actor's unit.
type Counts struct {
	Unsigned   int `json:"unsigned"`    // 待签收: dispatched, waiting to be signed for
	DueToday   int `json:"due_today"`   // 今日到期: the running clock ends today (not yet overdue)
	Overdue    int `json:"overdue"`     // 已超期
	Returned   int `json:"returned"`    // 被退回: returned to the desk, or reopened for rework (重办)
	Pressed    int `json:"pressed"`     // 督办/催办
	CoHandling int `json:"co_handling"` // 协办
}

// UnitCounts counts the open tickets of the actor's unit by console list, in one statement.
func (s *Service) UnitCounts(ctx context.Context, a org.Actor) (Counts, error) {
	var c Counts
	if a.UnitID == 0 {
		return c, fmt.Errorf("ticket counts: %w: the user belongs to no unit", org.ErrForbidden)
	}
	now := s.now()
	err := s.db.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE lead_unit_id = $1 AND status = 'dispatched'),
			count(*) FILTER (WHERE lead_unit_id = $1 AND due_at >= $2 AND due_at < $3),
			count(*) FILTER (WHERE lead_unit_id = $1 AND due_at < $2),
			count(*) FILTER (WHERE lead_unit_id = $1 AND `+sentBack+`),
			count(*) FILTER (WHERE lead_unit_id = $1 AND (supervised OR urge_count > 0)),
			count(*) FILTER (WHERE lead_unit_id <> $1)
		FROM tickets WHERE status <> 'closed' AND (lead_unit_id = $1 OR $1 = ANY(co_unit_ids))`,
		int64(a.UnitID), now, endOfToday(now)).Scan(&c.Unsigned, &c.DueToday, &c.Overdue, &c.Returned, &c.Pressed, &c.CoHandling)
	if err != nil {
		return c, fmt.Errorf("ticket counts of unit %d: %w", a.UnitID, err)
	}
	return c, nil
}

// Suggest returns the merge suggestions for a ticket not yet created (the agent's form while typing): open
// tickets of the same category from the same phone or household, as DuplicatesFor finds them.
func (s *Service) Suggest(ctx context.Context, a org.Actor, callerPhone string, householdID *int64, category string) ([]Ticket, error) {
	if callerPhone != "" {
		n, _, err := phone.Normalize(callerPhone)
		if err != nil {
			return nil, org.Invalid("phone", "not a phone number")
		}
		callerPhone = n
	}
	return s.DuplicatesFor(ctx, a, Ticket{CallerPhone: callerPhone, HouseholdID: householdID, Category: category})
}

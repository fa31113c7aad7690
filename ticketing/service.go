package ticketing

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"hotline/ticketing/region"
)

// Options configure a Service; the zero value gives the documented defaults.
type Options struct {
	Calendar      *calendar.Calendar // default: the embedded calendar
	SLA           SLAConfig
	DuplicateDays int          // look-back for merge suggestions; default 30
	Log           *slog.Logger // default: discard
	// Kick, if set, is called after a transaction that wrote outbox rows commits, so a relay in this process
	// publishes at once instead of at its next poll.
	Kick func()
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// TransitionHook runs inside the transaction of every ticket action (create included), after the change and
// its event are written. An error rolls the whole action back.
type TransitionHook func(ctx context.Context, tx pgx.Tx, t Ticket, ev Event) error

// Service is the work-order lifecycle: create, the actions of the state machine, reads. Every change is one
// transaction holding the ticket row, its event and its outbox rows.
type Service struct {
	db    org.TxBeginner
	opt   Options
	cal   *calendar.Calendar
	log   *slog.Logger
	now   func() time.Time
	hooks []TransitionHook
	// outcomes holds, per category, the words a reply must carry as its outcome; the package that acts on
	// them registers them (monitoring for monitoring_verify), so ticketing does not know their meaning.
	outcomes map[string][]string

	cacheMu sync.Mutex
	rules   *ruleCache
	units   map[string]org.Unit
	cats    map[string]Category
	catsAt  time.Time

	numMu   sync.Mutex
	numDay  string
	numNext int
	numLast int
}

// NewService returns the ticket service on db (a pool).
func NewService(db org.TxBeginner, opt Options) *Service {
	if opt.Calendar == nil {
		opt.Calendar = calendar.Default()
	}
	if opt.DuplicateDays <= 0 {
		opt.DuplicateDays = 30
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.SLA = opt.SLA.withDefaults()
	return &Service{db: db, opt: opt, cal: opt.Calendar, log: opt.Log, now: opt.Now}
}

// OnTransition registers a hook; register hooks at wiring time, before the service is used.
func (s *Service) OnTransition(h TransitionHook) { s.hooks = append(s.hooks, h) }

// RequireOutcome makes a reply to a ticket of category carry one of words as its outcome; replies to other
// categories carry none. Register at wiring time, before the service is used.
func (s *Service) RequireOutcome(category string, words []string) {
	if s.outcomes == nil {
		s.outcomes = map[string][]string{}
	}
	s.outcomes[category] = words
}

// Calendar returns the working-day calendar the service counts deadlines on.
func (s *Service) Calendar() *calendar.Calendar { return s.cal }

func (s *Service) kick() {
	if s.opt.Kick != nil {
		s.opt.Kick()
	}
}

// Create validates, numbers, routes and stores a new ticket in a transaction of its own.
func (s *Service) Create(ctx context.Context, a org.Actor, nt NewTicket) (Ticket, error) {
	var t Ticket
	var err error
	if len(s.hooks) == 0 {
		// Without hooks the ticket, its events and outbox rows are one statement: atomic without a transaction
		// block, and one round trip.
		t, err = s.create(ctx, s.db, nil, a, nt)
	} else {
		err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			var err error
			t, err = s.create(ctx, tx, tx, a, nt)
			return err
		})
	}
	if err != nil {
		return Ticket{}, err
	}
	if !t.Replayed {
		s.kick()
	}
	return t, nil
}

// CreateTx creates the ticket inside the caller's transaction, so a voicemail or a campaign answer and its ticket
// commit together. With an IdempotencyKey that this actor used before, it returns the earlier ticket (Replayed).
func (s *Service) CreateTx(ctx context.Context, tx pgx.Tx, a org.Actor, nt NewTicket) (Ticket, error) {
	return s.create(ctx, tx, tx, a, nt)
}

// create writes the ticket through db; hooks run in hookTx (nil only when there are no hooks).
func (s *Service) create(ctx context.Context, tx org.DB, hookTx pgx.Tx, a org.Actor, nt NewTicket) (Ticket, error) {
	if err := AuthorizeCreate(a, nt.Dispatch); err != nil {
		return Ticket{}, err
	}
	if err := s.validateNew(ctx, tx, &nt); err != nil {
		return Ticket{}, err
	}
	now := s.now()
	number, err := s.nextNumber(ctx, now)
	if err != nil {
		return Ticket{}, err
	}
	desk, err := s.unitByCodeCached(ctx, tx, org.CodeDesk)
	if err != nil {
		return Ticket{}, fmt.Errorf("create ticket: dispatch desk: %w", err)
	}
	rt, err := s.route(ctx, tx, routeInput{Kind: nt.Kind, Category: nt.Category, RegionCode: nt.RegionCode,
		HasHousehold: nt.HouseholdID != nil, Content: nt.Content})
	if err != nil {
		return Ticket{}, err
	}
	t := Ticket{Number: number, QueryCode: queryCode(), Source: nt.Source, CallerName: nt.CallerName,
		CallerPhone: nt.CallerPhone, RegionCode: nt.RegionCode, HouseholdID: nt.HouseholdID, Kind: nt.Kind,
		Category: nt.Category, Urgency: nt.Urgency, Content: nt.Content, Confidential: nt.Confidential,
		Status: StatusNew, LeadUnitID: desk.ID, CoUnitIDs: []org.UnitID{}, ExtensionStatus: "none", CreatedBy: a.UserID,
		CreatedAt: now, UpdatedAt: now}
	if rt.UnitID != 0 {
		ru := rt.UnitID
		t.RouteUnitID = &ru
	}
	if rt.RuleID != 0 {
		rid, rv := rt.RuleID, rt.RuleVersion
		t.RouteRuleID, t.RouteRuleVersion = &rid, &rv
	}
	createData := map[string]any{"source": t.Source, "category": t.Category, "kind": t.Kind}
	if rt.UnitID != 0 {
		createData["route_unit_id"], createData["route_rule_id"], createData["route_rule_version"] = rt.UnitID, rt.RuleID, rt.RuleVersion
	}
	// Dispatching at intake is the common path (12345 imports, campaigns): the ticket is written dispatched at
	// once, with both events, instead of being inserted and then updated.
	dispatch := nt.Dispatch && rt.UnitID != 0 && rt.UnitID != desk.ID
	var dispatchData map[string]any
	if dispatch {
		cat, err := s.category(ctx, tx, t.Category)
		if err != nil {
			return Ticket{}, err
		}
		dispatchData = s.applyDispatch(&t, rt.UnitID, []org.UnitID{}, rt, cat, now)
	}
	t.Version = 1
	pes := []pendingEvent{{action: "create", from: StatusNew, to: StatusNew, data: createData, topic: "ticket.created",
		// A new ticket waits in the desk's queue until it is dispatched.
		q: &queueOps{Add: &queueAdd{Unit: desk.ID, Urgent: t.Urgency == UrgencyUrgent, Seq: t.Version}}}}
	if dispatch {
		pes[0].q = nil
		pes = append(pes, pendingEvent{action: string(ActDispatch), from: StatusNew, to: StatusDispatched, data: dispatchData,
			topic: "ticket." + string(ActDispatch), q: &queueOps{Add: &queueAdd{Unit: t.LeadUnitID, Urgent: t.Urgency == UrgencyUrgent, Seq: t.Version}}})
	}
	t, evs, err := s.insertTicket(ctx, tx, t, nt.IdempotencyKey, a, pes)
	if errors.Is(err, errReplay) { // the idempotency key was used before: hand back that ticket
		rows, err := tx.Query(ctx, `SELECT `+ticketColumns+` FROM tickets
			WHERE coalesce(created_by, 0) = $1 AND idempotency_key = $2`, int64(a.UserID), nt.IdempotencyKey)
		if err != nil {
			return Ticket{}, fmt.Errorf("create ticket: replay: %w", err)
		}
		t, err := pgx.CollectExactlyOneRow(rows, scanTicket)
		if err != nil {
			return Ticket{}, fmt.Errorf("create ticket: replay: %w", err)
		}
		if !sameRequest(t, nt) {
			return Ticket{}, fmt.Errorf("create ticket: key %q: %w", nt.IdempotencyKey, ErrIdempotencyKeyReused)
		}
		t.Replayed = true
		return t, nil
	}
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.ConstraintName == "tickets_household_fk" {
			return Ticket{}, org.Invalid("household_id", "the household does not exist")
		}
		return Ticket{}, fmt.Errorf("create ticket: %w", err)
	}
	for _, ev := range evs {
		if err := s.runHooks(ctx, hookTx, t, ev); err != nil {
			return Ticket{}, err
		}
	}
	return t, nil
}

var errReplay = errors.New("idempotency key used before")

// insertTicket writes the ticket, its events and their outbox rows in one statement (data-modifying CTEs). With
// an idempotency key used before, nothing is written and errReplay is returned.
func (s *Service) insertTicket(ctx context.Context, db org.DB, t Ticket, idemKey string, a org.Actor, pes []pendingEvent) (Ticket, []Event, error) {
	var idem, createdBy any
	if idemKey != "" {
		idem = idemKey
	}
	if t.CreatedBy != 0 {
		createdBy = int64(t.CreatedBy)
	}
	co := make([]int64, len(t.CoUnitIDs))
	for i, c := range t.CoUnitIDs {
		co[i] = int64(c)
	}
	args := []any{t.Number, t.QueryCode, string(t.Source), t.CallerName, t.CallerPhone, t.RegionCode, t.HouseholdID,
		string(t.Kind), t.Category, string(t.Urgency), t.Content, t.Confidential, string(t.Status), int64(t.LeadUnitID), co,
		t.RouteUnitID, t.RouteRuleID, t.RouteRuleVersion, t.SignBy, t.ReplyBy, t.DueKind, t.DueAt, t.YellowAt,
		t.DispatchedAt, idem, createdBy, t.CreatedAt}
	p := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	name := a.Name
	if name == "" {
		name = a.Username
	}
	var actorID any
	if a.UserID != 0 {
		actorID = int64(a.UserID)
	}
	at := s.now().UTC().Format(time.RFC3339Nano)
	var evVals, obVals []string
	evs := make([]Event, len(pes))
	for i, pe := range pes {
		if pe.data == nil {
			pe.data = map[string]any{}
		}
		evs[i] = Event{ActorID: a.UserID, ActorName: name, ActorRole: a.Role, Action: pe.action, From: pe.from, To: pe.to, Note: pe.note, Data: pe.data}
		evVals = append(evVals, fmt.Sprintf("(%d, %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::jsonb)",
			i, p(actorID), p(name), p(string(a.Role)), p(pe.action), p(string(pe.from)), p(string(pe.to)), p(pe.note), p(pe.data)))
		msg := ticketMessage{Number: t.Number, Action: pe.action, From: pe.from, Status: pe.to, Kind: t.Kind,
			Category: t.Category, Urgency: t.Urgency, LeadUnitID: t.LeadUnitID, CoUnitIDs: t.CoUnitIDs,
			RegionCode: t.RegionCode, Household: t.HouseholdID, Version: t.Version, ActorID: a.UserID, At: at}
		payload, err := json.Marshal(msg)
		if err != nil {
			return Ticket{}, nil, err
		}
		var q any
		if pe.q != nil {
			if q, err = json.Marshal(pe.q); err != nil {
				return Ticket{}, nil, err
			}
		}
		obVals = append(obVals, fmt.Sprintf("(%d, %s::text, %s::jsonb, %s::jsonb)", i, p(pe.topic), p(payload), p(q)))
	}
	rows, err := db.Query(ctx, `WITH t AS (
			INSERT INTO tickets (number, query_code, source, caller_name, caller_phone, region_code,
				household_id, kind, category, urgency, content, confidential, status, lead_unit_id, co_unit_ids,
				route_unit_id, route_rule_id, route_rule_version, sign_by, reply_by, due_kind, due_at, yellow_at,
				dispatched_at, idempotency_key, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
				$23, $24, $25, $26, $27, $27)
			ON CONFLICT (coalesce(created_by, 0), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING *
		), e AS (
			INSERT INTO ticket_events (ticket_id, actor_id, actor_name, actor_role, action, from_status, to_status, note, data)
			SELECT t.id, v.actor_id, v.actor_name, v.actor_role, v.action, v.from_status, v.to_status, v.note, v.data
			FROM t CROSS JOIN (VALUES `+strings.Join(evVals, ", ")+`) AS v(ord, actor_id, actor_name, actor_role, action, from_status, to_status, note, data)
			ORDER BY v.ord
			RETURNING id, at
		), o AS (
			INSERT INTO outbox (topic, key, payload, queue)
			SELECT v.topic, t.id::text, v.payload || jsonb_build_object('ticket_id', t.id),
				CASE WHEN v.queue IS NULL THEN NULL ELSE v.queue || jsonb_build_object('ticket', t.id) END
			FROM t CROSS JOIN (VALUES `+strings.Join(obVals, ", ")+`) AS v(ord, topic, payload, queue)
			ORDER BY v.ord
		), dup AS (
			-- merge suggestions, read from the snapshot before this insert (DuplicatesFor has the same rule)
			`+duplicateCandidates("$5", "$7::bigint", "$9", p(t.CreatedAt.AddDate(0, 0, -s.opt.DuplicateDays)))+`
		)
		SELECT `+ticketColumns+`, (SELECT array_agg(id ORDER BY id) FROM e), (SELECT array_agg(at ORDER BY id) FROM e),
			(SELECT coalesce(array_agg(id), '{}') FROM dup) FROM t`, args...)
	if err != nil {
		return Ticket{}, nil, err
	}
	var ids []int64
	var ats []time.Time
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Ticket, error) {
		var t Ticket
		var co []int64
		err := row.Scan(&t.ID, &t.Number, &t.QueryCode, &t.Source, &t.CallerName, &t.CallerPhone, &t.RegionCode,
			&t.HouseholdID, &t.Kind, &t.Category, &t.Urgency, &t.Content, &t.Confidential, &t.Status, &t.LeadUnitID,
			&co, &t.AssigneeID, &t.RouteUnitID, &t.RouteRuleID, &t.RouteRuleVersion, &t.SignBy, &t.ReplyBy,
			&t.CallbackBy, &t.DueKind, &t.DueAt, &t.YellowAt, &t.ExtensionStatus, &t.ExtensionDays, &t.UrgeCount,
			&t.Supervised, &t.ReplyText, &t.Outcome, &t.Satisfaction, &t.ReopenCount, &t.MergedInto, &t.CreatedBy,
			&t.CreatedAt, &t.UpdatedAt, &t.DispatchedAt, &t.ClosedAt, &t.Version, &ids, &ats, &t.DuplicateIDs)
		t.CoUnitIDs = make([]org.UnitID, len(co))
		for i, c := range co {
			t.CoUnitIDs[i] = org.UnitID(c)
		}
		return t, err
	})
	if err != nil {
		return Ticket{}, nil, err
	}
	if len(ts) == 0 {
		return Ticket{}, nil, errReplay
	}
	if len(ids) != len(evs) || len(ats) != len(evs) {
		return Ticket{}, nil, fmt.Errorf("create ticket: %d events written, want %d", len(ids), len(evs))
	}
	for i := range evs {
		evs[i].ID, evs[i].At, evs[i].TicketID = ids[i], ats[i], ts[0].ID
	}
	return ts[0], evs, nil
}

func (s *Service) validateNew(ctx context.Context, db org.DB, nt *NewTicket) error {
	v := &org.ValidationError{}
	if nt.Source == "" {
		nt.Source = SourceAPI
	}
	if !validSource(nt.Source) {
		v.Add("source", "one of phone, voicemail, campaign, web, api, 12345")
	}
	if !validKind(nt.Kind) {
		v.Add("kind", "one of consultation, help, complaint, report, suggestion")
	}
	if nt.Urgency == "" {
		nt.Urgency = UrgencyNormal
	}
	if nt.Urgency != UrgencyNormal && nt.Urgency != UrgencyUrgent {
		v.Add("urgency", "normal or urgent")
	}
	nt.Content = strings.TrimSpace(nt.Content)
	switch n := utf8.RuneCountInString(nt.Content); {
	case n == 0:
		v.Add("content", "required")
	case n > 10000:
		v.Add("content", "at most 10000 characters")
	}
	nt.CallerName = strings.TrimSpace(nt.CallerName)
	if utf8.RuneCountInString(nt.CallerName) > 100 {
		v.Add("caller_name", "at most 100 characters")
	}
	if strings.TrimSpace(nt.CallerPhone) != "" {
		p, _, err := phone.Normalize(nt.CallerPhone)
		if err != nil {
			v.Add("caller_phone", "not a valid phone number")
		}
		nt.CallerPhone = p
	}
	if nt.RegionCode != "" {
		if _, ok := region.Lookup(nt.RegionCode); !ok || !strings.HasPrefix(nt.RegionCode, "43") {
			v.Add("region_code", "not a Hunan region code")
		}
	}
	if nt.HouseholdID != nil && *nt.HouseholdID <= 0 {
		v.Add("household_id", "a household id (positive)")
	}
	if nt.Confidential && nt.Kind != KindReport {
		v.Add("confidential", "only a report (举报) can be confidential")
	}
	if len(nt.IdempotencyKey) > 200 {
		v.Add("idempotency_key", "at most 200 characters")
	}
	if nt.Category == "" {
		v.Add("category", "required")
	} else if _, err := s.category(ctx, db, nt.Category); err != nil {
		if errors.Is(err, org.ErrNotFound) {
			v.Add("category", "unknown category")
		} else {
			return err
		}
	}
	return v.Err()
}

// nextNumber returns the next people-facing number of the day in China time, e.g. 20261130-000123. Numbers are
// taken from ticket_counters in blocks, in a short transaction of their own that need not wait for its commit
// to reach disk: a ticket that uses a number commits after it, so a crash can only lose numbers no committed
// ticket holds. Numbers thus have gaps, and across processes they are not in creation order.
func (s *Service) nextNumber(ctx context.Context, now time.Time) (string, error) {
	const block = 100
	day := now.In(calendar.CST).Format("20060102")
	s.numMu.Lock()
	defer s.numMu.Unlock()
	if s.numDay != day || s.numNext > s.numLast {
		var last int
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `INSERT INTO ticket_counters (day, last) VALUES ($1, $2)
				ON CONFLICT (day) DO UPDATE SET last = ticket_counters.last + $2 RETURNING last`,
				now.In(calendar.CST).Format("2006-01-02"), block).Scan(&last)
		})
		if err != nil {
			return "", fmt.Errorf("ticket number: %w", err)
		}
		s.numDay, s.numNext, s.numLast = day, last-block+1, last
	}
	n := s.numNext
	s.numNext++
	return fmt.Sprintf("%s-%06d", day, n), nil
}

func queryCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", n.Int64())
}

const ticketColumns = `id, number, query_code, source, caller_name, caller_phone, region_code, household_id, kind,
	category, urgency, content, confidential, status, lead_unit_id, co_unit_ids, assignee_id, route_unit_id,
	route_rule_id, route_rule_version, sign_by, reply_by, callback_by, due_kind, due_at, yellow_at,
	extension_status, extension_days, urge_count, supervised, reply_text, outcome, satisfaction, reopen_count,
	merged_into, coalesce(created_by, 0), created_at, updated_at, dispatched_at, closed_at, version`

func scanTicket(row pgx.CollectableRow) (Ticket, error) {
	var t Ticket
	var co []int64
	err := row.Scan(&t.ID, &t.Number, &t.QueryCode, &t.Source, &t.CallerName, &t.CallerPhone, &t.RegionCode,
		&t.HouseholdID, &t.Kind, &t.Category, &t.Urgency, &t.Content, &t.Confidential, &t.Status, &t.LeadUnitID,
		&co, &t.AssigneeID, &t.RouteUnitID, &t.RouteRuleID, &t.RouteRuleVersion, &t.SignBy, &t.ReplyBy,
		&t.CallbackBy, &t.DueKind, &t.DueAt, &t.YellowAt, &t.ExtensionStatus, &t.ExtensionDays, &t.UrgeCount,
		&t.Supervised, &t.ReplyText, &t.Outcome, &t.Satisfaction, &t.ReopenCount, &t.MergedInto, &t.CreatedBy,
		&t.CreatedAt, &t.UpdatedAt, &t.DispatchedAt, &t.ClosedAt, &t.Version)
	t.CoUnitIDs = make([]org.UnitID, len(co))
	for i, c := range co {
		t.CoUnitIDs[i] = org.UnitID(c)
	}
	return t, err
}

func getTicket(ctx context.Context, db org.DB, id org.TicketID, lock bool) (Ticket, error) {
	q := `SELECT ` + ticketColumns + ` FROM tickets WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	rows, err := db.Query(ctx, q, int64(id))
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket %d: %w", id, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTicket)
	if errors.Is(err, pgx.ErrNoRows) {
		return Ticket{}, fmt.Errorf("ticket %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket %d: %w", id, err)
	}
	return t, nil
}

// pendingEvent is an event to append and publish for a change.
type pendingEvent struct {
	action   string
	from, to Status
	note     string
	data     map[string]any
	topic    string
	q        *queueOps
}

// record appends the events of a change and their outbox rows in one round trip.
func (s *Service) record(ctx context.Context, tx pgx.Tx, a org.Actor, t Ticket, pes ...pendingEvent) ([]Event, error) {
	name := a.Name
	if name == "" {
		name = a.Username
	}
	var actorID any
	if a.UserID != 0 {
		actorID = int64(a.UserID)
	}
	b := &pgx.Batch{}
	evs := make([]Event, len(pes))
	at := s.now().UTC().Format(time.RFC3339Nano)
	for i, pe := range pes {
		if pe.data == nil {
			pe.data = map[string]any{}
		}
		evs[i] = Event{TicketID: t.ID, ActorID: a.UserID, ActorName: name, ActorRole: a.Role, Action: pe.action,
			From: pe.from, To: pe.to, Note: pe.note, Data: pe.data}
		b.Queue(`INSERT INTO ticket_events (ticket_id, actor_id, actor_name, actor_role, action, from_status, to_status, note, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, at`,
			int64(t.ID), actorID, name, string(a.Role), pe.action, string(pe.from), string(pe.to), pe.note, pe.data).
			QueryRow(func(row pgx.Row) error { return row.Scan(&evs[i].ID, &evs[i].At) })
		msg := ticketMessage{TicketID: t.ID, Number: t.Number, Action: pe.action, From: pe.from, Status: pe.to,
			Kind: t.Kind, Category: t.Category, Urgency: t.Urgency, LeadUnitID: t.LeadUnitID, CoUnitIDs: t.CoUnitIDs,
			RegionCode: t.RegionCode, Household: t.HouseholdID, Version: t.Version, ActorID: a.UserID, At: at}
		if pe.q != nil {
			pe.q.Ticket = t.ID
		}
		if err := queuePublish(b, pe.topic, strconv.FormatInt(int64(t.ID), 10), msg, pe.q); err != nil {
			return nil, err
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("ticket %d: record %s: %w", t.ID, pes[0].action, err)
	}
	return evs, nil
}

func (s *Service) runHooks(ctx context.Context, tx pgx.Tx, t Ticket, ev Event) error {
	for _, h := range s.hooks {
		if err := h(ctx, tx, t, ev); err != nil {
			return fmt.Errorf("ticket %d %s: hook: %w", t.ID, ev.Action, err)
		}
	}
	return nil
}

// ticketMessage is the payload of ticket.* and sla.* events on the event stream: enough for consoles to refresh
// and notifications to decide, without personal data.
type ticketMessage struct {
	TicketID   org.TicketID `json:"ticket_id"`
	Number     string       `json:"number"`
	Action     string       `json:"action"`
	From       Status       `json:"from_status"`
	Status     Status       `json:"status"`
	Kind       Kind         `json:"kind"`
	Category   string       `json:"category"`
	Urgency    Urgency      `json:"urgency"`
	LeadUnitID org.UnitID   `json:"lead_unit_id"`
	CoUnitIDs  []org.UnitID `json:"co_unit_ids"`
	RegionCode string       `json:"region_code"`
	Household  *int64       `json:"household_id,omitempty"`
	Version    int          `json:"version"`
	ActorID    org.UserID   `json:"actor_id"`
	At         string       `json:"at"`
}

// Publish writes an event to the outbox in db (pass your transaction to publish atomically with your change).
// The relay puts it on the Redis event stream `<prefix>events` as fields topic, key and payload (JSON).
func Publish(ctx context.Context, db org.DB, topic, key string, payload any) error {
	return publish(ctx, db, topic, key, payload, nil)
}

func publish(ctx context.Context, db org.DB, topic, key string, payload any, q *queueOps) error {
	sql, args, err := outboxInsert(topic, key, payload, q)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

func queuePublish(b *pgx.Batch, topic, key string, payload any, q *queueOps) error {
	sql, args, err := outboxInsert(topic, key, payload, q)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

func outboxInsert(topic, key string, payload any, q *queueOps) (string, []any, error) {
	if topic == "" {
		return "", nil, org.Invalid("topic", "required")
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", nil, fmt.Errorf("publish %s: %w", topic, err)
	}
	var qb any
	if q != nil {
		j, err := json.Marshal(q)
		if err != nil {
			return "", nil, fmt.Errorf("publish %s: %w", topic, err)
		}
		qb = j
	}
	return `INSERT INTO outbox (topic, key, payload, queue) VALUES ($1, $2, $3, $4)`, []any{topic, key, b, qb}, nil
}

// queueOps tell the relay how a change moves a ticket between unit queues.
type queueOps struct {
	Ticket org.TicketID `json:"ticket"`
	Add    *queueAdd    `json:"add,omitempty"`
	Remove []org.UnitID `json:"remove,omitempty"`
}

type queueAdd struct {
	Unit   org.UnitID `json:"unit"`
	Urgent bool       `json:"urgent"`
	Seq    int        `json:"seq"` // ticket version when queued: the same entry published twice is recognised
}

// sameRequest reports whether a replayed create asks for what the first one did (both normalised by validateNew).
func sameRequest(t Ticket, nt NewTicket) bool {
	sameHH := (t.HouseholdID == nil) == (nt.HouseholdID == nil) && (t.HouseholdID == nil || *t.HouseholdID == *nt.HouseholdID)
	return sameHH && t.Source == nt.Source && t.CallerName == nt.CallerName && t.CallerPhone == nt.CallerPhone &&
		t.RegionCode == nt.RegionCode && t.Kind == nt.Kind && t.Category == nt.Category && t.Urgency == nt.Urgency &&
		t.Content == nt.Content && t.Confidential == nt.Confidential
}

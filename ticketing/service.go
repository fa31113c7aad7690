package ticketing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
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
	// CoOpinionWarn lets the lead unit reply while a co-unit's opinion (协办意见) is outstanding, recording the
	// missing opinions on the reply; default (false): the reply is refused until every opinion is in.
	CoOpinionWarn bool
}

// TransitionHook runs inside the transaction of every ticket action (create included), after the change and
// its event are written. An error rolls the whole action back.
type TransitionHook func(ctx context.Context, tx pgx.Tx, t Ticket, ev Event) error

// Service is the work-order lifecycle: create, the actions of the state machine, reads. Every change is one
// transaction holding the ticket row, its event and its outbox rows.
type Service struct {
	db  org.TxBeginner
	opt Options
	// cal is the calendar in force: opt.Calendar with the newest upload laid over it (ReloadCalendar), swapped
	// whole so that an upload takes effect without a restart; calUpload is that upload's id (0: none).
	cal       atomic.Pointer[calendar.Calendar]
	calUpload atomic.Int64
	log       *slog.Logger
	now       func() time.Time
	hooks     []TransitionHook
	// outcomes holds, per category, the words a reply must carry as its outcome; the package that acts on
	// them registers them (monitoring for monitoring_verify), so ticketing does not know their meaning.
	outcomes map[string][]string

	cacheMu sync.Mutex
	rules   *ruleCache
	units   map[string]org.Unit
	unitIDs map[org.UnitID]org.Unit
	// calWarned is the day (China time) the calendar warning was last logged.
	calWarned string
	cats      map[string]Category
	catsAt    time.Time

	numMu   sync.Mutex
	numDay  string // the day (yyyymmdd, China time) of the cached block
	numBase int64  // that day's committed base
	numNext int64
	numLast int64
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
	s := &Service{db: db, opt: opt, log: opt.Log, now: opt.Now}
	s.cal.Store(opt.Calendar)
	return s
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
func (s *Service) Calendar() *calendar.Calendar { return s.cal.Load() }

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

// Kick wakes the outbox relay after a caller's own transaction that wrote outbox rows (CreateTx) committed.
func (s *Service) Kick() { s.kick() }

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
	number, err := s.nextNumber(ctx, tx, now)
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
	t.setRoute(rt)
	createData := map[string]any{"source": t.Source, "category": t.Category, "kind": t.Kind}
	if nt.SMSConsent {
		createData["sms_consent"] = true
	}
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
		if t.BeyondCalendar = s.beyondCalendar(t); t.BeyondCalendar {
			dispatchData["beyond_calendar"] = true
		}
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
	t, evs, err := s.write(ctx, tx, a, t, s.insert(t, nt.IdempotencyKey), pes...)
	if errors.Is(err, errNoRow) { // the idempotency key was used before: hand back that ticket
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

// insert is the statement that writes a new ticket; with an idempotency key this actor used before, it writes
// nothing. Its merge suggestions are read from the snapshot before the insert (DuplicatesFor has the same rule).
func (s *Service) insert(t Ticket, idemKey string) change {
	var idem, createdBy any
	if idemKey != "" {
		idem = idemKey
	}
	if t.CreatedBy != 0 {
		createdBy = int64(t.CreatedBy)
	}
	return change{row: `INSERT INTO tickets (number, query_code, source, caller_name, caller_phone, region_code,
				household_id, kind, category, urgency, content, confidential, status, lead_unit_id, co_unit_ids,
				route_unit_id, route_rule_id, route_rule_version, sign_by, reply_by, due_kind, due_at, yellow_at,
				dispatched_at, idempotency_key, created_by, created_at, updated_at, beyond_calendar)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
				$23, $24, $25, $26, $27, $27, $29)
			ON CONFLICT (coalesce(created_by, 0), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING *`,
		args: []any{t.Number, t.QueryCode, string(t.Source), t.CallerName, t.CallerPhone, t.RegionCode, t.HouseholdID,
			string(t.Kind), t.Category, string(t.Urgency), t.Content, t.Confidential, string(t.Status), int64(t.LeadUnitID),
			t.CoUnitIDs, t.RouteUnitID, t.RouteRuleID, t.RouteRuleVersion, t.SignBy, t.ReplyBy, t.DueKind, t.DueAt,
			t.YellowAt, t.DispatchedAt, idem, createdBy, t.CreatedAt, t.CreatedAt.AddDate(0, 0, -s.opt.DuplicateDays), t.BeyondCalendar},
		dups: duplicateCandidates("$5", "$7::bigint", "$9", "$28")}
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

// nextNumber returns the next people-facing number of the day in China time, e.g. 20261130-000123, taken
// inside the caller's transaction (db): a create never waits for a second pooled connection while it holds one,
// which deadlocked the API under a burst (issue 15).
//
// Numbers come from ticket_number_seq (migration 0009) in blocks of 100: a sequence never blocks and never rolls
// back, so a block is safe to take in any transaction and to keep in memory. The day's base (the sequence value
// before its first number) is a row of ticket_number_days; only a base read as committed is cached, because a
// base this transaction inserts would vanish if it rolled back. Numbers thus have gaps, and across processes
// they are not in creation order.
func (s *Service) nextNumber(ctx context.Context, db org.DB, now time.Time) (string, error) {
	const block = 100 // the sequence's INCREMENT
	day := now.In(calendar.CST)
	key := day.Format("20060102")
	s.numMu.Lock()
	if s.numDay == key && s.numNext <= s.numLast {
		n := s.numNext - s.numBase
		s.numNext++
		s.numMu.Unlock()
		return fmt.Sprintf("%s-%06d", key, n), nil
	}
	s.numMu.Unlock()

	// The base is found or made without the mutex: the insert may wait for another transaction that inserted
	// the same day and has not committed, and that one may itself need the mutex (a hook creating a ticket).
	var base int64
	err := db.QueryRow(ctx, `SELECT base FROM ticket_number_days WHERE day = $1`, day.Format("2006-01-02")).Scan(&base)
	if errors.Is(err, pgx.ErrNoRows) {
		err = db.QueryRow(ctx, `INSERT INTO ticket_number_days (day, base) VALUES ($1, nextval('ticket_number_seq'))
			ON CONFLICT (day) DO NOTHING RETURNING base`, day.Format("2006-01-02")).Scan(&base)
		if err == nil {
			// Ours, not yet committed: use one fresh block without caching either.
			var last int64
			if err := db.QueryRow(ctx, `SELECT nextval('ticket_number_seq')`).Scan(&last); err != nil {
				return "", fmt.Errorf("ticket number: %w", err)
			}
			return fmt.Sprintf("%s-%06d", key, last-base), nil
		}
		if errors.Is(err, pgx.ErrNoRows) { // another transaction inserted it and committed meanwhile
			err = db.QueryRow(ctx, `SELECT base FROM ticket_number_days WHERE day = $1`, day.Format("2006-01-02")).Scan(&base)
		}
	}
	if err != nil {
		return "", fmt.Errorf("ticket number: day base: %w", err)
	}
	// nextval neither blocks nor waits for a lock, so holding the mutex over it delays only this process's
	// other creates, and only once per block.
	s.numMu.Lock()
	defer s.numMu.Unlock()
	if s.numDay != key || s.numNext > s.numLast {
		var last int64
		if err := db.QueryRow(ctx, `SELECT nextval('ticket_number_seq')`).Scan(&last); err != nil {
			return "", fmt.Errorf("ticket number: %w", err)
		}
		s.numDay, s.numBase, s.numNext, s.numLast = key, base, last-block+1, last
	}
	n := s.numNext - s.numBase
	s.numNext++
	return fmt.Sprintf("%s-%06d", key, n), nil
}

// queryCodeAlphabet is Crockford's base32: no I, L, O or U, so a code read over the phone or copied from an SMS
// is not misread; NormalizeQueryCode maps the look-alikes back.
const queryCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// QueryCodeLen is the length of the query codes handed out now (32^10 ≈ 1.1e15 codes: at the public limits,
// guessing one is hopeless; see README "Public channels"). Tickets from before migration 0018 keep 6 digits.
const QueryCodeLen = 10

func queryCode() string {
	b := make([]byte, QueryCodeLen)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(queryCodeAlphabet))))
		b[i] = queryCodeAlphabet[n.Int64()]
	}
	return string(b)
}

// NormalizeQueryCode reads a query code as people type it: any case, spaces and dashes ignored, I and L for 1,
// O for 0.
func NormalizeQueryCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-':
		case r == 'I' || r == 'L':
			b.WriteByte('1')
		case r == 'O':
			b.WriteByte('0')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ValidQueryCodeShape reports whether a normalized code could be one: 6 digits (older tickets) or QueryCodeLen
// characters of the alphabet.
func ValidQueryCodeShape(code string) bool {
	switch len(code) {
	case 6:
		return strings.Trim(code, "0123456789") == ""
	case QueryCodeLen:
		return strings.Trim(code, queryCodeAlphabet) == ""
	}
	return false
}

func (s *Service) runHooks(ctx context.Context, tx pgx.Tx, t Ticket, ev Event) error {
	for _, h := range s.hooks {
		if err := h(ctx, tx, t, ev); err != nil {
			return fmt.Errorf("ticket %d %s: hook: %w", t.ID, ev.Action, err)
		}
	}
	return nil
}

// sameRequest reports whether a replayed create asks for what the first one did (both normalised by validateNew).
func sameRequest(t Ticket, nt NewTicket) bool {
	sameHH := (t.HouseholdID == nil) == (nt.HouseholdID == nil) && (t.HouseholdID == nil || *t.HouseholdID == *nt.HouseholdID)
	// A retry that gives no phone matches: a create for a call takes the phone from the call, which a retry (the
	// call now linked) no longer looks up.
	samePhone := nt.CallerPhone == "" || t.CallerPhone == nt.CallerPhone
	return sameHH && samePhone && t.Source == nt.Source && t.CallerName == nt.CallerName &&
		t.RegionCode == nt.RegionCode && t.Kind == nt.Kind && t.Category == nt.Category && t.Urgency == nt.Urgency &&
		t.Content == nt.Content && t.Confidential == nt.Confidential
}

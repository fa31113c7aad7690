package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/exchange"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// Tickets is what the ticket API is built from.
type Tickets struct {
	Service     *ticketing.Service
	Queues      *ticketing.Queues
	RedisPrefix string
	// PublicLimit is how many public progress queries one client address may make per minute; default 20.
	PublicLimit int
}

// ticketRoutes registers the ticket API: create/get/list, one endpoint per action, the history, the duplicate
// suggestions, categories, routing rules, the unit queues, token login and the public progress query.
func (s *Server) ticketRoutes() {
	if s.deps.Tickets == nil || s.deps.Tickets.Service == nil {
		return
	}
	s.mux.HandleFunc("POST /api/v1/tickets", s.authed(s.createTicket))
	s.mux.HandleFunc("GET /api/v1/tickets", s.authed(s.listTickets))
	s.mux.HandleFunc("GET /api/v1/tickets/{id}", s.authed(s.getTicket))
	s.mux.HandleFunc("GET /api/v1/tickets/{id}/events", s.authed(s.ticketEvents))
	s.mux.HandleFunc("GET /api/v1/tickets/{id}/duplicates", s.authed(s.ticketDuplicates))
	for _, act := range ticketing.Actions {
		s.mux.HandleFunc("POST /api/v1/tickets/{id}/"+string(act), s.authed(s.ticketAction(act)))
	}
	s.mux.HandleFunc("GET /api/v1/categories", s.authed(s.listCategories))
	s.mux.HandleFunc("PUT /api/v1/categories/{code}", s.authed(s.saveCategory))
	s.mux.HandleFunc("GET /api/v1/routing-rules", s.authed(s.listRules))
	s.mux.HandleFunc("POST /api/v1/routing-rules", s.authed(s.createRule))
	s.mux.HandleFunc("PUT /api/v1/routing-rules/{id}", s.authed(s.updateRule))
	s.mux.HandleFunc("GET /api/v1/queues/{unit}", s.authed(s.queueEntries))
	s.mux.HandleFunc("POST /api/v1/queues/{unit}/claim", s.authed(s.claim))
	s.mux.HandleFunc("POST /api/v1/queues/{unit}/reclaim", s.authed(s.reclaim))
	s.mux.HandleFunc("GET /api/v1/public/tickets/{number}", s.api(s.publicProgress))
}

func (s *Server) tickets() *ticketing.Service { return s.deps.Tickets.Service }

// auditLogin records a login or a failed one with the source address. The username of a failed login is kept
// as typed (truncated): it is what an investigator needs to see a guessing run.
func (s *Server) auditLogin(r *http.Request, kind org.AuditKind, a org.Actor, username, how string) {
	if len(username) > 64 {
		username = strings.ToValidUTF8(username[:64], "")
	}
	if err := org.Audit(r.Context(), s.deps.DB, a, org.AuditEntry{Kind: kind, ActorUsername: username,
		SourceAddr: clientIP(r), Detail: map[string]any{"via": how}}); err != nil {
		s.log.Error("security audit", "err", err)
	}
}

type newTicketBody struct {
	Source       ticketing.Source  `json:"source"`
	CallerName   string            `json:"caller_name"`
	CallerPhone  string            `json:"caller_phone"`
	RegionCode   string            `json:"region_code"`
	HouseholdID  *int64            `json:"household_id"`
	Kind         ticketing.Kind    `json:"kind"`
	Category     string            `json:"category"`
	Urgency      ticketing.Urgency `json:"urgency"`
	Content      string            `json:"content"`
	Confidential bool              `json:"confidential"`
	SMSConsent   bool              `json:"sms_consent"` // a confidential report's caller agreed to SMS
	Dispatch     bool              `json:"dispatch"`
	// CallID links the call the ticket is opened for (and its recording) in the same transaction; the caller's
	// number is then taken from the call, so the console never needs to hold it.
	CallID *int64 `json:"call_id"`
}

type ticketView struct {
	Ticket     ticketing.Ticket   `json:"ticket"`
	MergedFrom []org.TicketID     `json:"merged_from,omitempty"` // duplicates merged into this ticket
	SLA        string             `json:"sla,omitempty"`
	RegionName string             `json:"region_name,omitempty"`
	Allowed    []string           `json:"allowed_actions"`
	Duplicates []ticketing.Ticket `json:"duplicates,omitempty"`
	// Exchange is the 12345 platform's side of a ticket it sent (order, its deadline, 已同步 / 同步失败).
	Exchange *exchange.TicketSync `json:"exchange,omitempty"`
	// CoTasks and Calls are filled for the one ticket of GET /api/v1/tickets/{id}: the co-units' parts with their
	// opinions (协办意见), and the ticket's calls with their recordings.
	CoTasks []ticketing.CoTask     `json:"co_tasks,omitempty"`
	Calls   []telephony.TicketCall `json:"calls,omitempty"`
}

func (s *Server) view(r *http.Request, t ticketing.Ticket) ticketView {
	a := actor(r)
	return ticketView{Ticket: t, SLA: t.SLA(time.Now()), Allowed: s.tickets().AllowedActions(r.Context(), a, t), RegionName: region.FullName(t.RegionCode)}
}

// createTicket: an Idempotency-Key header makes a retried create return the first ticket (200 instead of 201).
func (s *Server) createTicket(w http.ResponseWriter, r *http.Request) error {
	var b newTicketBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	a := actor(r)
	nt := ticketing.NewTicket{Source: b.Source, CallerName: b.CallerName,
		CallerPhone: b.CallerPhone, RegionCode: b.RegionCode, HouseholdID: b.HouseholdID, Kind: b.Kind,
		Category: b.Category, Urgency: b.Urgency, Content: b.Content, Confidential: b.Confidential,
		SMSConsent: b.SMSConsent, IdempotencyKey: strings.TrimSpace(r.Header.Get("Idempotency-Key")), Dispatch: b.Dispatch}
	var t ticketing.Ticket
	var err error
	if b.CallID != nil {
		t, err = s.createForCall(r.Context(), a, nt, telephony.CallID(*b.CallID))
	} else {
		t, err = s.tickets().Create(r.Context(), a, nt)
	}
	if err != nil {
		return err
	}
	code := http.StatusCreated
	if t.Replayed {
		code = http.StatusOK
	}
	qc := t.QueryCode // the caller is told the query code once, at intake
	v := s.view(r, s.tickets().View(r.Context(), t, a))
	v.Ticket.QueryCode = qc
	if t.CallerPhone != "" || t.HouseholdID != nil {
		if v.Duplicates, err = s.tickets().DuplicatesFor(r.Context(), a, t); err != nil {
			return err
		}
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/tickets/%d", t.ID))
	return writeJSON(w, code, v)
}

// createForCall creates the ticket and links the call (and its recording) to it in one transaction: the ticket
// exists with its call, or neither changed.
func (s *Server) createForCall(ctx context.Context, a org.Actor, nt ticketing.NewTicket, call telephony.CallID) (ticketing.Ticket, error) {
	if s.deps.Telephony == nil {
		return ticketing.Ticket{}, org.Invalid("call_id", "no telephony here")
	}
	caller, err := s.deps.Telephony.CallerForTicket(ctx, a, call)
	var linked error // the call has its ticket: only a retry of the create that made it (same key) may answer
	if err != nil {
		var se *org.StateError
		if nt.IdempotencyKey == "" || !errors.As(err, &se) || !errors.Is(err, org.ErrState) {
			return ticketing.Ticket{}, err
		}
		linked = err
	}
	if nt.CallerPhone == "" {
		nt.CallerPhone = caller
	}
	if nt.Source == "" {
		nt.Source = ticketing.SourcePhone
	}
	var t ticketing.Ticket
	err = pgx.BeginFunc(ctx, s.deps.DB, func(tx pgx.Tx) error {
		var err error
		if t, err = s.tickets().CreateTx(ctx, tx, a, nt); err != nil {
			return err
		}
		if linked != nil {
			if !t.Replayed {
				return linked // a new ticket for a linked call: rolled back
			}
			return nil
		}
		return s.deps.Telephony.LinkTicketTx(ctx, tx, call, int64(t.ID))
	})
	return t, err
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: %w", name, r.PathValue(name), org.ErrNotFound)
	}
	return id, nil
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	t, err := s.tickets().Get(r.Context(), actor(r), org.TicketID(id))
	if err != nil {
		return err
	}
	v := s.view(r, t)
	if v.MergedFrom, err = s.tickets().MergedFrom(r.Context(), actor(r), t.ID); err != nil {
		return err
	}
	if v.Exchange, err = s.exchangeView(r, t.ID); err != nil {
		return err
	}
	if v.CoTasks, err = s.tickets().CoTasks(r.Context(), actor(r), t.ID); err != nil {
		return err
	}
	if s.deps.Telephony != nil {
		// Who may read the ticket may hear its calls (telephony's own rule is asked too).
		if v.Calls, err = s.deps.Telephony.TicketCalls(r.Context(), actor(r), int64(t.ID)); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) listTickets(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := ticketing.Filter{Kind: ticketing.Kind(q.Get("kind")), Category: q.Get("category"), RegionPrefix: q.Get("region"), Text: q.Get("q"),
		UnitID: org.UnitID(q.int("unit")), HouseholdID: q.int("household_id"), Before: org.TicketID(q.int("before")),
		Limit: int(q.int("limit")), Overdue: q.bool("overdue"), Yellow: q.bool("yellow"),
		From: q.time("from", time.Time{}), To: q.time("to", time.Time{}),
		DueToday: q.bool("due_today"), Pressed: q.bool("pressed"), CoHandling: q.bool("co_handling"), SentBack: q.bool("sent_back"),
		Phone: q.Get("phone"), CallerName: q.Get("caller_name")}
	switch q.Get("sort") {
	case "", "newest":
	case "deadline":
		f.ByDeadline = true
	default:
		q.bad.Add("sort", "newest or deadline")
	}
	for _, st := range q.Values["status"] {
		for _, one := range strings.Split(st, ",") {
			f.Status = append(f.Status, ticketing.Status(one))
		}
	}
	if err := q.err(); err != nil {
		return err
	}
	ts, next, err := s.tickets().List(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	out := make([]ticketView, len(ts))
	for i, t := range ts {
		out[i] = s.view(r, t)
	}
	body := map[string]any{"tickets": out}
	if next != 0 {
		body["next_before"] = next
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) ticketEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	evs, err := s.tickets().Events(r.Context(), actor(r), org.TicketID(id))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

func (s *Server) ticketDuplicates(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ds, err := s.tickets().Duplicates(r.Context(), actor(r), org.TicketID(id))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"duplicates": ds})
}

type actionBody struct {
	Version    *int         `json:"version"`
	Note       string       `json:"note"`
	UnitID     org.UnitID   `json:"unit_id"`
	CoUnitIDs  []org.UnitID `json:"co_unit_ids"`
	Reason     string       `json:"reason"`
	Reply      string       `json:"reply"`
	Outcome    string       `json:"outcome"`
	Days       int          `json:"days"`
	Result     string       `json:"result"`
	TargetID   org.TicketID `json:"target_id"`
	AssigneeID org.UserID   `json:"assignee_id"`
	// Changes: correct (工单修改); Opinion: co_opinion (协办意见).
	Changes *ticketing.Correction `json:"changes"`
	Opinion string                `json:"opinion"`
	// close_first_contact: the knowledge-base article and version the answer came from.
	KBArticleID int64 `json:"kb_article_id"`
	KBVersion   int   `json:"kb_version"`
}

// cite is the knowledge-base citation of an action body, if it names one.
func cite(b actionBody) *ticketing.Citation {
	if b.KBArticleID == 0 {
		return nil
	}
	return &ticketing.Citation{ArticleID: b.KBArticleID, Version: b.KBVersion}
}

// ticketAction serves POST /api/v1/tickets/{id}/<action>. The body must carry the version the client saw.
func (s *Server) ticketAction(act ticketing.Action) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		var b actionBody
		if err := decode(w, r, &b); err != nil {
			return err
		}
		if b.Version == nil || *b.Version <= 0 {
			return org.Invalid("version", "required: the version of the ticket you saw")
		}
		t, err := s.tickets().Do(r.Context(), actor(r), org.TicketID(id), act, ticketing.ActionInput{
			Version: *b.Version, Note: b.Note, UnitID: b.UnitID, CoUnitIDs: b.CoUnitIDs, Reason: b.Reason, Reply: b.Reply,
			Outcome: b.Outcome, Days: b.Days, Result: b.Result, TargetID: b.TargetID, AssigneeID: b.AssigneeID,
			Changes: b.Changes, Opinion: b.Opinion, Cite: cite(b)})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, s.view(r, s.tickets().View(r.Context(), t, actor(r))))
	}
}

func (s *Server) listCategories(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.tickets().Categories(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"categories": cs})
}

// saveCategory creates or changes a category (admins).
func (s *Server) saveCategory(w http.ResponseWriter, r *http.Request) error {
	var c ticketing.Category
	if err := decode(w, r, &c); err != nil {
		return err
	}
	c.Code = r.PathValue("code")
	c, err := s.tickets().SaveCategory(r.Context(), actor(r), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.tickets().Rules(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rules": rs})
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) error {
	var in ticketing.RuleInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule, err := s.tickets().CreateRule(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, rule)
}

func (s *Server) updateRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in ticketing.RuleInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Version <= 0 {
		return org.Invalid("version", "required: the version of the rule you saw")
	}
	rule, err := s.tickets().UpdateRule(r.Context(), actor(r), id, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rule)
}

func (s *Server) queueEntries(w http.ResponseWriter, r *http.Request) error {
	unit, err := pathID(r, "unit")
	if err != nil {
		return err
	}
	es, err := s.deps.Tickets.Queues.Entries(r.Context(), actor(r), org.UnitID(unit))
	if err != nil {
		return err
	}
	if es == nil {
		es = []ticketing.QueueEntry{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

// claim takes the next ticket of the unit's queue for the caller (404 when the queue is empty).
func (s *Server) claim(w http.ResponseWriter, r *http.Request) error {
	return s.take(w, r, func(ctx context.Context, a org.Actor, unit org.UnitID) (ticketing.QueueEntry, error) {
		return s.deps.Tickets.Queues.Claim(ctx, a, unit)
	})
}

// reclaim takes over an entry another handler claimed min_idle ago (default 30m) and never signed.
func (s *Server) reclaim(w http.ResponseWriter, r *http.Request) error {
	idle := 30 * time.Minute
	if v := r.URL.Query().Get("min_idle"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < ticketing.MinReclaimIdle {
			return org.Invalid("min_idle", "a duration of at least "+ticketing.MinReclaimIdle.String()+", such as 30m")
		}
		idle = d
	}
	return s.take(w, r, func(ctx context.Context, a org.Actor, unit org.UnitID) (ticketing.QueueEntry, error) {
		return s.deps.Tickets.Queues.Reclaim(ctx, a, unit, idle)
	})
}

func (s *Server) take(w http.ResponseWriter, r *http.Request, f func(context.Context, org.Actor, org.UnitID) (ticketing.QueueEntry, error)) error {
	unit, err := pathID(r, "unit")
	if err != nil {
		return err
	}
	e, err := f(r.Context(), actor(r), org.UnitID(unit))
	if err != nil {
		return err
	}
	t, err := s.tickets().Get(r.Context(), actor(r), e.Ticket)
	if err != nil {
		return err
	}
	v := s.view(r, t)
	return writeJSON(w, http.StatusOK, map[string]any{"entry": e, "ticket": v.Ticket, "allowed_actions": v.Allowed, "sla": v.SLA})
}

// publicProgress answers GET /api/v1/public/tickets/{number}?code=… without authentication: status and replies
// only, rate-limited per client (behind trusted proxies; an IPv6 /64 as one) and by the public ceiling.
func (s *Server) publicProgress(w http.ResponseWriter, r *http.Request) error {
	if err := s.publicGate(r, "progress", s.publicLimit()); err != nil {
		w.Header().Set("Retry-After", "60")
		return err
	}
	code := ticketing.NormalizeQueryCode(r.URL.Query().Get("code"))
	if !ticketing.ValidQueryCodeShape(code) {
		return org.Invalid("code", "the query code given at intake (10 characters; 6 digits for older tickets)")
	}
	p, err := s.tickets().PublicProgress(r.Context(), r.PathValue("number"), code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) publicLimit() int {
	if s.deps.Tickets.PublicLimit > 0 {
		return s.deps.Tickets.PublicLimit
	}
	return 20
}

// rateLimit counts requests per key in fixed one-minute windows in Redis, so every instance shares the count.
func (s *Server) rateLimit(ctx context.Context, name, key string, limit int) error {
	k := fmt.Sprintf("%srl:%s:%s:%d", s.deps.Tickets.RedisPrefix, name, key, s.deps.Now().Unix()/60)
	pipe := s.deps.Redis.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.Expire(ctx, k, 2*time.Minute)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("rate limit: %w", err)
	}
	if incr.Val() > int64(limit) {
		return errRateLimit
	}
	return nil
}

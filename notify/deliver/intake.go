package deliver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// Group is the consumer group of notify on the event stream.
const Group = "notify"

func consumerName() string {
	h, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b))
}

// EnsureGroup creates the consumer group at the end of the stream if it does not exist: notifications start
// with the events published after the first start, not with the stream's history.
func (s *Service) EnsureGroup(ctx context.Context) error {
	return s.ensureGroup(ctx, "$")
}

// ensureGroup creates the group at start ("$": from now on; "0": the whole stream). After Redis lost the
// group (flushed or replaced), the stream holds only events published since, none of them notified yet, so
// the group is made again from its beginning.
func (s *Service) ensureGroup(ctx context.Context, start string) error {
	err := s.opt.Redis.XGroupCreateMkStream(ctx, ticketing.EventsKey(s.opt.Prefix), Group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("notify: create consumer group: %w", err)
	}
	return nil
}

func (s *Service) runIntake(ctx context.Context) error {
	key := ticketing.EventsKey(s.opt.Prefix)
	for ctx.Err() == nil {
		if err := s.EnsureGroup(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			s.log.Warn("notify intake: consumer group", "err", err)
			sleep(ctx, time.Second)
		}
	}
	var lastClaim time.Time
	for ctx.Err() == nil {
		if time.Since(lastClaim) >= s.opt.ClaimIdle/2 {
			lastClaim = time.Now()
			if err := s.reclaim(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("notify intake: reclaim", "err", err)
			}
		}
		res, err := s.opt.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: s.consumer,
			Streams: []string{key, ">"}, Count: 500, Block: time.Second}).Result()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, redis.Nil):
			continue
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"): // Redis was flushed or replaced
			if err := s.ensureGroup(ctx, "0"); err != nil {
				s.log.Warn("notify intake: consumer group", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		case err != nil:
			s.log.Warn("notify intake: read events", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for _, st := range res {
			if err := s.Ingest(ctx, st.Messages); err != nil && ctx.Err() == nil {
				// Not acknowledged: the entries stay pending and are taken over after ClaimIdle.
				s.log.Warn("notify intake: events left pending", "err", err, "events", len(st.Messages))
			}
		}
	}
	return nil
}

// reclaim takes over entries read but never acknowledged by a consumer that went away (or by this one, after
// a failed batch).
func (s *Service) reclaim(ctx context.Context) error {
	key := ticketing.EventsKey(s.opt.Prefix)
	start := "0-0"
	for range 100 {
		msgs, next, err := s.opt.Redis.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: key, Group: Group,
			MinIdle: s.opt.ClaimIdle, Start: start, Count: 500, Consumer: s.consumer}).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) || strings.HasPrefix(err.Error(), "NOGROUP") {
				return nil
			}
			return err
		}
		if len(msgs) > 0 {
			if err := s.Ingest(ctx, msgs); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" {
			break
		}
		start = next
	}
	// Each process start adds a consumer name to the group; forget those long idle with nothing pending.
	cs, err := s.opt.Redis.XInfoConsumers(ctx, key, Group).Result()
	if err != nil {
		return nil
	}
	for _, c := range cs {
		if c.Name != s.consumer && c.Pending == 0 && c.Idle > time.Hour {
			s.opt.Redis.XGroupDelConsumer(ctx, key, Group, c.Name)
		}
	}
	return nil
}

// event is what a rule looks at.
type event struct {
	ID         string
	Topic      string // the notify kind: the stream's topic, or sla.co_* for a co-opinion alert
	At         time.Time
	TicketID   int64
	UnitID     int64 // the unit notified: the lead, or the co-unit of a co-opinion alert
	LeadUnitID int64
	Status     string
	Vars       map[string]string // digest: the counts
}

// coTopic is the notify kind of a co-opinion alert published under an SLA topic: sla.yellow → sla.co_yellow,
// sla.red → sla.co_red. The co-unit is not the ticket's handler but owes the lead unit its opinion, so its alert
// has rules and templates of its own; the stream keeps the plain SLA topic for its other readers (the hub, the
// lead's timeline). "" for any other topic.
func coTopic(topic string) string {
	if level, ok := strings.CutPrefix(topic, "sla."); ok && (level == "yellow" || level == "red") {
		return "sla.co_" + level
	}
	return ""
}

func parseEvent(m redis.XMessage) (event, bool) {
	ev := event{ID: m.ID, Topic: fmt.Sprint(m.Values["topic"])}
	ms, _ := strconv.ParseInt(strings.SplitN(m.ID, "-", 2)[0], 10, 64)
	ev.At = time.UnixMilli(ms)
	payload, _ := m.Values["payload"].(string)
	var p struct {
		TicketID   int64  `json:"ticket_id"`
		LeadUnitID int64  `json:"lead_unit_id"`
		Status     string `json:"status"`
		At         string `json:"at"`
		// A co-unit's late opinion (协办意见): the alert goes to that unit, about its own deadline.
		NotifyUnitID int64      `json:"notify_unit_id"`
		CoDueAt      *time.Time `json:"co_due_at"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return ev, false
	}
	ev.TicketID, ev.UnitID, ev.LeadUnitID, ev.Status = p.TicketID, p.LeadUnitID, p.LeadUnitID, p.Status
	if p.NotifyUnitID != 0 {
		ev.UnitID = p.NotifyUnitID
	}
	if p.CoDueAt != nil {
		ev.Vars = map[string]string{"due_kind": "协办意见", "due_at": fmtTime(*p.CoDueAt)}
		if t := coTopic(ev.Topic); t != "" {
			ev.Topic = t
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, p.At); err == nil {
		ev.At = at
	}
	return ev, true
}

// Ingest turns stream entries into delivery rows in one transaction and acknowledges them after the commit.
func (s *Service) Ingest(ctx context.Context, msgs []redis.XMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	rules, err := loadRules(ctx, s.db, true)
	if err != nil {
		return err
	}
	topics := map[string]bool{}
	for _, r := range rules {
		topics[r.Topic] = true
	}
	ids := make([]string, 0, len(msgs))
	made := 0
	var evs []event
	for _, m := range msgs {
		ids = append(ids, m.ID)
		topic := fmt.Sprint(m.Values["topic"])
		if !topics[topic] && !topics[coTopic(topic)] {
			continue
		}
		ev, ok := parseEvent(m)
		if !ok || ev.TicketID == 0 {
			s.log.Warn("notify intake: unreadable event skipped", "event_id", m.ID, "topic", topic)
			continue
		}
		if !topics[ev.Topic] {
			continue // a co-opinion alert with no sla.co_* rule (or a plain one with only sla.co_* rules)
		}
		evs = append(evs, ev)
	}
	planTx := func(evs []event) (int, error) {
		var n int
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			var err error
			n, err = s.plan(ctx, tx, evs, rules)
			return err
		})
		return n, err
	}
	if len(evs) > 0 {
		made, err = planTx(evs)
	}
	if err != nil && len(evs) > 1 && ctx.Err() == nil {
		// One bad event must not hold the batch: take them one by one and leave only the failing ones pending.
		failed := map[string]bool{}
		made, err = 0, nil
		for _, ev := range evs {
			n, e := planTx([]event{ev})
			if e != nil {
				failed[ev.ID] = true
				err = e
				continue
			}
			made += n
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return failed[id] })
		if len(ids) > 0 {
			if aerr := s.opt.Redis.XAck(ctx, ticketing.EventsKey(s.opt.Prefix), Group, ids...).Err(); aerr != nil {
				return fmt.Errorf("notify intake: ack: %w", aerr)
			}
		}
		if made > 0 {
			s.Kick()
		}
	}
	if err != nil {
		return fmt.Errorf("notify intake: %w", err)
	}
	if err := s.opt.Redis.XAck(ctx, ticketing.EventsKey(s.opt.Prefix), Group, ids...).Err(); err != nil {
		// The rows are committed; a re-read finds them there and adds nothing.
		return fmt.Errorf("notify intake: ack: %w", err)
	}
	if made > 0 {
		s.Kick()
	}
	return nil
}

type ticketInfo struct {
	number, queryCode, source, phone string
	confidential, consent            bool
	kind, category, urgency, status  string
	dueKind                          string
	dueAt                            *time.Time
}

type unitInfo struct {
	name                              string
	robot, headUser, email            string
	headPhone, liaisonPhone           []byte
	headPhoneMasked, liaisonPhoneMask string
}

// loadTickets reads what messages need of the tickets, in one query.
func loadTickets(ctx context.Context, db org.DB, ids []int64) (map[int64]ticketInfo, error) {
	out := map[int64]ticketInfo{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT t.id, t.number, t.query_code, t.source, t.caller_phone, t.confidential,
			coalesce((SELECT (e.data->>'sms_consent')::boolean FROM ticket_events e
				WHERE e.ticket_id = t.id AND e.action = 'create' LIMIT 1), false),
			t.kind, coalesce(c.name, t.category), t.urgency, t.status, coalesce(t.due_kind, ''), t.due_at
		FROM tickets t LEFT JOIN ticket_categories c ON c.code = t.category WHERE t.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var t ticketInfo
		if err := rows.Scan(&id, &t.number, &t.queryCode, &t.source, &t.phone, &t.confidential, &t.consent, &t.kind,
			&t.category, &t.urgency, &t.status, &t.dueKind, &t.dueAt); err != nil {
			return nil, fmt.Errorf("read tickets: %w", err)
		}
		out[id] = t
	}
	return out, rows.Err()
}

// loadUnits reads units' names and channels, in one query.
func loadUnits(ctx context.Context, db org.DB, ids []int64) (map[int64]unitInfo, error) {
	out := map[int64]unitInfo{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT u.id, u.name, coalesce(c.robot_webhook, ''), coalesce(c.head_wecom_user, ''),
			coalesce(c.email, ''), c.head_phone_sealed, c.liaison_phone_sealed, coalesce(c.head_phone_masked, ''),
			coalesce(c.liaison_phone_masked, '')
		FROM units u LEFT JOIN notify_unit_channels c ON c.unit_id = u.id WHERE u.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read units: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var u unitInfo
		if err := rows.Scan(&id, &u.name, &u.robot, &u.headUser, &u.email, &u.headPhone, &u.liaisonPhone, &u.headPhoneMasked, &u.liaisonPhoneMask); err != nil {
			return nil, fmt.Errorf("read units: %w", err)
		}
		out[id] = u
	}
	return out, rows.Err()
}

func fmtTime(t time.Time) string { return t.In(China).Format("1月2日 15:04") }

// IdemKey is the idempotency key of a delivery: the same for the same (event, recipient, channel) however
// often the event is read or the delivery retried.
func IdemKey(eventID, recipient, channel string) string {
	sum := sha256.Sum256([]byte("hotline-notify\x00" + eventID + "\x00" + recipient + "\x00" + channel))
	return hex.EncodeToString(sum[:16])
}

// row is a delivery to insert.
type row struct {
	ev               event
	ruleID           int64
	unitID           int64
	recipient        string
	channel          string
	address          string
	sealed, hash     []byte
	prevHash         []byte // the phone's lookup hash under the previous key, during a key rotation
	masked           string
	template         string
	title, body      string
	providerTemplate string
	params           [][2]string
	status, reason   string
	nextAt           time.Time
}

func (r Rule) matches(ev event) bool {
	return r.Topic == ev.Topic && (r.ToStatus == "" || r.ToStatus == ev.Status)
}

// plan writes the rows that events make under rules, with a fixed number of round trips per batch (tickets,
// units, opt-outs and caps, inserts), and returns how many rows it added.
func (s *Service) plan(ctx context.Context, tx pgx.Tx, evs []event, rules []Rule) (int, error) {
	var tids, uids []int64
	for _, ev := range evs {
		if ev.TicketID != 0 {
			tids = append(tids, ev.TicketID)
		}
		if ev.UnitID != 0 {
			uids = append(uids, ev.UnitID)
		}
		if ev.LeadUnitID != 0 && ev.LeadUnitID != ev.UnitID {
			uids = append(uids, ev.LeadUnitID)
		}
	}
	tickets, err := loadTickets(ctx, tx, tids)
	if err != nil {
		return 0, err
	}
	units, err := loadUnits(ctx, tx, uids)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var rows []row
	for _, ev := range evs {
		t, hasTicket := tickets[ev.TicketID]
		if ev.TicketID != 0 && !hasTicket {
			continue // gone (never committed, or a test's synthetic event)
		}
		vars := map[string]string{"query_url": s.opt.QueryURL}
		if hasTicket {
			vars["number"], vars["query_code"], vars["kind"] = t.number, t.queryCode, nameOr(kindNames, t.kind)
			vars["category"], vars["urgency"], vars["status"] = t.category, nameOr(urgencyNames, t.urgency), nameOr(statusNames, t.status)
			vars["due_kind"] = nameOr(dueKindNames, t.dueKind)
			if t.dueAt != nil {
				vars["due_at"] = fmtTime(*t.dueAt)
			}
		}
		for k, v := range ev.Vars {
			vars[k] = v
		}
		u := units[ev.UnitID]
		vars["unit"], vars["lead_unit"] = u.name, units[ev.LeadUnitID].name
		for _, r := range rules {
			if !r.matches(ev) || !s.opt.Channels.has(r.Channel) || (len(r.Sources) > 0 && !slices.Contains(r.Sources, t.source)) {
				continue
			}
			w := row{ev: ev, ruleID: r.ID, unitID: ev.UnitID, channel: r.Channel, template: r.Template, status: "pending", nextAt: now}
			switch r.Recipient {
			case "caller":
				if r.Channel != ChannelSMS || t.phone == "" {
					continue
				}
				if t.confidential && !t.consent {
					continue // a confidential report: no message on the caller's phone unless they agreed at intake
				}
				norm, kind, err := phone.Normalize(t.phone)
				if err != nil || kind != phone.Mobile {
					continue
				}
				w.recipient, w.unitID = "caller", 0
				w.sealed, w.masked = s.opt.Box.Seal(pii.FieldPhone, norm), phone.Mask(norm)
				hs := s.opt.Box.Hashes(pii.FieldPhone, norm)
				w.hash = hs[0]
				if len(hs) > 1 {
					w.prevHash = hs[1]
				}
				// Public SMS waits out the quiet hours.
				w.nextAt = quietUntil(now, s.opt.QuietStart, s.opt.QuietEnd)
			case "unit_group", "unit_head", "unit_liaison":
				if ev.UnitID == 0 {
					continue
				}
				role := strings.TrimPrefix(r.Recipient, "unit_")
				w.recipient = fmt.Sprintf("unit:%d:%s", ev.UnitID, role)
				switch {
				case r.Channel == ChannelWecomRobot && role == "group":
					w.address, w.masked = u.robot, maskWebhook(u.robot)
				case r.Channel == ChannelWecomApp && role == "head":
					w.address, w.masked = u.headUser, u.headUser
				case r.Channel == ChannelEmail && (role == "head" || role == "group"):
					w.address, w.masked = u.email, u.email
				case r.Channel == ChannelSMS && role == "head" && u.headPhone != nil:
					w.sealed, w.masked = u.headPhone, u.headPhoneMasked
				case r.Channel == ChannelSMS && role == "liaison" && u.liaisonPhone != nil:
					w.sealed, w.masked = u.liaisonPhone, u.liaisonPhoneMask
				}
				if w.address == "" && w.sealed == nil {
					continue // the unit has no such channel set up
				}
			default:
				continue
			}
			w.title, w.body = render(r.Title, vars), render(r.Body, vars)
			if r.Channel == ChannelSMS {
				w.providerTemplate, w.params = r.ProviderTemplate, smsParams(r.ProviderParams, vars)
			}
			rows = append(rows, w)
		}
	}
	if err := s.applyOptOutsAndCaps(ctx, tx, rows); err != nil {
		return 0, err
	}
	return s.insertRows(ctx, tx, rows)
}

// applyOptOutsAndCaps marks callers' rows suppressed for an opt-out or when the number had DailyCap messages
// that day (counting the rows of this batch in order).
func (s *Service) applyOptOutsAndCaps(ctx context.Context, tx pgx.Tx, rows []row) error {
	type key struct {
		hash string
		day  time.Time
	}
	seen := map[key]bool{}
	var hashes, prev [][]byte
	var days []time.Time
	for _, w := range rows {
		if w.hash == nil {
			continue
		}
		k := key{string(w.hash), dayStart(w.nextAt)}
		if !seen[k] {
			seen[k] = true
			hashes, days, prev = append(hashes, w.hash), append(days, k.day), append(prev, w.prevHash)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	res, err := tx.Query(ctx, `SELECT k.h, k.d, EXISTS (SELECT 1 FROM notify_optouts o WHERE o.phone_hash IN (k.h, k.p)),
			(SELECT count(*) FROM notify_deliveries d WHERE d.address_hash IN (k.h, k.p) AND d.created_at >= k.d AND d.status <> 'suppressed')
		FROM unnest($1::bytea[], $2::timestamptz[], $3::bytea[]) AS k(h, d, p)`, hashes, days, prev)
	if err != nil {
		return fmt.Errorf("opt-outs and caps: %w", err)
	}
	defer res.Close()
	out := map[string]bool{}
	count := map[key]int{}
	for res.Next() {
		var h []byte
		var d time.Time
		var o bool
		var n int
		if err := res.Scan(&h, &d, &o, &n); err != nil {
			return fmt.Errorf("opt-outs and caps: %w", err)
		}
		out[string(h)] = o
		count[key{string(h), d}] = n
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("opt-outs and caps: %w", err)
	}
	for i := range rows {
		w := &rows[i]
		if w.hash == nil {
			continue
		}
		k := key{string(w.hash), dayStart(w.nextAt)}
		switch {
		case out[k.hash]:
			w.status, w.reason = "suppressed", "opt-out"
		case count[k] >= s.opt.DailyCap:
			w.status, w.reason = "suppressed", "daily cap"
		default:
			count[k]++
		}
	}
	return nil
}

// insertRows adds the rows in one round trip; a row already there (a re-read event) is left as it is.
func (s *Service) insertRows(ctx context.Context, tx pgx.Tx, rows []row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	n := 0
	now := s.now() // the service's clock, so the daily cap counts the same days quiet hours use
	for _, w := range rows {
		params, _ := json.Marshal(w.params)
		var ticket, unit, rule any
		if w.ev.TicketID != 0 {
			ticket = w.ev.TicketID
		}
		if w.unitID != 0 {
			unit = w.unitID
		}
		if w.ruleID != 0 {
			rule = w.ruleID
		}
		b.Queue(`INSERT INTO notify_deliveries (event_id, topic, ticket_id, unit_id, rule_id, recipient, channel,
				address, address_sealed, address_hash, address_masked, template, title, body, provider_template, params,
				idem_key, status, reason, next_at, event_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
			ON CONFLICT (event_id, recipient, channel) DO NOTHING`,
			w.ev.ID, w.ev.Topic, ticket, unit, rule, w.recipient, w.channel, w.address, w.sealed, w.hash, w.masked,
			w.template, w.title, w.body, w.providerTemplate, params, IdemKey(w.ev.ID, w.recipient, w.channel),
			w.status, w.reason, w.nextAt, w.ev.At, now).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 1 {
				n++
				if w.status == "suppressed" {
					s.m.suppressed.WithLabelValues(w.reason).Inc()
				}
			}
			return nil
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("insert deliveries: %w", err)
	}
	return n, nil
}

// maskWebhook hides most of a robot key: it is a credential (anyone holding it can post to the group).
func maskWebhook(u string) string {
	i := strings.Index(u, "key=")
	if i < 0 || len(u) < i+8 {
		return u
	}
	return u[:i+8] + "****"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// IntakeOnce reads what is waiting for this consumer without blocking and ingests it (tools and tests; Run
// reads continuously). It returns the number of entries read.
func (s *Service) IntakeOnce(ctx context.Context) (int, error) {
	res, err := s.opt.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: s.consumer,
		Streams: []string{ticketing.EventsKey(s.opt.Prefix), ">"}, Count: 500, Block: -1}).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("notify intake: read events: %w", err)
	}
	n := 0
	for _, st := range res {
		n += len(st.Messages)
		if err := s.Ingest(ctx, st.Messages); err != nil {
			return n, err
		}
	}
	return n, nil
}

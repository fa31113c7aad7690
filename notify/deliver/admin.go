package deliver

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// authorize is the one rule of the admin surface: rules, templates, unit channels and the delivery log are for
// admins; agents may also record a caller's SMS opt-out, since callers ask them on the phone.
func authorize(a org.Actor, what string) error {
	if a.Role == org.RoleAdmin || (what == "optout" && a.Role == org.RoleAgent) {
		return nil
	}
	return fmt.Errorf("notify %s: %w", what, org.ErrForbidden)
}

// Rules lists every rule.
func (s *Service) Rules(ctx context.Context, a org.Actor) ([]Rule, error) {
	if err := authorize(a, "rules"); err != nil {
		return nil, err
	}
	return loadRules(ctx, s.db, false)
}

// RuleInput creates or changes a rule.
type RuleInput struct {
	Topic     string   `json:"topic"`
	ToStatus  string   `json:"to_status"`
	Sources   []string `json:"sources"`
	Recipient string   `json:"recipient"`
	Channel   string   `json:"channel"`
	Template  string   `json:"template"`
	Enabled   *bool    `json:"enabled"`
}

var (
	recipients = []string{"caller", "unit_group", "unit_head", "unit_liaison"}
	channels   = []string{ChannelSMS, ChannelWecomRobot, ChannelWecomApp, ChannelEmail}
)

func (in RuleInput) validate() error {
	v := &org.ValidationError{}
	if in.Topic == "" || len(in.Topic) > 64 || !(strings.HasPrefix(in.Topic, "ticket.") || strings.HasPrefix(in.Topic, "sla.") || in.Topic == "digest.daily") {
		v.Add("topic", "an event topic: ticket.<action>, sla.yellow, sla.red, sla.co_yellow, sla.co_red or digest.daily")
	}
	if !slices.Contains(recipients, in.Recipient) {
		v.Add("recipient", "one of "+strings.Join(recipients, ", "))
	}
	if !slices.Contains(channels, in.Channel) {
		v.Add("channel", "one of "+strings.Join(channels, ", "))
	}
	if in.Recipient == "caller" && in.Channel != ChannelSMS {
		v.Add("channel", "callers are reached by SMS only")
	}
	if in.Template == "" {
		v.Add("template", "required")
	}
	return v.Err()
}

// SaveRule creates a rule (id 0) or replaces one.
func (s *Service) SaveRule(ctx context.Context, a org.Actor, id int64, in RuleInput) (Rule, error) {
	if err := authorize(a, "rules"); err != nil {
		return Rule{}, err
	}
	if err := in.validate(); err != nil {
		return Rule{}, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	if in.Sources == nil {
		in.Sources = []string{}
	}
	var rid int64
	var err error
	if id == 0 {
		err = s.db.QueryRow(ctx, `INSERT INTO notify_rules (topic, to_status, sources, recipient, channel, template, enabled, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			in.Topic, in.ToStatus, in.Sources, in.Recipient, in.Channel, in.Template, enabled, int64(a.UserID)).Scan(&rid)
	} else {
		err = s.db.QueryRow(ctx, `UPDATE notify_rules SET topic = $2, to_status = $3, sources = $4, recipient = $5,
				channel = $6, template = $7, enabled = $8, updated_by = $9, updated_at = now() WHERE id = $1 RETURNING id`,
			id, in.Topic, in.ToStatus, in.Sources, in.Recipient, in.Channel, in.Template, enabled, int64(a.UserID)).Scan(&rid)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, fmt.Errorf("rule %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		switch org.SQLState(err) {
		case pgerrcode.ForeignKeyViolation:
			return Rule{}, org.Invalid("template", "no such template")
		case pgerrcode.UniqueViolation:
			return Rule{}, fmt.Errorf("a rule for this topic, status, recipient and channel exists: %w", org.ErrConflict)
		}
		return Rule{}, fmt.Errorf("save rule: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM notify_rules r JOIN notify_templates t ON t.name = r.template WHERE r.id = $1`, rid)
	if err != nil {
		return Rule{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanRule)
}

// Templates lists every template.
func (s *Service) Templates(ctx context.Context, a org.Actor) ([]Template, error) {
	if err := authorize(a, "templates"); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+templateColumns+` FROM notify_templates ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTemplate)
}

func (t Template) validate() error {
	v := &org.ValidationError{}
	if !templateName.MatchString(t.Name) {
		v.Add("name", "1-64 of a-z, 0-9 and _")
	}
	if strings.TrimSpace(t.Body) == "" {
		v.Add("body", "required")
	}
	if len(t.Body) > 4000 || len(t.Title) > 200 {
		v.Add("body", "too long")
	}
	for _, f := range []struct{ field, text string }{{"title", t.Title}, {"body", t.Body}} {
		if u := unknownPlaceholders(f.text); len(u) > 0 {
			v.Add(f.field, "unknown placeholders: "+strings.Join(u, ", "))
		}
	}
	for _, p := range t.ProviderParams {
		if !knownVars[p] {
			v.Add("provider_params", "unknown placeholder: "+p)
		}
	}
	return v.Err()
}

// SaveTemplate creates or replaces a template.
func (s *Service) SaveTemplate(ctx context.Context, a org.Actor, t Template) (Template, error) {
	if err := authorize(a, "templates"); err != nil {
		return Template{}, err
	}
	if t.ProviderParams == nil {
		t.ProviderParams = []string{}
	}
	if err := t.validate(); err != nil {
		return Template{}, err
	}
	rows, err := s.db.Query(ctx, `INSERT INTO notify_templates (name, description, title, body, provider_template, provider_params, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET description = $2, title = $3, body = $4, provider_template = $5,
			provider_params = $6, updated_by = $7, updated_at = now()
		RETURNING `+templateColumns, t.Name, t.Description, t.Title, t.Body, t.ProviderTemplate, t.ProviderParams, int64(a.UserID))
	if err != nil {
		return Template{}, fmt.Errorf("save template: %w", err)
	}
	return pgx.CollectExactlyOneRow(rows, scanTemplate)
}

// Preview is a template rendered with sample values (or the caller's).
type Preview struct {
	Title  string      `json:"title"`
	Body   string      `json:"body"`
	Params [][2]string `json:"params"`
}

// PreviewTemplate renders the named template — or t's text when given, to preview an edit before saving — with
// sample values overridden by vars.
func (s *Service) PreviewTemplate(ctx context.Context, a org.Actor, name string, t *Template, vars map[string]string) (Preview, error) {
	if err := authorize(a, "templates"); err != nil {
		return Preview{}, err
	}
	if t == nil || t.Body == "" {
		rows, err := s.db.Query(ctx, `SELECT `+templateColumns+` FROM notify_templates WHERE name = $1`, name)
		if err != nil {
			return Preview{}, err
		}
		saved, err := pgx.CollectExactlyOneRow(rows, scanTemplate)
		if errors.Is(err, pgx.ErrNoRows) {
			return Preview{}, fmt.Errorf("template %q: %w", name, org.ErrNotFound)
		}
		if err != nil {
			return Preview{}, err
		}
		t = &saved
	} else {
		t.Name = name
		if err := t.validate(); err != nil {
			return Preview{}, err
		}
	}
	all := map[string]string{}
	for k, v := range sampleVars {
		all[k] = v
	}
	for k, v := range vars {
		all[k] = v
	}
	return Preview{Title: render(t.Title, all), Body: render(t.Body, all), Params: smsParams(t.ProviderParams, all)}, nil
}

// Delivery is one row of the delivery log, as the API shows it: addresses masked, never the number.
type Delivery struct {
	ID          int64      `json:"id"`
	EventID     string     `json:"event_id"`
	Topic       string     `json:"topic"`
	TicketID    *int64     `json:"ticket_id,omitempty"`
	UnitID      *int64     `json:"unit_id,omitempty"`
	Recipient   string     `json:"recipient"`
	Channel     string     `json:"channel"`
	To          string     `json:"to"`
	Template    string     `json:"template"`
	Title       string     `json:"title,omitempty"`
	Body        string     `json:"body"`
	IdemKey     string     `json:"idempotency_key"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Attempts    int        `json:"attempts"`
	NextAt      time.Time  `json:"next_at"`
	LastError   string     `json:"last_error,omitempty"`
	ProviderRef string     `json:"provider_ref,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	Log         []Attempt  `json:"log,omitempty"`
}

// Attempt is one try.
type Attempt struct {
	N           int        `json:"n"`
	IdemKey     string     `json:"idempotency_key"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	OK          *bool      `json:"ok,omitempty"`
	Error       string     `json:"error,omitempty"`
	ProviderRef string     `json:"provider_ref,omitempty"`
}

const deliveryColumns = `id, event_id, topic, ticket_id, unit_id, recipient, channel, address_masked, template, title, body,
	idem_key, status, reason, attempts, next_at, last_error, provider_ref, created_at, sent_at`

func scanDelivery(r pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EventID, &d.Topic, &d.TicketID, &d.UnitID, &d.Recipient, &d.Channel, &d.To, &d.Template,
		&d.Title, &d.Body, &d.IdemKey, &d.Status, &d.Reason, &d.Attempts, &d.NextAt, &d.LastError, &d.ProviderRef,
		&d.CreatedAt, &d.SentAt)
	return d, err
}

// Filter selects deliveries; newest first.
type Filter struct {
	Status   string
	TicketID int64
	BeforeID int64
	Limit    int
}

var statuses = []string{"pending", "sent", "dead", "suppressed"}

// Deliveries lists the delivery log.
func (s *Service) Deliveries(ctx context.Context, a org.Actor, f Filter) ([]Delivery, error) {
	if err := authorize(a, "deliveries"); err != nil {
		return nil, err
	}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return nil, org.Invalid("status", "one of "+strings.Join(statuses, ", "))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+deliveryColumns+` FROM notify_deliveries
		WHERE ($1 = '' OR status = $1) AND ($2 = 0 OR ticket_id = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.Status, f.TicketID, f.BeforeID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if out == nil {
		out = []Delivery{}
	}
	return out, err
}

// GetDelivery returns one delivery with its attempts.
func (s *Service) GetDelivery(ctx context.Context, a org.Actor, id int64) (Delivery, error) {
	if err := authorize(a, "deliveries"); err != nil {
		return Delivery{}, err
	}
	return s.getDelivery(ctx, id)
}

func (s *Service) getDelivery(ctx context.Context, id int64) (Delivery, error) {
	rows, err := s.db.Query(ctx, `SELECT `+deliveryColumns+` FROM notify_deliveries WHERE id = $1`, id)
	if err != nil {
		return Delivery{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Delivery{}, err
	}
	rows, err = s.db.Query(ctx, `SELECT n, idem_key, started_at, finished_at, ok, error, provider_ref
		FROM notify_attempts WHERE delivery_id = $1 ORDER BY n`, id)
	if err != nil {
		return Delivery{}, err
	}
	d.Log, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var at Attempt
		return at, r.Scan(&at.N, &at.IdemKey, &at.StartedAt, &at.FinishedAt, &at.OK, &at.Error, &at.ProviderRef)
	})
	return d, err
}

// Retry gives a dead delivery a fresh retry budget, due now. The idempotency key stays.
func (s *Service) Retry(ctx context.Context, a org.Actor, id int64) (Delivery, error) {
	if err := authorize(a, "deliveries"); err != nil {
		return Delivery{}, err
	}
	tag, err := s.db.Exec(ctx, `UPDATE notify_deliveries SET status = 'pending', next_at = $2, budget_from = attempts
		WHERE id = $1 AND status = 'dead'`, id, s.now())
	if err != nil {
		return Delivery{}, fmt.Errorf("retry delivery %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		d, err := s.getDelivery(ctx, id)
		if err != nil {
			return Delivery{}, err
		}
		return Delivery{}, &org.StateError{Action: "retry", State: d.Status, Allowed: []string{}, Reason: org.ErrState}
	}
	s.Kick()
	return s.getDelivery(ctx, id)
}

// UnitChannels is where a unit is reached, as the API shows it (phones masked).
type UnitChannels struct {
	UnitID        int64  `json:"unit_id"`
	UnitName      string `json:"unit_name"`
	RobotWebhook  string `json:"robot_webhook"`
	HeadWecomUser string `json:"head_wecom_user"`
	HeadPhone     string `json:"head_phone"`
	LiaisonPhone  string `json:"liaison_phone"`
	Email         string `json:"email"`
}

// UnitChannelsInput sets them; a field left empty clears it. Keep names the fields the API only ever shows
// masked (robot_webhook, head_phone, liaison_phone) that stay as stored: an editor that never saw the full value
// cannot send it back, and sending the masked text would store it in place of the real one.
type UnitChannelsInput struct {
	RobotWebhook  string   `json:"robot_webhook"`
	HeadWecomUser string   `json:"head_wecom_user"`
	HeadPhone     string   `json:"head_phone"`
	LiaisonPhone  string   `json:"liaison_phone"`
	Email         string   `json:"email"`
	Keep          []string `json:"keep,omitempty"`
}

// keepable are the fields Keep may name.
var keepable = []string{"robot_webhook", "head_phone", "liaison_phone"}

// ListUnitChannels lists the units that have channels set.
func (s *Service) ListUnitChannels(ctx context.Context, a org.Actor) ([]UnitChannels, error) {
	if err := authorize(a, "units"); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT c.unit_id, u.name, c.robot_webhook, c.head_wecom_user, c.head_phone_masked,
			c.liaison_phone_masked, c.email
		FROM notify_unit_channels c JOIN units u ON u.id = c.unit_id ORDER BY c.unit_id`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnitChannels, error) {
		var c UnitChannels
		err := r.Scan(&c.UnitID, &c.UnitName, &c.RobotWebhook, &c.HeadWecomUser, &c.HeadPhone, &c.LiaisonPhone, &c.Email)
		c.RobotWebhook = maskWebhook(c.RobotWebhook)
		return c, err
	})
	if out == nil {
		out = []UnitChannels{}
	}
	return out, err
}

// SetUnitChannels stores where a unit is reached; phones are sealed. The fields in in.Keep keep their stored
// values, read and written in the one statement so a concurrent edit cannot interleave.
func (s *Service) SetUnitChannels(ctx context.Context, a org.Actor, unit int64, in UnitChannelsInput) (UnitChannels, error) {
	if err := authorize(a, "units"); err != nil {
		return UnitChannels{}, err
	}
	v := &org.ValidationError{}
	for _, k := range in.Keep {
		if !slices.Contains(keepable, k) {
			v.Add("keep", "only "+strings.Join(keepable, ", "))
		}
	}
	keep := func(field string) bool { return slices.Contains(in.Keep, field) }
	if in.RobotWebhook != "" && !keep("robot_webhook") {
		if u, err := url.Parse(in.RobotWebhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.Add("robot_webhook", "an http(s) URL")
		}
	}
	if in.Email != "" {
		if _, err := mail.ParseAddress(in.Email); err != nil {
			v.Add("email", "not an email address")
		}
	}
	seal := func(field, raw string) ([]byte, string) {
		if raw == "" || keep(field) {
			return nil, ""
		}
		n, kind, err := phone.Normalize(raw)
		if err != nil || kind != phone.Mobile {
			v.Add(field, "a mobile number")
			return nil, ""
		}
		return s.opt.Box.Seal(pii.FieldPhone, n), phone.Mask(n)
	}
	hp, hpm := seal("head_phone", in.HeadPhone)
	lp, lpm := seal("liaison_phone", in.LiaisonPhone)
	if err := v.Err(); err != nil {
		return UnitChannels{}, err
	}
	hook := in.RobotWebhook
	if keep("robot_webhook") {
		hook = "" // a new row has nothing to keep
	}
	c := UnitChannels{UnitID: unit}
	err := s.db.QueryRow(ctx, `INSERT INTO notify_unit_channels AS c (unit_id, robot_webhook, head_wecom_user, head_phone_sealed,
			head_phone_masked, liaison_phone_sealed, liaison_phone_masked, email, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (unit_id) DO UPDATE SET
			robot_webhook = CASE WHEN $10 THEN c.robot_webhook ELSE $2 END,
			head_wecom_user = $3,
			head_phone_sealed = CASE WHEN $11 THEN c.head_phone_sealed ELSE $4 END,
			head_phone_masked = CASE WHEN $11 THEN c.head_phone_masked ELSE $5 END,
			liaison_phone_sealed = CASE WHEN $12 THEN c.liaison_phone_sealed ELSE $6 END,
			liaison_phone_masked = CASE WHEN $12 THEN c.liaison_phone_masked ELSE $7 END,
			email = $8, updated_by = $9, updated_at = now()
		RETURNING (SELECT name FROM units WHERE id = c.unit_id), c.robot_webhook, c.head_wecom_user, c.head_phone_masked,
			c.liaison_phone_masked, c.email`,
		unit, hook, in.HeadWecomUser, hp, hpm, lp, lpm, in.Email, int64(a.UserID),
		keep("robot_webhook"), keep("head_phone"), keep("liaison_phone")).
		Scan(&c.UnitName, &c.RobotWebhook, &c.HeadWecomUser, &c.HeadPhone, &c.LiaisonPhone, &c.Email)
	if err != nil {
		if org.SQLState(err) == pgerrcode.ForeignKeyViolation {
			return UnitChannels{}, fmt.Errorf("unit %d: %w", unit, org.ErrNotFound)
		}
		return UnitChannels{}, fmt.Errorf("set unit channels: %w", err)
	}
	c.RobotWebhook = maskWebhook(c.RobotWebhook)
	return c, nil
}

// OptOut records that the owner of a number wants no SMS (out=true) or wants them again (out=false).
func (s *Service) OptOut(ctx context.Context, a org.Actor, raw string, out bool) error {
	if err := authorize(a, "optout"); err != nil {
		return err
	}
	n, kind, err := phone.Normalize(raw)
	if err != nil || kind != phone.Mobile {
		return org.Invalid("phone", "a mobile number")
	}
	h := s.opt.Box.Hash(pii.FieldPhone, n)
	if out {
		_, err = s.db.Exec(ctx, `INSERT INTO notify_optouts (phone_hash, phone_masked, created_by) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, h, phone.Mask(n), int64(a.UserID))
	} else {
		_, err = s.db.Exec(ctx, `DELETE FROM notify_optouts WHERE phone_hash = ANY($1)`, s.opt.Box.Hashes(pii.FieldPhone, n))
	}
	if err != nil {
		return fmt.Errorf("sms opt-out: %w", err)
	}
	return nil
}

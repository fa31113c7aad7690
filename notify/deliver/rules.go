package deliver

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// Rule sends a template to a recipient over a channel when an event of its topic arrives.
type Rule struct {
	ID        int64     `json:"id"`
	Topic     string    `json:"topic"`     // ticket.created, ticket.dispatch, ticket.urge, sla.red, digest.daily, ...
	ToStatus  string    `json:"to_status"` // only events moving the ticket to this status ("" = any)
	Sources   []string  `json:"sources"`   // only tickets from these sources (empty = any)
	Recipient string    `json:"recipient"` // caller, unit_group, unit_head, unit_liaison
	Channel   string    `json:"channel"`   // sms, wecom_robot, wecom_app, email
	Template  string    `json:"template"`
	Enabled   bool      `json:"enabled"`
	UpdatedAt time.Time `json:"updated_at"`

	Title            string   `json:"-"`
	Body             string   `json:"-"`
	ProviderTemplate string   `json:"-"`
	ProviderParams   []string `json:"-"`
}

// Template is an editable message text.
type Template struct {
	Name             string    `json:"name"`
	Description      string    `json:"description"`
	Title            string    `json:"title"`
	Body             string    `json:"body"`
	ProviderTemplate string    `json:"provider_template"`
	ProviderParams   []string  `json:"provider_params"`
	UpdatedAt        time.Time `json:"updated_at"`
}

const ruleColumns = `r.id, r.topic, r.to_status, r.sources, r.recipient, r.channel, r.template, r.enabled, r.updated_at,
	t.title, t.body, t.provider_template, t.provider_params`

func scanRule(row pgx.CollectableRow) (Rule, error) {
	var r Rule
	err := row.Scan(&r.ID, &r.Topic, &r.ToStatus, &r.Sources, &r.Recipient, &r.Channel, &r.Template, &r.Enabled,
		&r.UpdatedAt, &r.Title, &r.Body, &r.ProviderTemplate, &r.ProviderParams)
	return r, err
}

func loadRules(ctx context.Context, db org.DB, enabledOnly bool) ([]Rule, error) {
	rows, err := db.Query(ctx, `SELECT `+ruleColumns+` FROM notify_rules r JOIN notify_templates t ON t.name = r.template
		WHERE r.enabled OR NOT $1 ORDER BY r.id`, enabledOnly)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRule)
}

const templateColumns = `name, description, title, body, provider_template, provider_params, updated_at`

func scanTemplate(row pgx.CollectableRow) (Template, error) {
	var t Template
	err := row.Scan(&t.Name, &t.Description, &t.Title, &t.Body, &t.ProviderTemplate, &t.ProviderParams, &t.UpdatedAt)
	return t, err
}

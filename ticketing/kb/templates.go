package kb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// Template is a reply template (答复模板) of a category ("" : any category).
type Template struct {
	ID        int64     `json:"id"`
	Category  string    `json:"category"`
	Name      string    `json:"name"`
	Body      string    `json:"body"`
	Active    bool      `json:"active"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Placeholders are what a template may name, filled from the ticket by Render.
var Placeholders = map[string]string{
	"{caller_name}": "来电人姓名（保密件为空）",
	"{number}":      "工单编号",
	"{category}":    "事项类别",
	"{region}":      "所属区划",
	"{created_at}":  "受理日期",
	"{content}":     "诉求内容（前 100 字）",
	"{unit}":        "承办单位",
	"{today}":       "今天的日期",
}

var placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)

// templateEditors: the desk's dispatchers, supervisors and admins keep the templates; clerks use them.
func authorizeTemplates(a org.Actor, write bool) error {
	if !write {
		return nil // every reader of the knowledge base; Render checks the ticket
	}
	switch a.Role {
	case org.RoleAdmin, org.RoleSupervisor, org.RoleDispatcher, org.RoleHead:
		return nil
	}
	return fmt.Errorf("edit reply templates: %w: role %s", org.ErrForbidden, a.Role)
}

// Templates lists the active templates of a category (and those of any category), or all with category "".
func (s *Service) Templates(ctx context.Context, a org.Actor, category string) ([]Template, error) {
	if err := s.Authorize(ctx, a, AccessRead, 0); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, coalesce(category, ''), name, body, active, updated_at FROM reply_templates
		WHERE active AND ($1 = '' OR category = $1 OR category IS NULL) ORDER BY category NULLS LAST, name`, category)
	if err != nil {
		return nil, fmt.Errorf("reply templates: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Template])
	if err != nil {
		return nil, fmt.Errorf("reply templates: %w", err)
	}
	return ts, nil
}

// SaveTemplate creates (id 0) or changes a template; a placeholder outside Placeholders is refused by name.
func (s *Service) SaveTemplate(ctx context.Context, a org.Actor, t Template) (Template, error) {
	if err := authorizeTemplates(a, true); err != nil {
		return Template{}, err
	}
	v := &org.ValidationError{}
	t.Name, t.Body = strings.TrimSpace(t.Name), strings.TrimSpace(t.Body)
	if t.Name == "" || utf8.RuneCountInString(t.Name) > 100 {
		v.Add("name", "1 to 100 characters")
	}
	if t.Body == "" || utf8.RuneCountInString(t.Body) > 5000 {
		v.Add("body", "1 to 5000 characters")
	}
	for _, p := range placeholderRE.FindAllString(t.Body, -1) {
		if _, ok := Placeholders[p]; !ok {
			v.Add("body", "unknown placeholder "+p)
		}
	}
	if err := v.Err(); err != nil {
		return Template{}, err
	}
	var cat *string
	if t.Category != "" {
		cat = &t.Category
	}
	var err error
	if t.ID == 0 {
		err = s.db.QueryRow(ctx, `INSERT INTO reply_templates (category, name, body, active, updated_at, updated_by)
			VALUES ($1, $2, $3, true, $4, $5) RETURNING id, active, updated_at`, cat, t.Name, t.Body, s.now(), nz(a.UserID)).
			Scan(&t.ID, &t.Active, &t.UpdatedAt)
	} else {
		err = s.db.QueryRow(ctx, `UPDATE reply_templates SET category = $2, name = $3, body = $4, active = $5, updated_at = $6,
			updated_by = $7 WHERE id = $1 RETURNING updated_at`, t.ID, cat, t.Name, t.Body, t.Active, s.now(), nz(a.UserID)).
			Scan(&t.UpdatedAt)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Template{}, fmt.Errorf("reply template %d: %w", t.ID, org.ErrNotFound)
	case org.SQLState(err) == "23503":
		return Template{}, org.Invalid("category", "unknown category")
	case org.SQLState(err) == "23505":
		return Template{}, org.Invalid("name", "a template of this category has this name")
	case err != nil:
		return Template{}, fmt.Errorf("save reply template: %w", err)
	}
	return t, nil
}

// Render fills a template's placeholders from a ticket the actor may see (as the actor sees it: a confidential
// report's caller stays hidden from those who may not know it).
func (s *Service) Render(ctx context.Context, a org.Actor, tickets *ticketing.Service, templateID int64, ticketID org.TicketID) (string, error) {
	tk, err := tickets.Get(ctx, a, ticketID)
	if err != nil {
		return "", err
	}
	var body string
	err = s.db.QueryRow(ctx, `SELECT body FROM reply_templates WHERE id = $1 AND active`, templateID).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("reply template %d: %w", templateID, org.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reply template %d: %w", templateID, err)
	}
	var catName, unit string
	_ = s.db.QueryRow(ctx, `SELECT c.name, u.name FROM ticket_categories c, units u WHERE c.code = $1 AND u.id = $2`,
		tk.Category, int64(tk.LeadUnitID)).Scan(&catName, &unit)
	content := []rune(tk.Content)
	if len(content) > 100 {
		content = append(content[:100], '…')
	}
	day := func(t time.Time) string { return t.In(calendar.CST).Format("2006年1月2日") }
	r := strings.NewReplacer("{caller_name}", tk.CallerName, "{number}", tk.Number, "{category}", catName,
		"{region}", region.FullName(tk.RegionCode), "{created_at}", day(tk.CreatedAt), "{content}", string(content),
		"{unit}", unit, "{today}", day(s.now()))
	return r.Replace(body), nil
}

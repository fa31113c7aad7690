package ticketing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// RegionTarget as a unit code in a rule or category means "the county bureau of the ticket's region".
const RegionTarget = "region"

// Rule is one entry of the routing directory (派单目录). Empty lists and strings match anything.
type Rule struct {
	ID           int64     `json:"id"`
	Position     int       `json:"position"`
	Name         string    `json:"name"`
	Kinds        []Kind    `json:"kinds"`
	Categories   []string  `json:"categories"`
	RegionPrefix string    `json:"region_prefix"`
	Keywords     []string  `json:"keywords"`
	HasHousehold *bool     `json:"has_household"`
	UnitCode     string    `json:"unit_code"`
	Active       bool      `json:"active"`
	Version      int       `json:"version"`
	UpdatedAt    time.Time `json:"updated_at"`
}

type routeInput struct {
	Kind         Kind
	Category     string
	RegionCode   string
	HasHousehold bool
	Content      string
}

// Route is a routing decision: the unit, and the rule and version that chose it (none: the desk).
type Route struct {
	UnitID      org.UnitID `json:"unit_id"`
	RuleID      int64      `json:"rule_id,omitempty"`
	RuleVersion int        `json:"rule_version,omitempty"`
}

// matches reports whether the rule applies; a rule naming the region's bureau does not apply without a region.
func (r Rule) matches(in routeInput) bool {
	if !r.Active {
		return false
	}
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, in.Kind) {
		return false
	}
	if len(r.Categories) > 0 && !slices.Contains(r.Categories, in.Category) {
		return false
	}
	if r.RegionPrefix != "" && !strings.HasPrefix(in.RegionCode, r.RegionPrefix) {
		return false
	}
	if r.HasHousehold != nil && *r.HasHousehold != in.HasHousehold {
		return false
	}
	if len(r.Keywords) > 0 && !slices.ContainsFunc(r.Keywords, func(k string) bool { return k != "" && strings.Contains(in.Content, k) }) {
		return false
	}
	if r.UnitCode == RegionTarget && region.County(in.RegionCode) == "" && region.Prefecture(in.RegionCode) == "" {
		return false
	}
	return true
}

const ruleColumns = `id, position, name, kinds, categories, region_prefix, keywords, has_household, unit_code, active, version, updated_at`

func scanRule(row pgx.CollectableRow) (Rule, error) {
	var r Rule
	var kinds []string
	err := row.Scan(&r.ID, &r.Position, &r.Name, &kinds, &r.Categories, &r.RegionPrefix, &r.Keywords, &r.HasHousehold,
		&r.UnitCode, &r.Active, &r.Version, &r.UpdatedAt)
	for _, k := range kinds {
		r.Kinds = append(r.Kinds, Kind(k))
	}
	if r.Kinds == nil {
		r.Kinds = []Kind{}
	}
	return r, err
}

// Rules returns the routing directory in the order it is tried.
func (s *Service) Rules(ctx context.Context) ([]Rule, error) { return listRules(ctx, s.db) }

func listRules(ctx context.Context, db org.DB) ([]Rule, error) {
	rows, err := db.Query(ctx, `SELECT `+ruleColumns+` FROM routing_rules ORDER BY position, id`)
	if err != nil {
		return nil, fmt.Errorf("list routing rules: %w", err)
	}
	rs, err := pgx.CollectRows(rows, scanRule)
	if err != nil {
		return nil, fmt.Errorf("list routing rules: %w", err)
	}
	return rs, nil
}

// route runs the directory: the first matching rule, else the dispatch desk (no rule).
func (s *Service) route(ctx context.Context, db org.DB, in routeInput) (Route, error) {
	rules, err := s.cachedRules(ctx, db)
	if err != nil {
		return Route{}, err
	}
	for _, r := range rules {
		if !r.matches(in) {
			continue
		}
		u, err := s.resolveUnit(ctx, db, r.UnitCode, in.RegionCode)
		if errors.Is(err, org.ErrNotFound) {
			continue // a rule naming a unit that is gone does not route
		}
		if err != nil {
			return Route{}, err
		}
		return Route{UnitID: u.ID, RuleID: r.ID, RuleVersion: r.Version}, nil
	}
	desk, err := s.unitByCodeCached(ctx, db, org.CodeDesk)
	if err != nil {
		return Route{}, fmt.Errorf("route: dispatch desk: %w", err)
	}
	return Route{UnitID: desk.ID}, nil
}

func (s *Service) resolveUnit(ctx context.Context, db org.DB, code, regionCode string) (org.Unit, error) {
	if code != RegionTarget {
		return s.unitByCodeCached(ctx, db, code)
	}
	// The county's bureau, or for a statistical-only zone the prefecture's (as UnitForRegion, but cached).
	if c := region.County(regionCode); c != "" {
		u, err := s.unitByCodeCached(ctx, db, c)
		if !errors.Is(err, org.ErrNotFound) {
			return u, err
		}
	}
	if p := region.Prefecture(regionCode); p != "" {
		return s.unitByCodeCached(ctx, db, p)
	}
	return org.Unit{}, fmt.Errorf("unit for region %q: %w", regionCode, org.ErrNotFound)
}

// Rules and units change rarely and are read on every create; they are cached for a short while per process
// (a rule edited through this process clears the cache at once).
const cacheTTL = 5 * time.Second

type ruleCache struct {
	at    time.Time
	rules []Rule
}

func (s *Service) cachedRules(ctx context.Context, db org.DB) ([]Rule, error) {
	s.cacheMu.Lock()
	c := s.rules
	s.cacheMu.Unlock()
	if c != nil && s.now().Sub(c.at) < cacheTTL {
		return c.rules, nil
	}
	rs, err := listRules(ctx, db)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	s.rules = &ruleCache{at: s.now(), rules: rs}
	s.units = nil // units are refreshed as often as the rules
	s.cacheMu.Unlock()
	return rs, nil
}

func (s *Service) unitByCodeCached(ctx context.Context, db org.DB, code string) (org.Unit, error) {
	s.cacheMu.Lock()
	u, ok := s.units[code]
	s.cacheMu.Unlock()
	if ok {
		return u, nil
	}
	u, err := org.UnitByCode(ctx, db, code)
	if err != nil {
		return org.Unit{}, err
	}
	s.cacheMu.Lock()
	if s.units == nil {
		s.units = map[string]org.Unit{}
	}
	s.units[code] = u
	s.cacheMu.Unlock()
	return u, nil
}

func (s *Service) category(ctx context.Context, db org.DB, code string) (Category, error) {
	s.cacheMu.Lock()
	c, ok := s.cats[code]
	fresh := s.now().Sub(s.catsAt) < cacheTTL
	s.cacheMu.Unlock()
	if ok && fresh {
		return c, nil
	}
	cs, err := listCategories(ctx, db)
	if err != nil {
		return Category{}, err
	}
	m := map[string]Category{}
	for _, c := range cs {
		m[c.Code] = c
	}
	s.cacheMu.Lock()
	s.cats, s.catsAt = m, s.now()
	s.cacheMu.Unlock()
	c, ok = m[code]
	if !ok || !c.Active {
		return Category{}, fmt.Errorf("category %q: %w", code, org.ErrNotFound)
	}
	return c, nil
}

// Categories returns the matter categories.
func (s *Service) Categories(ctx context.Context) ([]Category, error) {
	return listCategories(ctx, s.db)
}

func listCategories(ctx context.Context, db org.DB) ([]Category, error) {
	rows, err := db.Query(ctx, `SELECT code, name, lead_unit_code, fallback_unit_code, reply_days, urgent_reply_hours, active
		FROM ticket_categories ORDER BY position, code`)
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Category, error) {
		var c Category
		err := row.Scan(&c.Code, &c.Name, &c.LeadUnitCode, &c.FallbackUnitCode, &c.ReplyDays, &c.UrgentReplyHours, &c.Active)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	return cs, nil
}

// RuleInput is a new or changed routing rule.
type RuleInput struct {
	Position     int      `json:"position"`
	Name         string   `json:"name"`
	Kinds        []Kind   `json:"kinds"`
	Categories   []string `json:"categories"`
	RegionPrefix string   `json:"region_prefix"`
	Keywords     []string `json:"keywords"`
	HasHousehold *bool    `json:"has_household"`
	UnitCode     string   `json:"unit_code"`
	Active       *bool    `json:"active"`
	Version      int      `json:"version"` // for updates: the version being changed
}

func (s *Service) validateRule(ctx context.Context, in *RuleInput) error {
	v := &org.ValidationError{}
	if strings.TrimSpace(in.Name) == "" {
		v.Add("name", "required")
	}
	if in.Position < 0 || in.Position > maxRulePosition {
		v.Add("position", fmt.Sprintf("from 0 to %d", maxRulePosition))
	}
	for _, k := range in.Kinds {
		if !validKind(k) {
			v.Add("kinds", "unknown kind "+string(k))
		}
	}
	for _, c := range in.Categories {
		if _, err := s.category(ctx, s.db, c); err != nil {
			v.Add("categories", "unknown category "+c)
		}
	}
	if in.RegionPrefix != "" && !strings.HasPrefix(in.RegionPrefix, "43") {
		v.Add("region_prefix", "a prefix of a Hunan region code")
	}
	if in.UnitCode == "" {
		v.Add("unit_code", "required: a unit code or \"region\"")
	} else if in.UnitCode != RegionTarget {
		if _, err := org.UnitByCode(ctx, s.db, in.UnitCode); err != nil {
			v.Add("unit_code", "unknown unit")
		}
	}
	if in.Kinds == nil {
		in.Kinds = []Kind{}
	}
	if in.Categories == nil {
		in.Categories = []string{}
	}
	if in.Keywords == nil {
		in.Keywords = []string{}
	}
	return v.Err()
}

// maxRulePosition keeps positions well inside the column's integer range.
const maxRulePosition = 1_000_000

func canEditRules(a org.Actor) bool { return a.Role == org.RoleAdmin }

// CreateRule adds a rule to the directory (admins).
func (s *Service) CreateRule(ctx context.Context, a org.Actor, in RuleInput) (Rule, error) {
	if !canEditRules(a) {
		return Rule{}, fmt.Errorf("create routing rule: %w", org.ErrForbidden)
	}
	if err := s.validateRule(ctx, &in); err != nil {
		return Rule{}, err
	}
	active := in.Active == nil || *in.Active
	var r Rule
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO routing_rules (position, name, kinds, categories, region_prefix, keywords,
				has_household, unit_code, active, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+ruleColumns,
			in.Position, in.Name, in.Kinds, in.Categories, in.RegionPrefix, in.Keywords, in.HasHousehold, in.UnitCode, active, nullUser(a))
		if err != nil {
			return err
		}
		r, err = pgx.CollectExactlyOneRow(rows, scanRule)
		if err != nil {
			return err
		}
		if err := ruleHistory(ctx, tx, r.ID); err != nil {
			return err
		}
		return org.WriteAdminAudit(ctx, tx, a, org.Source{}, org.AdminRuleCreate, fmt.Sprintf("routing_rule:%d", r.ID), nil, r)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("create routing rule: %w", err)
	}
	s.clearRuleCache()
	return r, nil
}

// UpdateRule changes a rule (admins); in.Version must be the current version, and the old one is kept.
func (s *Service) UpdateRule(ctx context.Context, a org.Actor, id int64, in RuleInput) (Rule, error) {
	if !canEditRules(a) {
		return Rule{}, fmt.Errorf("update routing rule: %w", org.ErrForbidden)
	}
	if err := s.validateRule(ctx, &in); err != nil {
		return Rule{}, err
	}
	active := in.Active == nil || *in.Active
	var r Rule
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var before any                                                                              // for the admin audit row; nil when the rule does not exist (answered below)
		prevRows, _ := tx.Query(ctx, `SELECT `+ruleColumns+` FROM routing_rules WHERE id = $1`, id) // its error comes back from CollectRows
		if prev, err := pgx.CollectRows(prevRows, scanRule); err != nil {
			return err
		} else if len(prev) == 1 {
			before = prev[0]
		}
		rows, err := tx.Query(ctx, `UPDATE routing_rules SET position = $3, name = $4, kinds = $5, categories = $6,
				region_prefix = $7, keywords = $8, has_household = $9, unit_code = $10, active = $11, updated_by = $12,
				version = version + 1, updated_at = now()
			WHERE id = $1 AND version = $2 RETURNING `+ruleColumns,
			id, in.Version, in.Position, in.Name, in.Kinds, in.Categories, in.RegionPrefix, in.Keywords, in.HasHousehold,
			in.UnitCode, active, nullUser(a))
		if err != nil {
			return err
		}
		r, err = pgx.CollectExactlyOneRow(rows, scanRule)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			tx.QueryRow(ctx, `SELECT true FROM routing_rules WHERE id = $1`, id).Scan(&exists)
			if !exists {
				return org.ErrNotFound
			}
			return fmt.Errorf("rule %d is not at version %d: %w", id, in.Version, org.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := ruleHistory(ctx, tx, r.ID); err != nil {
			return err
		}
		return org.WriteAdminAudit(ctx, tx, a, org.Source{}, org.AdminRuleUpdate, fmt.Sprintf("routing_rule:%d", r.ID), before, r)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("update routing rule %d: %w", id, err)
	}
	s.clearRuleCache()
	return r, nil
}

func ruleHistory(ctx context.Context, tx pgx.Tx, id int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO routing_rule_history (rule_id, version, position, name, kinds, categories,
			region_prefix, keywords, has_household, unit_code, active, updated_at, updated_by)
		SELECT id, version, position, name, kinds, categories, region_prefix, keywords, has_household, unit_code, active,
			updated_at, updated_by FROM routing_rules WHERE id = $1`, id)
	return err
}

func (s *Service) clearRuleCache() {
	s.cacheMu.Lock()
	s.rules = nil
	s.cacheMu.Unlock()
}

func nullUser(a org.Actor) any {
	if a.UserID == 0 {
		return nil
	}
	return int64(a.UserID)
}

// SaveCategory creates or changes a matter category (admins). The code is stable once used: tickets refer to it.
func (s *Service) SaveCategory(ctx context.Context, a org.Actor, c Category) (Category, error) {
	if !canEditRules(a) {
		return Category{}, fmt.Errorf("save category: %w", org.ErrForbidden)
	}
	v := &org.ValidationError{}
	if !categoryCode.MatchString(c.Code) {
		v.Add("code", "2 to 48 characters: a-z, 0-9, _ (starting with a letter)")
	}
	if strings.TrimSpace(c.Name) == "" {
		v.Add("name", "required")
	}
	for field, code := range map[string]string{"lead_unit_code": c.LeadUnitCode, "fallback_unit_code": c.FallbackUnitCode} {
		if code == "" && field == "fallback_unit_code" || code == RegionTarget && field == "lead_unit_code" {
			continue
		}
		if _, err := org.UnitByCode(ctx, s.db, code); err != nil {
			v.Add(field, "unknown unit")
		}
	}
	if c.ReplyDays != nil && (*c.ReplyDays < 1 || *c.ReplyDays > 60) {
		v.Add("reply_days", "1 to 60 working days")
	}
	if c.UrgentReplyHours != nil && (*c.UrgentReplyHours < 1 || *c.UrgentReplyHours > 240) {
		v.Add("urgent_reply_hours", "1 to 240 working hours")
	}
	if err := v.Err(); err != nil {
		return Category{}, err
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var before any // for the admin audit row; nil for a new category
		if prev, err := listCategories(ctx, tx); err != nil {
			return err
		} else if i := slices.IndexFunc(prev, func(p Category) bool { return p.Code == c.Code }); i >= 0 {
			before = prev[i]
		}
		if err := saveCategory(ctx, tx, c); err != nil {
			return err
		}
		return org.WriteAdminAudit(ctx, tx, a, org.Source{}, org.AdminCategorySave, "category:"+c.Code, before, c)
	})
	if err != nil {
		return Category{}, err
	}
	s.cacheMu.Lock()
	s.cats = nil
	s.cacheMu.Unlock()
	return c, nil
}

func saveCategory(ctx context.Context, db org.DB, c Category) error {
	_, err := db.Exec(ctx, `INSERT INTO ticket_categories (code, name, lead_unit_code, fallback_unit_code, reply_days, urgent_reply_hours, active, position)
		VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT coalesce(max(position), 0) + 10 FROM ticket_categories))
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, lead_unit_code = EXCLUDED.lead_unit_code,
			fallback_unit_code = EXCLUDED.fallback_unit_code, reply_days = EXCLUDED.reply_days,
			urgent_reply_hours = EXCLUDED.urgent_reply_hours, active = EXCLUDED.active`,
		c.Code, c.Name, c.LeadUnitCode, c.FallbackUnitCode, c.ReplyDays, c.UrgentReplyHours, c.Active)
	if err != nil {
		return fmt.Errorf("save category %s: %w", c.Code, err)
	}
	return nil
}

var categoryCode = regexp.MustCompile(`^[a-z][a-z0-9_]{1,47}$`)

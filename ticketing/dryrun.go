package ticketing

import (
	"context"

	"fmt"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// RouteQuestion is a matter as the routing directory sees it, for the "which unit would this go to?" dry run.
type RouteQuestion struct {
	Kind         Kind   `json:"kind"`
	Category     string `json:"category"`
	RegionCode   string `json:"region_code"`
	HasHousehold bool   `json:"has_household"`
	Content      string `json:"content"`
}

// RouteAnswer is what the directory decides: the unit, and the rule that chose it (nil: no rule matched and the
// matter goes to the dispatch desk).
type RouteAnswer struct {
	Unit org.Unit `json:"unit"`
	Rule *Rule    `json:"rule"`
}

// DryRoute runs the routing directory as it stands on a described matter and changes nothing: what an admin
// checks before and after editing a rule. Admins and dispatchers (who override routes) may ask.
func (s *Service) DryRoute(ctx context.Context, a org.Actor, q RouteQuestion) (RouteAnswer, error) {
	if !canEditRules(a) && a.Role != org.RoleDispatcher {
		return RouteAnswer{}, fmt.Errorf("routing dry run: %w", org.ErrForbidden)
	}
	if q.Kind != "" && !validKind(q.Kind) {
		return RouteAnswer{}, org.Invalid("kind", "unknown kind")
	}
	r, err := s.route(ctx, s.db, routeInput{Kind: q.Kind, Category: q.Category, RegionCode: q.RegionCode,
		HasHousehold: q.HasHousehold, Content: q.Content})
	if err != nil {
		return RouteAnswer{}, err
	}
	u, err := org.GetUnit(ctx, s.db, r.UnitID)
	if err != nil {
		return RouteAnswer{}, fmt.Errorf("routing dry run: unit %d: %w", r.UnitID, err)
	}
	ans := RouteAnswer{Unit: u}
	if r.RuleID != 0 {
		rules, err := s.cachedRules(ctx, s.db)
		if err != nil {
			return RouteAnswer{}, err
		}
		for i := range rules {
			if rules[i].ID == r.RuleID {
				ans.Rule = &rules[i]
			}
		}
	}
	return ans, nil
}

// RuleHistory returns every stored version of a routing rule, newest first (routing_rule_history keeps each
// version as it was saved, with who saved it).
func (s *Service) RuleHistory(ctx context.Context, a org.Actor, id int64) ([]RuleVersion, error) {
	if !canEditRules(a) && a.Role != org.RoleDispatcher {
		return nil, fmt.Errorf("routing rule history: %w", org.ErrForbidden)
	}
	rows, err := s.db.Query(ctx, `SELECT h.rule_id, h.version, h.position, h.name, h.kinds, h.categories, h.region_prefix,
			h.keywords, h.has_household, h.unit_code, h.active, h.updated_at, coalesce(u.username, '')
		FROM routing_rule_history h LEFT JOIN users u ON u.id = h.updated_by
		WHERE h.rule_id = $1 ORDER BY h.version DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("routing rule %d history: %w", id, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RuleVersion, error) {
		var v RuleVersion
		err := row.Scan(&v.ID, &v.Version, &v.Position, &v.Name, &v.Kinds, &v.Categories, &v.RegionPrefix, &v.Keywords,
			&v.HasHousehold, &v.UnitCode, &v.Active, &v.UpdatedAt, &v.UpdatedBy)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("routing rule %d history: %w", id, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("routing rule %d: %w", id, org.ErrNotFound)
	}
	return vs, nil
}

// RuleVersion is one saved version of a routing rule, with the username of who saved it ("" for the seed).
type RuleVersion struct {
	Rule
	UpdatedBy string `json:"updated_by"`
}

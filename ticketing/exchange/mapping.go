package exchange

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// DefaultCategory is the category of an order whose code has no mapping and whose platform has no default row
// (code '*'): the ticket waits at the dispatch desk, undispatched, and the code is reported.
const DefaultCategory = "policy_question"

// mapCategory returns our category for the platform's code and whether the code itself is mapped (false: the
// platform's default or DefaultCategory was used).
func mapCategory(ctx context.Context, db org.DB, platform, code string) (string, bool, error) {
	var cat, matched string
	err := db.QueryRow(ctx, `SELECT category, code FROM exchange_category_map WHERE platform = $1 AND code IN ($2, '*')
		ORDER BY code = '*' LIMIT 1`, platform, code).Scan(&cat, &matched)
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultCategory, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("exchange: map category %q: %w", code, err)
	}
	return cat, matched == code, nil
}

// mapRegion returns our region code for the platform's: a mapping row, else the code itself when it is a Hunan
// region code of GB/T 2260 (most platforms send those), else "" (unmapped).
func mapRegion(ctx context.Context, db org.DB, platform, code string) (string, bool, error) {
	if code == "" {
		return "", false, nil
	}
	var reg string
	err := db.QueryRow(ctx, `SELECT region_code FROM exchange_region_map WHERE platform = $1 AND code = $2`, platform, code).Scan(&reg)
	if err == nil {
		return reg, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("exchange: map region %q: %w", code, err)
	}
	if hunanRegion(code) {
		return code, true, nil
	}
	return "", false, nil
}

func hunanRegion(code string) bool {
	_, ok := region.Lookup(code)
	return ok && strings.HasPrefix(code, "43")
}

func noteUnmapped(ctx context.Context, db org.DB, platform, kind, code, orderID string) error {
	if len(code) > 64 {
		code = code[:64]
	}
	_, err := db.Exec(ctx, `INSERT INTO exchange_unmapped (platform, kind, code, last_order_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, kind, code) DO UPDATE SET count = exchange_unmapped.count + 1, last_seen = now(),
			last_order_id = excluded.last_order_id`, platform, kind, code, orderID)
	if err != nil {
		return fmt.Errorf("exchange: note unmapped %s %q: %w", kind, code, err)
	}
	return nil
}

// Mapping is one row of a platform's mapping table.
type Mapping struct {
	Kind      string    `json:"kind"`                // category or region
	Code      string    `json:"code"`                // the platform's code ('*': the default category)
	Ours      string    `json:"ours"`                // our category code or region code
	OursName  string    `json:"ours_name,omitempty"` // its name (the category's, or the region's from the prefecture down)
	UpdatedAt time.Time `json:"updated_at"`
}

// Unmapped is a line of the report of codes that arrived without a mapping (and still have none).
type Unmapped struct {
	Kind        string    `json:"kind"`
	Code        string    `json:"code"`
	Count       int       `json:"count"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	LastOrderID string    `json:"last_order_id"`
	// Waiting is how many of the platform's orders with this code are still at our dispatch desk (待派单).
	Waiting int `json:"waiting"`
}

// Mappings lists a platform's category and region mappings.
func (s *Service) Mappings(ctx context.Context, a org.Actor, platform string) ([]Mapping, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return nil, err
	}
	if _, err := s.platform(platform); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT 'category', m.code, m.category, coalesce(c.name, ''), m.updated_at FROM exchange_category_map m
			LEFT JOIN ticket_categories c ON c.code = m.category WHERE m.platform = $1
		UNION ALL SELECT 'region', code, region_code, '', updated_at FROM exchange_region_map WHERE platform = $1
		ORDER BY 1, 2`, platform)
	if err != nil {
		return nil, fmt.Errorf("exchange: mappings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mapping, error) {
		var m Mapping
		err := r.Scan(&m.Kind, &m.Code, &m.Ours, &m.OursName, &m.UpdatedAt)
		if m.Kind == "region" {
			m.OursName = region.FullName(m.Ours)
		}
		return m, err
	})
}

// SaveMapping creates or changes one mapping (kind "category": ours is a category code; "region": a Hunan region
// code). Later orders use it; tickets already made keep what they were given.
func (s *Service) SaveMapping(ctx context.Context, a org.Actor, platform, kind, code, ours string) (Mapping, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return Mapping{}, err
	}
	if _, err := s.platform(platform); err != nil {
		return Mapping{}, err
	}
	code, ours = strings.TrimSpace(code), strings.TrimSpace(ours)
	v := &org.ValidationError{}
	if code == "" || len(code) > 64 {
		v.Add("code", "1-64 characters")
	}
	var q string
	switch kind {
	case "category":
		q = `INSERT INTO exchange_category_map (platform, code, category, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (platform, code) DO UPDATE SET category = excluded.category, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`
		var one int
		err := s.db.QueryRow(ctx, `SELECT 1 FROM ticket_categories WHERE code = $1 AND active`, ours).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			v.Add("ours", "not an active category of ours")
		} else if err != nil {
			return Mapping{}, fmt.Errorf("exchange: save mapping: %w", err)
		}
	case "region":
		if code == "*" {
			v.Add("code", "regions have no default row")
		}
		if !hunanRegion(ours) {
			v.Add("ours", "not a Hunan region code")
		}
		q = `INSERT INTO exchange_region_map (platform, code, region_code, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (platform, code) DO UPDATE SET region_code = excluded.region_code, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`
	default:
		v.Add("kind", "category or region")
	}
	if err := v.Err(); err != nil {
		return Mapping{}, err
	}
	now := s.now()
	var by any
	if a.UserID != 0 {
		by = int64(a.UserID)
	}
	if _, err := s.db.Exec(ctx, q, platform, code, ours, now, by); err != nil {
		return Mapping{}, fmt.Errorf("exchange: save mapping: %w", err)
	}
	return Mapping{Kind: kind, Code: code, Ours: ours, UpdatedAt: now}, nil
}

// DeleteMapping removes one mapping.
func (s *Service) DeleteMapping(ctx context.Context, a org.Actor, platform, kind, code string) error {
	if err := AuthorizeAdmin(a); err != nil {
		return err
	}
	var q string
	switch kind {
	case "category":
		q = `DELETE FROM exchange_category_map WHERE platform = $1 AND code = $2`
	case "region":
		q = `DELETE FROM exchange_region_map WHERE platform = $1 AND code = $2`
	default:
		return org.Invalid("kind", "category or region")
	}
	tag, err := s.db.Exec(ctx, q, platform, code)
	if err != nil {
		return fmt.Errorf("exchange: delete mapping: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mapping %s %q: %w", kind, code, org.ErrNotFound)
	}
	return nil
}

// UnmappedCodes is the report of codes that came without a mapping and still have none, most frequent first.
func (s *Service) UnmappedCodes(ctx context.Context, a org.Actor, platform string) ([]Unmapped, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return nil, err
	}
	if _, err := s.platform(platform); err != nil {
		return nil, err
	}
	// The orders still waiting come from the few tickets at the dispatch desk (status new), not from every order.
	rows, err := s.db.Query(ctx, `WITH waiting AS (SELECT o.category_code, o.region_code FROM tickets t
			JOIN exchange_orders o ON o.ticket_id = t.id WHERE t.status = 'new' AND o.platform = $1)
		SELECT u.kind, u.code, u.count, u.first_seen, u.last_seen, u.last_order_id,
			(SELECT count(*) FROM waiting w WHERE CASE u.kind WHEN 'category' THEN w.category_code ELSE w.region_code END = u.code)
		FROM exchange_unmapped u
		WHERE u.platform = $1
		  AND NOT (u.kind = 'category' AND EXISTS (SELECT 1 FROM exchange_category_map m WHERE m.platform = u.platform AND m.code = u.code))
		  AND NOT (u.kind = 'region' AND EXISTS (SELECT 1 FROM exchange_region_map m WHERE m.platform = u.platform AND m.code = u.code))
		ORDER BY u.count DESC, u.kind, u.code`, platform)
	if err != nil {
		return nil, fmt.Errorf("exchange: unmapped: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unmapped, error) {
		var u Unmapped
		return u, r.Scan(&u.Kind, &u.Code, &u.Count, &u.FirstSeen, &u.LastSeen, &u.LastOrderID, &u.Waiting)
	})
}

package ticketing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/region"
)

// PublicRequest is a ticket as anyone may see it in a public listing (Open311 GET requests): no caller, no
// content, no reply, no address finer than the county. What a listing may show is decided here, not by the
// protocols that serve it.
type PublicRequest struct {
	Number       string
	Status       Status
	Category     string
	CategoryName string
	UnitName     string // the lead unit (agency_responsible)
	CountyCode   string // "" when the ticket has no region
	CountyName   string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DueAt        *time.Time
}

// privateCategories never appear in a public listing: they are about one named monitored household (a
// request for help, its verification), so even the category and county say too much.
var privateCategories = []string{CategoryMonitoringHelp, CategoryMonitoringVerify}

// PublicCategory reports whether a category may be offered to and listed for the public.
func PublicCategory(code string) bool {
	for _, c := range privateCategories {
		if c == code {
			return false
		}
	}
	return true
}

// PublicFilter selects a public listing. Zero From/To: the last 90 days (the GeoReport v2 default).
type PublicFilter struct {
	Numbers  []string
	Category string
	Open     *bool // nil: both
	From, To time.Time
	Limit    int // default and at most 1000
}

// PublicRequests lists tickets for the public: never confidential ones (举报 with the reporter protected) nor
// those of private categories.
func (s *Service) PublicRequests(ctx context.Context, f PublicFilter) ([]PublicRequest, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	if f.To.IsZero() {
		f.To = s.now().Add(time.Minute)
	}
	if f.From.IsZero() {
		f.From = f.To.AddDate(0, 0, -90)
	}
	status := ""
	if f.Open != nil {
		status = "closed"
		if *f.Open {
			status = "open"
		}
	}
	var numbers []string
	if len(f.Numbers) > 0 {
		numbers = f.Numbers
	}
	rows, err := s.db.Query(ctx, `SELECT t.number, t.status, t.category, c.name, u.name, t.region_code, t.created_at,
			t.updated_at, t.due_at
		FROM tickets t JOIN ticket_categories c ON c.code = t.category JOIN units u ON u.id = t.lead_unit_id
		WHERE NOT t.confidential AND t.category <> ALL($1)
		  AND ($2::text[] IS NULL OR t.number = ANY($2))
		  AND ($2::text[] IS NOT NULL OR (t.created_at >= $3 AND t.created_at < $4))
		  AND ($5 = '' OR t.category = $5)
		  AND ($6 = '' OR ($6 = 'closed') = (t.status = 'closed'))
		ORDER BY t.created_at DESC, t.id DESC LIMIT $7`,
		privateCategories, numbers, f.From, f.To, f.Category, status, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("public requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PublicRequest, error) {
		var p PublicRequest
		var regionCode string
		err := row.Scan(&p.Number, &p.Status, &p.Category, &p.CategoryName, &p.UnitName, &regionCode, &p.CreatedAt, &p.UpdatedAt, &p.DueAt)
		if regionCode != "" {
			p.CountyCode = region.County(regionCode)
			p.CountyName = region.FullName(p.CountyCode)
		}
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("public requests: %w", err)
	}
	return out, nil
}

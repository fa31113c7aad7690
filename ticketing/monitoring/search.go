package monitoring

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// Query filters a household search; zero fields do not filter. Results are ordered by ID and paged with After.
type Query struct {
	Number         string          // the household number (户编号), exact
	Name           string          // prefix of any member's name (the head is a member)
	Phone          string          // any format; exact number
	IDNumber       string          // full ID number, exact
	IDLast4        string          // last four characters of any member's ID number
	Region         string          // prefix of the township code: 4309 (prefecture), 430903 (county), 430903001
	MonitoringType MonitoringType  //
	RiskType       RiskType        //
	Status         Status          //
	NoContactDays  int             // no contact for at least this many days (or never)
	Clock          string          // yellow or red: households whose lead-to-identification clock is at least that late
	After          org.HouseholdID // cursor: the last ID of the previous page
	Limit          int             // default 50, at most 500
}

// Page is one page of search results. Next is the cursor of the following page, if there is one.
type Page struct {
	Households []Household      `json:"households"`
	Next       *org.HouseholdID `json:"next,omitempty"`
}

// Search finds the households in the actor's scope; personal data is masked and members are not loaded (Read does
// that). A search by a full phone or ID number confirms a guess, so it is a look-up of personal data: it needs
// lookup_pii, is rate-limited per user and leaves a row in the security audit log (lookup).
func (s *Service) Search(ctx context.Context, actor org.Actor, q Query) (Page, error) {
	return s.SearchTx(ctx, s.db, actor, q)
}

// SearchTx is Search on db: a caller inside a transaction passes it, so the search does not wait for a second
// pooled connection while the transaction holds one (issue 15).
func (s *Service) SearchTx(ctx context.Context, db org.DB, actor org.Actor, q Query) (Page, error) {
	sc, err := ScopeOf(ctx, db, actor)
	if err != nil {
		return Page{}, err
	}
	exact := strings.TrimSpace(q.Phone) != "" || strings.TrimSpace(q.IDNumber) != ""
	if exact {
		if err := s.lookupAllowed(ctx, actor); err != nil {
			return Page{}, err
		}
	}
	page, err := s.search(ctx, db, sc, q)
	if err != nil || !exact {
		return page, err
	}
	ids := make([]org.HouseholdID, len(page.Households))
	for i, h := range page.Households {
		ids[i] = h.ID
	}
	return page, s.auditLookup(ctx, db, actor, q, ids)
}

// search runs a query inside a scope.
func (s *Service) search(ctx context.Context, db org.DB, sc Scope, q Query) (Page, error) {
	v := &org.ValidationError{}
	var where []string
	var args []any
	arg := func(a any) string {
		args = append(args, a)
		return "$" + strconv.Itoa(len(args))
	}
	if n := strings.TrimSpace(q.Number); n != "" {
		where = append(where, `h.number = `+arg(n))
	}
	if n := strings.TrimSpace(q.Name); n != "" {
		where = append(where, `h.id IN (SELECT household_id FROM household_members WHERE name LIKE `+arg(org.EscapeLike(n)+"%")+`)`)
	}
	if p := strings.TrimSpace(q.Phone); p != "" {
		n, _, err := normalizePhone(p)
		if err != nil {
			v.Add("phone", err.Error())
		} else {
			where = append(where, `h.id IN (SELECT household_id FROM household_phones WHERE phone_hash = ANY(`+arg(s.box.Hashes(pii.FieldPhone, n))+`))`)
		}
	}
	if id := strings.TrimSpace(q.IDNumber); id != "" {
		n, err := idcard.Validate(id, s.now())
		if err != nil {
			v.Add("id_number", err.Error())
		} else {
			where = append(where, `h.id IN (SELECT household_id FROM household_members WHERE id_hash = ANY(`+arg(s.box.Hashes(pii.FieldIDNumber, n))+`))`)
		}
	}
	if l4 := strings.ToUpper(strings.TrimSpace(q.IDLast4)); l4 != "" {
		if len(l4) != 4 {
			v.Add("id_last4", "must be 4 characters")
		} else {
			where = append(where, `h.id IN (SELECT household_id FROM household_members WHERE id_last4 = `+arg(l4)+`)`)
		}
	}
	if r := strings.TrimSpace(q.Region); r != "" {
		if !digitsOnly(r) || len(r) > 9 {
			v.Add("region", "must be a prefix of a region code (digits)")
		} else {
			where = append(where, `h.township_code LIKE `+arg(r+"%"))
		}
	}
	if q.MonitoringType != "" {
		if !q.MonitoringType.Valid() {
			v.Add("monitoring_type", "unknown monitoring type")
		}
		where = append(where, `h.monitoring_type = `+arg(string(q.MonitoringType)))
	}
	if q.RiskType != "" {
		if !q.RiskType.Valid() {
			v.Add("risk_type", "unknown risk type")
		}
		where = append(where, `h.risk_types @> `+arg([]string{string(q.RiskType)}))
	}
	if q.Status != "" {
		if !q.Status.Valid() {
			v.Add("status", "unknown status")
		}
		where = append(where, `h.status = `+arg(string(q.Status)))
	}
	if q.NoContactDays < 0 {
		v.Add("no_contact_days", "must not be negative")
	} else if q.NoContactDays > 0 {
		cut := s.now().Add(-time.Duration(q.NoContactDays) * 24 * time.Hour)
		where = append(where, `(h.last_contact_at IS NULL OR h.last_contact_at < `+arg(cut)+`)`)
	}
	switch q.Clock {
	case "":
	case "yellow", "red":
		cut := s.now().Add(-s.clocks.LeadToIdentify)
		if q.Clock == "yellow" {
			cut = cut.Add(s.clocks.YellowBefore)
		}
		where = append(where, `h.lead_at IS NOT NULL AND h.status IN ('screened', 'verified') AND h.lead_at <= `+arg(cut))
	default:
		v.Add("clock", "yellow or red")
	}
	if w := scopeSQL(sc, arg); w != "" {
		where = append(where, w)
	}
	if q.After > 0 {
		where = append(where, `h.id > `+arg(q.After))
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 500 {
		v.Add("limit", "at most 500")
	}
	if err := v.Err(); err != nil {
		return Page{}, err
	}
	sql := `SELECT ` + householdCols + ` FROM households h`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY h.id LIMIT ` + arg(q.Limit+1)
	rows, _ := db.Query(ctx, sql, args...)
	hs, err := pgx.CollectRows(rows, scanHousehold)
	if err != nil {
		return Page{}, fmt.Errorf("search households: %w", err)
	}
	page := Page{Households: hs}
	if len(hs) > q.Limit {
		page.Households = hs[:q.Limit]
		next := hs[q.Limit-1].ID
		page.Next = &next
	}
	if page.Households == nil {
		page.Households = []Household{}
	}
	for i := range page.Households {
		page.Households[i].Clock = s.clock(page.Households[i])
	}
	return page, nil
}

func digitsOnly(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

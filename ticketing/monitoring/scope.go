package monitoring

import (
	"context"
	"fmt"
	"strings"

	"hotline/ticketing"
)

// checkScope keeps county and prefecture bureaus to their own households: staff and heads of a county bureau
// change and reveal records of their county only, those of a prefecture bureau of its counties. The provincial
// bureau, its divisions, supervisors and admins see the whole province; the system actor too.
func checkScope(ctx context.Context, db ticketing.DB, a ticketing.Actor, countyCode string) error {
	if a.UnitID == 0 || (a.Role != ticketing.RoleStaff && a.Role != ticketing.RoleHead) {
		return nil
	}
	u, err := ticketing.GetUnit(ctx, db, a.UnitID)
	if err != nil {
		return fmt.Errorf("scope of %s: %w", a.Username, err)
	}
	switch u.Kind {
	case ticketing.UnitCounty:
		if u.RegionCode == countyCode {
			return nil
		}
	case ticketing.UnitPrefecture:
		if len(u.RegionCode) >= 4 && strings.HasPrefix(countyCode, u.RegionCode[:4]) {
			return nil
		}
	default:
		return nil
	}
	return fmt.Errorf("%w: household of region %s is outside %s", ticketing.ErrForbidden, countyCode, u.Name)
}

// scopeOf checks the actor's scope against a stored household.
func scopeOf(ctx context.Context, db ticketing.DB, a ticketing.Actor, id HouseholdID) error {
	var county string
	err := db.QueryRow(ctx, `SELECT county_code FROM households WHERE id = $1`, id).Scan(&county)
	if isNoRows(err) {
		return notFound(id)
	}
	if err != nil {
		return err
	}
	return checkScope(ctx, db, a, county)
}

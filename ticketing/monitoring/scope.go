package monitoring

import (
	"context"
	"fmt"
	"hotline/ticketing/org"
	"strings"
)

// checkScope keeps county and prefecture bureaus to their own households: staff and heads of a county bureau
// change and reveal records of their county only, those of a prefecture bureau of its counties. The provincial
// bureau, its divisions, supervisors and admins see the whole province; the system actor too.
func checkScope(ctx context.Context, db org.DB, a org.Actor, countyCode string) error {
	if a.UnitID == 0 || (a.Role != org.RoleStaff && a.Role != org.RoleHead) {
		return nil
	}
	u, err := org.GetUnit(ctx, db, a.UnitID)
	if err != nil {
		return fmt.Errorf("scope of %s: %w", a.Username, err)
	}
	switch u.Kind {
	case org.UnitCounty:
		if u.RegionCode == countyCode {
			return nil
		}
	case org.UnitPrefecture:
		if len(u.RegionCode) >= 4 && strings.HasPrefix(countyCode, u.RegionCode[:4]) {
			return nil
		}
	default:
		return nil
	}
	return fmt.Errorf("%w: household of region %s is outside %s", org.ErrForbidden, countyCode, u.Name)
}

// scopeOf checks the actor's scope against a stored household.
func scopeOf(ctx context.Context, db org.DB, a org.Actor, id org.HouseholdID) error {
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

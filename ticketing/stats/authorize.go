package stats

import (
	"context"
	"fmt"
	"slices"

	"hotline/ticketing/org"
)

// Scope is what an actor may count: every unit (All) or the listed ones.
type Scope struct {
	All   bool
	Units []org.UnitID
}

// Has reports whether the scope covers the unit.
func (s Scope) Has(u org.UnitID) bool { return s.All || slices.Contains(s.Units, u) }

// readers see the statistics of every unit: supervision and assessment (督查考核) reads KPIs, admins run the system.
var readers = []org.Role{org.RoleSupervisor, org.RoleAdmin}

// Authorize answers "which units' statistics may this actor read": supervisors and admins every unit; the head of
// a unit its own unit and, for a prefecture bureau (市州局), the county bureaus under it, which it is judged with;
// everyone else nothing (ErrForbidden). The API, the report downloads and the console pages all ask this.
func Authorize(ctx context.Context, db org.DB, a org.Actor) (Scope, error) {
	if slices.Contains(readers, a.Role) {
		return Scope{All: true}, nil
	}
	if a.Role != org.RoleHead || a.UnitID == 0 {
		return Scope{}, fmt.Errorf("statistics: %w: role %s", org.ErrForbidden, a.Role)
	}
	u, err := org.GetUnit(ctx, db, a.UnitID)
	if err != nil {
		return Scope{}, fmt.Errorf("statistics: unit of %s: %w", a.Username, err)
	}
	sc := Scope{Units: []org.UnitID{u.ID}}
	if u.Kind == org.UnitPrefecture {
		rows, err := db.Query(ctx, `SELECT id FROM units WHERE parent_id = $1 AND kind = 'county' ORDER BY id`, int64(u.ID))
		if err != nil {
			return Scope{}, fmt.Errorf("statistics: counties of unit %d: %w", u.ID, err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return Scope{}, fmt.Errorf("statistics: counties of unit %d: %w", u.ID, err)
			}
			sc.Units = append(sc.Units, org.UnitID(id))
		}
		if err := rows.Err(); err != nil {
			return Scope{}, fmt.Errorf("statistics: counties of unit %d: %w", u.ID, err)
		}
	}
	return sc, nil
}

// AuthorizeBureau answers whether the actor may read figures of the whole bureau side by side: the live
// wallboard (calls and every unit's deadlines) and the leaders' ranking of units. Only those who see every unit.
func AuthorizeBureau(a org.Actor) error {
	if slices.Contains(readers, a.Role) {
		return nil
	}
	return fmt.Errorf("bureau statistics: %w: role %s", org.ErrForbidden, a.Role)
}

// sqlUnits is the scope as a bigint[] parameter; nil (SQL NULL) means every unit.
func (s Scope) sqlUnits() []int64 {
	if s.All {
		return nil
	}
	out := make([]int64, 0, len(s.Units))
	for _, u := range s.Units {
		out = append(out, int64(u))
	}
	return out
}

package monitoring

import (
	"context"
	"fmt"
	"strings"

	"hotline/ticketing/org"
)

// Access is what an actor wants to do to a household: the one question every caller (the web API, the console
// pages, the websocket hub, telephony's screen-pop) asks through Authorize.
type Access string

const (
	AccessRead    Access = "read"    // see the record (masked), its timeline; find it in searches and exports
	AccessEdit    Access = "edit"    // create, change or import the record
	AccessLoop    Access = "loop"    // move it along 排查 → 核实 → 认定 → 帮扶 → 风险消除 / 不纳入
	AccessContact Access = "contact" // add a contact (visit, note) to its timeline
	AccessReveal  Access = "reveal"  // see a full ID or phone number (also needs reveal_pii; audited)
)

// Scope is the part of the province an actor's reads and writes reach. County bureaus reach their county,
// prefecture bureaus their counties; the provincial bureau's divisions and desk, and the province-wide roles
// (agents, dispatchers, supervisors, campaign managers, admins) reach the whole province. The rule is written
// once here so reads follow the same scope as writes.
type Scope struct {
	All    bool   // the whole province
	Prefix string // else: a prefix of the household's county code (6 digits: a county; 4: a prefecture)
	UnitID org.UnitID
	Kind   org.UnitKind
}

// Covers reports whether a county code lies inside the scope.
func (sc Scope) Covers(county string) bool {
	return sc.All || (sc.Prefix != "" && strings.HasPrefix(county, sc.Prefix))
}

// ScopeOf returns the actor's scope.
func ScopeOf(ctx context.Context, db org.DB, a org.Actor) (Scope, error) {
	switch a.Role {
	case org.RoleAgent, org.RoleDispatcher, org.RoleSupervisor, org.RoleCampaignManager, org.RoleAdmin:
		return Scope{All: true, UnitID: a.UnitID}, nil
	case org.RoleStaff, org.RoleHead:
	default:
		return Scope{}, nil // an unknown role reaches nothing
	}
	if a.UnitID == 0 {
		// Staff without a unit are the provincial bureau's own (as before units were required of them).
		return Scope{All: true}, nil
	}
	u, err := org.GetUnit(ctx, db, a.UnitID)
	if err != nil {
		return Scope{}, fmt.Errorf("scope of %s: %w", a.Username, err)
	}
	sc := Scope{UnitID: u.ID, Kind: u.Kind}
	switch u.Kind {
	case org.UnitCounty:
		sc.Prefix = u.RegionCode
	case org.UnitPrefecture:
		if len(u.RegionCode) >= 4 {
			sc.Prefix = u.RegionCode[:4]
		}
	default: // the provincial bureau, its divisions and the desk
		sc.All = true
	}
	return sc, nil
}

// Authorize answers "may this actor do this to a household of this county" (nil: yes; an error wrapping
// org.ErrForbidden: no). Callers that hold a household ID use AuthorizeID.
func (s *Service) Authorize(ctx context.Context, db org.DB, a org.Actor, act Access, county string) error {
	sc, err := ScopeOf(ctx, db, a)
	if err != nil {
		return err
	}
	refuse := func(why string) error {
		return fmt.Errorf("%s household of region %s: %w: %s", act, county, org.ErrForbidden, why)
	}
	if !sc.Covers(county) {
		return refuse("outside your unit's area")
	}
	switch act {
	case AccessRead, AccessContact:
		return nil
	case AccessEdit:
		if err := editRole(a); err != nil {
			return refuse(err.Error())
		}
		return nil
	case AccessReveal:
		if !a.Can(org.PermRevealPII) {
			return refuse("needs the " + string(org.PermRevealPII) + " permission")
		}
		return nil
	case AccessLoop:
		// Only the bureau responsible for the household (its county's, or for a statistical-only zone its
		// prefecture's) and the provincial monitoring division move it through the loop.
		if a.Role == org.RoleAdmin {
			return nil
		}
		if a.Role != org.RoleStaff && a.Role != org.RoleHead {
			return refuse("role " + string(a.Role) + " does not move households through the loop")
		}
		if sc.All {
			if a.UnitID == 0 {
				return nil // the provincial bureau's own staff (see ScopeOf)
			}
			mon, err := org.UnitByCode(ctx, db, "div-monitoring")
			if err != nil {
				return fmt.Errorf("loop scope: %w", err)
			}
			if a.UnitID == mon.ID {
				return nil
			}
			return refuse("only the household's bureau and the monitoring division")
		}
		u, err := org.UnitForRegion(ctx, db, county)
		if err != nil {
			return fmt.Errorf("loop scope: %w", err)
		}
		if u.ID == a.UnitID {
			return nil
		}
		return refuse("only the household's own bureau")
	}
	return refuse("unknown access " + string(act))
}

// AuthorizeID is Authorize for a stored household; an unknown household is ErrNotFound.
func (s *Service) AuthorizeID(ctx context.Context, db org.DB, a org.Actor, act Access, id org.HouseholdID) error {
	var county string
	err := db.QueryRow(ctx, `SELECT county_code FROM households WHERE id = $1`, id).Scan(&county)
	if isNoRows(err) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("household %d: %w", id, err)
	}
	return s.Authorize(ctx, db, a, act, county)
}

// MayRead reports whether the actor may see a household (the websocket hub asks this before forwarding a
// household's events).
func (s *Service) MayRead(ctx context.Context, a org.Actor, id org.HouseholdID) error {
	return s.AuthorizeID(ctx, s.db, a, AccessRead, id)
}

// scopeSQL restricts a query over households h to the actor's scope; it returns "" for the whole province.
func scopeSQL(sc Scope, arg func(any) string) string {
	if sc.All {
		return ""
	}
	if sc.Prefix == "" {
		return "false"
	}
	return "h.county_code LIKE " + arg(sc.Prefix+"%")
}

// editRole: agents read records and add contacts; changing records is for bureau staff, supervisors and admins.
// Asked first (before the input is read), so a role that may not write learns nothing from validation.
func editRole(a org.Actor) error {
	switch a.Role {
	case org.RoleStaff, org.RoleHead, org.RoleSupervisor, org.RoleAdmin:
		return nil
	}
	return fmt.Errorf("change monitoring records: %w: role %s", org.ErrForbidden, a.Role)
}

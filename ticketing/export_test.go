package ticketing

import (
	"context"

	"hotline/ticketing/org"
)

// SetAfterPublish lets tests stop the relay between publishing and deleting the rows, as a crash would.
func SetAfterPublish(r *Relay, f func() error) { r.afterPublish = f }

// DuplicateCandidates exposes the merge-suggestion SQL to the plan test.
var DuplicateCandidates = duplicateCandidates

// SetSearchThresholds changes how many newest tickets a search walks first (all tickets, or a unit's) and when
// older matches count as common (search.go).
func SetSearchThresholds(window, frequent int) (restore func()) {
	w, u, f := recentWindow, unitWindow, frequentAt
	recentWindow, unitWindow, frequentAt = window, window, frequent
	return func() { recentWindow, unitWindow, frequentAt = w, u, f }
}

// ScopeUnits exposes which units a user's search is confined to (search.go).
func (s *Service) ScopeUnits(ctx context.Context, a org.Actor) ([]org.UnitID, error) {
	return s.scopeUnits(ctx, a)
}

// SetScopedSearch turns the unit path of the search off (false) or on, so that a test compares it with the
// general path.
func SetScopedSearch(on bool) (restore func()) {
	was := scopedSearch
	scopedSearch = on
	return func() { scopedSearch = was }
}

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

// ScopeUnit exposes which unit a user's search is confined to (search.go).
func (s *Service) ScopeUnit(ctx context.Context, a org.Actor) org.UnitID { return s.scopeUnit(ctx, a) }

package ticketing

// SetAfterPublish lets tests stop the relay between publishing and deleting the rows, as a crash would.
func SetAfterPublish(r *Relay, f func() error) { r.afterPublish = f }

// DuplicateCandidates exposes the merge-suggestion SQL to the plan test.
var DuplicateCandidates = duplicateCandidates

// SetSearchThresholds changes how many newest tickets a search walks first and when older matches count as
// common (search.go).
func SetSearchThresholds(window, frequent int) (restore func()) {
	w, f := recentWindow, frequentAt
	recentWindow, frequentAt = window, frequent
	return func() { recentWindow, frequentAt = w, f }
}

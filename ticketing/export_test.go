package ticketing

// SetAfterPublish lets tests stop the relay between publishing and deleting the rows, as a crash would.
func SetAfterPublish(r *Relay, f func() error) { r.afterPublish = f }

// DuplicateCandidates exposes the merge-suggestion SQL to the plan test.
var DuplicateCandidates = duplicateCandidates

// SetRecentWindow changes how many newest tickets a search walks before it asks the index (search.go).
func SetRecentWindow(n int) (restore func()) {
	old := recentWindow
	recentWindow = n
	return func() { recentWindow = old }
}

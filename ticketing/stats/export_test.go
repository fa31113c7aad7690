package stats

import (
	"context"

	"hotline/ticketing/org"
)

// KPIsFromFacts is KPIs computed by aggregating every fact of the period, without the day sums: what the fast
// path must equal.
var KPIsFromFacts = func(ctx context.Context, db org.TxBeginner, sc Scope, q Query) ([]Row, error) {
	return kpis(ctx, db, sc, q, true)
}

package stats

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
)

// The day sums (ticket_kpi_daily and ticket_kpi_daily_repeat, migration 0020) hold, per China-time day × unit ×
// region × category, the counts a KPI query would take from ticket_kpi_facts, so a month of the province reads a
// few thousand rows instead of every fact of the month. They are maintained by the refresh that rewrites a
// ticket's facts (minus the old facts' sums, plus the new ones, in its transaction) and contain only what does not
// depend on the moment of the query: an open dispatch's overdue state and the open tickets' reply deadlines are
// read where they are. Hours are summed as numeric, whose additions and subtractions are exact, so the sums
// cannot drift however often a ticket changes.

// MaxRepeatDays bounds Query.RepeatDays: ticket_kpi_daily_repeat keeps the gaps up to it and no further.
const MaxRepeatDays = 365

// dayCols are the day-sum columns, in the order of factAggs.
var dayCols = []string{"created", "with_phone", "dispatched", "returned", "signed", "signed_on_time", "replied",
	"replied_on_time", "extended", "callbacks", "satisfied", "reopened", "sign_hours", "sign_hours_n", "reply_hours",
	"reply_hours_n"}

// factAggs are the aggregates of a group of facts (alias f) into dayCols: the same filters as the direct query
// (kpisFromFacts), so a sum of day rows is the aggregate of their facts.
var factAggs = []string{
	`count(*) FILTER (WHERE f.kind = 'created')`,
	`count(*) FILTER (WHERE f.kind = 'created' AND f.ok)`,
	`count(*) FILTER (WHERE f.kind = 'dispatch')`,
	`count(*) FILTER (WHERE f.state = 'returned')`,
	`count(*) FILTER (WHERE f.state IN ('on_time', 'late'))`,
	`count(*) FILTER (WHERE f.state = 'on_time')`,
	`count(*) FILTER (WHERE f.kind = 'reply')`,
	`count(*) FILTER (WHERE f.kind = 'reply' AND f.ok)`,
	`count(*) FILTER (WHERE f.kind = 'reply' AND f.ext)`,
	`count(*) FILTER (WHERE f.kind = 'callback')`,
	`count(*) FILTER (WHERE f.kind = 'callback' AND f.ok)`,
	`count(*) FILTER (WHERE f.kind = 'reopen' OR (f.kind = 'callback' AND NOT f.ok))`,
	`coalesce(sum(f.hours::numeric) FILTER (WHERE f.kind = 'dispatch'), 0)`,
	`count(f.hours) FILTER (WHERE f.kind = 'dispatch')`,
	`coalesce(sum(f.hours::numeric) FILTER (WHERE f.kind = 'reply'), 0)`,
	`count(f.hours) FILTER (WHERE f.kind = 'reply')`,
}

// factDay is the China-time day of a fact.
const factDay = `(f.at AT TIME ZONE '` + calendar.Zone + `')::date`

// gapDays is the smallest whole number of days N with hours <= N × 24 (the created fact counts for a 重复来电率
// look-back of N days or more); written so floating-point division cannot round a gap just over a day boundary
// down to it.
const gapDays = `greatest(0, CASE WHEN f.hours > ceil(f.hours / 24) * 24 THEN ceil(f.hours / 24) + 1
	ELSE ceil(f.hours / 24) END)::integer`

// dailySQL sums the facts selected by where (on alias f) into ticket_kpi_daily, each count multiplied by $1 (1:
// add, -1: subtract), and deletes the day rows left with nothing (a group without facts has no row, as the
// direct query has no group).
func dailySQL(where string) []string {
	aggs := make([]string, len(factAggs))
	sets := make([]string, len(dayCols))
	for i, a := range factAggs {
		aggs[i] = "$1 * " + a
		sets[i] = dayCols[i] + " = d." + dayCols[i] + " + excluded." + dayCols[i]
	}
	return []string{
		`INSERT INTO ticket_kpi_daily AS d (day, unit_id, region_code, category, ` + strings.Join(dayCols, ", ") + `)
		SELECT ` + factDay + `, f.unit_id, f.region_code, f.category, ` + strings.Join(aggs, ", ") + `
		FROM ticket_kpi_facts f WHERE ` + where + ` GROUP BY 1, 2, 3, 4
		ON CONFLICT (day, unit_id, region_code, category) DO UPDATE SET ` + strings.Join(sets, ", "),
		`DELETE FROM ticket_kpi_daily WHERE created = 0 AND dispatched = 0 AND replied = 0 AND callbacks = 0 AND reopened = 0`,
		`INSERT INTO ticket_kpi_daily_repeat AS d (day, unit_id, region_code, category, gap_days, n)
		SELECT ` + factDay + `, f.unit_id, f.region_code, f.category, g.gap, $1 * count(*)
		FROM ticket_kpi_facts f CROSS JOIN LATERAL (SELECT ` + gapDays + ` AS gap) g
		WHERE (` + where + `) AND f.kind = 'created' AND f.ok AND f.hours IS NOT NULL AND g.gap <= ` + fmt.Sprint(MaxRepeatDays) + `
		GROUP BY 1, 2, 3, 4, 5
		ON CONFLICT (day, unit_id, region_code, category, gap_days) DO UPDATE SET n = d.n + excluded.n`,
		`DELETE FROM ticket_kpi_daily_repeat WHERE n = 0`,
	}
}

// addDailySQL sums the facts of the tickets in $2.
var addDailySQL = dailySQL(`f.ticket_id = ANY($2)`)

// addDaily adds (sign 1) or subtracts (sign -1) the current facts of the tickets to or from the day sums; a
// refresh subtracts, rewrites the facts, then adds.
func addDaily(ctx context.Context, tx pgx.Tx, ids []int64, sign int) error {
	for _, q := range addDailySQL {
		if sign < 0 && strings.HasPrefix(q, "DELETE") {
			continue // a row emptied here may be filled again by the addition that follows, which deletes what stays empty
		}
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, sign, ids)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("day sums: %w", err)
		}
	}
	return nil
}

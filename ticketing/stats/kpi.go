package stats

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// Dimension is what the KPI rows are grouped by.
type Dimension string

const (
	ByUnit       Dimension = "unit"       // the unit the fact belongs to (see KPIs)
	ByPrefecture Dimension = "prefecture" // 市州 of the ticket's region
	ByCounty     Dimension = "county"     // 县市区 of the ticket's region
	ByCategory   Dimension = "category"
	ByDay        Dimension = "day" // China time
	ByWeek       Dimension = "week"
	ByMonth      Dimension = "month"
	ByTotal      Dimension = "total" // one row
)

// Dimensions lists them in the order the API documents them.
var Dimensions = []Dimension{ByUnit, ByPrefecture, ByCounty, ByCategory, ByDay, ByWeek, ByMonth, ByTotal}

// DefaultRepeatDays is the look-back of 重复来电率: a ticket whose caller had opened another within this many days.
const DefaultRepeatDays = 30

// Query selects the facts of [From, To) and how to group them. UnitID, Region (a code prefix: "4309" for 益阳市)
// and Category narrow them further; Now is the moment "overdue" is judged at.
type Query struct {
	By         Dimension
	From, To   time.Time
	UnitID     org.UnitID
	Region     string
	Category   string
	RepeatDays int
	Now        time.Time
}

// Row is one group's counts and rates. A rate is nil when its denominator is zero (nothing to judge yet).
type Row struct {
	Key   string `json:"key"`
	Label string `json:"label"`

	Created       int `json:"created"`        // tickets opened
	WithPhone     int `json:"with_phone"`     // of them with a caller number
	RepeatCalls   int `json:"repeat_calls"`   // of those whose caller had another ticket within RepeatDays before
	Dispatched    int `json:"dispatched"`     // 派单 (each dispatch to a unit counts, re-dispatches too)
	Returned      int `json:"returned"`       // dispatches that ended in 退单
	Signed        int `json:"signed"`         // dispatches signed for
	SignedOnTime  int `json:"signed_on_time"` // by the sign-by the dispatch set
	SignOverdue   int `json:"sign_overdue"`   // dispatches still unsigned past their sign-by
	Replied       int `json:"replied"`        // 办结答复
	RepliedOnTime int `json:"replied_on_time"`
	ReplyOverdue  int `json:"reply_overdue"` // open tickets whose reply-by fell in the period and has passed
	Extended      int `json:"extended"`      // replies made on a deadline an approved extension set
	Callbacks     int `json:"callbacks"`     // 回访 results
	Satisfied     int `json:"satisfied"`     // 满意 and 基本满意
	Reopened      int `json:"reopened"`      // 重办: unsatisfied 回访 and manual reopens

	AvgSignHours  *float64 `json:"avg_sign_hours"`  // dispatch → sign, elapsed hours
	AvgReplyHours *float64 `json:"avg_reply_hours"` // dispatch → reply, elapsed hours

	OnTimeSignRate   *float64 `json:"on_time_sign_rate"`  // 按时签收率 = signed on time / (signed + unsigned overdue)
	OnTimeReplyRate  *float64 `json:"on_time_reply_rate"` // 按时办结率 = replied on time / (replied + reply overdue)
	SatisfactionRate *float64 `json:"satisfaction_rate"`  // 满意率 = satisfied / 回访 results
	ReopenRate       *float64 `json:"reopen_rate"`        // 重办率 = reopened / replied
	ReturnRate       *float64 `json:"return_rate"`        // 退单率 = returned / dispatched
	ExtensionRate    *float64 `json:"extension_rate"`     // 延期率 = extended / replied
	RepeatCallRate   *float64 `json:"repeat_call_rate"`   // 重复来电率 = repeat calls / tickets with a caller number
}

func rate(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

func (r *Row) rates() {
	r.OnTimeSignRate = rate(r.SignedOnTime, r.Signed+r.SignOverdue)
	r.OnTimeReplyRate = rate(r.RepliedOnTime, r.Replied+r.ReplyOverdue)
	r.SatisfactionRate = rate(r.Satisfied, r.Callbacks)
	r.ReopenRate = rate(r.Reopened, r.Replied)
	r.ReturnRate = rate(r.Returned, r.Dispatched)
	r.ExtensionRate = rate(r.Extended, r.Replied)
	r.RepeatCallRate = rate(r.RepeatCalls, r.WithPhone)
}

// keySQL is the grouping expression of each dimension over the facts (a fixed table: nothing from the request
// reaches the SQL); dayKeySQL the same over day rows (f.day, the China-time day).
var keySQL = map[Dimension]string{
	ByUnit:       `coalesce(f.unit_id::text, '')`, // a reply with no dispatch before it: 未知
	ByPrefecture: `CASE WHEN f.region_code = '' THEN '' ELSE left(f.region_code, 4) || '00' END`,
	ByCounty:     `left(f.region_code, 6)`,
	ByCategory:   `f.category`,
	ByDay:        `to_char(f.at AT TIME ZONE '` + calendar.Zone + `', 'YYYY-MM-DD')`,
	ByWeek:       `to_char(date_trunc('week', f.at AT TIME ZONE '` + calendar.Zone + `'), 'YYYY-MM-DD')`,
	ByMonth:      `to_char(f.at AT TIME ZONE '` + calendar.Zone + `', 'YYYY-MM')`,
	ByTotal:      `''`,
}

var dayKeySQL = map[Dimension]string{
	ByUnit:       keySQL[ByUnit],
	ByPrefecture: keySQL[ByPrefecture],
	ByCounty:     keySQL[ByCounty],
	ByCategory:   keySQL[ByCategory],
	ByDay:        `to_char(f.day, 'YYYY-MM-DD')`,
	ByWeek:       `to_char(date_trunc('week', f.day::timestamp), 'YYYY-MM-DD')`,
	ByMonth:      `to_char(f.day, 'YYYY-MM')`,
	ByTotal:      `''`,
}

// KPIs computes the rows of q within the scope, ordered by key: it brings the facts of tickets changed since the
// last call up to date (Refresh), then reads in one read-only transaction, with PostgreSQL's JIT off (compiling
// such plans took seconds against milliseconds of execution), the day sums of the whole China-time days of the
// period and the facts of its partial days at either end (daily.go) — the same figures as aggregating every fact
// of the period, which TestDailyMatchesFacts checks against that direct computation.
func KPIs(ctx context.Context, db org.TxBeginner, sc Scope, q Query) ([]Row, error) {
	return kpis(ctx, db, sc, q, false)
}

func kpis(ctx context.Context, db org.TxBeginner, sc Scope, q Query, direct bool) ([]Row, error) {
	if _, ok := keySQL[q.By]; !ok {
		return nil, org.Invalid("by", "one of unit, prefecture, county, category, day, week, month, total")
	}
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return nil, org.Invalid("to", "the period needs from before to")
	}
	if q.To.Sub(q.From) > 400*24*time.Hour {
		return nil, org.Invalid("to", "a period of at most 400 days")
	}
	if q.RepeatDays == 0 {
		q.RepeatDays = DefaultRepeatDays
	}
	if q.RepeatDays < 1 || q.RepeatDays > MaxRepeatDays {
		return nil, org.Invalid("repeat_days", "1 to 365")
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if _, err := Refresh(ctx, db); err != nil {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("KPIs by %s: %w", q.By, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only: nothing to undo
	if _, err := tx.Exec(ctx, `SET TRANSACTION READ ONLY`); err != nil {
		return nil, fmt.Errorf("KPIs by %s: %w", q.By, err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return nil, fmt.Errorf("KPIs by %s: %w", q.By, err)
	}
	var rows pgx.Rows
	if direct {
		rows, err = tx.Query(ctx, directSQL(q.By), q.From, q.To, q.Now, q.RepeatDays, sc.sqlUnits(), int64(q.UnitID),
			org.EscapeLike(q.Region), q.Category)
	} else {
		// The whole days [d1, d2) come from the day sums, [From, d1) and [d2, To) from the facts; a period
		// without a whole day comes from the facts alone (d1 = d2 = To).
		d1, d2 := StartOfDay(q.From), StartOfDay(q.To)
		if d1.Before(q.From) {
			d1 = d1.AddDate(0, 0, 1)
		}
		if !d1.Before(d2) {
			d1, d2 = q.To, q.To
		}
		rows, err = tx.Query(ctx, daySQL(q.By), q.From, q.To, q.Now, q.RepeatDays, sc.sqlUnits(), int64(q.UnitID),
			org.EscapeLike(q.Region), q.Category, d1, d2, d1.In(calendar.CST).Format(time.DateOnly),
			d2.In(calendar.CST).Format(time.DateOnly))
	}
	if err != nil {
		return nil, fmt.Errorf("KPIs by %s: %w", q.By, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) {
		var r Row
		err := row.Scan(&r.Key, &r.Created, &r.WithPhone, &r.RepeatCalls, &r.Dispatched, &r.Returned, &r.Signed,
			&r.SignedOnTime, &r.SignOverdue, &r.Replied, &r.RepliedOnTime, &r.ReplyOverdue, &r.Extended, &r.Callbacks,
			&r.Satisfied, &r.Reopened, &r.AvgSignHours, &r.AvgReplyHours)
		r.rates()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("KPIs by %s: %w", q.By, err)
	}
	if err := label(ctx, tx, q.By, out); err != nil {
		return nil, err
	}
	return out, nil
}

// The parameters of both queries: $1 from, $2 to, $3 now, $4 repeat days, $5 the scope's units (NULL: all), $6 a
// unit, $7 a region prefix (LIKE-escaped), $8 a category; daySQL also $9 and $10 the whole days' start and end as
// timestamps, $11 and $12 as dates.
const filterSQL = `($5::bigint[] IS NULL OR f.unit_id = ANY($5)) AND ($6::bigint = 0 OR f.unit_id = $6)
	AND ($7::text = '' OR f.region_code LIKE $7 || '%') AND ($8::text = '' OR f.category = $8)`

// directSQL aggregates every fact of the period. Open tickets whose reply-by fell in the period and passed are read
// from the tickets themselves: whether a deadline has passed depends on now, not on any event.
func directSQL(by Dimension) string {
	return `
		SELECT ` + keySQL[by] + ` AS key,
			count(*) FILTER (WHERE kind = 'created'),
			count(*) FILTER (WHERE kind = 'created' AND ok),
			count(*) FILTER (WHERE kind = 'created' AND ok AND hours <= $4::int * 24),
			count(*) FILTER (WHERE kind = 'dispatch'),
			count(*) FILTER (WHERE state = 'returned'),
			count(*) FILTER (WHERE state IN ('on_time', 'late')),
			count(*) FILTER (WHERE state = 'on_time'),
			count(*) FILTER (WHERE state = 'open' AND deadline < $3),
			count(*) FILTER (WHERE kind = 'reply'),
			count(*) FILTER (WHERE kind = 'reply' AND ok),
			count(*) FILTER (WHERE kind = 'overdue'),
			count(*) FILTER (WHERE kind = 'reply' AND ext),
			count(*) FILTER (WHERE kind = 'callback'),
			count(*) FILTER (WHERE kind = 'callback' AND ok),
			count(*) FILTER (WHERE kind = 'reopen' OR (kind = 'callback' AND NOT ok)),
			avg(hours) FILTER (WHERE kind = 'dispatch'),
			avg(hours) FILTER (WHERE kind = 'reply')
		FROM (SELECT kind, unit_id, region_code, category, at, ok, state, deadline, hours, ext
				FROM ticket_kpi_facts WHERE at >= $1 AND at < $2
			UNION ALL
			SELECT 'overdue', t.lead_unit_id, t.region_code, t.category, t.reply_by, false, NULL, NULL, NULL, false
				FROM tickets t WHERE t.status IN ('dispatched', 'signed') AND t.reply_by >= $1 AND t.reply_by < least($2, $3)) f
		WHERE ` + filterSQL + `
		GROUP BY 1 ORDER BY 1`
}

// sumCols are the columns every branch of daySQL yields, in the order Row is scanned (the hours and their counts
// become the two averages).
var sumCols = []string{"created", "with_phone", "repeat_calls", "dispatched", "returned", "signed", "signed_on_time",
	"sign_overdue", "replied", "replied_on_time", "reply_overdue", "extended", "callbacks", "satisfied", "reopened",
	"sign_hours", "sign_hours_n", "reply_hours", "reply_hours_n"}

// branch is one SELECT of daySQL: day, unit, region and category, then sumCols from exprs (0 where absent).
func branch(keys string, exprs map[string]string, from string) string {
	cols := make([]string, len(sumCols))
	for i, c := range sumCols {
		cols[i] = "0"
		if e, ok := exprs[c]; ok {
			cols[i] = e
		}
		cols[i] += " AS " + c
	}
	return "SELECT " + keys + ", " + strings.Join(cols, ", ") + " " + from
}

// daySQL reads the day sums of the whole days, the facts of the partial days, the open dispatches of the whole days
// that are overdue now (the day sums leave them out: "overdue" depends on now) and the open tickets overdue now.
func daySQL(by Dimension) string {
	daily := map[string]string{}
	edge := map[string]string{
		"repeat_calls": `count(*) FILTER (WHERE f.kind = 'created' AND f.ok AND f.hours <= $4::int * 24)`,
		"sign_overdue": `count(*) FILTER (WHERE f.state = 'open' AND f.deadline < $3)`,
	}
	for i, c := range dayCols {
		daily[c] = c
		edge[c] = factAggs[i]
	}
	parts := []string{
		branch(`day, unit_id, region_code, category`, daily,
			`FROM ticket_kpi_daily WHERE day >= $11::date AND day < $12::date`),
		branch(`day, unit_id, region_code, category`, map[string]string{"repeat_calls": "n"},
			`FROM ticket_kpi_daily_repeat WHERE day >= $11::date AND day < $12::date AND gap_days <= $4::int`),
		branch(factDay+`, f.unit_id, f.region_code, f.category`, edge,
			`FROM ticket_kpi_facts f WHERE (f.at >= $1 AND f.at < $9) OR (f.at >= $10 AND f.at < $2) GROUP BY 1, 2, 3, 4`),
		branch(factDay+`, f.unit_id, f.region_code, f.category`, map[string]string{"sign_overdue": "1"},
			`FROM ticket_kpi_facts f WHERE f.state = 'open' AND f.deadline < $3 AND f.at >= $9 AND f.at < $10`),
		branch(`(t.reply_by AT TIME ZONE '`+calendar.Zone+`')::date, t.lead_unit_id, t.region_code, t.category`,
			map[string]string{"reply_overdue": "1"},
			`FROM tickets t WHERE t.status IN ('dispatched', 'signed') AND t.reply_by >= $1 AND t.reply_by < least($2, $3)`),
	}
	sums := make([]string, 0, len(sumCols))
	for _, c := range sumCols[:15] {
		sums = append(sums, "sum(f."+c+")::bigint")
	}
	sums = append(sums, `(sum(f.sign_hours) / nullif(sum(f.sign_hours_n), 0))::float8`,
		`(sum(f.reply_hours) / nullif(sum(f.reply_hours_n), 0))::float8`)
	return `
		SELECT ` + dayKeySQL[by] + ` AS key, ` + strings.Join(sums, ", ") + `
		FROM (` + strings.Join(parts, "\n\t\t\tUNION ALL ") + `) f (day, unit_id, region_code, category, ` + strings.Join(sumCols, ", ") + `)
		WHERE ` + filterSQL + `
		GROUP BY 1 ORDER BY 1`
}

// label names each row's key: a unit's name, a region's name, a category's name; periods are their own label.
func label(ctx context.Context, db org.DB, by Dimension, rows []Row) error {
	names := map[string]string{}
	switch by {
	case ByUnit:
		us, err := org.ListUnits(ctx, db)
		if err != nil {
			return fmt.Errorf("KPIs: units: %w", err)
		}
		for _, u := range us {
			names[fmt.Sprint(u.ID)] = u.Name
		}
	case ByCategory:
		rs, err := db.Query(ctx, `SELECT code, name FROM ticket_categories`)
		if err != nil {
			return fmt.Errorf("KPIs: categories: %w", err)
		}
		type kv struct{ K, V string }
		all, err := pgx.CollectRows(rs, pgx.RowToStructByPos[kv])
		if err != nil {
			return fmt.Errorf("KPIs: categories: %w", err)
		}
		for _, x := range all {
			names[x.K] = x.V
		}
	}
	for i := range rows {
		r := &rows[i]
		switch by {
		case ByPrefecture, ByCounty:
			if reg, ok := region.Lookup(r.Key); ok {
				names[r.Key] = reg.Name
			}
		case ByTotal:
			names[r.Key] = "合计"
		}
		if n, ok := names[r.Key]; ok {
			r.Label = n
		} else if r.Key == "" {
			r.Label = "未知"
		} else {
			r.Label = r.Key
		}
	}
	return nil
}

// Total sums rows into one (the 合计 line of a report), rates recomputed from the sums; averages are weighted
// by what they average over.
func Total(rows []Row) Row {
	t := Row{Key: "", Label: "合计"}
	var signH, replyH float64
	for _, r := range rows {
		t.Created += r.Created
		t.WithPhone += r.WithPhone
		t.RepeatCalls += r.RepeatCalls
		t.Dispatched += r.Dispatched
		t.Returned += r.Returned
		t.Signed += r.Signed
		t.SignedOnTime += r.SignedOnTime
		t.SignOverdue += r.SignOverdue
		t.Replied += r.Replied
		t.RepliedOnTime += r.RepliedOnTime
		t.ReplyOverdue += r.ReplyOverdue
		t.Extended += r.Extended
		t.Callbacks += r.Callbacks
		t.Satisfied += r.Satisfied
		t.Reopened += r.Reopened
		if r.AvgSignHours != nil {
			signH += *r.AvgSignHours * float64(r.Signed)
		}
		if r.AvgReplyHours != nil {
			replyH += *r.AvgReplyHours * float64(r.Replied)
		}
	}
	if t.Signed > 0 {
		v := signH / float64(t.Signed)
		t.AvgSignHours = &v
	}
	if t.Replied > 0 {
		v := replyH / float64(t.Replied)
		t.AvgReplyHours = &v
	}
	t.rates()
	return t
}

// ParseDimension checks a dimension from a request.
func ParseDimension(s string) (Dimension, error) {
	d := Dimension(s)
	if !slices.Contains(Dimensions, d) {
		return "", org.Invalid("by", "one of unit, prefecture, county, category, day, week, month, total")
	}
	return d, nil
}

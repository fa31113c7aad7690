package stats

import (
	"context"
	"fmt"
	"slices"
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

// keySQL is the grouping expression of each dimension (a fixed table: nothing from the request reaches the SQL).
var keySQL = map[Dimension]string{
	ByUnit:       `f.unit_id::text`,
	ByPrefecture: `CASE WHEN f.region_code = '' THEN '' ELSE left(f.region_code, 4) || '00' END`,
	ByCounty:     `left(f.region_code, 6)`,
	ByCategory:   `f.category`,
	ByDay:        `to_char(f.at AT TIME ZONE '` + calendar.Zone + `', 'YYYY-MM-DD')`,
	ByWeek:       `to_char(date_trunc('week', f.at AT TIME ZONE '` + calendar.Zone + `'), 'YYYY-MM-DD')`,
	ByMonth:      `to_char(f.at AT TIME ZONE '` + calendar.Zone + `', 'YYYY-MM')`,
	ByTotal:      `''`,
}

// KPIs computes the rows of q within the scope, ordered by key: it brings the facts of tickets changed since the
// last call up to date (Refresh), then aggregates the facts of the period in one read-only transaction with
// PostgreSQL's JIT off (compiling such plans took seconds against milliseconds of execution).
func KPIs(ctx context.Context, db org.TxBeginner, sc Scope, q Query) ([]Row, error) {
	key, ok := keySQL[q.By]
	if !ok {
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
	if q.RepeatDays < 1 || q.RepeatDays > 365 {
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
	// Open tickets whose reply-by fell in the period and passed are read from the tickets themselves: whether a
	// deadline has passed depends on now, not on any event.
	rows, err := tx.Query(ctx, `
		SELECT `+key+` AS key,
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
		WHERE ($5::bigint[] IS NULL OR f.unit_id = ANY($5)) AND ($6::bigint = 0 OR f.unit_id = $6)
			AND ($7::text = '' OR f.region_code LIKE $7 || '%') AND ($8::text = '' OR f.category = $8)
		GROUP BY 1 ORDER BY 1`,
		q.From, q.To, q.Now, q.RepeatDays, sc.sqlUnits(), int64(q.UnitID), org.EscapeLike(q.Region), q.Category)
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

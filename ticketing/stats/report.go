package stats

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// PeriodKind is the span of a report (日报, 周报, 月报).
type PeriodKind string

const (
	Daily   PeriodKind = "daily"
	Weekly  PeriodKind = "weekly"
	Monthly PeriodKind = "monthly"
)

var periodNames = map[PeriodKind]string{Daily: "日报", Weekly: "周报", Monthly: "月报"}

// Period returns [from, to) of the report of kind that contains date (China time): the day, the week from Monday,
// or the calendar month.
func Period(kind PeriodKind, date time.Time) (time.Time, time.Time, error) {
	d := StartOfDay(date)
	switch kind {
	case Daily:
		return d, d.AddDate(0, 0, 1), nil
	case Weekly:
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		from := d.AddDate(0, 0, -back)
		return from, from.AddDate(0, 0, 7), nil
	case Monthly:
		from := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, calendar.CST)
		return from, from.AddDate(0, 1, 0), nil
	}
	return time.Time{}, time.Time{}, org.Invalid("period", "daily, weekly or monthly")
}

// Report is a 统计报表 ready to be written: its title, the period it covers, when it was made, and its rows with
// the 合计 line.
type Report struct {
	Title     string
	Kind      PeriodKind
	From, To  time.Time // [From, To)
	Generated time.Time
	RowHead   string // what the rows are: 承办单位 or 事项类别
	Rows      []Row
	Total     Row
	Ranked    bool // the leaders' ranking: rank columns first
	Ranks     [][2]int
}

// ReportRequest selects a report: the bureau's (UnitID 0: one row per unit in the actor's scope) or one unit's
// (one row per category).
type ReportRequest struct {
	Kind   PeriodKind
	Date   time.Time
	UnitID org.UnitID
	Now    time.Time
}

// BuildReport computes a daily, weekly or monthly report within the scope.
func BuildReport(ctx context.Context, db org.TxBeginner, sc Scope, rq ReportRequest) (Report, error) {
	from, to, err := Period(rq.Kind, rq.Date)
	if err != nil {
		return Report{}, err
	}
	if rq.Now.IsZero() {
		rq.Now = time.Now()
	}
	rep := Report{Kind: rq.Kind, From: from, To: to, Generated: rq.Now}
	q := Query{From: from, To: to, Now: rq.Now, By: ByUnit}
	if rq.UnitID != 0 {
		if !sc.Has(rq.UnitID) {
			return Report{}, fmt.Errorf("report of unit %d: %w", rq.UnitID, org.ErrForbidden)
		}
		u, err := org.GetUnit(ctx, db, rq.UnitID)
		if err != nil {
			return Report{}, fmt.Errorf("report of unit %d: %w", rq.UnitID, err)
		}
		q.By, q.UnitID = ByCategory, rq.UnitID
		rep.Title, rep.RowHead = u.Name+" 工单统计"+periodNames[rq.Kind], "事项类别"
	} else {
		rep.Title, rep.RowHead = "湖南省乡村振兴局 12345热线工单统计"+periodNames[rq.Kind], "承办单位"
		if !sc.All {
			rep.Title = "工单统计" + periodNames[rq.Kind] + "（本单位及所辖）"
		}
	}
	if rep.Rows, err = KPIs(ctx, db, sc, q); err != nil {
		return Report{}, err
	}
	rep.Total = Total(rep.Rows)
	return rep, nil
}

// LeadersReport is the monthly report for the bureau's leaders: every unit that handled tickets that month
// (the desk excepted), ranked by 按时办结率 and then 满意率 (a unit with nothing to judge yet ranks last). Callers
// check AuthorizeBureau.
func LeadersReport(ctx context.Context, db org.TxBeginner, month, now time.Time) (Report, error) {
	from, to, _ := Period(Monthly, month)
	desk, err := org.UnitByCode(ctx, db, org.CodeDesk)
	if err != nil {
		return Report{}, fmt.Errorf("leaders' report: %w", err)
	}
	rows, err := KPIs(ctx, db, Scope{All: true}, Query{By: ByUnit, From: from, To: to, Now: now})
	if err != nil {
		return Report{}, err
	}
	kept := rows[:0]
	for _, r := range rows {
		if r.Key != strconv.FormatInt(int64(desk.ID), 10) && r.Key != "" {
			kept = append(kept, r)
		}
	}
	less := func(a, b *float64) int { // 1: a ranks before b
		switch {
		case a == nil && b == nil:
			return 0
		case b == nil:
			return 1
		case a == nil:
			return -1
		case *a > *b:
			return 1
		case *a < *b:
			return -1
		}
		return 0
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if c := less(kept[i].OnTimeReplyRate, kept[j].OnTimeReplyRate); c != 0 {
			return c > 0
		}
		if c := less(kept[i].SatisfactionRate, kept[j].SatisfactionRate); c != 0 {
			return c > 0
		}
		return kept[i].Label < kept[j].Label
	})
	// Competition ranking (1, 2, 2, 4) on each rate by itself.
	rankOf := func(get func(Row) *float64) []int {
		out := make([]int, len(kept))
		for i, r := range kept {
			n := 1
			for _, o := range kept {
				if less(get(o), get(r)) > 0 {
					n++
				}
			}
			out[i] = n
		}
		return out
	}
	byReply := rankOf(func(r Row) *float64 { return r.OnTimeReplyRate })
	bySat := rankOf(func(r Row) *float64 { return r.SatisfactionRate })
	rep := Report{Title: "湖南省乡村振兴局 承办单位考核排名（月报）", Kind: Monthly, From: from, To: to, Generated: now,
		RowHead: "承办单位", Rows: kept, Total: Total(kept), Ranked: true}
	for i := range kept {
		rep.Ranks = append(rep.Ranks, [2]int{byReply[i], bySat[i]})
	}
	return rep, nil
}

// column is one column of a report: its header and its value in a row (a number, a rate or nil for "—").
type column struct {
	head string
	rate bool
	get  func(Row) any
}

func n(f func(Row) int) func(Row) any { return func(r Row) any { return f(r) } }
func p(f func(Row) *float64) func(Row) any {
	return func(r Row) any {
		if v := f(r); v != nil {
			return *v
		}
		return nil
	}
}

var columns = []column{
	{head: "受理量", get: n(func(r Row) int { return r.Created })},
	{head: "派单量", get: n(func(r Row) int { return r.Dispatched })},
	{head: "按时签收率", rate: true, get: p(func(r Row) *float64 { return r.OnTimeSignRate })},
	{head: "按时办结率", rate: true, get: p(func(r Row) *float64 { return r.OnTimeReplyRate })},
	{head: "满意率", rate: true, get: p(func(r Row) *float64 { return r.SatisfactionRate })},
	{head: "重办率", rate: true, get: p(func(r Row) *float64 { return r.ReopenRate })},
	{head: "退单率", rate: true, get: p(func(r Row) *float64 { return r.ReturnRate })},
	{head: "延期率", rate: true, get: p(func(r Row) *float64 { return r.ExtensionRate })},
	{head: "重复来电率", rate: true, get: p(func(r Row) *float64 { return r.RepeatCallRate })},
	{head: "平均签收用时（小时）", get: p(func(r Row) *float64 { return r.AvgSignHours })},
	{head: "平均答复用时（小时）", get: p(func(r Row) *float64 { return r.AvgReplyHours })},
	{head: "签收", get: n(func(r Row) int { return r.Signed })},
	{head: "按时签收", get: n(func(r Row) int { return r.SignedOnTime })},
	{head: "超期未签收", get: n(func(r Row) int { return r.SignOverdue })},
	{head: "办结", get: n(func(r Row) int { return r.Replied })},
	{head: "按时办结", get: n(func(r Row) int { return r.RepliedOnTime })},
	{head: "超期未办结", get: n(func(r Row) int { return r.ReplyOverdue })},
	{head: "回访", get: n(func(r Row) int { return r.Callbacks })},
	{head: "满意", get: n(func(r Row) int { return r.Satisfied })},
	{head: "重办", get: n(func(r Row) int { return r.Reopened })},
	{head: "退单", get: n(func(r Row) int { return r.Returned })},
	{head: "延期", get: n(func(r Row) int { return r.Extended })},
}

// Header lines of every report, in both formats: title, period, generation time.
func (r Report) header() [3]string {
	last := r.To.Add(-time.Nanosecond).In(calendar.CST)
	return [3]string{r.Title,
		"统计周期：" + r.From.In(calendar.CST).Format("2006-01-02") + " 至 " + last.Format("2006-01-02"),
		"生成时间：" + r.Generated.In(calendar.CST).Format("2006-01-02 15:04:05") + "（北京时间）"}
}

func (r Report) heads() []string {
	h := []string{}
	if r.Ranked {
		h = append(h, "按时办结率排名", "满意率排名")
	}
	h = append(h, r.RowHead)
	for _, c := range columns {
		h = append(h, c.head)
	}
	return h
}

// HeaderRows is the number of rows above the column headings (title, period, generation time).
const HeaderRows = 3

// WriteCSV writes the report as UTF-8 CSV with a byte-order mark (so spreadsheet programs read the Chinese
// right): the three header lines, the column headings, the rows and 合计. Rates are percentages with one
// decimal; "—" where there is nothing to judge.
func (r Report) WriteCSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return fmt.Errorf("report csv: %w", err)
	}
	cw := csv.NewWriter(w)
	for _, line := range r.header() {
		_ = cw.Write([]string{line})
	}
	_ = cw.Write(r.heads())
	for i, row := range append(append([]Row{}, r.Rows...), r.Total) {
		rec := []string{}
		if r.Ranked {
			if i < len(r.Ranks) {
				rec = append(rec, strconv.Itoa(r.Ranks[i][0]), strconv.Itoa(r.Ranks[i][1]))
			} else {
				rec = append(rec, "", "")
			}
		}
		rec = append(rec, row.Label)
		for _, c := range columns {
			rec = append(rec, csvValue(c, c.get(row)))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report csv: %w", err)
	}
	return nil
}

func csvValue(c column, v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case int:
		return strconv.Itoa(x)
	case float64:
		if c.rate {
			return strconv.FormatFloat(x*100, 'f', 1, 64) + "%"
		}
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return fmt.Sprint(v)
}

// WriteXLSX writes the report as one sheet: the header lines, the headings in bold, rates as percentages and
// hours with one decimal (numbers, so they can be sorted and summed), 合计 last.
func (r Report) WriteXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	sheet := "统计报表"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return fmt.Errorf("report xlsx: %w", err)
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return fmt.Errorf("report xlsx: %w", err)
	}
	pct, err := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	if err != nil {
		return fmt.Errorf("report xlsx: %w", err)
	}
	dec, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("0.0")})
	if err != nil {
		return fmt.Errorf("report xlsx: %w", err)
	}
	set := func(col, row int, v any) error {
		cell, err := excelize.CoordinatesToCellName(col, row)
		if err != nil {
			return err
		}
		return f.SetCellValue(sheet, cell, v)
	}
	style := func(col, row, s int) error {
		cell, err := excelize.CoordinatesToCellName(col, row)
		if err != nil {
			return err
		}
		return f.SetCellStyle(sheet, cell, cell, s)
	}
	var werr error
	keep := func(err error) {
		if werr == nil && err != nil {
			werr = err
		}
	}
	for i, line := range r.header() {
		keep(set(1, i+1, line))
	}
	keep(style(1, 1, bold))
	headRow := HeaderRows + 1
	for i, h := range r.heads() {
		keep(set(i+1, headRow, h))
		keep(style(i+1, headRow, bold))
	}
	for i, row := range append(append([]Row{}, r.Rows...), r.Total) {
		y, x := headRow+1+i, 1
		if r.Ranked {
			if i < len(r.Ranks) {
				keep(set(1, y, r.Ranks[i][0]))
				keep(set(2, y, r.Ranks[i][1]))
			}
			x = 3
		}
		keep(set(x, y, row.Label))
		for j, c := range columns {
			v := c.get(row)
			if v == nil {
				keep(set(x+1+j, y, "—"))
				continue
			}
			keep(set(x+1+j, y, v))
			if _, ok := v.(float64); ok {
				if c.rate {
					keep(style(x+1+j, y, pct))
				} else {
					keep(style(x+1+j, y, dec))
				}
			}
		}
		if i == len(r.Rows) {
			keep(style(x, y, bold))
		}
	}
	keep(f.SetColWidth(sheet, "A", "A", 28))
	if werr != nil {
		return fmt.Errorf("report xlsx: %w", werr)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("report xlsx: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// FileName is the download name of the report: kind, period start and the extension.
func (r Report) FileName(ext string) string {
	name := "report-" + string(r.Kind)
	if r.Ranked {
		name = "leaders"
	}
	return name + "-" + r.From.In(calendar.CST).Format("2006-01-02") + "." + ext
}

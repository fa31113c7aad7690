package stats_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"hotline/ticketing/org"
	"hotline/ticketing/stats"
)

func TestPeriod(t *testing.T) {
	for _, c := range []struct {
		kind     stats.PeriodKind
		date     string
		from, to string
	}{
		{stats.Daily, "2026-10-15 23:59", "2026-10-15 00:00", "2026-10-16 00:00"},
		{stats.Weekly, "2026-10-15 08:00", "2026-10-12 00:00", "2026-10-19 00:00"}, // Thursday → Monday
		{stats.Weekly, "2026-10-18 08:00", "2026-10-12 00:00", "2026-10-19 00:00"}, // Sunday belongs to the week before
		{stats.Monthly, "2026-12-31 10:00", "2026-12-01 00:00", "2027-01-01 00:00"},
	} {
		from, to, err := stats.Period(c.kind, cst(c.date))
		if err != nil || !from.Equal(cst(c.from)) || !to.Equal(cst(c.to)) {
			t.Errorf("%s of %s: %v – %v (%v)", c.kind, c.date, from, to, err)
		}
	}
	if _, _, err := stats.Period("yearly", cst("2026-10-15 00:00")); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("yearly: %v", err)
	}
}

// cells reads a sheet into label → row cells (column A, or C in the ranking).
func sheetRows(t *testing.T, data []byte) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open xlsx: %v", err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "统计报表" {
		t.Fatalf("sheets %v", got)
	}
	rows, err := f.GetRows("统计报表", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func find(rows [][]string, col int, label string) []string {
	for _, r := range rows {
		if len(r) > col && r[col] == label {
			return r
		}
	}
	return nil
}

func TestReports(t *testing.T) {
	db, a, _, _ := fixture(t)
	ctx := context.Background()
	now := cst("2026-10-30 12:00")
	rep, err := stats.BuildReport(ctx, db, stats.Scope{All: true}, stats.ReportRequest{Kind: stats.Monthly, Date: cst("2026-10-15 00:00"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var x bytes.Buffer
	if err := rep.WriteXLSX(&x); err != nil {
		t.Fatal(err)
	}
	rows := sheetRows(t, x.Bytes())
	if rows[0][0] != "湖南省乡村振兴局 12345热线工单统计月报" || rows[1][0] != "统计周期：2026-10-01 至 2026-10-31" ||
		rows[2][0] != "生成时间：2026-10-30 12:00:00（北京时间）" {
		t.Errorf("header lines %q", rows[:3])
	}
	heads := rows[3]
	if heads[0] != "承办单位" || heads[1] != "受理量" || heads[4] != "按时办结率" || heads[5] != "满意率" {
		t.Errorf("headings %q", heads)
	}
	// October for 赫山: T2 and T3 opened, dispatched T2 and T3 again; signed on time 1 of 2 (T3 late; T1's sign
	// belongs to its September dispatch); replies T1 and T2 on time, T2's second late, T3 overdue: 2 of 4; 回访 2
	// of 3 satisfied.
	he := find(rows, 0, "益阳市赫山区乡村振兴局")
	if he == nil {
		t.Fatalf("no 赫山 row in %q", rows)
	}
	if he[1] != "2" || he[2] != "2" || he[3] != "0.5" || he[4] != "0.5" || !strings.HasPrefix(he[5], "0.666") {
		t.Errorf("赫山 row %q", he)
	}
	zy := find(rows, 0, "益阳市资阳区乡村振兴局")
	if zy == nil || zy[5] != "—" || zy[4] != "0" {
		t.Errorf("资阳 row %q: 满意率 without 回访 is —, 按时办结率 0", zy)
	}
	total := rows[len(rows)-1]
	if total[0] != "合计" || total[1] != "4" {
		t.Errorf("合计 %q", total)
	}

	var c bytes.Buffer
	if err := rep.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(c.Bytes(), []byte("\uFEFF")) {
		t.Error("CSV without the UTF-8 byte-order mark")
	}
	cr := csv.NewReader(bytes.NewReader(c.Bytes()[3:]))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[1][0] != "统计周期：2026-10-01 至 2026-10-31" || !strings.HasPrefix(recs[2][0], "生成时间：2026-10-30 12:00:00") {
		t.Errorf("CSV header %q", recs[:3])
	}
	if he := find(recs, 0, "益阳市赫山区乡村振兴局"); he == nil || he[3] != "50.0%" || he[4] != "50.0%" || he[5] != "66.7%" {
		t.Errorf("CSV 赫山 %q", he)
	}

	// One unit's report: by category, within the unit; another unit's report is refused to its head.
	rep, err = stats.BuildReport(ctx, db, stats.Scope{Units: []org.UnitID{org.UnitID(a)}}, stats.ReportRequest{Kind: stats.Monthly,
		Date: cst("2026-10-15 00:00"), UnitID: org.UnitID(a), Now: now})
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].Label != "防返贫监测求助" || rep.RowHead != "事项类别" || rep.Total.Replied != 3 {
		t.Errorf("unit report %v %+v", err, rep)
	}
	if _, err := stats.BuildReport(ctx, db, stats.Scope{Units: []org.UnitID{org.UnitID(a)}}, stats.ReportRequest{Kind: stats.Daily,
		Date: now, UnitID: org.UnitID(a + 1)}); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("another unit's report: %v", err)
	}

	// The leaders' ranking: 赫山 (按时办结率 50 %) before 资阳 (0 %); the desk is not ranked.
	lr, err := stats.LeadersReport(ctx, db, cst("2026-10-01 00:00"), now)
	if err != nil {
		t.Fatal(err)
	}
	x.Reset()
	if err := lr.WriteXLSX(&x); err != nil {
		t.Fatal(err)
	}
	rows = sheetRows(t, x.Bytes())
	if rows[3][0] != "按时办结率排名" || rows[3][1] != "满意率排名" || rows[3][2] != "承办单位" {
		t.Errorf("ranking headings %q", rows[3])
	}
	if len(rows) != 7 || rows[4][2] != "益阳市赫山区乡村振兴局" || rows[4][0] != "1" || rows[4][1] != "1" ||
		rows[5][2] != "益阳市资阳区乡村振兴局" || rows[5][0] != "2" || rows[5][1] != "2" || rows[6][2] != "合计" {
		t.Errorf("ranking %q", rows)
	}
	if lr.FileName("xlsx") != "leaders-2026-10-01.xlsx" {
		t.Errorf("file name %s", lr.FileName("xlsx"))
	}
}

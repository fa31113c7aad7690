package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"hotline/ticketing/org"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// importFile has good households and one bad row of each kind. Line numbers count the header as line 1.
func importFile(t *testing.T) string {
	tw := firstTownship("430903")
	id := func(s string) string { return mkID(s) }
	head := "household_number,county_code,township_code,village,group,address,monitoring_type,risk_types,cadre_name,cadre_phone,phones,member_name,relation,id_number,health,labour,in_school,member_phone\n"
	rows := []string{
		/* 2 */ "G1,430903," + tw + ",新华村,3组,新华村3组8号,边缘易致贫户,因病;因学,周敏,13907371234,0737-4221234,刘建国,户主," + id("43090319650505123") + ",大病,弱劳动力或半劳动力,否,13812345678",
		/* 3 */ "G1,,,,,,,,,,,王秀英,配偶," + id("43090319680303002") + ",健康,普通劳动力,否,",
		/* 4 */ "G1,,,,,,,,,,,刘小明,之子," + id("43090320100101003") + ",健康,,是,",
		/* 5 */ "G2,430903," + tw + ",红星村,1组,,脱贫不稳定户,因残,,,13812345678,张三,户主," + id("43090319500101001") + ",残疾,丧失劳动力,,",
		/* 6 */ "B1,430903," + tw + ",,,,突发严重困难户,,,,,李四,户主,430903197001010010,,,,",
		/* 7 */ "B2,430903," + tw + ",,,,突发严重困难户,,,,,李五,户主,430903197002300011,,,,",
		/* 8 */ "B3,430903," + tw + ",,,,突发严重困难户,,,,,李六,户主,4309031970010100,,,,",
		/* 9 */ "B4,430903,430903999,,,,突发严重困难户,,,,,李七,户主," + id("43090319700101002") + ",,,,",
		/* 10 */ "B5,430903," + tw + ",,,,突发严重困难户,,,,1381234,李八,户主," + id("43090319700101003") + ",,,,",
		/* 11 */ "B6,430903," + tw + ",,,,突发严重困难户,,,,,,户主," + id("43090319700101004") + ",,,,",
		/* 12 */ "B7,430903," + tw + ",,,,贫困户,,,,,李九,户主," + id("43090319700101005") + ",,,,",
		/* 13 */ "B8,430903," + tw + ",,,,突发严重困难户,因懒,,,,李十,户主," + id("43090319700101006") + ",,,,",
		/* 14 */ "B9,430903," + tw + ",,,,边缘易致贫户,,,,,赵一,户主," + id("43090319700101007") + ",,,,",
		/* 15 */ "B9,,,,,,,,,,,赵二,之子,43090319950101001X,,,,",
		/* 16 */ "B10,430903," + tw + ",,,,边缘易致贫户,,,,,钱一,户主," + id("43090319700101008") + ",,,,",
		/* 17 */ "B10,,,,,,,,,,,钱二,户主," + id("43090319700101009") + ",,,,",
		/* 18 */ "G3,430903," + tw + ",,,,突发严重困难户,因灾,,,,孙一,本人," + id("43090319800101001") + ",,,,",
		/* 19 */ "B11,430903," + tw + ",,,,边缘易致贫户,,,,,吴一,户主," + id("43090319700101010") + ",,,,",
		/* 20 */ "B11,430903," + firstTownship("430921") + ",,,,,,,,,吴二,配偶," + id("43090319700101011") + ",,,,",
		/* 21 */ "B12,430903," + tw + ",,,,边缘易致贫户,,,,,郑一,户主," + id("43090319700101012") + ",,,否定,",
	}
	return head + strings.Join(rows, "\n") + "\n"
}

func wantRejected(tw string) []RejectedRow {
	return []RejectedRow{
		{6, "B1", []string{`id_number "430903197001010010": check digit does not match`}},
		{7, "B2", []string{`id_number "430903197002300011": birth date is not a real date`}},
		{8, "B3", []string{`id_number "4309031970010100": must be 18 characters`}},
		{9, "B4", []string{`township_code "430903999" is not a known township code`}},
		{10, "B5", []string{`phones: "1381234" is not a mobile or landline number`}},
		{11, "B6", []string{`member_name (姓名) is required`}},
		{12, "B7", []string{`monitoring_type "贫困户" is not one of 脱贫不稳定户, 边缘易致贫户, 突发严重困难户`}},
		{13, "B8", []string{`risk type "因懒" is unknown`}},
		{14, "B9", []string{`household B9 has rejected rows (line 15); it is imported whole or not at all`}},
		{15, "B9", []string{`id_number "43090319950101001X": check digit does not match`}},
		{16, "B10", []string{`members: exactly one member must be the head of household (户主); found 2`}},
		{17, "B10", []string{`household B10 has rejected rows (line 16); it is imported whole or not at all`}},
		{19, "B11", []string{`household B11 has rejected rows (line 20); it is imported whole or not at all`}},
		{20, "B11", []string{fmt.Sprintf(`township_code %q is not in county 430903`, firstTownship("430921")),
			fmt.Sprintf(`township_code %q differs from line 19 (%q)`, firstTownship("430921"), tw)}},
		{21, "B12", []string{`in_school "否定" must be 是/否 (yes/no)`}},
	}
}

func TestImportReport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	file := importFile(t)
	rep, err := f.svc.Import(ctx(), staff, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := ImportReport{Encoding: "utf-8", Rows: 20, RowsAccepted: 5, Households: 3, Created: 3, Rejected: wantRejected(firstTownship("430903"))}
	if !reflect.DeepEqual(rep, want) {
		g, _ := json.MarshalIndent(rep, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("report:\n%s\nwant:\n%s", g, w)
	}
	var hs, ms, ps int
	f.db.QueryRow(ctx(), `SELECT (SELECT count(*) FROM households), (SELECT count(*) FROM household_members),
		(SELECT count(*) FROM household_phones)`).Scan(&hs, &ms, &ps)
	if hs != 3 || ms != 5 || ps != 3 {
		t.Fatalf("written: %d households, %d members, %d phones; want 3, 5, 3", hs, ms, ps)
	}
	var numbers []string
	rows, _ := f.db.Query(ctx(), `SELECT number FROM households ORDER BY number`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		numbers = append(numbers, n)
	}
	if strings.Join(numbers, ",") != "G1,G2,G3" {
		t.Fatalf("households written: %v", numbers)
	}
	g1, _ := f.svc.Search(ctx(), org.System, Query{Phone: "13812345678"})
	if len(g1.Households) != 2 {
		t.Fatalf("G1 and G2 share 13812345678: %d found", len(g1.Households))
	}

	// Again: nothing changes, not even versions or events.
	var events, version int
	var tuples string
	f.db.QueryRow(ctx(), `SELECT (SELECT count(*) FROM household_events), (SELECT sum(version) FROM households),
		(SELECT string_agg(xmin::text || '/' || xmax::text, ',' ORDER BY id) FROM households)`).Scan(&events, &version, &tuples)
	rep2, err := f.svc.Import(ctx(), staff, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want.Created, want.Unchanged = 0, 3
	if !reflect.DeepEqual(rep2, want) {
		t.Fatalf("re-import report: %+v", rep2)
	}
	var events2, version2 int
	var tuples2 string
	f.db.QueryRow(ctx(), `SELECT (SELECT count(*) FROM household_events), (SELECT sum(version) FROM households),
		(SELECT string_agg(xmin::text || '/' || xmax::text, ',' ORDER BY id) FROM households)`).Scan(&events2, &version2, &tuples2)
	if events2 != events || version2 != version || tuples2 != tuples {
		t.Fatalf("re-import wrote: events %d→%d, versions %d→%d, tuples %s→%s", events, events2, version, version2, tuples, tuples2)
	}

	// The same file in GBK (as a government spreadsheet exports it), and in UTF-8 with a BOM: same result.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(file)
	if err != nil {
		t.Fatal(err)
	}
	rep3, err := f.svc.Import(ctx(), staff, strings.NewReader(gbk))
	if err != nil {
		t.Fatal(err)
	}
	want.Encoding = "gbk"
	if !reflect.DeepEqual(rep3, want) {
		t.Fatalf("GBK re-import report: %+v", rep3)
	}
	rep4, err := f.svc.Import(ctx(), staff, strings.NewReader("\ufeff"+file))
	want.Encoding = "utf-8"
	if err != nil || !reflect.DeepEqual(rep4, want) {
		t.Fatalf("BOM re-import report: %+v %v", rep4, err)
	}

	// A change to one household updates it alone, replacing its members.
	changed := strings.Replace(file, "刘小明,之子", "刘晓明,之子", 1)
	rep5, err := f.svc.Import(ctx(), staff, strings.NewReader(changed))
	if err != nil || rep5.Updated != 1 || rep5.Unchanged != 2 || rep5.Created != 0 {
		t.Fatalf("changed import: %+v %v", rep5, err)
	}
	p, _ := f.svc.Search(ctx(), org.System, Query{Name: "刘晓明"})
	if len(p.Households) != 1 {
		t.Fatalf("updated member not found")
	}
	f.db.QueryRow(ctx(), `SELECT count(*) FROM household_members`).Scan(&ms)
	if ms != 5 {
		t.Fatalf("members after update: %d", ms)
	}
}

func TestImportGBKFresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(importFile(t))
	rep, err := f.svc.Import(ctx(), staff, strings.NewReader(gbk))
	if err != nil {
		t.Fatal(err)
	}
	want := ImportReport{Encoding: "gbk", Rows: 20, RowsAccepted: 5, Households: 3, Created: 3, Rejected: wantRejected(firstTownship("430903"))}
	if !reflect.DeepEqual(rep, want) {
		t.Fatalf("GBK report: %+v", rep)
	}
	p, _ := f.svc.Search(ctx(), org.System, Query{Name: "刘建国"})
	if len(p.Households) != 1 || p.Households[0].Village != "新华村" {
		t.Fatalf("GBK text not decoded: %+v", p.Households)
	}
}

func TestImportRefusesNonCSV(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, data := range []string{"", "a,b,c\n1,2,3\n", "\xff\xfe\x00\x00garbage"} {
		if _, err := f.svc.Import(ctx(), staff, strings.NewReader(data)); err == nil {
			t.Errorf("import of %q accepted", data)
		}
	}
}

func TestExportMaskedAndRevealed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.svc.Import(ctx(), staff, strings.NewReader(importFile(t))); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := f.svc.Export(ctx(), staff, Query{}, false, "", &buf)
	if err != nil || n != 5 {
		t.Fatalf("export: %d rows, %v", n, err)
	}
	assertMasked(t, "export", buf.String())
	if !strings.Contains(buf.String(), "430903********123X") || !strings.Contains(buf.String(), "138****5678") {
		t.Fatalf("masked export lacks masks:\n%s", buf.String())
	}
	if _, err := f.svc.Export(ctx(), staff, Query{}, true, "核对", &buf); err == nil {
		t.Fatal("revealing export without permission")
	}
	buf.Reset()
	if _, err := f.svc.Export(ctx(), revealer, Query{Region: "430903"}, true, "省级核查", &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "43090319650505123X") || !strings.Contains(buf.String(), "13812345678") {
		t.Fatalf("revealed export lacks full values:\n%s", buf.String())
	}
	audits, _ := f.svc.Reveals(ctx(), 0, 10)
	if len(audits) != 1 || audits[0].Field != "export" || !strings.Contains(audits[0].Reason, "省级核查") || !strings.Contains(audits[0].Reason, "region=430903") {
		t.Fatalf("export audit: %+v", audits)
	}
	// A revealed export imports back as the same households: nothing changes.
	rep, err := f.svc.Import(ctx(), staff, strings.NewReader(buf.String()))
	if err != nil || rep.Unchanged != 3 || len(rep.Rejected) != 0 {
		t.Fatalf("round trip: %+v %v", rep, err)
	}
}

func TestImportMatchesDemoAndKeepsMeasures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.svc.LoadDemo(ctx(), 0, 60, nil); err != nil {
		t.Fatal(err)
	}
	var measures int
	f.db.QueryRow(ctx(), `SELECT count(*) FROM household_measures`).Scan(&measures)
	if measures == 0 {
		t.Fatal("demo households have no measures to keep")
	}
	// The CSV of the same synthetic households is the same data: nothing changes.
	rep, err := f.svc.Import(ctx(), staff, strings.NewReader(DemoCSV(0, 60)))
	if err != nil || rep.Unchanged != 60 || rep.Created+rep.Updated != 0 || len(rep.Rejected) != 0 {
		t.Fatalf("import of the demo CSV: %+v %v", rep, err)
	}
	// Changing every household's village updates them all, and keeps the measures entered outside the file.
	rep, err = f.svc.Import(ctx(), staff, strings.NewReader(strings.ReplaceAll(DemoCSV(0, 60), "村,", "社区,")))
	if err != nil || rep.Updated != 60 {
		t.Fatalf("changed import: %+v %v", rep, err)
	}
	var after int
	f.db.QueryRow(ctx(), `SELECT count(*) FROM household_measures`).Scan(&after)
	if after != measures {
		t.Fatalf("measures %d → %d after import", measures, after)
	}
	// Shared phones of the synthetic data: household 49 uses household 48's phone.
	ms, err := f.svc.LookupPhone(ctx(), DemoPhone(48))
	if err != nil || len(ms) != 2 || ms[0].Number != DemoNumber(48) || ms[1].Number != DemoNumber(49) {
		t.Fatalf("shared demo phone: %+v %v", ms, err)
	}
}

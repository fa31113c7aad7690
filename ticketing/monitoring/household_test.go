package monitoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"hotline/ticketing/org"
	"strings"
	"testing"
	"time"
)

// fullValues are the full personal data of sampleInput that must never appear on a read path.
var fullValues = []string{"43090319650505123X", "13812345678", "13907371234", "07374221234"}

func assertMasked(t *testing.T, what string, v any) {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(v)
	}
	for _, full := range fullValues {
		if bytes.Contains(b, []byte(full)) {
			t.Errorf("%s shows %s in full: %s", what, full, b)
		}
	}
}

func TestCreateGetMasked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), staff, sampleInput("H001", "+86 138 1234 5678"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != StatusScreened || h.HeadName != "刘建国" || len(h.Members) != 2 || len(h.Phones) != 2 {
		t.Fatalf("created household: %+v", h)
	}
	if h.Members[0].IDNumber != "430903********123X" {
		t.Errorf("member ID = %q, want masked 430903********123X", h.Members[0].IDNumber)
	}
	if h.CadrePhone != "139****1234" {
		t.Errorf("cadre phone = %q", h.CadrePhone)
	}
	got := map[string]bool{}
	for _, p := range h.Phones {
		got[p.Number] = true
	}
	if !got["138****5678"] || !got["073****1234"] {
		t.Errorf("phones = %+v", h.Phones)
	}
	assertMasked(t, "Get", h)

	// Nothing in the database holds the full values in clear.
	var dump string
	if err := f.db.QueryRow(ctx(), `SELECT concat_ws('|', (SELECT string_agg(t::text, '|') FROM households t),
		(SELECT string_agg(t::text, '|') FROM household_members t), (SELECT string_agg(t::text, '|') FROM household_phones t),
		(SELECT string_agg(encode(id_enc, 'escape'), '|') FROM household_members))`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	assertMasked(t, "database rows", dump)

	// A second household with the same number is a conflict naming the field.
	_, err = f.svc.Create(ctx(), staff, sampleInput("H001", "13812340000"))
	var ve *org.ValidationError
	if !errors.Is(err, org.ErrConflict) || !errors.As(err, &ve) || ve.Fields["number"] == "" {
		t.Fatalf("duplicate number: %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := sampleInput("H002", "12345")
	in.TownshipCode = "430903999"
	in.Members[1].IDNumber = "430903196803030021"
	in.Members = append(in.Members, MemberInput{Name: "刘二", Relation: "户主", IDNumber: "43090319900101"})
	in.RiskTypes = append(in.RiskTypes, "因懒")
	_, err := f.svc.Create(ctx(), staff, in)
	var ve *org.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want validation error, got %v", err)
	}
	for _, field := range []string{"township_code", "members[1].id_number", "members[2].id_number", "members", "risk_types", "members[0].phone"} {
		if ve.Fields[field] == "" {
			t.Errorf("no error for %s; got %v", field, ve.Fields)
		}
	}
	var n int
	f.db.QueryRow(ctx(), `SELECT count(*) FROM households`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d households written by a rejected create", n)
	}
}

func TestUpdateKeepsMaskedValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), staff, sampleInput("H003", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	// Send back what was read (masked), with a change of address and a new member.
	in := HouseholdInput{Number: h.Number, CountyCode: h.CountyCode, TownshipCode: h.TownshipCode, Village: h.Village,
		Address: "新地址 8 号", MonitoringType: string(h.MonitoringType), CadreName: h.CadreName, CadrePhone: h.CadrePhone}
	for _, m := range h.Members {
		in.Members = append(in.Members, MemberInput{Seq: m.Seq, Name: m.Name, Relation: m.Relation, IDNumber: m.IDNumber})
	}
	in.Members = append(in.Members, MemberInput{Seq: 3, Name: "刘小明", Relation: "之子", IDNumber: mkID("43090320100101003"), InSchool: true})
	for _, p := range h.Phones {
		in.Phones = append(in.Phones, PhoneInput{Number: p.Number, MemberSeq: p.MemberSeq})
	}
	h2, err := f.svc.Update(ctx(), staff, h.ID, h.Version, in)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Address != "新地址 8 号" || len(h2.Members) != 3 || h2.Version != h.Version+1 {
		t.Fatalf("updated: %+v", h2)
	}
	r, err := f.svc.Reveal(ctx(), revealer, h.ID, RevealRequest{Field: RevealIDNumber, MemberSeq: 1, Reason: "核对身份"})
	if err != nil || r.Value != "43090319650505123X" {
		t.Fatalf("kept ID number = %q, %v", r.Value, err)
	}
	r, err = f.svc.Reveal(ctx(), revealer, h.ID, RevealRequest{Field: RevealPhone, Phone: "138****5678", Reason: "回访"})
	if err != nil || r.Value != "13812345678" {
		t.Fatalf("kept phone = %q, %v", r.Value, err)
	}
	if _, err := f.svc.Update(ctx(), staff, h.ID, h.Version, in); !errors.Is(err, org.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	// A new member must bring a full ID number.
	in.Members = append(in.Members, MemberInput{Seq: 4, Name: "刘四", Relation: "之女", IDNumber: "430903********0000"})
	var ve *org.ValidationError
	if _, err := f.svc.Update(ctx(), staff, h.ID, h2.Version, in); !errors.As(err, &ve) || ve.Fields["members[3].id_number"] == "" {
		t.Fatalf("masked ID for a new member: %v", err)
	}
}

func TestRevealNeedsPermissionAndIsAudited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), staff, sampleInput("H004", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reveal(ctx(), staff, h.ID, RevealRequest{Field: RevealIDNumber, MemberSeq: 1, Reason: "想看"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("reveal without permission: %v", err)
	}
	if _, err := f.svc.Reveal(ctx(), revealer, h.ID, RevealRequest{Field: RevealIDNumber, MemberSeq: 1, Reason: "  "}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("reveal without reason: %v", err)
	}
	audits, _ := f.svc.Reveals(ctx(), h.ID, 10)
	if len(audits) != 0 {
		t.Fatalf("refused reveals wrote audit rows: %+v", audits)
	}
	r, err := f.svc.Reveal(ctx(), revealer, h.ID, RevealRequest{Field: RevealCadrePhone, Reason: "联系帮扶干部"})
	if err != nil || r.Value != "13907371234" || r.AuditID == 0 {
		t.Fatalf("reveal = %+v, %v", r, err)
	}
	audits, _ = f.svc.Reveals(ctx(), h.ID, 10)
	if len(audits) != 1 || audits[0].ActorUsername != "auditor" || audits[0].Field != RevealCadrePhone || audits[0].Reason != "联系帮扶干部" ||
		!audits[0].At.Equal(f.clock.Now()) {
		t.Fatalf("audit = %+v", audits)
	}
	// The audit cannot be rewritten, not even by the application's own database user.
	for _, sql := range []string{`UPDATE pii_reveals SET reason = 'x'`, `DELETE FROM pii_reveals`, `TRUNCATE pii_reveals`} {
		if _, err := f.db.Exec(ctx(), sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want refusal", sql, err)
		}
	}
	audits, _ = f.svc.Reveals(ctx(), h.ID, 10)
	if len(audits) != 1 || audits[0].Reason != "联系帮扶干部" {
		t.Fatalf("audit changed: %+v", audits)
	}
}

func TestSharedPhoneLookup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, err := f.svc.Create(ctx(), staff, sampleInput("H010", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	in := sampleInput("H011", "13899990000")
	in.Members[0].IDNumber, in.Members[1].IDNumber = mkID("43090319700101001"), mkID("43090319720101002")
	in.Phones = []PhoneInput{{Number: "138-1234-5678"}} // the same phone, written differently
	b, err := f.svc.Create(ctx(), staff, in)
	if err != nil {
		t.Fatal(err)
	}
	// The same people cannot be on a second household (one person, one household)...
	if _, err := f.svc.Create(ctx(), staff, sampleInput("H012", "13700000000")); !errors.Is(err, org.ErrConflict) {
		t.Fatalf("the same ID numbers on a second household: %v", err)
	}
	c := sampleInput("H012", "13700000000") // ...other people may share the landline
	c.Members[0].IDNumber, c.Members[1].IDNumber = mkID("43090319700101003"), mkID("43090319720101004")
	if _, err := f.svc.Create(ctx(), staff, c); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"13812345678", "+86 138 1234 5678", "0086-138-1234-5678", "8613812345678", "(138)12345678"} {
		ms, err := f.svc.LookupPhone(ctx(), raw)
		if err != nil {
			t.Fatalf("lookup %q: %v", raw, err)
		}
		if len(ms) != 2 || ms[0].HouseholdID != a.ID || ms[1].HouseholdID != b.ID {
			t.Fatalf("lookup %q: %d matches %+v", raw, len(ms), ms)
		}
		if ms[0].MemberSeq == nil || *ms[0].MemberSeq != 1 || ms[1].MemberSeq != nil {
			t.Errorf("member of the matched phone: %v %v", ms[0].MemberSeq, ms[1].MemberSeq)
		}
		if ms[0].Phone != "138****5678" || len(ms[0].Members) != 2 || ms[0].Members[0].IDNumber != "430903********123X" ||
			len(ms[0].RiskNames) != 2 || ms[0].StatusName != "排查" {
			t.Errorf("match: %+v", ms[0])
		}
		assertMasked(t, "LookupPhone", ms)
	}
	// Landline with area code, in several formats.
	for _, raw := range []string{"0737-4221234", "+86 737 4221234", "(0737)4221234"} {
		ms, err := f.svc.LookupPhone(ctx(), raw)
		if err != nil || len(ms) != 2 || ms[0].HouseholdID != a.ID || ms[1].Number != "H012" {
			t.Fatalf("landline lookup %q: %d matches, %v", raw, len(ms), err)
		}
	}
	if ms, err := f.svc.LookupPhone(ctx(), "13500000000"); err != nil || len(ms) != 0 {
		t.Fatalf("unknown number: %v %v", ms, err)
	}
	if _, err := f.svc.LookupPhone(ctx(), "not a phone"); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := 0; i < 30; i++ {
		if _, err := f.svc.Create(ctx(), staff, DemoHousehold(i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := f.svc.Search(ctx(), org.System, Query{Limit: 500})
	if err != nil || len(all.Households) != 30 || all.Next != nil {
		t.Fatalf("all: %d %v", len(all.Households), err)
	}
	assertMasked(t, "Search", all)
	// Pages of 7 cover everything once, in ID order.
	var seen []org.HouseholdID
	q := Query{Limit: 7}
	for {
		p, err := f.svc.Search(ctx(), org.System, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p.Households {
			seen = append(seen, h.ID)
		}
		if p.Next == nil {
			break
		}
		q.After = *p.Next
	}
	if len(seen) != 30 {
		t.Fatalf("paging saw %d households", len(seen))
	}
	h5 := DemoHousehold(5)
	count := func(q Query, want func(HouseholdInput) bool) {
		t.Helper()
		exp := 0
		for i := 0; i < 30; i++ {
			if want(DemoHousehold(i)) {
				exp++
			}
		}
		p, err := f.svc.Search(ctx(), org.System, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Households) != exp || exp == 0 {
			t.Errorf("search %+v: %d results, want %d (>0)", q, len(p.Households), exp)
		}
	}
	count(Query{Name: h5.Members[0].Name}, func(h HouseholdInput) bool {
		for _, m := range h.Members {
			if strings.HasPrefix(m.Name, h5.Members[0].Name) {
				return true
			}
		}
		return false
	})
	count(Query{Phone: "+86 " + DemoPhone(5)}, func(h HouseholdInput) bool { return h.Members[0].Phone == DemoPhone(5) })
	count(Query{IDLast4: h5.Members[0].IDNumber[14:]}, func(h HouseholdInput) bool {
		for _, m := range h.Members {
			if m.IDNumber[14:] == h5.Members[0].IDNumber[14:] {
				return true
			}
		}
		return false
	})
	count(Query{IDNumber: h5.Members[0].IDNumber}, func(h HouseholdInput) bool { return h.Number == h5.Number })
	count(Query{Region: h5.CountyCode[:4]}, func(h HouseholdInput) bool { return strings.HasPrefix(h.TownshipCode, h5.CountyCode[:4]) })
	mt, _ := parseLabel(MonitoringTypes, h5.MonitoringType)
	count(Query{MonitoringType: mt}, func(h HouseholdInput) bool { return h.MonitoringType == h5.MonitoringType })
	count(Query{RiskType: RiskType(h5.RiskTypes[0])}, func(h HouseholdInput) bool {
		for _, r := range h.RiskTypes {
			if r == h5.RiskTypes[0] {
				return true
			}
		}
		return false
	})
	// Days since last contact: contact household 5 today; 10 days later everyone matches ≥7, after contacting
	// household 5 again nobody but the 29 others.
	if _, err := f.svc.AddContact(ctx(), staff, Contact{HouseholdID: all.Households[5].ID, Kind: ContactVisit, Summary: "入户走访"}); err != nil {
		t.Fatal(err)
	}
	p, _ := f.svc.Search(ctx(), org.System, Query{NoContactDays: 7, Limit: 100})
	if len(p.Households) != 29 {
		t.Errorf("no contact for 7 days: %d, want 29", len(p.Households))
	}
	f.clock.Add(10 * 24 * time.Hour)
	p, _ = f.svc.Search(ctx(), org.System, Query{NoContactDays: 7, Limit: 100})
	if len(p.Households) != 30 {
		t.Errorf("no contact for 7 days, 10 days later: %d, want 30", len(p.Households))
	}
	p, _ = f.svc.Search(ctx(), org.System, Query{Status: StatusVerified})
	if len(p.Households) != 0 {
		t.Errorf("status verified: %d", len(p.Households))
	}
	var ve *org.ValidationError
	if _, err := f.svc.Search(ctx(), org.System, Query{Region: "43-09", IDLast4: "12", Status: "gone"}); !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Errorf("bad query: %v", err)
	}
}

func TestDialPhones(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), staff, sampleInput("P001", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := f.svc.DialPhones(ctx(), f.db, h.ID)
	if err != nil || len(ps) != 2 || ps[0].Number != "13812345678" || ps[0].MemberSeq == nil || ps[1].Number != "07374221234" {
		t.Fatalf("dial phones: %+v %v", ps, err)
	}
	assertMasked(t, "DialPhone JSON", ps)
}

// The caller lookup is one query that probes indexes only, never a scan of a table that grows with households.
func TestLookupPlanUsesIndexes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.svc.LoadDemo(ctx(), 0, 3000, nil); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"households", "household_members", "household_phones", "tickets"} {
		if _, err := f.db.Exec(ctx(), "ANALYZE "+tb); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := f.db.Query(ctx(), "EXPLAIN "+lookupSQL, f.box.Hashes("phone", DemoPhone(7)))
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan = append(plan, line)
	}
	p := strings.Join(plan, "\n")
	t.Logf("lookup plan:\n%s", p)
	if !strings.Contains(p, "household_phones_hash_idx") || strings.Contains(p, "Seq Scan on household") {
		t.Fatalf("lookup plan:\n%s", p)
	}
}

func TestCountyScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	unit := func(code string) org.UnitID {
		u, err := org.UnitByCode(ctx(), f.db, code)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	heshan := org.Actor{Username: "heshan1", Role: org.RoleStaff, UnitID: unit("430903"), Permissions: []org.Permission{org.PermRevealPII}}
	yiyang := org.Actor{Username: "yiyang1", Role: org.RoleStaff, UnitID: unit("430900")}
	taojiang := org.Actor{Username: "taojiang1", Role: org.RoleStaff, UnitID: unit("430922"), Permissions: []org.Permission{org.PermRevealPII}}
	division := org.Actor{Username: "monitor1", Role: org.RoleStaff, UnitID: unit("div-monitoring")}
	h, err := f.svc.Create(ctx(), heshan, sampleInput("Z001", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	other := DemoHousehold(3)
	other.CountyCode, other.TownshipCode = "430922", firstTownship("430922")
	if _, err := f.svc.Create(ctx(), heshan, other); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("heshan creates in 桃江: %v", err)
	}
	if _, err := f.svc.Act(ctx(), taojiang, h.ID, ActVerify, "核实"); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("taojiang acts on a heshan household: %v", err)
	}
	if _, err := f.svc.Reveal(ctx(), taojiang, h.ID, RevealRequest{Field: RevealCadrePhone, Reason: "x"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("taojiang reveals a heshan household: %v", err)
	}
	// The prefecture reads its counties' households but does not move them through the loop: only the
	// county's own bureau (and the provincial monitoring division) does.
	if _, err := f.svc.Read(ctx(), yiyang, h.ID); err != nil {
		t.Fatalf("the prefecture reads in its county: %v", err)
	}
	if _, err := f.svc.Act(ctx(), yiyang, h.ID, ActVerify, "市局核实"); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("the prefecture moved a county's household through the loop: %v", err)
	}
	if _, err := f.svc.Act(ctx(), heshan, h.ID, ActVerify, "县局核实"); err != nil {
		t.Fatalf("the county bureau acts on its household: %v", err)
	}
	if _, err := f.svc.Act(ctx(), division, h.ID, ActNotInclude, "省防贫监测处"); err != nil {
		t.Fatalf("the provincial division acts anywhere: %v", err)
	}
	audits, _ := f.svc.Reveals(ctx(), h.ID, 10)
	if len(audits) != 0 {
		t.Fatalf("refused reveal audited as seen: %+v", audits)
	}
}

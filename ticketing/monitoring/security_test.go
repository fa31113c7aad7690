package monitoring

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// unitActor makes a user of a unit (by code) with a role.
func unitActor(t *testing.T, f *fixture, username string, role org.Role, code string, perms ...org.Permission) org.Actor {
	t.Helper()
	u, err := org.UnitByCode(ctx(), f.db, code)
	if err != nil {
		t.Fatal(err)
	}
	nu, err := org.CreateUser(ctx(), f.db, org.NewUser{Username: username, DisplayName: username, Role: role, UnitID: u.ID,
		Password: "secret-password", Permissions: perms})
	if err != nil {
		t.Fatal(err)
	}
	return nu.Actor()
}

// furong is a household of 芙蓉区 (430102), outside 赫山区.
func furong(number string) HouseholdInput {
	in := sampleInput(number, "13811112222")
	in.CountyCode, in.TownshipCode = "430102", firstTownship("430102")
	in.Members[0].IDNumber, in.Members[1].IDNumber = mkID("43010219650505123"), mkID("43010219680303002")
	in.CadrePhone = "13907370000"
	return in
}

// High 1: the importer checks the county of every household against the importer's scope; a refused household is
// rejected whole, with a reason on each of its rows, and nothing of it is written.
func TestImportChecksCountyScopePerRow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	heshan := unitActor(t, f, "heshan1", org.RoleStaff, "430903")
	fr, err := f.svc.Create(ctx(), org.System, furong("F001"))
	if err != nil {
		t.Fatal(err)
	}
	tw, frTw := firstTownship("430903"), firstTownship("430102")
	head := "household_number,county_code,township_code,village,monitoring_type,phones,member_name,relation,id_number\n"
	file := head +
		/* 2 */ "F001,430102," + frTw + ",改写村,边缘易致贫户,13899998888,刘建国,户主," + mkID("43010219650505123") + "\n" + // rewrites 芙蓉区
		/* 3 */ "F002,430102," + frTw + ",新村,边缘易致贫户,,张三,户主," + mkID("43010219700101001") + "\n" + // creates in 芙蓉区
		/* 4 */ "F001,430903," + tw + ",搬家村,边缘易致贫户,,刘建国,户主," + mkID("43010219650505123") + "\n" + // moves it into 赫山区
		/* 5 */ "H001,430903," + tw + ",新华村,边缘易致贫户,,李四,户主," + mkID("43090319700101021") + "\n" // its own: fine
	rep, err := f.svc.Import(ctx(), heshan, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 1 || rep.Updated != 0 || rep.Households != 1 {
		t.Fatalf("report: %+v", rep)
	}
	refused := map[int]string{}
	for _, r := range rep.Rejected {
		refused[r.Line] = strings.Join(r.Reasons, "; ")
	}
	for _, line := range []int{2, 3, 4} {
		if refused[line] == "" {
			t.Errorf("line %d not rejected: %+v", line, rep.Rejected)
		}
	}
	if !strings.Contains(refused[3], "outside your unit's area") {
		t.Errorf("line 3 reason: %q", refused[3])
	}
	after, err := f.svc.Get(ctx(), fr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != fr.Version || after.Village != fr.Village || after.CountyCode != "430102" || len(after.Members) != 2 {
		t.Fatalf("the 芙蓉区 household changed: %+v", after)
	}
	var n int
	f.db.QueryRow(ctx(), `SELECT count(*) FROM households WHERE number = 'F002'`).Scan(&n)
	if n != 0 {
		t.Fatal("a household was created in 芙蓉区")
	}
	if _, err := f.svc.Import(ctx(), org.Actor{Username: "a", Role: org.RoleAgent}, strings.NewReader(file)); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("an agent imports: %v", err)
	}
}

// Also: unknown columns are reported with the nearest known name and refuse the file unless confirmed; an ID
// number used twice in the file or already on another household is reported per row.
func TestImportUnknownColumnsAndDuplicateIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tw := firstTownship("430903")
	if _, err := f.svc.Create(ctx(), org.System, sampleInput("H100", "13812345678")); err != nil {
		t.Fatal(err)
	}
	file := "household_number,county_code,township_code,monitoring_type,phone,member_name,relation,id_number\n" +
		"A1,430903," + tw + ",边缘易致贫户,13800001111,甲,户主," + mkID("43090319700101031") + "\n"
	rep, err := f.svc.Import(ctx(), org.System, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Refused || len(rep.UnknownColumns) != 1 || rep.UnknownColumns[0].Column != "phone" || rep.UnknownColumns[0].Nearest != "phones" || rep.Created != 0 {
		t.Fatalf("unknown column: %+v", rep)
	}
	rep, err = f.svc.ImportWith(ctx(), org.System, strings.NewReader(file), ImportOptions{AcceptUnknownColumns: true})
	if err != nil || rep.Refused || rep.Created != 1 {
		t.Fatalf("confirmed: %+v %v", rep, err)
	}

	dup := mkID("43090319700101032")
	file = "household_number,county_code,township_code,monitoring_type,member_name,relation,id_number\n" +
		/* 2 */ "D1,430903," + tw + ",边缘易致贫户,乙,户主," + dup + "\n" +
		/* 3 */ "D2,430903," + tw + ",边缘易致贫户,丙,户主," + dup + "\n" +
		/* 4 */ "D3,430903," + tw + ",边缘易致贫户,刘建国,户主,43090319650505123X\n" + // on H100 already
		/* 5 */ "D4,430903," + tw + ",边缘易致贫户,丁,户主," + mkID("43090319700101033") + "\n"
	rep, err = f.svc.Import(ctx(), org.System, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int]string{}
	for _, r := range rep.Rejected {
		reasons[r.Line] = strings.Join(r.Reasons, "; ")
	}
	if !strings.Contains(reasons[2], "also on household D2") || !strings.Contains(reasons[3], "also on household D1") ||
		!strings.Contains(reasons[4], "already on household H100") || reasons[5] != "" || rep.Created != 1 {
		t.Fatalf("duplicate IDs: %+v", rep)
	}
}

// Medium: reads follow the write scope: a county sees its county, a prefecture its counties, province-wide roles
// everything; exact-match look-ups need lookup_pii and are audited and limited.
func TestReadsFollowScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), org.System, sampleInput("H200", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := f.svc.Create(ctx(), org.System, furong("F200"))
	if err != nil {
		t.Fatal(err)
	}
	heshan := unitActor(t, f, "heshan1", org.RoleStaff, "430903")
	yiyang := unitActor(t, f, "yiyang1", org.RoleHead, "430900")
	agent := unitActor(t, f, "agent1", org.RoleAgent, "desk")
	for _, c := range []struct {
		a    org.Actor
		want []org.HouseholdID
	}{{heshan, []org.HouseholdID{h.ID}}, {yiyang, []org.HouseholdID{h.ID}}, {agent, []org.HouseholdID{h.ID, fr.ID}}} {
		p, err := f.svc.Search(ctx(), c.a, Query{})
		if err != nil {
			t.Fatal(err)
		}
		var got []org.HouseholdID
		for _, x := range p.Households {
			got = append(got, x.ID)
		}
		if len(got) != len(c.want) || got[0] != c.want[0] {
			t.Errorf("%s searches: %v, want %v", c.a.Username, got, c.want)
		}
	}
	if _, err := f.svc.Read(ctx(), heshan, fr.ID); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("heshan reads a 芙蓉区 household: %v", err)
	}
	if _, err := f.svc.Timeline(ctx(), heshan, fr.ID, 0); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("heshan reads a 芙蓉区 timeline: %v", err)
	}
	var buf bytes.Buffer
	if _, err := f.svc.Export(ctx(), heshan, Query{}, false, "", &buf); err != nil || strings.Contains(buf.String(), "F200") || !strings.Contains(buf.String(), "H200") {
		t.Errorf("heshan's export: %v\n%s", err, buf.String())
	}
	if ms, err := f.svc.CallerLookup(ctx(), heshan, "13811112222"); !errors.Is(err, org.ErrForbidden) || ms != nil {
		t.Errorf("caller lookup without lookup_pii: %v", err)
	}
	looker := unitActor(t, f, "looker", org.RoleStaff, "430903", org.PermLookupPII)
	if ms, err := f.svc.CallerLookup(ctx(), looker, "13811112222"); err != nil || len(ms) != 0 {
		t.Errorf("heshan finds a 芙蓉区 caller: %v %v", ms, err)
	}
	if _, err := f.svc.Search(ctx(), agent, Query{IDNumber: "43090319650505123X"}); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("an agent searches by a full ID number: %v", err)
	}
	p, err := f.svc.Search(ctx(), looker, Query{IDNumber: "43090319650505123X"})
	if err != nil || len(p.Households) != 1 {
		t.Fatalf("lookup_pii search: %v %v", p, err)
	}
	var n int
	f.db.QueryRow(ctx(), `SELECT count(*) FROM security_audit WHERE kind = 'pii_lookup' AND actor_id = $1
		AND detail->>'id_number' = '430903********123X'`, int64(looker.UserID)).Scan(&n)
	if n != 1 {
		t.Errorf("exact search audited %d times", n)
	}
}

type countLimiter struct{ n, limit int }

func (c *countLimiter) Allow(_ context.Context, _ string) error {
	c.n++
	if c.n > c.limit {
		return org.ErrRateLimited
	}
	return nil
}

// Medium: only the household's county bureau (and the provincial monitoring division) moves it through the loop;
// contacts are scope-checked and cannot be dated in the future.
func TestLoopAndContactsByScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), org.System, sampleInput("H300", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []org.Actor{unitActor(t, f, "dispatch1", org.RoleDispatcher, "desk"),
		unitActor(t, f, "campaign1", org.RoleCampaignManager, "div-monitoring"),
		unitActor(t, f, "super1", org.RoleSupervisor, "div-inspection")} {
		if _, err := f.svc.Act(ctx(), a, h.ID, ActNotInclude, "不纳入"); !errors.Is(err, org.ErrForbidden) {
			t.Errorf("%s takes a household out of monitoring: %v", a.Role, err)
		}
	}
	if _, err := f.svc.Act(ctx(), unitActor(t, f, "monitor1", org.RoleStaff, "div-monitoring"), h.ID, ActVerify, "省监测处核实"); err != nil {
		t.Errorf("the monitoring division: %v", err)
	}
	taojiang := unitActor(t, f, "taojiang1", org.RoleStaff, "430922")
	if _, err := f.svc.AddContact(ctx(), taojiang, Contact{HouseholdID: h.ID, Kind: ContactVisit, Summary: "走访"}); !errors.Is(err, org.ErrForbidden) {
		t.Errorf("another county adds a contact: %v", err)
	}
	heshan := unitActor(t, f, "heshan1", org.RoleStaff, "430903")
	future := f.clock.Now().Add(24 * time.Hour * 365 * 70)
	if _, err := f.svc.AddContact(ctx(), heshan, Contact{HouseholdID: h.ID, Kind: ContactVisit, At: future, Summary: "走访"}); !errors.Is(err, org.ErrInvalid) {
		t.Errorf("a contact dated %s: %v", future.Format("2006"), err)
	}
	var last *time.Time
	f.db.QueryRow(ctx(), `SELECT last_contact_at FROM households WHERE id = $1`, h.ID).Scan(&last)
	if last != nil {
		t.Errorf("last contact moved to %v", last)
	}
}

// Medium + High 3: the timeline shows only the tickets the actor may see.
func TestTimelineHidesTicketsTheActorCannotSee(t *testing.T) {
	t.Parallel()
	l := newLoop(t)
	h, err := l.svc.Create(ctx(), org.System, sampleInput("H400", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	hid := int64(h.ID)
	// A complaint about the household routed to a provincial division, not to 赫山区.
	tk, err := l.tickets.Create(ctx(), l.agent, ticketing.NewTicket{Source: ticketing.SourcePhone, RegionCode: "430903",
		HouseholdID: &hid, Kind: ticketing.KindComplaint, Category: "employment", Content: "公益岗位工资被克扣，经办人姓名"})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := l.svc.Timeline(ctx(), l.county, h.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tl {
		if e.TicketID != nil && *e.TicketID == int64(tk.ID) || strings.Contains(e.Summary, "克扣") {
			t.Fatalf("赫山区 sees a ticket it gets 403 on: %+v", e)
		}
	}
	if _, err := l.tickets.Get(ctx(), l.county, tk.ID); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("precondition: 赫山区 reads the ticket: %v", err)
	}
	tl, _ = l.svc.Timeline(ctx(), l.agent, h.ID, 0)
	found := false
	for _, e := range tl {
		found = found || (e.TicketID != nil && *e.TicketID == int64(tk.ID))
	}
	if !found {
		t.Fatalf("the agent who took it does not see it: %+v", tl)
	}
}

// Low: the export defuses spreadsheet formulas, honours limit, and its audit row names the households.
func TestExportFormulaLimitAndAudit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := sampleInput("H500", "13812345678")
	in.Village = "=HYPERLINK(\"http://x\",\"点击\")"
	in.Members[1].Name = "@王秀英"
	a, err := f.svc.Create(ctx(), org.System, in)
	if err != nil {
		t.Fatal(err)
	}
	b := sampleInput("H501", "13812340000")
	b.Members[0].IDNumber, b.Members[1].IDNumber = mkID("43090319650505124"), mkID("43090319680303005")
	if _, err := f.svc.Create(ctx(), org.System, b); err != nil {
		t.Fatal(err)
	}
	admin := unitActor(t, f, "admin1", org.RoleAdmin, "430000")
	var buf bytes.Buffer
	if _, err := f.svc.Export(ctx(), admin, Query{Limit: 1}, true, "核查", &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 { // header + the two members of one household
		t.Fatalf("limit=1 exported %d lines:\n%s", len(recs), buf.String())
	}
	for _, r := range recs[1:] {
		for _, c := range r {
			if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				t.Fatalf("a cell starts a formula: %q", c)
			}
		}
	}
	var ids string
	f.db.QueryRow(ctx(), `SELECT detail->>'household_ids' FROM security_audit WHERE kind = 'export' AND actor_id = $1`,
		int64(admin.UserID)).Scan(&ids)
	if ids != "["+itoa(int64(a.ID))+"]" {
		t.Fatalf("export audit household ids: %q", ids)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// High 2: exact-match look-ups count against the per-user limit.
func TestExactLookupsAreLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := New(Config{DB: f.db, Box: f.box, Lookups: &countLimiter{limit: 2}})
	looker := unitActor(t, f, "looker", org.RoleAgent, "desk", org.PermLookupPII)
	for i := 0; i < 2; i++ {
		if _, err := svc.CallerLookup(ctx(), looker, "13812345678"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Search(ctx(), looker, Query{Phone: "13812345678"}); !errors.Is(err, org.ErrRateLimited) {
		t.Fatalf("third look-up: %v", err)
	}
	if _, err := svc.Search(ctx(), looker, Query{Region: "4309"}); err != nil {
		t.Fatalf("a search without a full number is not limited: %v", err)
	}
}

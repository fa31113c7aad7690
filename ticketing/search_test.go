package ticketing_test

import (
	"slices"
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// TestSearchChinese: the ticket search finds a caller's name, a word of a reply and a word of the content, in
// Chinese, through the index; words that are not together in the text do not match a phrase; a confidential
// report is not found by its caller's name; another county's clerk does not find a ticket that is not theirs.
func TestSearchChinese(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, org.CodeDesk)
	clerk := f.actor(org.RoleStaff, "430903")
	other := f.actor(org.RoleStaff, "430902")
	admin := f.actor(org.RoleAdmin, org.CodeBureau)

	nt := heshanHousehold()
	nt.CallerName, nt.Dispatch = "欧阳秀英", true
	nt.Content = "询问雨露计划中职学生补助什么时候发放"
	tk := f.create(agent, nt)
	tk = f.do(clerk, tk, ticketing.ActSign, ticketing.ActionInput{})
	f.do(clerk, tk, ticketing.ActReply, ticketing.ActionInput{Reply: "经核实，该生春季学期补助已于三月拨付至一卡通，请注意查收。"})

	rep := heshanHousehold()
	rep.Kind, rep.Category, rep.Confidential, rep.HouseholdID = ticketing.KindReport, "misconduct_report", true, nil
	rep.CallerName, rep.Content = "司马光明", "反映村干部优亲厚友"
	f.create(agent, rep)

	find := func(a org.Actor, text string) []org.TicketID { t.Helper(); return findIDs(t, f, a, text) }
	// Every way a search goes: the newest tickets row by row; with a window of one, the older ones through the
	// index (rare words) or walked newest first (common words).
	for _, th := range [][2]int{{5000, 3000}, {1, 3000}, {1, 1}} {
		restore := ticketing.SetSearchThresholds(th[0], th[1])
		f.create(agent, ticketing.NewTicket{Source: ticketing.SourcePhone, RegionCode: "430903", Kind: ticketing.KindConsultation,
			Category: "policy_question", Content: "咨询政策"}) // a newer ticket that matches nothing
		checkSearch(t, find, tk, admin, clerk, other)
		restore()
	}
	for _, q := range []string{"计划雨露", "学期拨付", "低保"} {
		if ids := find(admin, q); slices.Contains(ids, tk.ID) {
			t.Errorf("search %q found the ticket: the words are not together in it", q)
		}
	}
	if ids := find(admin, "司马光明"); len(ids) != 0 {
		t.Errorf("a confidential report was found by its caller's name: %v", ids)
	}
	if ids := find(admin, "优亲厚友"); len(ids) != 1 {
		t.Errorf("the report's content: %v", ids)
	}
}

func checkSearch(t *testing.T, find func(org.Actor, string) []org.TicketID, tk ticketing.Ticket, admin, clerk, other org.Actor) {
	t.Helper()
	for _, q := range []string{"欧阳秀英", "秀英", "一卡通", "拨付", "雨露计划", "补助 一卡通", "雨", tk.Number} {
		if ids := find(admin, q); !slices.Contains(ids, tk.ID) {
			t.Errorf("search %q did not find the ticket (%v)", q, ids)
		}
		if ids := find(clerk, q); !slices.Contains(ids, tk.ID) {
			t.Errorf("clerk: search %q did not find the ticket (%v)", q, ids)
		}
		if ids := find(other, q); len(ids) != 0 {
			t.Errorf("another county's clerk: search %q found %v", q, ids)
		}
	}
}

// TestSearchUnitScope: a county clerk's search (which works inside the unit's tickets, migration 0021) finds a
// ticket where the unit is only a co-handling unit, follows a ticket whose lead unit was corrected after it was
// created (the new unit's clerk finds it, the old one's no longer does), pages newest first exactly as the
// province-wide search filtered to the scope, and does so through every way the search goes.
func TestSearchUnitScope(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, org.CodeDesk)
	disp := f.actor(org.RoleDispatcher, org.CodeDesk)
	heshan := f.actor(org.RoleStaff, "430903")
	ziyang := f.actor(org.RoleStaff, "430902")
	nanxian := f.actor(org.RoleStaff, "430921")
	admin := f.actor(org.RoleAdmin, org.CodeBureau)

	// Led by 资阳区 with 赫山区 co-handling.
	co := heshanHousehold()
	co.Content, co.Dispatch = "梧桐村集体经济合作社分红账目不公开", true
	coTk := f.create(agent, co)
	coTk = f.do(heshan, coTk, ticketing.ActReturn, ticketing.ActionInput{Reason: "主要涉及资阳区"})
	coTk = f.do(disp, coTk, ticketing.ActDispatch, ticketing.ActionInput{UnitID: f.unit("430902"), Reason: "主要涉及资阳区",
		CoUnitIDs: []org.UnitID{f.unit("430903")}})
	if coTk.LeadUnitID != f.unit("430902") || !slices.Equal(coTk.CoUnitIDs, []org.UnitID{f.unit("430903")}) {
		t.Fatalf("co-handling dispatch: lead %d co %v", coTk.LeadUnitID, coTk.CoUnitIDs)
	}
	// Dispatched to 赫山区, then corrected to 资阳区.
	moved := heshanHousehold()
	moved.Content, moved.Dispatch = "梧桐村道路硬化后排水沟堵塞", true
	movedTk := f.create(agent, moved)
	if movedTk.LeadUnitID != f.unit("430903") {
		t.Fatalf("routed to %d, want 赫山区", movedTk.LeadUnitID)
	}
	if ids := findIDs(t, f, heshan, "排水沟"); !slices.Equal(ids, []org.TicketID{movedTk.ID}) {
		t.Fatalf("before the correction 赫山区 finds %v", ids)
	}
	movedTk = f.do(agent, movedTk, ticketing.ActCorrect, ticketing.ActionInput{Changes: &ticketing.Correction{},
		UnitID: f.unit("430902"), Reason: "道路属资阳区管护"})
	if movedTk.LeadUnitID != f.unit("430902") {
		t.Fatalf("corrected to %d, want 资阳区", movedTk.LeadUnitID)
	}
	// The old unit's rows are gone, not merely filtered out afterwards.
	var units, indexed []int64
	if err := f.db.QueryRow(f.ctx, `SELECT (SELECT array_agg(unit_id ORDER BY unit_id) FROM ticket_units WHERE ticket_id = $1),
			(SELECT unit_ids FROM ticket_search WHERE ticket_id = $1)`, int64(movedTk.ID)).Scan(&units, &indexed); err != nil {
		t.Fatal(err)
	}
	if w := []int64{int64(f.unit("430902"))}; !slices.Equal(units, w) || !slices.Equal(indexed, w) {
		t.Fatalf("after the correction: ticket_units %v, ticket_search.unit_ids %v, want %v", units, indexed, w)
	}
	// Led by 赫山区 throughout.
	own := heshanHousehold()
	own.Content, own.Dispatch = "梧桐村低保评议不公", true
	ownTk := f.create(agent, own)

	for _, th := range [][2]int{{5000, 3000}, {1, 3000}, {1, 1}} {
		restore := ticketing.SetSearchThresholds(th[0], th[1])
		for _, code := range []string{"430903", "430902"} { // a newer ticket of each unit that matches nothing
			nt := heshanHousehold()
			nt.RegionCode, nt.HouseholdID, nt.Content, nt.Dispatch = code, nil, "咨询政策", true
			f.create(agent, nt)
		}
		want := map[string][]org.TicketID{
			"梧桐":   {ownTk.ID, coTk.ID},
			"分红账目": {coTk.ID},
			"排水沟":  nil,
		}
		for q, ids := range want {
			if got := findIDs(t, f, heshan, q); !slices.Equal(got, ids) {
				t.Errorf("thresholds %v: 赫山区 clerk %q found %v, want %v", th, q, got, ids)
			}
		}
		if got, w := findIDs(t, f, ziyang, "梧桐"), []org.TicketID{movedTk.ID, coTk.ID}; !slices.Equal(got, w) {
			t.Errorf("thresholds %v: 资阳区 clerk found %v, want %v", th, got, w)
		}
		if got, w := findIDs(t, f, ziyang, "排水沟"), []org.TicketID{movedTk.ID}; !slices.Equal(got, w) {
			t.Errorf("thresholds %v: 资阳区 clerk did not find the corrected ticket: %v", th, got)
		}
		if got := findIDs(t, f, nanxian, "梧桐"); len(got) != 0 {
			t.Errorf("thresholds %v: 南县 clerk found %v", th, got)
		}
		if got, w := findIDs(t, f, admin, "梧桐"), []org.TicketID{ownTk.ID, movedTk.ID, coTk.ID}; !slices.Equal(got, w) {
			t.Errorf("thresholds %v: admin found %v, want %v", th, got, w)
		}
		// One a page: the same tickets in the same order, and the end.
		var paged []org.TicketID
		var before org.TicketID
		for range 4 {
			ts, next, err := f.svc.List(f.ctx, heshan, ticketing.Filter{Text: "梧桐", Limit: 1, Before: before})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range ts {
				paged = append(paged, x.ID)
			}
			if next == 0 {
				break
			}
			before = next
		}
		if w := []org.TicketID{ownTk.ID, coTk.ID}; !slices.Equal(paged, w) {
			t.Errorf("thresholds %v: pages %v, want %v", th, paged, w)
		}
		restore()
	}
}

// TestSearchScopeUnits: the unit-scoped search serves exactly the users whose scope is their unit's tickets, or a
// prefecture bureau's (its own and every county under it); other scopes take the general path.
func TestSearchScopeUnits(t *testing.T) {
	f := newFixture(t)
	yiyang := []org.UnitID{f.unit("430900")}
	for _, code := range []string{"430902", "430903", "430921", "430922", "430923", "430981"} {
		yiyang = append(yiyang, f.unit(code))
	}
	slices.Sort(yiyang[1:])
	for _, c := range []struct {
		a    org.Actor
		want []org.UnitID
	}{
		{f.actor(org.RoleStaff, "430903"), []org.UnitID{f.unit("430903")}},
		{f.actor(org.RoleHead, "430902"), []org.UnitID{f.unit("430902")}},
		{f.actor(org.RoleStaff, "430900"), yiyang},
		{f.actor(org.RoleHead, "430900"), yiyang},
		{f.actor(org.RoleAdmin, org.CodeBureau), nil},
		{f.actor(org.RoleAgent, org.CodeDesk), nil},
		{f.actor(org.RoleSupervisor, org.CodeBureau), nil},
		{f.actor(org.RoleCampaignManager, org.CodeBureau), nil},
	} {
		got, err := f.svc.ScopeUnits(f.ctx, c.a)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s of unit %d: scope units %v, want %v", c.a.Role, c.a.UnitID, got, c.want)
		}
	}
}

// TestSearchUnitSets: a prefecture bureau's search (inside its own and its counties' tickets) and a unit-filtered
// search (inside the unit's tickets) give exactly the tickets, order and pages of the general path, through every
// way the search goes: the set's rows hold tickets the user may not read or the filter excludes (a county only
// co-handling another prefecture's ticket, a unit only co-handling), which only the caller's condition removes.
func TestSearchUnitSets(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, org.CodeDesk)
	pref := f.actor(org.RoleStaff, "430900")
	clerk := f.actor(org.RoleStaff, "430903")
	admin := f.actor(org.RoleAdmin, org.CodeBureau)
	heshan := f.unit("430903")

	// place sets a ticket's units directly; the triggers keep ticket_units and ticket_search.unit_ids in step.
	place := func(content, lead string, co ...string) org.TicketID {
		t.Helper()
		nt := heshanHousehold()
		nt.Content, nt.HouseholdID = content, nil
		tk := f.create(agent, nt)
		coIDs := []int64{}
		for _, c := range co {
			coIDs = append(coIDs, int64(f.unit(c)))
		}
		if _, err := f.db.Exec(f.ctx, `UPDATE tickets SET lead_unit_id = $2, co_unit_ids = $3 WHERE id = $1`,
			int64(tk.ID), int64(f.unit(lead)), coIDs); err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	outside := place("梧桐村公益性岗位工资未发", "430102", "430903")     // another prefecture's; 赫山区 only co-handles
	county := place("梧桐村低保评议不公", "430903")                   // led by a county of 益阳市
	coPref := place("梧桐村光伏收益未分配", "430902", "430900")        // the prefecture co-handles
	ownPref := place("梧桐村产业奖补资金未发放", "430900")               // the prefecture leads
	twoCounties := place("梧桐村易地搬迁安置房漏水", "430903", "430902") // in two of the set's units
	place("梧桐村驻村工作队长期不在岗", "430102")                         // nothing to do with 益阳市
	coCounty := place("梧桐村厕所改造质量差", "430921", "430903")      // led by 南县, 赫山区 co-handles

	cases := []struct {
		name string
		a    org.Actor
		unit org.UnitID
		q    string
		want []org.TicketID
	}{
		{"prefecture, common", pref, 0, "梧桐", []org.TicketID{coCounty, twoCounties, ownPref, coPref, county}},
		{"prefecture, rare", pref, 0, "光伏收益", []org.TicketID{coPref}},
		{"prefecture, not its", pref, 0, "公益性岗位", nil},
		{"prefecture filtering a county", pref, heshan, "梧桐", []org.TicketID{twoCounties, county}},
		{"admin filtering a county, common", admin, heshan, "梧桐", []org.TicketID{twoCounties, county}},
		{"admin filtering a county, only co-handled", admin, heshan, "公益性岗位", nil},
		{"admin filtering a county, rare", admin, heshan, "低保评议", []org.TicketID{county}},
		{"agent filtering a county", agent, heshan, "梧桐", []org.TicketID{twoCounties, county}},
		{"admin", admin, 0, "公益性岗位", []org.TicketID{outside}},
		{"county clerk, co-handled", clerk, 0, "公益性岗位", []org.TicketID{outside}},
		{"county clerk", clerk, 0, "梧桐", []org.TicketID{coCounty, twoCounties, county, outside}},
	}
	pages := func(a org.Actor, unit org.UnitID, q string) []org.TicketID {
		t.Helper()
		var ids []org.TicketID
		var before org.TicketID
		for range 10 {
			ts, next, err := f.svc.List(f.ctx, a, ticketing.Filter{Text: q, UnitID: unit, Limit: 2, Before: before})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			for _, x := range ts {
				ids = append(ids, x.ID)
			}
			if next == 0 {
				break
			}
			before = next
		}
		return ids
	}
	// Every way: the window holds everything; a window of one or two, the older through the index (rare) or
	// walked on (common).
	for _, th := range [][2]int{{5000, 3000}, {1, 3000}, {2, 3000}, {1, 1}, {2, 1}} {
		restore := ticketing.SetSearchThresholds(th[0], th[1])
		for _, code := range []string{"430903", "430900"} { // newer tickets of the units that match nothing
			nt := heshanHousehold()
			nt.HouseholdID, nt.Content = nil, "咨询政策"
			id := f.create(agent, nt).ID
			if _, err := f.db.Exec(f.ctx, `UPDATE tickets SET lead_unit_id = $2 WHERE id = $1`, int64(id), int64(f.unit(code))); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			got := pages(c.a, c.unit, c.q)
			off := ticketing.SetScopedSearch(false)
			general := pages(c.a, c.unit, c.q)
			off()
			if !slices.Equal(got, c.want) || !slices.Equal(general, c.want) {
				t.Errorf("thresholds %v, %s (%q): unit path %v, general path %v, want %v", th, c.name, c.q, got, general, c.want)
			}
		}
		restore()
	}
}

func findIDs(t *testing.T, f *fixture, a org.Actor, text string) []org.TicketID {
	t.Helper()
	ts, _, err := f.svc.List(f.ctx, a, ticketing.Filter{Text: text})
	if err != nil {
		t.Fatalf("search %q: %v", text, err)
	}
	var ids []org.TicketID
	for _, x := range ts {
		ids = append(ids, x.ID)
	}
	return ids
}

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

	find := func(a org.Actor, text string) []org.TicketID {
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

package ticketing_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// expected is the state machine as the issue states it, written out independently of the code's table.
var expected = map[ticketing.Action]struct {
	states []string
	roles  []org.Role
}{
	ticketing.ActDispatch:          {[]string{"new", "returned"}, []org.Role{"agent", "dispatcher", "admin"}},
	ticketing.ActSign:              {[]string{"dispatched"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActReply:             {[]string{"signed", "signed+ext"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActReturn:            {[]string{"dispatched", "signed", "signed+ext"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActRequestExtension:  {[]string{"signed"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActApproveExtension:  {[]string{"signed+ext"}, []org.Role{"supervisor", "admin"}},
	ticketing.ActRefuseExtension:   {[]string{"signed+ext"}, []org.Role{"supervisor", "admin"}},
	ticketing.ActUrge:              {[]string{"new", "dispatched", "signed", "signed+ext", "replied", "callback", "returned"}, []org.Role{"dispatcher", "supervisor", "admin"}},
	ticketing.ActSupervise:         {[]string{"new", "dispatched", "signed", "signed+ext", "replied", "callback", "returned"}, []org.Role{"supervisor", "admin"}},
	ticketing.ActAssign:            {[]string{"dispatched", "signed", "signed+ext"}, []org.Role{"head", "admin"}},
	ticketing.ActStartCallback:     {[]string{"replied"}, []org.Role{"agent", "admin"}},
	ticketing.ActCallbackResult:    {[]string{"replied", "callback"}, []org.Role{"agent", "admin"}},
	ticketing.ActReopen:            {[]string{"callback"}, []org.Role{"agent", "supervisor", "admin"}},
	ticketing.ActMerge:             {[]string{"new", "dispatched", "returned"}, []org.Role{"agent", "dispatcher", "admin"}},
	ticketing.ActCloseFirstContact: {[]string{"new"}, []org.Role{"agent", "admin"}},
	ticketing.ActCorrect:           {[]string{"new", "dispatched", "signed", "signed+ext", "returned"}, []org.Role{"agent", "dispatcher", "admin"}},
	// Co-unit actions: staff and heads of a co-unit only (these tickets have none, so only the admin reaches the
	// state check, which finds no co-unit part to sign or opinion to give).
	ticketing.ActCoSign:    {[]string{}, []org.Role{"admin"}},
	ticketing.ActCoOpinion: {[]string{}, []org.Role{"admin"}},
	// Sub-state actions: no reply waits for approval, no suspension is asked or in force in these states.
	ticketing.ActApproveReply:   {[]string{}, []org.Role{"head", "admin"}},
	ticketing.ActReturnReply:    {[]string{}, []org.Role{"head", "admin"}},
	ticketing.ActNote:           {[]string{"dispatched", "signed", "signed+ext"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActInterimReply:   {[]string{"signed", "signed+ext"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActRequestSuspend: {[]string{"signed", "signed+ext"}, []org.Role{"staff", "head", "admin"}},
	ticketing.ActApproveSuspend: {[]string{}, []org.Role{"supervisor", "admin"}},
	ticketing.ActRefuseSuspend:  {[]string{}, []org.Role{"supervisor", "admin"}},
	ticketing.ActResume:         {[]string{}, []org.Role{"staff", "head", "supervisor", "admin"}},
}

// TestStateMachine tries every action from every state by every role, through the service on a real database,
// each attempt in a transaction that is rolled back.
func TestStateMachine(t *testing.T) {
	f := newFixture(t)
	county := "430903"
	actors := map[org.Role]org.Actor{
		org.RoleAgent:           f.actor(org.RoleAgent, "desk"),
		org.RoleDispatcher:      f.actor(org.RoleDispatcher, "desk"),
		org.RoleStaff:           f.actor(org.RoleStaff, county),
		org.RoleHead:            f.actor(org.RoleHead, county),
		org.RoleSupervisor:      f.actor(org.RoleSupervisor, "div-inspection"),
		org.RoleCampaignManager: f.actor(org.RoleCampaignManager, "div-monitoring"),
		org.RoleAdmin:           f.actor(org.RoleAdmin, "430000"),
	}
	staff2 := f.actor(org.RoleStaff, county)
	agent, staff, super := actors[org.RoleAgent], actors[org.RoleStaff], actors[org.RoleSupervisor]
	nt := heshanHousehold()
	nt.Kind = ticketing.KindConsultation
	target := f.create(agent, nt)

	mk := func(steps ...func(ticketing.Ticket) ticketing.Ticket) ticketing.Ticket {
		tk := f.create(agent, nt)
		for _, s := range steps {
			tk = s(tk)
		}
		return tk
	}
	step := func(a org.Actor, act ticketing.Action, in ticketing.ActionInput) func(ticketing.Ticket) ticketing.Ticket {
		return func(tk ticketing.Ticket) ticketing.Ticket { return f.do(a, tk, act, in) }
	}
	dispatch := step(agent, ticketing.ActDispatch, ticketing.ActionInput{})
	sign := step(staff, ticketing.ActSign, ticketing.ActionInput{})
	reply := step(staff, ticketing.ActReply, ticketing.ActionInput{Reply: "已核实并处理"})
	states := map[string]ticketing.Ticket{
		"new":        mk(),
		"dispatched": mk(dispatch),
		"signed":     mk(dispatch, sign),
		"signed+ext": mk(dispatch, sign, step(staff, ticketing.ActRequestExtension, ticketing.ActionInput{Days: 2, Reason: "需要现场核查"})),
		"replied":    mk(dispatch, sign, reply),
		"callback":   mk(dispatch, sign, reply, step(agent, ticketing.ActStartCallback, ticketing.ActionInput{})),
		"closed":     mk(dispatch, sign, reply, step(agent, ticketing.ActCallbackResult, ticketing.ActionInput{Result: "满意"})),
		"returned":   mk(dispatch, step(staff, ticketing.ActReturn, ticketing.ActionInput{Reason: "不属于本单位"})),
	}
	_ = super
	corrected := "更正：" + nt.Content
	inputs := map[ticketing.Action]ticketing.ActionInput{
		ticketing.ActReply:             {Reply: "答复"},
		ticketing.ActReturn:            {Reason: "错派"},
		ticketing.ActRequestExtension:  {Days: 3, Reason: "需要协调"},
		ticketing.ActRefuseExtension:   {Reason: "理由不足"},
		ticketing.ActUrge:              {Note: "请尽快办理"},
		ticketing.ActSupervise:         {Note: "列入督办"},
		ticketing.ActAssign:            {AssigneeID: staff2.UserID},
		ticketing.ActCallbackResult:    {Result: ticketing.Satisfied},
		ticketing.ActReopen:            {Note: "群众不满意"},
		ticketing.ActMerge:             {TargetID: target.ID},
		ticketing.ActCloseFirstContact: {Reply: "已电话解答"},
		ticketing.ActCorrect:           {Changes: &ticketing.Correction{Content: &corrected}},
		ticketing.ActNote:              {Note: "已联系村委核实"},
		ticketing.ActInterimReply:      {Reply: "正在核实，请耐心等待"},
		ticketing.ActRequestSuspend:    {Reason: "等待司法鉴定结果"},
	}
	checked, allowedN := 0, 0
	for stateName, tk := range states {
		for _, act := range ticketing.Actions {
			for _, role := range org.Roles {
				exp := expected[act]
				wantRole := slices.Contains(exp.roles, role)
				wantState := slices.Contains(exp.states, stateName)
				in := inputs[act]
				in.Version = tk.Version
				tx, err := f.db.Begin(f.ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.svc.DoTx(f.ctx, tx, actors[role], tk.ID, act, in)
				tx.Rollback(f.ctx)
				checked++
				var se *org.StateError
				a := actors[role]
				outside := (role == org.RoleStaff || role == org.RoleHead) && tk.LeadUnitID != a.UnitID && !slices.Contains(tk.CoUnitIDs, a.UnitID)
				switch {
				case outside:
					// Another unit's ticket: refused before anything about it (state, version, allowed actions) is told.
					if !errors.Is(err, org.ErrForbidden) || errors.As(err, &se) || strings.Contains(err.Error(), string(tk.Status)) {
						t.Errorf("%s from %s by %s of another unit: got %v, want a bare forbidden", act, stateName, role, err)
					}
				case !wantRole:
					if !errors.As(err, &se) || !errors.Is(err, org.ErrForbidden) {
						t.Errorf("%s from %s by %s: got %v, want forbidden", act, stateName, role, err)
					}
				case !wantState:
					if !errors.As(err, &se) || !errors.Is(err, org.ErrState) {
						t.Errorf("%s from %s by %s: got %v, want not allowed in state", act, stateName, role, err)
					} else if slices.Contains(se.Allowed, string(act)) {
						t.Errorf("%s from %s by %s: refused but listed as allowed %v", act, stateName, role, se.Allowed)
					}
				default:
					allowedN++
					if err != nil {
						t.Errorf("%s from %s by %s: %v, want allowed", act, stateName, role, err)
					}
				}
			}
		}
	}
	if checked != len(states)*len(ticketing.Actions)*len(org.Roles) || allowedN < 50 {
		t.Fatalf("checked %d cases, %d allowed", checked, allowedN)
	}
	// Nothing of the refused or rolled-back attempts was written.
	for name, tk := range states {
		now, err := f.svc.Get(f.ctx, org.System, tk.ID)
		if err != nil || now.Version != tk.Version {
			t.Errorf("%s ticket changed by rolled-back attempts: version %d → %d (%v)", name, tk.Version, now.Version, err)
		}
	}
	// Unit scope: staff of another county cannot sign a ticket led by 赫山区.
	other := f.actor(org.RoleStaff, "430902")
	_, err := f.svc.Do(f.ctx, other, states["dispatched"].ID, ticketing.ActSign, ticketing.ActionInput{Version: states["dispatched"].Version})
	if !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("sign by another unit's staff: %v, want forbidden", err)
	}
}

func eventActions(t *testing.T, f *fixture, id org.TicketID) []string {
	t.Helper()
	evs, err := f.svc.Events(f.ctx, org.System, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return out
}

func TestLifecycleDeadlinesAndEvents(t *testing.T) {
	f := newFixture(t)
	// Dispatched on the Wednesday before National Day 2026.
	f.now = time.Date(2026, 9, 30, 10, 0, 0, 0, calendar.CST)
	agent := f.actor(org.RoleAgent, "desk")
	staff := f.actor(org.RoleStaff, "430903")
	super := f.actor(org.RoleSupervisor, "div-inspection")
	nt := heshanHousehold() // 求助: 3 working days to reply
	nt.Dispatch = true
	tk := f.create(agent, nt)
	cst := calendar.CST
	want := func(name string, got *time.Time, w time.Time) {
		t.Helper()
		if got == nil || !got.Equal(w) {
			t.Fatalf("%s = %v, want %v", name, got, w)
		}
	}
	want("sign_by", tk.SignBy, time.Date(2026, 10, 8, 10, 0, 0, 0, cst))
	want("reply_by", tk.ReplyBy, time.Date(2026, 10, 10, 10, 0, 0, 0, cst)) // 10-08, 10-09, make-up Saturday 10-10
	if tk.DueKind == nil || *tk.DueKind != ticketing.DueSign {
		t.Fatalf("running clock %v, want sign", tk.DueKind)
	}
	f.now = time.Date(2026, 10, 8, 9, 0, 0, 0, cst)
	tk = f.do(staff, tk, ticketing.ActSign, ticketing.ActionInput{})
	want("due_at after sign", tk.DueAt, *tk.ReplyBy)
	tk = f.do(staff, tk, ticketing.ActRequestExtension, ticketing.ActionInput{Days: 2, Reason: "需入户核查"})
	tk = f.do(super, tk, ticketing.ActApproveExtension, ticketing.ActionInput{})
	want("reply_by after a 2-day extension", tk.ReplyBy, time.Date(2026, 10, 13, 10, 0, 0, 0, cst)) // skips Sunday 10-11
	want("due_at after extension", tk.DueAt, *tk.ReplyBy)
	f.now = time.Date(2026, 10, 9, 16, 0, 0, 0, cst) // Friday
	tk = f.do(staff, tk, ticketing.ActReply, ticketing.ActionInput{Reply: "已协调医保报销"})
	want("callback_by", tk.CallbackBy, time.Date(2026, 10, 10, 16, 0, 0, 0, cst)) // make-up Saturday
	tk = f.do(agent, tk, ticketing.ActCallbackResult, ticketing.ActionInput{Result: "不满意"})
	if tk.Status != ticketing.StatusSigned || tk.ReopenCount != 1 || tk.Satisfaction != ticketing.Unsatisfied {
		t.Fatalf("after an unsatisfied callback: status %s reopen %d", tk.Status, tk.ReopenCount)
	}
	want("reply_by after reopen", tk.ReplyBy, time.Date(2026, 10, 13, 16, 0, 0, 0, cst)) // Fri 16:00 → make-up Sat → Mon → Tue 16:00
	tk = f.do(staff, tk, ticketing.ActReply, ticketing.ActionInput{Reply: "已补办"})
	// The dialer closes it as the system.
	tk, err := f.svc.CallbackResult(f.ctx, org.System, tk.ID, "基本满意", "按键回访")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != ticketing.StatusClosed || tk.ClosedAt == nil || tk.DueAt != nil {
		t.Fatalf("after a satisfied callback: status %s closed %v due %v", tk.Status, tk.ClosedAt, tk.DueAt)
	}
	got := eventActions(t, f, tk.ID)
	wantEv := []string{"create", "dispatch", "sign", "request_extension", "approve_extension", "reply", "callback_result", "reply", "callback_result"}
	if !slices.Equal(got, wantEv) {
		t.Fatalf("events %v, want %v", got, wantEv)
	}
	// Events cannot be changed or deleted, even with SQL.
	if _, err := f.db.Exec(f.ctx, `UPDATE ticket_events SET note = 'x' WHERE ticket_id = $1`, int64(tk.ID)); err == nil {
		t.Fatal("an event row was updated")
	}
	if _, err := f.db.Exec(f.ctx, `DELETE FROM ticket_events WHERE ticket_id = $1`, int64(tk.ID)); err == nil {
		t.Fatal("an event row was deleted")
	}
	if _, err := f.db.Exec(f.ctx, `TRUNCATE ticket_events CASCADE`); err == nil {
		t.Fatal("the event table was truncated")
	}
	// Extension after the deadline is refused.
	late := f.create(agent, nt)
	late = f.do(staff, late, ticketing.ActSign, ticketing.ActionInput{})
	late = f.do(staff, late, ticketing.ActRequestExtension, ticketing.ActionInput{Days: 1, Reason: "x"})
	f.now = late.ReplyBy.Add(time.Minute)
	_, err = f.svc.Do(f.ctx, super, late.ID, ticketing.ActApproveExtension, ticketing.ActionInput{Version: late.Version})
	if !errors.Is(err, org.ErrState) {
		t.Fatalf("approving an extension after the deadline: %v, want not allowed", err)
	}
}

func TestUrgentClocksInHours(t *testing.T) {
	f := newFixture(t)
	cst := calendar.CST
	f.now = time.Date(2026, 9, 30, 20, 0, 0, 0, cst)
	agent := f.actor(org.RoleAgent, "desk")
	nt := heshanHousehold()
	nt.Urgency = ticketing.UrgencyUrgent
	nt.Dispatch = true
	tk := f.create(agent, nt)
	// 2 working hours to sign, 24 to reply: the holiday from 10-01 does not count.
	if !tk.SignBy.Equal(time.Date(2026, 9, 30, 22, 0, 0, 0, cst)) || !tk.ReplyBy.Equal(time.Date(2026, 10, 8, 20, 0, 0, 0, cst)) {
		t.Fatalf("urgent sign_by %v reply_by %v", tk.SignBy, tk.ReplyBy)
	}
}

func TestConcurrentSignOneWins(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	a1, a2 := f.actor(org.RoleStaff, "430903"), f.actor(org.RoleStaff, "430903")
	nt := heshanHousehold()
	nt.Dispatch = true
	for round := range 5 {
		tk := f.create(agent, nt)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, a := range []org.Actor{a1, a2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = f.svc.Sign(context.Background(), a, tk.ID, tk.Version)
			}()
		}
		close(start)
		wg.Wait()
		ok, conflict := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, org.ErrConflict):
				conflict++
			default:
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: %d signed, %d conflicts; want 1 and 1", round, ok, conflict)
		}
		var signs int
		f.db.QueryRow(f.ctx, `SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND action = 'sign'`, int64(tk.ID)).Scan(&signs)
		if signs != 1 {
			t.Fatalf("round %d: %d sign events", round, signs)
		}
	}
}

func TestStaleVersionIsConflict(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	sup := f.actor(org.RoleSupervisor, "div-inspection")
	tk := f.create(agent, heshanHousehold())
	f.do(sup, tk, ticketing.ActUrge, ticketing.ActionInput{Note: "加快"})
	_, err := f.svc.Do(f.ctx, agent, tk.ID, ticketing.ActDispatch, ticketing.ActionInput{Version: tk.Version})
	if !errors.Is(err, org.ErrConflict) {
		t.Fatalf("dispatch with a stale version: %v, want conflict", err)
	}
}

func TestReturnAndOverride(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	disp := f.actor(org.RoleDispatcher, "desk")
	staff := f.actor(org.RoleStaff, "430903")
	nt := heshanHousehold()
	nt.Dispatch = true
	tk := f.create(agent, nt)
	_, err := f.svc.Do(f.ctx, staff, tk.ID, ticketing.ActReturn, ticketing.ActionInput{Version: tk.Version})
	var ve *org.ValidationError
	if !errors.As(err, &ve) || ve.Fields["reason"] == "" {
		t.Fatalf("return without a reason: %v, want a validation error on reason", err)
	}
	tk = f.do(staff, tk, ticketing.ActReturn, ticketing.ActionInput{Reason: "户籍在资阳区"})
	if tk.Status != ticketing.StatusReturned || tk.LeadUnitID != f.unit("desk") || tk.DueAt != nil {
		t.Fatalf("returned: status %s unit %d due %v", tk.Status, tk.LeadUnitID, tk.DueAt)
	}
	// Override without a reason is refused; with one, it is recorded.
	_, err = f.svc.Do(f.ctx, disp, tk.ID, ticketing.ActDispatch, ticketing.ActionInput{Version: tk.Version, UnitID: f.unit("430902")})
	if !errors.As(err, &ve) || ve.Fields["reason"] == "" {
		t.Fatalf("override without a reason: %v", err)
	}
	tk = f.do(disp, tk, ticketing.ActDispatch, ticketing.ActionInput{UnitID: f.unit("430902"), Reason: "户籍在资阳区",
		CoUnitIDs: []org.UnitID{f.unit("430903"), f.unit("430902")}})
	if tk.LeadUnitID != f.unit("430902") || tk.RouteUnitID == nil || *tk.RouteUnitID != f.unit("430903") ||
		!slices.Equal(tk.CoUnitIDs, []org.UnitID{f.unit("430903")}) {
		t.Fatalf("override: lead %d route %v co-handling %v", tk.LeadUnitID, tk.RouteUnitID, tk.CoUnitIDs)
	}
	evs, _ := f.svc.Events(f.ctx, org.System, tk.ID)
	last := evs[len(evs)-1]
	if last.Action != "dispatch" || last.Data["reason"] != "户籍在资阳区" || last.Data["override"] != true || last.Data["rule_id"] == nil {
		t.Fatalf("override event data %v", last.Data)
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	hh := int64(7)
	for _, tc := range []struct {
		name string
		nt   ticketing.NewTicket
		unit string
	}{
		{"household matter in 赫山区 → 赫山区 bureau", ticketing.NewTicket{Kind: ticketing.KindComplaint, Category: "employment",
			RegionCode: "430903001", HouseholdID: &hh, Content: "公益岗位工资未发放"}, "430903"},
		{"report of fund misuse → discipline", ticketing.NewTicket{Kind: ticketing.KindReport, Category: "funds_assets",
			RegionCode: "430903", Content: "村干部挪用衔接资金修自家房屋"}, "div-discipline"},
		{"report of misconduct → discipline", ticketing.NewTicket{Kind: ticketing.KindReport, Category: "misconduct_report",
			Content: "帮扶干部弄虚作假"}, "div-discipline"},
		{"complaint about funds → finance", ticketing.NewTicket{Kind: ticketing.KindComplaint, Category: "funds_assets",
			Content: "项目资金未公示"}, "div-finance"},
		{"policy question → policy", ticketing.NewTicket{Kind: ticketing.KindConsultation, Category: "policy_question",
			Content: "雨露计划怎么申请"}, "div-policy"},
		{"monitoring help without a region → desk", ticketing.NewTicket{Kind: ticketing.KindHelp, Category: "monitoring_help",
			Content: "家里遭灾"}, "desk"},
		{"verification ticket → county of the household", ticketing.NewTicket{Kind: ticketing.KindHelp, Category: "monitoring_verify",
			RegionCode: "430903", HouseholdID: &hh, Content: "外呼回答收入下降"}, "430903"},
	} {
		tk := f.create(agent, tc.nt)
		if tk.RouteUnitID == nil || *tk.RouteUnitID != f.unit(tc.unit) {
			t.Errorf("%s: routed to %v, want %s (%d)", tc.name, tk.RouteUnitID, tc.unit, f.unit(tc.unit))
		}
		if tc.unit == "desk" && tk.RouteRuleID != nil {
			t.Errorf("%s: no rule should match, got rule %d", tc.name, *tk.RouteRuleID)
		}
		if tc.unit != "desk" && (tk.RouteRuleID == nil || tk.RouteRuleVersion == nil) {
			t.Errorf("%s: the rule and version are not recorded", tc.name)
		}
	}
	// Dispatching an unroutable ticket needs the dispatcher to choose.
	tk := f.create(agent, ticketing.NewTicket{Kind: ticketing.KindHelp, Category: "monitoring_help", Content: "家里遭灾"})
	_, err := f.svc.Do(f.ctx, agent, tk.ID, ticketing.ActDispatch, ticketing.ActionInput{Version: tk.Version})
	if !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("dispatching an unroutable ticket: %v", err)
	}
	// Rules are data: a new rule ahead of the others wins and is versioned.
	admin := f.actor(org.RoleAdmin, "430000")
	r, err := f.svc.CreateRule(f.ctx, admin, ticketing.RuleInput{Position: 1, Name: "益阳求助 → 防贫监测处", RegionPrefix: "4309",
		Kinds: []ticketing.Kind{ticketing.KindHelp}, UnitCode: "div-monitoring"})
	if err != nil {
		t.Fatal(err)
	}
	tk = f.create(agent, heshanHousehold())
	if *tk.RouteUnitID != f.unit("div-monitoring") || *tk.RouteRuleID != r.ID || *tk.RouteRuleVersion != 1 {
		t.Fatalf("new rule not applied: unit %d rule %d", *tk.RouteUnitID, *tk.RouteRuleID)
	}
	r2, err := f.svc.UpdateRule(f.ctx, admin, r.ID, ticketing.RuleInput{Position: 1, Name: r.Name, RegionPrefix: "4309",
		Kinds: []ticketing.Kind{ticketing.KindHelp}, UnitCode: "div-social", Version: 1})
	if err != nil || r2.Version != 2 {
		t.Fatalf("update rule: %v version %d", err, r2.Version)
	}
	if _, err := f.svc.UpdateRule(f.ctx, admin, r.ID, ticketing.RuleInput{Name: "x", UnitCode: "desk", Version: 1}); !errors.Is(err, org.ErrConflict) {
		t.Fatalf("update with a stale version: %v", err)
	}
	tk = f.create(agent, heshanHousehold())
	if *tk.RouteUnitID != f.unit("div-social") || *tk.RouteRuleVersion != 2 {
		t.Fatalf("updated rule not applied: unit %d version %d", *tk.RouteUnitID, *tk.RouteRuleVersion)
	}
	var hist int
	f.db.QueryRow(f.ctx, `SELECT count(*) FROM routing_rule_history WHERE rule_id = $1`, r.ID).Scan(&hist)
	if hist != 2 {
		t.Fatalf("%d history rows, want 2", hist)
	}
	if _, err := f.svc.CreateRule(f.ctx, agent, ticketing.RuleInput{Name: "x", UnitCode: "desk"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("an agent edited the routing rules: %v", err)
	}
}

func TestVerifyOutcomeAndHook(t *testing.T) {
	f := newFixture(t)
	var seen []string
	fail := false
	// The words belong to the package that registers them (monitoring in production).
	f.svc.RequireOutcome(ticketing.CategoryMonitoringVerify, []string{"identified", "not_included"})
	f.svc.OnTransition(func(ctx context.Context, tx pgx.Tx, tk ticketing.Ticket, ev ticketing.Event) error {
		if fail {
			return errors.New("household update failed")
		}
		if tk.Category == ticketing.CategoryMonitoringVerify && ev.Action == "reply" {
			seen = append(seen, ev.Data["outcome"].(string))
		}
		return nil
	})
	agent := f.actor(org.RoleAgent, "desk")
	staff := f.actor(org.RoleStaff, "430903")
	hh := int64(9)
	tk := f.create(org.System, ticketing.NewTicket{Source: ticketing.SourceCampaign, Kind: ticketing.KindHelp,
		Category: ticketing.CategoryMonitoringVerify, RegionCode: "430903", HouseholdID: &hh, Content: "外呼:收入明显下降", Dispatch: true})
	if tk.LeadUnitID != f.unit("430903") {
		t.Fatalf("verification ticket led by %d", tk.LeadUnitID)
	}
	tk = f.do(staff, tk, ticketing.ActSign, ticketing.ActionInput{})
	for _, bad := range []string{"", "maybe"} {
		_, err := f.svc.Do(f.ctx, staff, tk.ID, ticketing.ActReply, ticketing.ActionInput{Version: tk.Version, Reply: "已核实", Outcome: bad})
		if !errors.Is(err, org.ErrInvalid) {
			t.Fatalf("reply with outcome %q: %v", bad, err)
		}
	}
	fail = true
	_, err := f.svc.Do(f.ctx, staff, tk.ID, ticketing.ActReply, ticketing.ActionInput{Version: tk.Version, Reply: "已核实", Outcome: "identified"})
	if err == nil {
		t.Fatal("a failing hook did not fail the action")
	}
	if now, _ := f.svc.Get(f.ctx, org.System, tk.ID); now.Status != ticketing.StatusSigned || now.Version != tk.Version {
		t.Fatalf("a failing hook left the reply written: %s v%d", now.Status, now.Version)
	}
	fail = false
	tk = f.do(staff, tk, ticketing.ActReply, ticketing.ActionInput{Reply: "已核实", Outcome: "identified"})
	if tk.Outcome != "identified" || !slices.Equal(seen, []string{"identified"}) {
		t.Fatalf("outcome %q, hook saw %v", tk.Outcome, seen)
	}
	// An outcome on an ordinary ticket is refused.
	o := f.create(agent, heshanHousehold())
	o = f.do(agent, o, ticketing.ActDispatch, ticketing.ActionInput{})
	o = f.do(staff, o, ticketing.ActSign, ticketing.ActionInput{})
	if _, err := f.svc.Do(f.ctx, staff, o.ID, ticketing.ActReply, ticketing.ActionInput{Version: o.Version, Reply: "x", Outcome: "identified"}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("outcome on a help ticket: %v", err)
	}
}

func TestMergeAndDuplicates(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	first := f.create(agent, heshanHousehold())
	dup := f.create(agent, heshanHousehold())
	other := heshanHousehold()
	other.Category = "employment"
	f.create(agent, other)
	ds, err := f.svc.Duplicates(f.ctx, agent, dup.ID)
	if err != nil || len(ds) != 1 || ds[0].ID != first.ID {
		t.Fatalf("duplicates %v %v, want [%d]", ds, err, first.ID)
	}
	dup = f.do(agent, dup, ticketing.ActMerge, ticketing.ActionInput{TargetID: first.ID, Note: "同一事项"})
	if dup.Status != ticketing.StatusClosed || dup.MergedInto == nil || *dup.MergedInto != first.ID {
		t.Fatalf("merged duplicate: %s into %v", dup.Status, dup.MergedInto)
	}
	if ids, err := f.svc.MergedFrom(f.ctx, agent, first.ID); err != nil || !slices.Equal(ids, []org.TicketID{dup.ID}) {
		t.Fatalf("merged into the target: %v %v", ids, err)
	}
	if got := eventActions(t, f, first.ID); !slices.Equal(got, []string{"create", "merged_from"}) {
		t.Fatalf("target events %v", got)
	}
	// A closed ticket is no target.
	third := f.create(agent, heshanHousehold())
	if _, err := f.svc.Do(f.ctx, agent, third.ID, ticketing.ActMerge, ticketing.ActionInput{Version: third.Version, TargetID: dup.ID}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("merge into a closed ticket: %v", err)
	}
	if ds, _ := f.svc.Duplicates(f.ctx, agent, third.ID); len(ds) != 1 || ds[0].ID != first.ID {
		t.Fatalf("a closed duplicate is still suggested: %v", ds)
	}
}

func TestConfidentialAndMasking(t *testing.T) {
	f := newFixture(t)
	agent := f.actor(org.RoleAgent, "desk")
	disc := f.actor(org.RoleStaff, "div-discipline")
	pii := f.actor(org.RoleAgent, "desk", org.PermRevealPII)
	tk := f.create(agent, ticketing.NewTicket{Kind: ticketing.KindReport, Category: "misconduct_report", CallerName: "李四",
		CallerPhone: "13912345678", Content: "村支书优亲厚友", Confidential: true, Dispatch: true})
	if tk.LeadUnitID != f.unit("div-discipline") {
		t.Fatalf("report led by %d", tk.LeadUnitID)
	}
	v, _ := f.svc.Get(f.ctx, agent, tk.ID)
	if v.CallerName != "" || v.CallerPhone != "" {
		t.Fatalf("agent sees a confidential caller: %q %q", v.CallerName, v.CallerPhone)
	}
	v, _ = f.svc.Get(f.ctx, disc, tk.ID)
	if v.CallerName != "李四" || v.CallerPhone != "139****5678" {
		t.Fatalf("discipline unit sees %q %q", v.CallerName, v.CallerPhone)
	}
	open := f.create(agent, heshanHousehold())
	if v, _ := f.svc.Get(f.ctx, agent, open.ID); v.CallerPhone != "138****5678" {
		t.Fatalf("phone not masked: %q", v.CallerPhone)
	}
	if v, _ := f.svc.Get(f.ctx, pii, open.ID); v.CallerPhone != "13812345678" {
		t.Fatalf("reveal_pii sees %q", v.CallerPhone)
	}
	if _, err := f.svc.Create(f.ctx, agent, ticketing.NewTicket{Kind: ticketing.KindHelp, Category: "monitoring_help", Content: "x", Confidential: true}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a confidential help ticket: %v", err)
	}
	// Staff of another unit cannot read it.
	if _, err := f.svc.Get(f.ctx, f.actor(org.RoleStaff, "430903"), tk.ID); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("another unit reads the report: %v", err)
	}
}

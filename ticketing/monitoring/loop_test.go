package monitoring

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

type loopFixture struct {
	*fixture
	tickets *ticketing.Service
	county  org.Actor
	agent   org.Actor
}

func newLoop(t *testing.T) *loopFixture {
	f := newFixture(t)
	ts := ticketing.NewService(f.db, ticketing.Options{Now: f.clock.Now})
	f.svc.AttachTickets(ts)
	unit, err := org.UnitForRegion(ctx(), f.db, "430903")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(username string, role org.Role, unit org.UnitID) org.Actor {
		u, err := org.CreateUser(ctx(), f.db, org.NewUser{Username: username, DisplayName: username, Role: role,
			UnitID: unit, Password: "secret-password"})
		if err != nil {
			t.Fatal(err)
		}
		return u.Actor()
	}
	desk, _ := org.UnitByCode(ctx(), f.db, org.CodeDesk)
	return &loopFixture{fixture: f, tickets: ts, county: mk("heshan1", org.RoleStaff, unit.ID), agent: mk("agent1", org.RoleAgent, desk.ID)}
}

func (l *loopFixture) helpTicket(t *testing.T, hid org.HouseholdID) ticketing.Ticket {
	t.Helper()
	id := int64(hid)
	tk, err := l.tickets.Create(ctx(), l.agent, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerPhone: "13812345678",
		RegionCode: "430903", HouseholdID: &id, Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp,
		Content: "家里老人生病住院，收入明显下降"})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (l *loopFixture) verifyTicket(t *testing.T, hid org.HouseholdID) ticketing.Ticket {
	t.Helper()
	var id int64
	if err := l.db.QueryRow(ctx(), `SELECT id FROM tickets WHERE household_id = $1 AND category = 'monitoring_verify'
		AND status <> 'closed'`, int64(hid)).Scan(&id); err != nil {
		t.Fatalf("verification ticket: %v", err)
	}
	var tk ticketing.Ticket
	rows, _ := l.db.Query(ctx(), `SELECT id, status, lead_unit_id, version, region_code FROM tickets WHERE id = $1`, id)
	rows.Next()
	if err := rows.Scan(&tk.ID, &tk.Status, &tk.LeadUnitID, &tk.Version, &tk.RegionCode); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	return tk
}

func TestLoopIdentified(t *testing.T) {
	t.Parallel()
	l := newLoop(t)
	h, err := l.svc.Create(ctx(), staff, sampleInput("L001", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	help := l.helpTicket(t, h.ID)

	// The help ticket opened a verification ticket for 赫山区's bureau, dispatched, in the same transaction.
	vt := l.verifyTicket(t, h.ID)
	if vt.Status != ticketing.StatusDispatched || vt.LeadUnitID != l.county.UnitID || vt.RegionCode != h.TownshipCode {
		t.Fatalf("verification ticket: %+v (county unit %d)", vt, l.county.UnitID)
	}
	h, _ = l.svc.Get(ctx(), h.ID)
	if h.LeadAt == nil || h.Clock == nil || h.Clock.Kind != "identify_by" || h.Clock.Level != "green" ||
		!h.Clock.Due.Equal(l.clock.Now().Add(15*24*time.Hour)) {
		t.Fatalf("lead clock: %+v %+v", h.LeadAt, h.Clock)
	}
	// The caller lookup shows both open tickets; the timeline shows the tickets and the lead.
	ms, err := l.svc.LookupPhone(ctx(), "+86 138 1234 5678")
	if err != nil || len(ms) != 1 || len(ms[0].OpenTickets) != 2 || ms[0].OpenTickets[0].ID != int64(help.ID) {
		t.Fatalf("lookup: %+v %v", ms, err)
	}
	tl, err := l.svc.Timeline(ctx(), org.System, h.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range tl {
		kinds[e.Type+":"+e.Kind]++
	}
	if kinds["ticket:monitoring_help"] != 1 || kinds["ticket:monitoring_verify"] != 1 || kinds["event:lead"] != 1 || kinds["event:create"] != 1 {
		t.Fatalf("timeline: %v", kinds)
	}

	// Yellow three days before the 15-day limit, red after it.
	l.clock.Add(12*24*time.Hour + time.Hour)
	if h, _ = l.svc.Get(ctx(), h.ID); h.Clock.Level != "yellow" {
		t.Fatalf("day 12: %+v", h.Clock)
	}
	if p, _ := l.svc.Search(ctx(), org.System, Query{Clock: "yellow"}); len(p.Households) != 1 {
		t.Fatalf("yellow search: %d", len(p.Households))
	}
	if p, _ := l.svc.Search(ctx(), org.System, Query{Clock: "red"}); len(p.Households) != 0 {
		t.Fatalf("red search on day 12: %d", len(p.Households))
	}
	l.clock.Add(3 * 24 * time.Hour)
	if h, _ = l.svc.Get(ctx(), h.ID); h.Clock.Level != "red" {
		t.Fatalf("day 15: %+v", h.Clock)
	}
	if p, _ := l.svc.Search(ctx(), org.System, Query{Clock: "red"}); len(p.Households) != 1 || p.Households[0].Clock.Level != "red" {
		t.Fatalf("red search: %+v", p.Households)
	}

	// The county signs and replies "identified": the household is identified in that same transaction.
	tk, err := l.tickets.Sign(ctx(), l.county, vt.ID, vt.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.tickets.Reply(ctx(), l.county, vt.ID, ticketing.ActionInput{Version: tk.Version,
		Reply: "经入户核实，因病支出骤增，认定为突发严重困难户", Outcome: OutcomeIdentified}); err != nil {
		t.Fatal(err)
	}
	h, _ = l.svc.Get(ctx(), h.ID)
	if h.Status != StatusIdentified || h.LeadAt != nil || h.Clock != nil {
		t.Fatalf("after reply: status %s lead %v clock %+v", h.Status, h.LeadAt, h.Clock)
	}
	var action, actor string
	var ticketID int64
	if err := l.db.QueryRow(ctx(), `SELECT action, actor_name, ticket_id FROM household_events WHERE household_id = $1
		AND to_status = 'identified'`, int64(h.ID)).Scan(&action, &actor, &ticketID); err != nil {
		t.Fatal(err)
	}
	if action != "verify_outcome:identified" || actor != "heshan1" || ticketID != int64(vt.ID) {
		t.Fatalf("event: %s by %s ticket %d", action, actor, ticketID)
	}
}

func TestLoopNotIncludedAndRepeatLead(t *testing.T) {
	t.Parallel()
	l := newLoop(t)
	h, err := l.svc.Create(ctx(), staff, sampleInput("L002", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	l.helpTicket(t, h.ID)
	l.helpTicket(t, h.ID) // a second call about the same risk: no second verification ticket
	// A risky campaign answer, raised by telephony in its own transaction.
	err = pgx.BeginFunc(ctx(), l.db, func(tx pgx.Tx) error {
		_, err := l.svc.RaiseLeadTx(ctx(), tx, org.System, Lead{HouseholdID: h.ID, Source: ticketing.SourceCampaign,
			Summary: "问卷第1题按1：近三个月收入明显下降", Ref: "campaign:1/target:1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	l.db.QueryRow(ctx(), `SELECT count(*) FROM tickets WHERE household_id = $1 AND category = 'monitoring_verify'`, int64(h.ID)).Scan(&n)
	if n != 1 {
		t.Fatalf("%d verification tickets, want 1", n)
	}
	vt := l.verifyTicket(t, h.ID)
	tk, err := l.tickets.Sign(ctx(), l.county, vt.ID, vt.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.tickets.Reply(ctx(), l.county, vt.ID, ticketing.ActionInput{Version: tk.Version,
		Reply: "收入未低于监测范围，不纳入", Outcome: OutcomeNotIncluded}); err != nil {
		t.Fatal(err)
	}
	if h, _ = l.svc.Get(ctx(), h.ID); h.Status != StatusNotIncluded {
		t.Fatalf("status %s", h.Status)
	}
	// A new lead later brings the household back to 排查 with a new verification ticket.
	l.helpTicket(t, h.ID)
	if h, _ = l.svc.Get(ctx(), h.ID); h.Status != StatusScreened || h.LeadAt == nil {
		t.Fatalf("after a new lead: %s %v", h.Status, h.LeadAt)
	}
	l.db.QueryRow(ctx(), `SELECT count(*) FROM tickets WHERE household_id = $1 AND category = 'monitoring_verify'`, int64(h.ID)).Scan(&n)
	if n != 2 {
		t.Fatalf("%d verification tickets, want 2", n)
	}
}

func TestLoopUnknownHouseholdRollsBack(t *testing.T) {
	t.Parallel()
	l := newLoop(t)
	id := int64(999999)
	_, err := l.tickets.Create(ctx(), l.agent, ticketing.NewTicket{Source: ticketing.SourcePhone, RegionCode: "430903",
		HouseholdID: &id, Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "求助"})
	var ve *org.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields["household_id"], "does not exist") {
		t.Fatalf("help ticket for an unknown household: %v", err)
	}
	var n int
	l.db.QueryRow(ctx(), `SELECT count(*) FROM tickets`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d tickets written", n)
	}
}

func TestStatusActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := sampleInput("S001", "13812345678")
	h, err := f.svc.Create(ctx(), staff, in)
	if err != nil {
		t.Fatal(err)
	}
	act := func(a Action, reason string) (Household, error) { return f.svc.Act(ctx(), staff, h.ID, a, reason) }
	var se *org.StateError
	if _, err := act(ActIdentify, "直接认定"); !errors.As(err, &se) || !errors.Is(err, org.ErrState) ||
		strings.Join(se.Allowed, ",") != "not_include,verify" {
		t.Fatalf("identify from screened: %v", err)
	}
	if _, err := act(ActVerify, ""); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("no reason: %v", err)
	}
	if _, err := f.svc.Act(ctx(), org.Actor{Username: "a", Role: org.RoleAgent}, h.ID, ActVerify, "x"); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("agent: %v", err)
	}
	mustAct := func(a Action, want Status) Household {
		t.Helper()
		h, err := act(a, "依据 "+string(a))
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if h.Status != want {
			t.Fatalf("%s: status %s, want %s", a, h.Status, want)
		}
		return h
	}
	mustAct(ActVerify, StatusVerified)
	if _, err := act(ActIdentify, "未公示"); !errors.Is(err, org.ErrState) {
		t.Fatalf("identify without publicity: %v", err)
	}
	h = mustAct(ActPublicizeIdentify, StatusVerified)
	if h.Clock == nil || h.Clock.Kind != "publicity" || h.Clock.Level != "running" {
		t.Fatalf("publicity clock: %+v", h.Clock)
	}
	f.clock.Add(4 * 24 * time.Hour)
	if _, err := act(ActIdentify, "公示未满"); !errors.Is(err, org.ErrState) {
		t.Fatalf("identify during publicity: %v", err)
	}
	f.clock.Add(24 * time.Hour)
	mustAct(ActIdentify, StatusIdentified)
	if _, err := act(ActAssist, "无措施"); !errors.Is(err, org.ErrState) {
		t.Fatalf("assist without a measure: %v", err)
	}
	in.Measures = []Measure{{Type: "健康帮扶", Start: "2026-12-01", Note: "大病保险"}}
	if _, err := f.svc.Update(ctx(), staff, h.ID, h.Version+1, in); err != nil {
		// version moved with identify: read it
		cur, _ := f.svc.Get(ctx(), h.ID)
		if _, err := f.svc.Update(ctx(), staff, h.ID, cur.Version, in); err != nil {
			t.Fatal(err)
		}
	}
	mustAct(ActAssist, StatusAssisted)
	mustAct(ActPublicizeElimination, StatusAssisted)
	f.clock.Add(6 * 24 * time.Hour)
	if _, err := act(ActEliminate, "公示未满"); !errors.Is(err, org.ErrState) {
		t.Fatalf("eliminate during publicity: %v", err)
	}
	f.clock.Add(24 * time.Hour)
	mustAct(ActEliminate, StatusRiskEliminated)
	mustAct(ActRescreen, StatusScreened)
	mustAct(ActNotInclude, StatusNotIncluded)

	var got []string
	rows, _ := f.db.Query(ctx(), `SELECT action || ':' || coalesce(from_status, '') || '>' || coalesce(to_status, '') || ':' || actor_name
		FROM household_events WHERE household_id = $1 ORDER BY id`, int64(h.ID))
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	want := []string{"create:>screened:赫山区承办人", "verify:screened>verified:赫山区承办人", "publicize_identify:verified>:赫山区承办人",
		"identify:verified>identified:赫山区承办人", "update:>:赫山区承办人", "assist:identified>assisted:赫山区承办人",
		"publicize_elimination:assisted>:赫山区承办人", "eliminate:assisted>risk_eliminated:赫山区承办人",
		"rescreen:risk_eliminated>screened:赫山区承办人", "not_include:screened>not_included:赫山区承办人"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestContactsOnTimeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := f.svc.Create(ctx(), staff, sampleInput("C001", "13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := f.clock.Now()
	// Telephony appends contacts inside its own transactions; a rolled-back call leaves nothing.
	err = pgx.BeginFunc(ctx(), f.db, func(tx pgx.Tx) error {
		if _, err := f.svc.AddContactTx(ctx(), tx, Contact{HouseholdID: h.ID, Kind: ContactOutboundAttempt, At: t0.Add(time.Hour),
			Summary: "无人接听", Ref: "campaign:1/target:9"}); err != nil {
			return err
		}
		_, err := f.svc.AddContactTx(ctx(), tx, Contact{HouseholdID: h.ID, Kind: ContactOutboundCall, At: t0.Add(2 * time.Hour),
			Summary: "问卷完成", Ref: "campaign:1/target:9", Answers: map[string]string{"income_down": "2"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = pgx.BeginFunc(ctx(), f.db, func(tx pgx.Tx) error {
		f.svc.AddContactTx(ctx(), tx, Contact{HouseholdID: h.ID, Kind: ContactInboundCall, At: t0.Add(3 * time.Hour), Summary: "rolled back"})
		return errors.New("call failed")
	})
	if _, err := f.svc.AddContactTx(ctx(), f.db, Contact{HouseholdID: h.ID, Kind: "fax"}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("bad kind: %v", err)
	}
	if _, err := f.svc.AddContactTx(ctx(), f.db, Contact{HouseholdID: 424242, Kind: ContactVisit}); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("unknown household: %v", err)
	}
	tl, err := f.svc.Timeline(ctx(), org.System, h.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != 3 || tl[0].Kind != "outbound_call" || string(tl[0].Answers) != `{"income_down": "2"}` ||
		tl[1].Kind != "outbound_attempt" || tl[2].Kind != "create" {
		t.Fatalf("timeline: %+v", tl)
	}
	assertMasked(t, "timeline", tl)
	h, _ = f.svc.Get(ctx(), h.ID)
	if h.LastContactAt == nil || !h.LastContactAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("last contact: %v", h.LastContactAt)
	}
	if _, err := f.svc.Timeline(ctx(), org.System, 424242, 0); !errors.Is(err, org.ErrNotFound) {
		t.Fatalf("timeline of unknown: %v", err)
	}
}

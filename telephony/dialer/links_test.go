package dialer

import (
	"context"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// household creates a monitored household in a county with one phone.
func idOf(first17 string) string { return first17 + string(idcard.CheckChar(first17)) }

func household(t *testing.T, mon *monitoring.Service, number, county, phone string) monitoring.Household {
	t.Helper()
	ts := region.Children(county)
	if len(ts) == 0 {
		t.Fatalf("no township in %s", county)
	}
	h, err := mon.Create(context.Background(), org.System, monitoring.HouseholdInput{Number: number, CountyCode: county,
		TownshipCode: ts[0].Code, Village: "新华村", MonitoringType: "marginal", RiskTypes: []string{"illness"},
		// One person per household: the ID number differs by the phone's last digits.
		Members: []monitoring.MemberInput{{Name: "刘建国", Relation: "户主", IDNumber: idOf("43090319650505" + phone[len(phone)-3:]), Phone: phone}}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRiskAnswerAndCallbacks runs the dialer against the real monitoring records and ticket service: a risky key
// opens a verification ticket for the county bureau of the household's region and the attempt is on the
// household's timeline; a replied ticket gets a 回访 call where key 3 reopens it and key 1 closes it.
func TestRiskAnswerAndCallbacks(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	port := startSipp(t, 300*time.Millisecond)
	key, _ := pii.ParseKey(pii.NewKey())
	box, err := pii.New(key)
	if err != nil {
		t.Fatal(err)
	}
	mon := monitoring.New(monitoring.Config{DB: db, Box: box})
	tickets := ticketing.NewService(db, ticketing.Options{})
	mon.AttachTickets(tickets)
	svc := campaign.NewService(db, campaign.Options{Directory: campaign.MonitoringDirectory{Households: mon},
		Holidays: campaign.CalendarHolidays{Cal: calendar.Default()}, Hooks: campaign.LinkHooks(mon, tickets)})
	tickets.OnTransition(svc.CallbackOnReply())
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: prompts(t), phones: campaign.Phones{DB: db, Households: mon}})

	heshan := household(t, mon, "H001", "430903", "13900000001")   // 赫山区, presses 1 (risk)
	taojiang := household(t, mon, "H002", "430922", "13900000011") // 桃江县, presses 1 (risk)
	calm := household(t, mon, "H003", "430903", "13900000002")     // presses 2
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "收入变化排查", Purpose: campaign.PurposeCheckin,
		CallerID: "12345", Windows: allDay(), Pace: 20, Script: surveyScript(1500), Query: campaign.TargetQuery{RegionPrefix: "4309"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	p := waitFinished(t, svc, c.ID, time.Minute)
	if p.ByState[campaign.TargetCompleted] != 3 {
		t.Fatalf("targets: %+v", p.ByState)
	}
	for _, tc := range []struct {
		h      monitoring.Household
		county string
		risky  bool
	}{{heshan, "430903", true}, {taojiang, "430922", true}, {calm, "430903", false}} {
		var unit org.UnitID
		var source string
		err := db.QueryRow(ctx, `SELECT lead_unit_id, source FROM tickets WHERE household_id = $1 AND category = 'monitoring_verify'`,
			int64(tc.h.ID)).Scan(&unit, &source)
		if !tc.risky {
			if err == nil {
				t.Errorf("household %s: a verification ticket without a risk answer", tc.h.Number)
			}
		} else {
			want, _ := org.UnitForRegion(ctx, db, tc.county)
			if err != nil || unit != want.ID || source != "campaign" {
				t.Errorf("household %s: verification ticket unit %d source %q (%v), want unit %d of %s", tc.h.Number, unit, source, err, want.ID, tc.county)
			}
		}
		var kind, answers string
		if err := db.QueryRow(ctx, `SELECT kind, answers::text FROM household_contacts WHERE household_id = $1 AND ref LIKE 'campaign:%'`,
			int64(tc.h.ID)).Scan(&kind, &answers); err != nil || kind != "outbound_call" {
			t.Errorf("household %s timeline: %s %s %v", tc.h.Number, kind, answers, err)
		}
		if want := map[bool]string{true: `{"income": "1"}`, false: `{"income": "2"}`}[tc.risky]; answers != want {
			t.Errorf("household %s answers on the timeline: %s, want %s", tc.h.Number, answers, want)
		}
	}

	// 回访: the standing campaign, tickets replied → calls → key 3 reopens, key 1 closes.
	one := campaign.Retry{MaxAttempts: 1}
	if _, err := svc.EnsureStandingCallback(ctx, campaign.NewCampaign{Name: "工单回访", CallerID: "12345", Windows: allDay(), Pace: 10,
		RingTimeoutMS: 800, Retry: &campaign.RetryRules{NoAnswer: one, Busy: one, Failed: one},
		Script: campaign.Script{Questions: []campaign.Question{{ID: "satisfaction", Prompt: "q.wav", Keys: "123"}}, Final: "bye.wav", SilenceMS: 1500}}); err != nil {
		t.Fatal(err)
	}
	replied := func(phone string) org.TicketID {
		tk, err := tickets.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerPhone: phone,
			RegionCode: "430903", Kind: ticketing.KindComplaint, Category: "employment", Content: "公益岗位工资未按时发放", Dispatch: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.Sign(ctx, org.System, tk.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.Reply(ctx, org.System, tk.ID, ticketing.ActionInput{Reply: "已协调发放"}); err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	unhappy := replied("13900000013") // presses 3
	happy := replied("13900000021")   // presses 1
	absent := replied("13900000018")  // never answers: after its one attempt, a manual callback task
	deadline := time.Now().Add(time.Minute)
	for {
		var done, manual int
		db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'manual' AND ticket_id = $2)
			FROM campaign_targets WHERE ticket_id = ANY($1)`, []int64{int64(unhappy), int64(happy), int64(absent)}, int64(absent)).Scan(&done, &manual)
		if done == 2 && manual == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("回访 calls not completed within a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
	check := func(id org.TicketID, status ticketing.Status, satisfaction string, reopens int) {
		var st ticketing.Status
		var sat string
		var n int
		db.QueryRow(ctx, `SELECT status, coalesce(satisfaction, ''), reopen_count FROM tickets WHERE id = $1`, id).Scan(&st, &sat, &n)
		if (status != "" && st != status) || sat != satisfaction || n != reopens {
			t.Errorf("ticket %d after 回访: %s %q reopened %d times", id, st, sat, n)
		}
	}
	check(happy, ticketing.StatusClosed, ticketing.Satisfied, 0)
	check(unhappy, "", ticketing.Unsatisfied, 1)
	check(absent, ticketing.StatusReplied, "", 0)
	tasks, err := svc.ManualCallbacks(ctx, 10)
	if err != nil || len(tasks) != 1 || tasks[0].TicketID != campaign.TicketID(absent) {
		t.Fatalf("manual callback tasks: %+v %v", tasks, err)
	}
	var events int
	db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = 'callback.manual'`).Scan(&events)
	if events != 1 {
		t.Errorf("%d callback.manual events", events)
	}
	var st ticketing.Status
	db.QueryRow(ctx, `SELECT status FROM tickets WHERE id = $1`, unhappy).Scan(&st)
	if st == ticketing.StatusClosed || st == ticketing.StatusReplied {
		t.Errorf("unsatisfied ticket is %s, want reopened", st)
	}
}

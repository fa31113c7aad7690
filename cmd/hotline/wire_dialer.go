package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"hotline/telephony"
	"hotline/telephony/dialer"
	"hotline/telephony/sipua"
	"hotline/telephony/ticketlink"
	"hotline/ticketing"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
	"hotline/web"
)

// standingCallback is the 回访 campaign every replied ticket joins.
func standingCallback(cfg DialerConfig) campaign.NewCampaign {
	return campaign.NewCampaign{Name: "工单回访（自动）", CallerID: cfg.CallerID, Pace: 5, MaxConcurrent: 30,
		Script: campaign.Script{Questions: []campaign.Question{{ID: "satisfaction", Prompt: dialer.PromptCallbackQuestion, Keys: "123"}},
			Final: dialer.PromptCallbackBye, SilenceMS: 6000},
		Retry: &campaign.RetryRules{NoAnswer: campaign.Retry{DelayMS: time.Hour.Milliseconds(), MaxAttempts: 3},
			Busy: campaign.Retry{DelayMS: (10 * time.Minute).Milliseconds(), MaxAttempts: 3}, Failed: campaign.Retry{DelayMS: (30 * time.Minute).Milliseconds(), MaxAttempts: 2}}}
}

// wireDialer builds the campaign service (its 回访 joins every ticket reply) and, with a trunk and the dialer role,
// the dialer and click-to-call, placing their calls through the process's one SIP user agent (wireTelephony's).
func wireDialer(ctx context.Context, a *App, tickets *ticketing.Service, mon *monitoring.Service) (*campaign.Service, error) {
	cfg := a.cfg.Dialer
	dir := cfg.PromptDir
	var svc *campaign.Service
	svc = campaign.NewService(a.db, campaign.Options{Directory: campaign.MonitoringDirectory{Households: mon},
		Holidays: campaign.CalendarHolidays{Current: tickets.Calendar}, Hooks: campaign.LinkHooks(mon, tickets),
		Log: a.log.With("component", "campaigns"),
		Prompt: func(name string) error {
			// An uploaded prompt (PostgreSQL) is written into this process's directory first, then checked like a file.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := svc.MaterializePrompt(ctx, dir, name); err != nil {
				return fmt.Errorf("prompt %s: %v", name, err)
			}
			return dialer.CheckPrompts(dir, []string{name})
		}})
	// A replied ticket gets its 回访 in the standing campaign, in the reply's transaction.
	tickets.OnTransition(svc.CallbackOnReply())
	// A 回访 done by hand cancels the automatic call still waiting for that ticket.
	tickets.OnTransition(svc.CancelCallbackByHand())
	if err := dialer.WritePrompts(dir); err != nil {
		return nil, fmt.Errorf("dialer prompts in %s (HOTLINE_DIALER_PROMPT_DIR): %v", dir, err)
	}
	if cfg.Callback {
		if _, err := svc.EnsureStandingCallback(ctx, standingCallback(cfg)); err != nil {
			return nil, fmt.Errorf("standing 回访 campaign: %w", err)
		}
	}
	webC := &web.Campaigns{Service: svc, PromptDir: dir}
	a.webDeps.Campaigns = webC
	if !cfg.Enabled || cfg.Trunk == "" || !a.cfg.Scale.has(roleDialer) || a.sip == nil {
		a.log.Info("dialer: no calls placed by this process (HOTLINE_DIALER_ENABLED off, HOTLINE_DIALER_TRUNK empty, no dialer role in HOTLINE_ROLES, or no SIP listener)")
		return svc, nil
	}
	log := a.log.With("component", "dialer")
	sipSrv := a.sip
	ua := dialer.SharedUA(sipSrv.Diago(), sipSrv.Digits(), sipSrv.FromHost(), dir, log).WithFetch(svc.MaterializePrompt)
	phones := campaign.Phones{DB: a.db, Households: mon}
	trunk := dialer.Trunk{Name: "default", Host: cfg.TrunkHost, Port: cfg.TrunkPort, Transport: cfg.TrunkTransport, Username: cfg.TrunkUser,
		Password: cfg.TrunkPassword, Channels: cfg.TrunkChannels}
	publish := func(ctx context.Context, topic, key string, payload any) error {
		return ticketing.Publish(ctx, a.db, topic, key, payload)
	}
	d := dialer.New(dialer.Config{Prefix: a.cfg.RedisPrefix, Workers: cfg.Workers, Trunks: map[string]dialer.Trunk{"default": trunk},
		DeadAfter: cfg.DeadAfter, StaleQueued: cfg.StaleQueued, DrainTimeout: a.cfg.ShutdownTimeout}, svc, a.rdb, ua, phones, publish, log)
	for _, c := range d.Collectors() {
		if err := a.reg.Register(c); err != nil {
			return nil, fmt.Errorf("dialer metrics: %w", err)
		}
	}
	// Click-to-call CDRs and recordings go through telephony's call records; the household's timeline gets the
	// call through its contact recorder.
	tel := telephony.NewService(telephony.Options{DB: a.db, Log: log, Events: ticketlink.Events,
		Contacts: outboundContacts{mon}, RecordingsDir: a.cfg.Telephony.RecordingsDir})
	clicker := &dialer.Clicker{UA: ua, Campaigns: svc, Phones: phones, Agents: agentPhones{db: a.db, rdb: a.rdb, prefix: a.cfg.RedisPrefix, uriTemplate: cfg.AgentURI},
		CDRs: tel, Callbacks: tel, Trunk: trunk, CallerID: cfg.CallerID, Ring: cfg.ClickRing, Log: log.With("part", "click-to-call")}
	webC.Click = clicker
	// The user agent outlives the calls placed through it: wireTelephony closes it a stage after the dialer.
	a.add(component{name: "dialer", stage: stageDialer, run: func(ctx context.Context) error {
		select {
		case <-sipSrv.Ready():
		case <-ctx.Done():
			return nil
		}
		return d.Run(ctx)
	}})
	a.add(component{name: "click-to-call", stage: stageDialer, run: clicker.Run})
	a.endpoints = append(a.endpoints, [2]string{"dialer", "through the SIP user agent above → trunk " + cfg.Trunk})
	return svc, nil
}

// outboundContacts puts click-to-call CDRs on households' timelines as outbound calls (ticketlink.Contacts words
// them as inbound calls: telephony.CallContact carries no direction).
type outboundContacts struct{ mon *monitoring.Service }

func (c outboundContacts) RecordCallContact(ctx context.Context, tx pgx.Tx, cc telephony.CallContact) error {
	kind, summary := monitoring.ContactOutboundAttempt, "坐席一键外呼，未接通"
	if cc.Disposition == telephony.DispAnswered {
		kind, summary = monitoring.ContactOutboundCall, fmt.Sprintf("坐席一键外呼，通话 %d 秒", int(cc.Talk.Seconds()))
	}
	if cc.TicketID != 0 {
		summary += fmt.Sprintf("，工单 #%d", cc.TicketID)
	}
	_, err := c.mon.AddContactTx(ctx, tx, monitoring.Contact{HouseholdID: org.HouseholdID(cc.HouseholdID), Kind: kind,
		At: cc.At, Summary: summary, Ref: fmt.Sprintf("call:%d", cc.CallID)})
	return err
}

// agentPhones finds an agent's phone: the registrar's live bindings (telephony/sipua keeps them in Redis), else the
// configured URI template with the agent's SIP user.
type agentPhones struct {
	db          org.DB
	rdb         *redis.Client
	prefix      string
	uriTemplate string
}

func (p agentPhones) AgentContacts(ctx context.Context, agent org.UserID) ([]sip.Uri, error) {
	ag, err := telephony.GetAgent(ctx, p.db, agent)
	if err != nil {
		return nil, fmt.Errorf("click-to-call needs the agent's SIP account: %w", err)
	}
	if out, err := sipua.Bindings(ctx, p.rdb, p.prefix, ag.SIPUser); err == nil && len(out) > 0 {
		return out, nil
	}
	if p.uriTemplate == "" {
		return nil, nil
	}
	var u sip.Uri
	if err := sip.ParseUri(strings.ReplaceAll(p.uriTemplate, "{user}", ag.SIPUser), &u); err != nil {
		return nil, fmt.Errorf("HOTLINE_DIALER_AGENT_URI: %v", err)
	}
	return []sip.Uri{u}, nil
}

// demoCampaign adds a draft survey over the demo households of 益阳市, ready to launch from the console.
func demoCampaign(ctx context.Context, a *App) error {
	_, err := a.campaigns.Create(ctx, org.System, campaign.NewCampaign{Name: "益阳市监测户收入变化电话排查（示例）",
		Purpose: campaign.PurposeCheckin, CallerID: a.cfg.Dialer.CallerID, OptOutKey: "9", Pace: 5, MaxConcurrent: 20,
		Query: campaign.TargetQuery{RegionPrefix: "4309", MinDaysSinceContact: 30},
		Script: campaign.Script{Questions: []campaign.Question{
			{ID: "income", Prompt: dialer.PromptIncomeQuestion, Keys: "12", RiskKeys: "1", Next: map[string]string{"2": "health"}},
			{ID: "health", Prompt: dialer.PromptHealthQuestion, Keys: "12", RiskKeys: "1"},
		}, Final: dialer.PromptSurveyBye}})
	if err != nil {
		return fmt.Errorf("demo campaign: %w", err)
	}
	return nil
}

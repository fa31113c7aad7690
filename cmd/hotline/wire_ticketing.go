package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/web"
)

// ticketingParts are the ticketing pieces of one App.
type ticketingParts struct {
	svc    *ticketing.Service
	relay  *ticketing.Relay
	queues *ticketing.Queues
}

func init() {
	commands = append(commands, command{name: "queues", summary: "queues rebuild: refill every unit's Redis queue from PostgreSQL (after Redis lost its data)", run: runQueues})
}

// wireTicketing builds the ticket service, the outbox relay and the unit queues, with their metrics, the ticket
// API, and the relay and SLA sweeper components.
func wireTicketing(ctx context.Context, a *App) (*ticketingParts, error) {
	c := a.cfg.Ticketing
	cal := calendar.Default()
	if c.Calendar != nil {
		cal = c.Calendar
	}
	p := &ticketingParts{}
	p.relay = ticketing.NewRelay(a.db, a.rdb, ticketing.RelayOptions{Prefix: a.cfg.RedisPrefix, WaitReplicas: a.cfg.Scale.WaitReplicas, Batch: c.OutboxBatch,
		PollInterval: c.OutboxPoll, EventsMaxLen: int64(c.EventsMaxLen), Log: a.log.With("component", "outbox-relay")})
	p.queues = ticketing.NewQueues(a.db, a.rdb, a.cfg.RedisPrefix)
	short, long := c.ReplyDaysShort, c.ReplyDaysLong
	p.svc = ticketing.NewService(a.db, ticketing.Options{Calendar: cal, DuplicateDays: c.DuplicateDays,
		Log: a.log.With("component", "ticketing"), Kick: p.relay.Kick,
		CoOpinionWarn: c.CoOpinionPolicy == "warn",
		SLA: ticketing.SLAConfig{SignDays: c.SignDays, CallbackDays: c.CallbackDays, UrgentSignHours: c.UrgentSignHours,
			UrgentReplyHours: c.UrgentReplyHours, YellowShare: c.YellowShare, CoOpinionDays: c.CoOpinionDays,
			ReplyDays: map[ticketing.Kind]int{ticketing.KindConsultation: short, ticketing.KindHelp: short,
				ticketing.KindComplaint: long, ticketing.KindReport: long, ticketing.KindSuggestion: long}}})
	// The newest calendar admins uploaded (系统管理 → 节假日) over the configured one; later uploads are taken up
	// without a restart (ReloadCalendar).
	if err := p.svc.ReloadCalendar(ctx); err != nil {
		return nil, err
	}
	if _, last := p.svc.Calendar().Years(); time.Now().Year() > last {
		a.log.Warn("the holiday calendar ends before this year: only weekends count as days off; load a newer one with HOTLINE_HOLIDAYS_FILE", "calendar_until", last)
	}
	if err := ticketing.RegisterMetrics(a.reg, a.db, p.queues, a.log); err != nil {
		return nil, fmt.Errorf("ticketing metrics: %w", err)
	}
	if err := a.reg.Register(p.svc.CalendarCollector()); err != nil {
		return nil, fmt.Errorf("ticketing metrics: %w", err)
	}
	for _, c := range p.relay.Collectors() {
		if err := a.reg.Register(c); err != nil {
			return nil, fmt.Errorf("ticketing metrics: %w", err)
		}
	}
	a.webDeps.Tickets = &web.Tickets{Service: p.svc, Queues: p.queues, RedisPrefix: a.cfg.RedisPrefix, PublicLimit: a.cfg.Ticketing.PublicQueryLimit}
	a.webDeps.Public = a.cfg.Public.limits()
	a.add(component{name: "outbox relay", stage: stageRelay, role: roleWorkers, run: p.relay.Run,
		// The final pass publishes what the stages before wrote while they drained (CDR events, last tickets).
		after: func(ctx context.Context) error {
			for {
				n, err := p.relay.PublishOnce(ctx)
				if err != nil || n == 0 {
					return err
				}
			}
		}})
	a.add(component{name: "queue guard", stage: stageSweepers, role: roleWorkers, run: func(ctx context.Context) error {
		return p.queues.RunGuard(ctx, c.QueueGuard, a.log.With("component", "queue-guard"))
	}})
	a.add(component{name: "sla sweeper", stage: stageSweepers, role: roleWorkers, run: func(ctx context.Context) error { return p.svc.RunSweeper(ctx, a.cfg.Ticketing.SweepInterval) }})
	// Every process counts deadlines, so every process follows holiday uploads (not only the workers' sweeper).
	a.add(component{name: "calendar follower", stage: stageSweepers, run: func(ctx context.Context) error { return p.svc.FollowCalendar(ctx, a.cfg.Ticketing.SweepInterval) }})
	a.endpoints = append(a.endpoints, [2]string{"events", "redis stream " + ticketing.EventsKey(a.cfg.RedisPrefix)})
	return p, nil
}

func runQueues(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if _, err := needArgs(args, "rebuild"); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError{"queues needs a subcommand: rebuild"}
	}
	db, rdb, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	defer rdb.Close()
	n, err := ticketing.NewQueues(db, rdb, cfg.RedisPrefix).RebuildQueues(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt the unit queues under %q: %d tickets queued\n", cfg.RedisPrefix, n)
	return nil
}

// demoTickets opens a few tickets on first run so the consoles have something to show.
func demoTickets(ctx context.Context, a *App) error {
	svc := a.tickets.svc
	hh := int64(1)
	for _, nt := range []ticketing.NewTicket{
		{Source: ticketing.SourcePhone, CallerName: "刘建国", CallerPhone: "13807371234", RegionCode: "430903", HouseholdID: &hh,
			Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "老伴住院花了三万多,家里收入明显下降,想申请监测帮扶", Dispatch: true},
		{Source: ticketing.Source12345, CallerName: "匿名", CallerPhone: "07372345678", RegionCode: "430903",
			Kind: ticketing.KindReport, Category: "funds_assets", Content: "村里产业项目资金被村干部挪用,没有公示", Confidential: true, Dispatch: true},
		{Source: ticketing.SourcePhone, CallerName: "陈秀英", CallerPhone: "13973712345", RegionCode: "430902",
			Kind: ticketing.KindConsultation, Category: "policy_question", Content: "雨露计划补助什么时候发放?", Dispatch: false},
		{Source: ticketing.SourceWeb, CallerName: "张伟", CallerPhone: "18673700000", RegionCode: "430921",
			Kind: ticketing.KindComplaint, Category: "living_environment", Urgency: ticketing.UrgencyUrgent, Content: "改厕后化粪池渗漏,影响饮水井", Dispatch: true},
	} {
		if _, err := svc.Create(ctx, org.System, nt); err != nil {
			return fmt.Errorf("demo ticket: %w", err)
		}
	}
	return nil
}

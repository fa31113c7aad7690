package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"hotline/web"
)

// ticketingParts are the ticketing pieces of one App, built once on first use so other features' wirers can
// reach the service whatever order the wirers run in.
type ticketingParts struct {
	svc    *ticketing.Service
	relay  *ticketing.Relay
	queues *ticketing.Queues
	err    error
}

var (
	ticketingMu sync.Mutex
	ticketingOf = map[*App]*ticketingParts{}
)

// ticketService returns the App's ticket service (other features' wirers call it to create tickets and to
// register transition hooks).
func ticketService(a *App) (*ticketing.Service, error) {
	p := ticketingFor(a)
	return p.svc, p.err
}

func ticketingFor(a *App) *ticketingParts {
	ticketingMu.Lock()
	defer ticketingMu.Unlock()
	if p, ok := ticketingOf[a]; ok {
		return p
	}
	p := &ticketingParts{}
	ticketingOf[a] = p
	c := a.cfg.Ticketing
	cal := calendar.Default()
	if c.HolidaysFile != "" {
		f, err := os.Open(c.HolidaysFile)
		if err != nil {
			p.err = fmt.Errorf("HOTLINE_HOLIDAYS_FILE: %v", err)
			return p
		}
		defer f.Close()
		if cal, err = calendar.Parse(f); err != nil {
			p.err = fmt.Errorf("HOTLINE_HOLIDAYS_FILE: %v", err)
			return p
		}
	}
	if _, last := cal.Years(); time.Now().Year() > last {
		a.log.Warn("the holiday calendar ends before this year: only weekends count as days off; load a newer one with HOTLINE_HOLIDAYS_FILE", "calendar_until", last)
	}
	p.relay = ticketing.NewRelay(a.db, a.rdb, ticketing.RelayOptions{Prefix: a.cfg.RedisPrefix, Batch: c.OutboxBatch,
		PollInterval: c.OutboxPoll, EventsMaxLen: int64(c.EventsMaxLen), Log: a.log.With("component", "outbox-relay")})
	p.queues = ticketing.NewQueues(a.db, a.rdb, a.cfg.RedisPrefix)
	short, long := c.ReplyDaysShort, c.ReplyDaysLong
	p.svc = ticketing.NewService(a.db, ticketing.Options{Calendar: cal, DuplicateDays: c.DuplicateDays,
		Log: a.log.With("component", "ticketing"), Kick: p.relay.Kick,
		SLA: ticketing.SLAConfig{SignDays: c.SignDays, CallbackDays: c.CallbackDays, UrgentSignHours: c.UrgentSignHours,
			UrgentReplyHours: c.UrgentReplyHours, YellowShare: c.YellowShare,
			ReplyDays: map[ticketing.Kind]int{ticketing.KindConsultation: short, ticketing.KindHelp: short,
				ticketing.KindComplaint: long, ticketing.KindReport: long, ticketing.KindSuggestion: long}}})
	return p
}

func init() {
	wirers = append(wirers, wireTicketing)
	demoSeeders = append(demoSeeders, demoTickets)
	commands = append(commands, command{name: "queues", summary: "queues rebuild: refill every unit's Redis queue from PostgreSQL (after Redis lost its data)", run: runQueues})
}

func wireTicketing(ctx context.Context, a *App) error {
	p := ticketingFor(a)
	if p.err != nil {
		return p.err
	}
	if err := ticketing.RegisterMetrics(a.reg, a.db, p.queues, a.log); err != nil {
		return fmt.Errorf("ticketing metrics: %w", err)
	}
	for _, c := range p.relay.Collectors() {
		if err := a.reg.Register(c); err != nil {
			return fmt.Errorf("ticketing metrics: %w", err)
		}
	}
	a.webDeps.Tickets = &web.Tickets{Service: p.svc, Queues: p.queues, RedisPrefix: a.cfg.RedisPrefix, PublicLimit: a.cfg.Ticketing.PublicQueryLimit}
	a.components = append(a.components,
		component{name: "outbox relay", run: p.relay.Run},
		component{name: "sla sweeper", run: func(ctx context.Context) error { return p.svc.RunSweeper(ctx, a.cfg.Ticketing.SweepInterval) }},
	)
	a.endpoints = append(a.endpoints, [2]string{"events", "redis stream " + ticketing.EventsKey(a.cfg.RedisPrefix)})
	return nil
}

func runQueues(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if _, err := needArgs(args, "rebuild"); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError{"queues needs a subcommand: rebuild"}
	}
	log := newLogger(cfg, stdout)
	db, rdb, err := connect(ctx, cfg, log)
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
	svc, err := ticketService(a)
	if err != nil {
		return err
	}
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

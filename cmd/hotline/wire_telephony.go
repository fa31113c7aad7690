package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"hotline/telephony"
	"hotline/telephony/intake"
	"hotline/telephony/media"
	"hotline/telephony/sipua"
	"hotline/telephony/ticketlink"
	"hotline/ticketing"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// wireTelephony builds the telephony service (agents, CDRs, callbacks, recordings: always, for the API) and,
// when SIP listeners are configured, the SIP server with intake as one component that drains on shutdown.
func wireTelephony(ctx context.Context, a *App, tsvc *ticketing.Service, msvc *monitoring.Service) (*telephony.Service, error) {
	tc := a.cfg.Telephony
	svc := telephony.NewService(telephony.Options{DB: a.db, Log: a.log.With("component", "telephony"),
		Events: ticketlink.Events, Tickets: ticketlink.Tickets{Svc: tsvc}, Callers: ticketlink.Callers{Svc: msvc},
		Contacts: ticketlink.Contacts{Svc: msvc}, TicketAccess: ticketlink.Access{Svc: tsvc},
		RecordingsDir: tc.RecordingsDir, Files: a.store, ACW: tc.ACW, Lookups: lookupLimiter(a)})
	a.webDeps.Telephony = svc
	a.webDeps.SIPBindings = func(ctx context.Context, sipUser string) (int, error) {
		return sipua.LiveBindings(ctx, a.rdb, a.cfg.RedisPrefix, sipUser)
	}
	for _, c := range svc.StorageCollectors() {
		if err := a.reg.Register(c); err != nil {
			return nil, fmt.Errorf("telephony metrics: %w", err)
		}
	}
	a.add(component{name: "after-call work", stage: stageSweepers, role: roleWorkers, run: svc.RunSweeper})

	if len(tc.Listeners) == 0 || !a.cfg.Scale.has(roleSIP) {
		return svc, nil
	}
	for _, l := range tc.Listeners {
		if err := probeListen(l); err != nil {
			return nil, fmt.Errorf("cannot listen for SIP on %s://%s (HOTLINE_SIP_LISTEN): %v; stop what uses it, choose another address, or set HOTLINE_SIP_LISTEN= to run without SIP", l.Transport, l.Addr, err)
		}
	}
	srv, err := sipua.New(sipua.Config{Listeners: tc.Listeners, ExternalHost: tc.ExternalHost, Trunks: tc.TrunkList, Realm: tc.Realm,
		MaxCalls: tc.MaxCalls, RatePerSource: tc.RatePerSource, UDPReadBuffer: tc.UDPRcvBuf, DrainTimeout: tc.DrainTimeout, RTPPortStart: tc.RTPLo, RTPPortEnd: tc.RTPHi,
		KeepOpen: true}, // shared with the dialer and click-to-call: closed by the "sip user agent" component below
		sipua.Deps{DB: a.db, Redis: a.rdb, Prefix: a.cfg.RedisPrefix, Log: a.log.With("component", "sip"), Registry: a.reg})
	if err != nil {
		return nil, err
	}
	if err := wireStoredTrunks(ctx, a, srv, tc.TrunkList); err != nil {
		return nil, err
	}
	prompts, err := loadPrompts(a, tc)
	if err != nil {
		return nil, err
	}
	in := intake.New(intake.Config{QueueLimit: tc.QueueLimit, RingTimeout: tc.RingTimeout, AnswerDelay: tc.AnswerDelay,
		GreetingMin: tc.GreetingMin, GreetingFull: tc.GreetingFull,
		VoicemailMax: tc.VoicemailMax, Hours: tc.Hours, Prompts: prompts}, svc, srv, a.log.With("component", "intake"))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_queue_waiting",
		Help: "Callers waiting for an agent in this process."}, func() float64 { return float64(in.Waiting()) }))
	// One component, stopped first: the SIP server drains (new INVITEs 503, calls finish, up to
	// HOTLINE_SIP_DRAIN_TIMEOUT) while the queue dispatcher keeps serving the calls still up.
	a.add(component{name: "sip", stage: stageCalls, run: func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		qctx, stopQueue := context.WithCancel(context.WithoutCancel(gctx))
		g.Go(func() error { return in.Run(qctx) })
		g.Go(func() error {
			defer stopQueue() // the queue serves calls while they drain
			return srv.Run(gctx, in)
		})
		return g.Wait()
	}})
	// One SIP user agent per process (intake, the dialer, click-to-call): it closes after the calls placed
	// through it, a stage after the dialer.
	a.sip = srv
	a.add(component{name: "sip user agent", stage: stageDialerSIP, run: func(ctx context.Context) error {
		<-ctx.Done()
		return srv.Close()
	}})
	var addrs []string
	for _, l := range tc.Listeners {
		addrs = append(addrs, l.Transport+"://"+l.Addr)
	}
	a.endpoints = append(a.endpoints, [2]string{"sip", strings.Join(addrs, " ")})
	return svc, nil
}

// probeListen checks at start that a SIP address can be bound, so a taken port is a clear start-up error rather
// than a component failing later.
func probeListen(l sipua.Listener) error {
	if l.Transport == "udp" {
		c, err := net.ListenPacket("udp", l.Addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// loadPrompts returns the prompts: the built-in ones, replaced by files in the prompts directory. The default
// directory gets copies of the built-in prompts on first start, so operators see what to replace.
func loadPrompts(a *App, tc TelephonyConfig) (media.Prompts, error) {
	dir := tc.PromptsDir
	if dir == "" {
		dir = filepath.Join(a.cfg.DataDir, "prompts")
		if err := media.WriteDefaults(dir); err != nil {
			a.log.Warn("cannot write the default prompts; using the built-in ones", "dir", dir, "err", err)
			return media.DefaultPrompts(), nil
		}
	}
	p, err := media.LoadPrompts(dir)
	if err != nil {
		return p, fmt.Errorf("HOTLINE_PROMPTS_DIR: %v", err)
	}
	return p, nil
}

// demoAgents gives the demo's agents SIP accounts, so a softphone can register on first run of `hotline up`.
func demoAgents(ctx context.Context, a *App) error {
	rows, err := a.db.Query(ctx, `SELECT id, username FROM users WHERE role = 'agent' ORDER BY id`)
	if err != nil {
		return err
	}
	type agent struct {
		id   int64
		name string
	}
	var agents []agent
	for rows.Next() {
		var ag agent
		if err := rows.Scan(&ag.id, &ag.name); err != nil {
			rows.Close()
			return err
		}
		agents = append(agents, ag)
	}
	rows.Close()
	for i, ag := range agents {
		skills := []string{}
		if i == 0 {
			skills = []string{"xiang"} // a 湘语 dialect seat
		}
		if err := telephony.SetSIPAccount(ctx, a.db, userID(ag.id), ag.name, a.cfg.Telephony.Realm, "sip-"+ag.name+"-demo", skills); err != nil {
			return fmt.Errorf("demo SIP account %s: %w", ag.name, err)
		}
	}
	return nil
}

func userID(id int64) org.UserID { return org.UserID(id) }

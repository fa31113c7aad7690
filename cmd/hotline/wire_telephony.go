package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"hotline/telephony"
	"hotline/telephony/intake"
	"hotline/telephony/media"
	"hotline/telephony/sipua"
	"hotline/telephony/ticketlink"
	"hotline/ticketing/org"
)

func init() {
	wirers = append(wirers, wireTelephony)
	demoSeeders = append(demoSeeders, demoAgents)
}

// wireTelephony builds the telephony service (agents, CDRs, callbacks, recordings: always, for the API) and,
// when SIP listeners are configured, the SIP server with intake as one component that drains on shutdown.
func wireTelephony(ctx context.Context, a *App) error {
	tc := a.cfg.Telephony
	tsvc, err := ticketService(a)
	if err != nil {
		return err
	}
	msvc, err := monitoringService(a)
	if err != nil {
		return err
	}
	recDir := tc.RecordingsDir
	if recDir == "" {
		recDir = filepath.Join(a.cfg.DataDir, "recordings")
	}
	svc := telephony.NewService(telephony.Options{DB: a.db, Log: a.log.With("component", "telephony"),
		Events: ticketlink.Events, Tickets: ticketlink.Tickets{Svc: tsvc}, Callers: ticketlink.Callers{Svc: msvc},
		Contacts: ticketlink.Contacts{Svc: msvc}, TicketAccess: ticketlink.Access{Svc: tsvc},
		RecordingsDir: recDir, ACW: tc.ACW, Lookups: &org.RateLimiter{Redis: a.rdb, Prefix: a.cfg.RedisPrefix,
			Limit: a.cfg.Security.PIILookupLimit, Window: time.Minute}})
	a.webDeps.Telephony = svc
	a.components = append(a.components, component{name: "after-call work", run: svc.RunSweeper})

	listeners, err := sipListeners(tc)
	if err != nil || len(listeners) == 0 {
		return err
	}
	for i, l := range listeners {
		if err := probeListen(l); err != nil {
			return fmt.Errorf("cannot listen for SIP on %s://%s (HOTLINE_SIP_LISTEN): %v; stop what uses it, choose another address, or set HOTLINE_SIP_LISTEN= to run without SIP", l.Transport, l.Addr, err)
		}
		if l.Transport == "tls" {
			cert, err := tls.LoadX509KeyPair(tc.SIPTLSCert, tc.SIPTLSKey)
			if err != nil {
				return fmt.Errorf("HOTLINE_SIP_TLS_CERT/KEY: %v", err)
			}
			listeners[i].TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	trunks, _ := sipua.ParseTrunks(tc.Trunks)
	lo, hi, _ := rtpPorts(tc.RTPPorts)
	srv, err := sipua.New(sipua.Config{Listeners: listeners, ExternalHost: tc.ExternalHost, Trunks: trunks, Realm: tc.Realm,
		MaxCalls: tc.MaxCalls, RatePerSource: tc.RatePerSource, DrainTimeout: tc.DrainTimeout, RTPPortStart: lo, RTPPortEnd: hi},
		sipua.Deps{DB: a.db, Redis: a.rdb, Prefix: a.cfg.RedisPrefix, Log: a.log.With("component", "sip"), Registry: a.reg})
	if err != nil {
		return err
	}
	prompts, err := loadPrompts(a, tc)
	if err != nil {
		return err
	}
	hours, _ := intake.ParseHours(tc.ServiceHours, nil)
	in := intake.New(intake.Config{QueueLimit: tc.QueueLimit, RingTimeout: tc.RingTimeout, AnswerDelay: tc.AnswerDelay,
		VoicemailMax: tc.VoicemailMax, Hours: hours, Prompts: prompts}, svc, srv, a.log.With("component", "intake"))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_queue_waiting",
		Help: "Callers waiting for an agent in this process."}, func() float64 { return float64(in.Waiting()) }))
	// One component: the queue dispatcher lives as long as the SIP server, which drains (new INVITEs 503, calls
	// finish, up to HOTLINE_SIP_DRAIN_TIMEOUT) when the component is stopped.
	a.components = append(a.components, component{name: "sip", run: func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		qctx, stopQueue := context.WithCancel(context.WithoutCancel(gctx))
		g.Go(func() error { return in.Run(qctx) })
		g.Go(func() error {
			defer stopQueue() // the queue serves calls while they drain
			return srv.Run(gctx, in)
		})
		return g.Wait()
	}})
	var addrs []string
	for _, l := range listeners {
		addrs = append(addrs, l.Transport+"://"+l.Addr)
	}
	a.endpoints = append(a.endpoints, [2]string{"sip", strings.Join(addrs, " ")})
	return nil
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

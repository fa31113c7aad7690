package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// wire builds every service once, in dependency order, and adds their handlers and components to a. There
// are no global registries: each step gets what it needs from the steps before it, so the order below is
// the dependency graph. A new feature adds one line here (and its components, with a stage, in its own
// wire_<feature>.go).
func wire(ctx context.Context, a *App) error {
	var err error
	// ticketing: the ticket service, outbox relay, unit queues (needs only the pools)
	if a.tickets, err = wireTicketing(ctx, a); err != nil {
		return err
	}
	// monitoring: households and the verification loop (joins the ticket service)
	if a.monitoring, err = wireMonitoring(ctx, a, a.tickets.svc); err != nil {
		return err
	}
	// the 12345 platform exchange: work orders in, our actions back (a hook on the ticket service)
	if err := wireExchange(ctx, a, a.tickets); err != nil {
		return err
	}
	// content: the file store, attachments, knowledge base, reply templates (recordings go to the same store)
	if a.store, err = wireContent(ctx, a, a.tickets.svc, a.monitoring); err != nil {
		return err
	}
	// telephony: agents, CDRs, recordings, and SIP intake (creates tickets, looks up households)
	if a.telephony, err = wireTelephony(ctx, a, a.tickets.svc, a.monitoring); err != nil {
		return err
	}
	// campaigns and the dialer (tickets for risky answers, 回访 of replied tickets, households' phones)
	if a.campaigns, err = wireDialer(ctx, a, a.tickets.svc, a.monitoring); err != nil {
		return err
	}
	// security: metrics on their own address, token revocations across processes, audit retention
	if err := wireSecurity(ctx, a); err != nil {
		return err
	}
	// consoles: browser sessions and the websocket hub (reads the event stream the services above write)
	if err := wireConsole(ctx, a); err != nil {
		return err
	}
	// notifications: SMS, WeChat Work and email from the event stream (reads what the services above write)
	return wireNotify(ctx, a)
}

// demoSeeders load demo data on the first run of `hotline up`, in this order (households before the tickets
// and the campaign that refer to them).
var demoSeeders = []func(ctx context.Context, a *App) error{demoHouseholds, demoTickets, demoAgents, demoCampaign, demoKnowledge}

// acquireTimeout bounds the wait for a pooled PostgreSQL connection (HOTLINE_DB_ACQUIRE_TIMEOUT): a request
// that cannot get one in time fails at once with a retryable 503 instead of queueing past the client's patience.
// pgxpool acquires with the context this tracer returns, and the query then runs with the caller's own.
type acquireTimeout time.Duration

type cancelKey struct{}

// startupKey marks the start-up connection check, which has a deadline of its own (openDB).
type startupKey struct{}

func (d acquireTimeout) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if d <= 0 || ctx.Value(startupKey{}) != nil {
		return ctx
	}
	ctx, cancel := context.WithTimeoutCause(ctx, time.Duration(d), errAcquireTimeout)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

func (d acquireTimeout) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (acquireTimeout) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (acquireTimeout) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

var errAcquireTimeout = fmt.Errorf("no PostgreSQL connection free within HOTLINE_DB_ACQUIRE_TIMEOUT")

package main

import (
	"context"
	"fmt"
	"path/filepath"

	"hotline/ticketing/exchange"
)

// wireExchange joins the 12345 platforms of HOTLINE_EXCHANGE_PLATFORMS to the ticket service: the push endpoint
// and admin API, the hook that queues our actions for the platform in their own transaction, and the exchange's
// background loop (sender, attachment fetcher, poller, daily reconciliation), which every process may run.
func wireExchange(ctx context.Context, a *App, tp *ticketingParts) error {
	c := a.cfg.Exchange
	if len(c.PlatformList) == 0 {
		return nil
	}
	dir := c.AttachmentsDir
	if dir == "" {
		dir = filepath.Join(a.cfg.DataDir, "exchange-attachments")
	}
	ex, err := exchange.New(exchange.Config{DB: a.db, Redis: a.rdb, Prefix: a.cfg.RedisPrefix, Tickets: tp.svc,
		Platforms: c.PlatformList, Files: exchange.DirStore{Dir: dir}, Log: a.log.With("component", "exchange"),
		Kick: tp.relay.Kick, MaxAttempts: c.MaxAttempts, BaseDelay: c.RetryBase, MaxDelay: c.RetryMax, ReconcileAt: c.ReconcileHour})
	if err != nil {
		return fmt.Errorf("HOTLINE_EXCHANGE_PLATFORMS: %w", err)
	}
	tp.svc.OnTransition(ex.Hook())
	if err := a.reg.Register(ex.Collector()); err != nil {
		return fmt.Errorf("exchange metrics: %w", err)
	}
	a.webDeps.Exchange = ex
	// Stops with the sweepers: after HTTP, so a pushed order's actions are queued before the last sends; what
	// is left pending is sent by the next process to run.
	a.add(component{name: "12345 exchange", stage: stageSweepers, run: ex.Run})
	for _, p := range ex.Platforms() {
		a.endpoints = append(a.endpoints, [2]string{"12345:" + p, "POST /api/v1/exchange/" + p + "/orders"})
	}
	return nil
}

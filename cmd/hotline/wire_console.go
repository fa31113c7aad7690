package main

import (
	"context"
	"fmt"

	"hotline/notify/hub"
	"hotline/web"
)

// wireConsole configures browser sessions and starts this process's websocket hub (one event-stream consumer
// per process, behind GET /ws).
func wireConsole(ctx context.Context, a *App) error {
	c := a.cfg.Console
	a.webDeps.RedisPrefix = a.cfg.RedisPrefix
	a.webDeps.Sessions = web.SessionConfig{Idle: c.SessionIdle, Absolute: c.SessionAbsolute, SecureCookie: c.SecureCookie,
		ConsoleOrigins: c.origins(),
		Login:          web.LoginLimits{MaxFailures: c.LoginMaxFailures, Window: c.LoginWindow, BackoffBase: c.LoginBackoff, BackoffMax: c.LoginBackoffMax}}
	h := hub.New(a.rdb, hub.Options{Prefix: a.cfg.RedisPrefix, SendQueue: c.WSSendQueue, Tickets: a.tickets.svc, Log: a.log.With("component", "hub")})
	for _, col := range h.Collectors() {
		if err := a.reg.Register(col); err != nil {
			return fmt.Errorf("hub metrics: %w", err)
		}
	}
	a.webDeps.Hub = h
	a.add(component{name: "websocket hub", stage: stageHTTP, role: roleWeb, run: h.Run})
	return nil
}

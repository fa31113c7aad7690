package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hotline/ticketing/org"
)

// wireSecurity adds the metrics listener (apart from the console, so queue depths and call counts are not
// public), the watcher that drops revoked tokens from this process's cache, and the daily purge of security
// audit rows past their retention.
func wireSecurity(ctx context.Context, a *App) error {
	channel := a.cfg.RedisPrefix + "tokens:revoked"
	a.webDeps.TokenChannel = channel
	a.add(component{name: "token revocations", stage: stageSweepers, run: func(ctx context.Context) error {
		return org.WatchRevocations(ctx, a.rdb, channel, a.log)
	}})
	if r := a.cfg.Security.AuditRetention; r > 0 {
		a.add(component{name: "security audit retention", stage: stageSweepers, role: roleWorkers, run: func(ctx context.Context) error {
			return purgeAudit(ctx, a, r)
		}})
	}
	if addr := a.cfg.Security.MetricsAddr; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s (HOTLINE_METRICS_ADDR): %v; choose another address, or set HOTLINE_METRICS_ADDR= to serve no metrics", addr, err)
		}
		mux := metricsMux(a.reg, a.cfg.Security.Profiles)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
		a.endpoints = append(a.endpoints, [2]string{"metrics", "http://" + ln.Addr().String() + "/metrics"})
		a.add(component{name: "metrics", stage: stageLast, run: func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("metrics server: %w", err)
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
				if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return fmt.Errorf("metrics server: %w", err)
				}
				return nil
			}
		}})
	}
	return nil
}

// purgeAudit removes expired security audit rows at start and then once a day; every process may run it (the
// delete is idempotent).
func purgeAudit(ctx context.Context, a *App, retention time.Duration) error {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if n, err := org.PurgeAudit(ctx, a.db, retention); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Error("security audit retention", "err", err)
		} else if n > 0 {
			a.log.Info("security audit rows purged", "rows", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// metricsMux serves /metrics and, when asked, Go's profiles: an execution trace of a process under load is how
// a scheduling stall is found (README: Performance), and it must be taken from the running service.
func metricsMux(reg *prometheus.Registry, profiles bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, block, mutex, ...
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

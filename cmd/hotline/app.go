package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/telephony"
	"hotline/telephony/sipua"
	"hotline/ticketing/blob"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
	"hotline/web"
)

// App is a running hotline process: its pools, its services and its components.
type App struct {
	cfg        *Config
	log        *slog.Logger
	db         *pgxpool.Pool
	rdb        *redis.Client
	reg        *prometheus.Registry
	webDeps    web.Deps
	components []component
	stdout     io.Writer
	// endpoints are printed at start-up: "console", "api", "sip", ...
	endpoints [][2]string
	draining  atomic.Bool // set when shutdown begins: /readyz answers 503

	// The services, built once by wire in dependency order.
	tickets    *ticketingParts
	monitoring *monitoring.Service
	telephony  *telephony.Service
	campaigns  *campaign.Service
	sip        *sipua.Server // the process's one SIP user agent (nil without the sip role or listeners)
	store      blob.Store    // attachments and recordings (wire_content.go)
}

func connect(ctx context.Context, cfg *Config) (*pgxpool.Pool, *redis.Client, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := redisClient(cfg)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		db.Close()
		rdb.Close()
		if len(cfg.Scale.sentinels) > 0 {
			return nil, nil, fmt.Errorf("cannot reach the Redis primary %q through the Sentinels %s (HOTLINE_REDIS_SENTINELS): %v",
				cfg.Scale.RedisMaster, strings.Join(cfg.Scale.sentinels, ","), err)
		}
		return nil, nil, fmt.Errorf("cannot reach Redis at %s (HOTLINE_REDIS_URL): %v", redact(cfg.RedisURL), err)
	}
	return db, rdb, nil
}

// redisClient is the process's Redis client: through the Sentinels when HOTLINE_REDIS_SENTINELS is set (go-redis
// asks them for the primary, and again after a failover: commands in flight then fail once and the callers'
// retries reach the new primary), else straight to HOTLINE_REDIS_URL.
func redisClient(cfg *Config) (*redis.Client, error) {
	if len(cfg.Scale.sentinels) > 0 {
		fo := &redis.FailoverOptions{MasterName: cfg.Scale.RedisMaster, SentinelAddrs: cfg.Scale.sentinels}
		if cfg.RedisURL != "" {
			ropt, err := redis.ParseURL(cfg.RedisURL)
			if err != nil {
				return nil, fmt.Errorf("HOTLINE_REDIS_URL is not a valid Redis URL: %v", err)
			}
			fo.Username, fo.Password, fo.DB = ropt.Username, ropt.Password, ropt.DB
		}
		return redis.NewFailoverClient(fo), nil
	}
	if cfg.RedisURL == "" {
		return nil, usageError{"HOTLINE_REDIS_URL is not set: give the Redis URL, or HOTLINE_REDIS_SENTINELS (or use `hotline up` for the embedded one)"}
	}
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("HOTLINE_REDIS_URL is not a valid Redis URL: %v", err)
	}
	return redis.NewClient(ropt), nil
}

// openDB opens and checks the PostgreSQL pool, with errors that name the setting.
func openDB(ctx context.Context, cfg *Config) (*pgxpool.Pool, error) {
	if cfg.DatabaseURL == "" {
		return nil, usageError{"HOTLINE_DATABASE_URL is not set: give the PostgreSQL URL (or use `hotline up` for the embedded one)"}
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("HOTLINE_DATABASE_URL is not a valid PostgreSQL URL: %v", err)
	}
	pcfg.MaxConns = int32(cfg.DBMaxConns)
	// Half the pool stays open: under a burst, opening connections (a backend fork each) would otherwise eat the
	// acquire timeout and refuse requests that a warm pool serves.
	pcfg.MinConns = int32(cfg.DBMaxConns / 2)
	pcfg.ConnConfig.Tracer = acquireTimeout(cfg.DBAcquireTimeout)
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("HOTLINE_DATABASE_URL: %v", err)
	}
	// The first connection is opened here, not by a request: it is not held to the request's acquire timeout
	// (opening one on a busy machine, a backend fork and authentication, can take longer), and a database that is
	// still starting or restarting beside us is retried until the deadline.
	pctx, cancel := context.WithTimeout(context.WithValue(ctx, startupKey{}, true), 10*time.Second)
	defer cancel()
	for {
		err = db.Ping(pctx)
		if err == nil {
			return db, nil
		}
		select {
		case <-pctx.Done():
			db.Close()
			return nil, fmt.Errorf("cannot reach PostgreSQL at %s (HOTLINE_DATABASE_URL): %v", redact(cfg.DatabaseURL), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func newApp(ctx context.Context, cfg *Config, log *slog.Logger, db *pgxpool.Pool, rdb *redis.Client, stdout io.Writer) (*App, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, log: log, db: db, rdb: rdb, reg: reg, stdout: stdout}
	a.webDeps = web.Deps{DB: db, Redis: rdb, Log: log, Registry: reg, Version: version, Draining: a.draining.Load,
		Limits: web.Limits{Writes: cfg.HTTPMaxWrites, Reads: cfg.HTTPMaxReads, Health: 32}, SIPRealm: cfg.Telephony.Realm}
	if err := wire(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// serve runs the HTTP server and the components until ctx ends or one fails, then stops them stage by stage
// (lifecycle.go).
func (a *App) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (HOTLINE_HTTP_ADDR): %v; stop what uses it or choose another address", a.cfg.HTTPAddr, err)
	}
	// ReadTimeout bounds a request with its body (issue 14: a dripping unauthenticated body stayed open 90 s+);
	// WriteTimeout bounds the answer. Websocket upgrades clear both per connection (web/admission.go) and keep
	// their own ping/pong deadlines.
	srv := &http.Server{Handler: roleHandler(a.cfg.Scale, web.New(a.webDeps)), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: a.cfg.HTTPReadTimeout,
		WriteTimeout: a.cfg.HTTPWriteTimeout, IdleTimeout: 2 * time.Minute}
	a.add(component{name: "http", stage: stageHTTP, run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-errc
		return nil
	}})
	base := "http://" + ln.Addr().String()
	a.endpoints = append(a.endpoints, [2]string{"roles", strings.Join(a.cfg.Scale.roleList(), ",")})
	fmt.Fprintf(a.stdout, "hotline %s is up\n  console  %s/\n  api      %s/api/v1/\n  health   %s/readyz\n",
		version, base, base, base)
	for _, e := range a.endpoints {
		fmt.Fprintf(a.stdout, "  %-8s %s\n", e[0], e[1])
	}
	timeout := a.cfg.ShutdownTimeout
	if len(a.cfg.Telephony.Listeners) > 0 {
		timeout += a.cfg.Telephony.DrainTimeout
	}
	return runComponents(ctx, a.components, timeout, func() { a.draining.Store(true) }, a.log)
}

func (a *App) close() {
	a.rdb.Close()
	a.db.Close()
}

func runServe(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{"serve takes no arguments"}
	}
	log := slog.Default()
	db, rdb, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	if err := migrations.Check(ctx, db); err != nil {
		db.Close()
		rdb.Close()
		if errors.Is(err, migrations.ErrOutOfDate) {
			return fmt.Errorf("%v: run `hotline migrate` first", err)
		}
		return err
	}
	if err := bootstrapAdmin(ctx, cfg, db, log); err != nil {
		db.Close()
		rdb.Close()
		return err
	}
	a, err := newApp(ctx, cfg, log, db, rdb, stdout)
	if err != nil {
		db.Close()
		rdb.Close()
		return err
	}
	defer a.close()
	return a.serve(ctx)
}

func runMigrate(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	what, err := needArgs(args, "up", "status")
	if err != nil {
		return err
	}
	log := slog.Default()
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	switch what {
	case "status":
		st, err := migrations.GetStatus(ctx, db)
		if err != nil {
			return err
		}
		state := "current"
		if !st.UpToDate() {
			state = fmt.Sprintf("%d pending", len(st.Pending))
		}
		fmt.Fprintf(stdout, "schema version %d of %d: %s\n", st.Current, st.Latest, state)
		for _, m := range st.Pending {
			fmt.Fprintf(stdout, "  pending %04d_%s\n", m.Version, m.Name)
		}
	default:
		applied, err := migrations.Up(ctx, db, log)
		if err != nil {
			return err
		}
		n, err := org.SeedUnits(ctx, db)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migrations; schema at version %d; %d units in the organisation tree\n", len(applied), migrations.Latest(), n)
	}
	return nil
}

func runUp(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{"up takes no arguments"}
	}
	start := time.Now()
	log := slog.Default()
	rt, err := localrt.Start(ctx, localrt.Options{Dir: cfg.DataDir, PGPort: cfg.PGPort, RedisPort: cfg.RedisPort,
		PGBinDir: cfg.PGBinDir, Durable: true, Logger: log})
	if err != nil {
		return err
	}
	defer rt.Stop()
	cfg.DatabaseURL, cfg.RedisURL = rt.DatabaseURL, rt.RedisURL
	db, rdb, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := migrations.Up(ctx, db, log); err != nil {
		db.Close()
		rdb.Close()
		return err
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		db.Close()
		rdb.Close()
		return err
	}
	a, err := newApp(ctx, cfg, log, db, rdb, stdout)
	if err != nil {
		db.Close()
		rdb.Close()
		return err
	}
	defer a.close()
	if cfg.DemoData {
		if err := a.loadDemo(ctx); err != nil {
			return err
		}
	}
	log.Info("ready", "took", time.Since(start).Round(time.Millisecond), "first_run", rt.FirstRun, "data_dir", cfg.DataDir)
	// If an embedded server dies, stop: a hotline without its database is no use.
	a.add(component{name: "embedded servers", stage: stageLast, run: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.Done():
			return errors.New("embedded PostgreSQL or Redis exited; see the logs in the data directory")
		}
	}})
	return a.serve(ctx)
}

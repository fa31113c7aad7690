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
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/ticketing/org"
	"hotline/web"
)

// App is a running hotline process: its pools and its components.
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
}

// component is a long-running part of the process. run returns when ctx ends (or on a fatal error). Components
// stop in the reverse order of their start.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// wirers add a feature's components and handlers to the app; feature files append theirs in init
// (wire_<feature>.go), so wiring does not pile up in one function.
var wirers []func(ctx context.Context, a *App) error

// demoSeeders load a feature's demo data on first run of `hotline up`.
var demoSeeders []func(ctx context.Context, a *App) error

func connect(ctx context.Context, cfg *Config, log *slog.Logger) (*pgxpool.Pool, *redis.Client, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.RedisURL == "" {
		db.Close()
		return nil, nil, usageError{"HOTLINE_REDIS_URL is not set: give the Redis URL (or use `hotline up` for the embedded one)"}
	}
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("HOTLINE_REDIS_URL is not a valid Redis URL: %v", err)
	}
	rdb := redis.NewClient(ropt)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		db.Close()
		rdb.Close()
		return nil, nil, fmt.Errorf("cannot reach Redis at %s (HOTLINE_REDIS_URL): %v", redact(cfg.RedisURL), err)
	}
	return db, rdb, nil
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
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("HOTLINE_DATABASE_URL: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (HOTLINE_DATABASE_URL): %v", redact(cfg.DatabaseURL), err)
	}
	return db, nil
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
	a.webDeps = web.Deps{DB: db, Redis: rdb, Log: log, Registry: reg, Version: version}
	for _, w := range wirers {
		if err := w(ctx, a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// serve runs the HTTP server and the components until ctx ends, then stops them in order: HTTP first (out of
// rotation), then the components in reverse order of start.
func (a *App) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (HOTLINE_HTTP_ADDR): %v; stop what uses it or choose another address", a.cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: web.New(a.webDeps), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(a.stdout, "hotline %s is up\n  console  %s/\n  api      %s/api/v1/\n  health   %s/readyz\n",
		version, base, base, base)
	for _, e := range a.endpoints {
		fmt.Fprintf(a.stdout, "  %-8s %s\n", e[0], e[1])
	}

	// Each component gets a context of its own so they can be stopped one by one, last started first.
	g, gctx := errgroup.WithContext(context.Background())
	cancels := make([]context.CancelFunc, len(a.components))
	for i, c := range a.components {
		cctx, cancel := context.WithCancel(gctx)
		cancels[i] = cancel
		done := make(chan struct{})
		c := c
		g.Go(func() error {
			defer close(done)
			if err := c.run(cctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case <-gctx.Done():
		runErr = errors.New("a component stopped")
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	for i := len(cancels) - 1; i >= 0; i-- {
		cancels[i]()
	}
	if err := g.Wait(); err != nil {
		runErr = err
	}
	return runErr
}

func (a *App) close() {
	a.rdb.Close()
	a.db.Close()
}

func runServe(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{"serve takes no arguments"}
	}
	log := newLogger(cfg, stdout)
	db, rdb, err := connect(ctx, cfg, log)
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
	log := newLogger(cfg, stdout)
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
	log := newLogger(cfg, stdout)
	rt, err := localrt.Start(ctx, localrt.Options{Dir: cfg.DataDir, PGPort: cfg.PGPort, RedisPort: cfg.RedisPort,
		PGBinDir: cfg.PGBinDir, Durable: true, Logger: log})
	if err != nil {
		return err
	}
	defer rt.Stop()
	cfg.DatabaseURL, cfg.RedisURL = rt.DatabaseURL, rt.RedisURL
	db, rdb, err := connect(ctx, cfg, log)
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
	a.components = append([]component{{name: "embedded servers", run: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.Done():
			return errors.New("embedded PostgreSQL or Redis exited; see the logs in the data directory")
		}
	}}}, a.components...)
	return a.serve(ctx)
}

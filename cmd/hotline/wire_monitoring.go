package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/migrations"
	"hotline/ticketing"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/monitoring/pii/rotate"
	"hotline/ticketing/org"
)

func init() {
	commands = append(commands,
		command{name: "import", summary: "import [--flags] households FILE: load monitored households from CSV (UTF-8 or GBK); prints the report", run: runImport},
		command{name: "pii", summary: "pii rotate [--batch N]: re-seal ID and phone numbers under HOTLINE_PII_KEY (HOTLINE_PII_KEY_PREVIOUS still opens them); resumable, safe while serving", run: runPII},
		command{name: "demo-data", summary: "demo-data [--demo-households N]: add N synthetic households (valid IDs, test phone ranges)", run: runDemoData},
	)
}

func newMonitoring(cfg *Config, db *pgxpool.Pool, box *pii.Box, lookups monitoring.Limiter) *monitoring.Service {
	c := cfg.Monitoring
	return monitoring.New(monitoring.Config{DB: db, Box: box, Log: slog.Default().With("component", "monitoring"), Lookups: lookups,
		Clocks: monitoring.Clocks{LeadToIdentify: c.LeadToIdentify, IdentifyPublicity: c.IdentifyPublicity,
			EliminationPublicity: c.EliminationPublicity, YellowBefore: c.YellowBefore}})
}

// wireMonitoring builds the households service and joins the verification loop to the ticket service (help
// ticket → verification ticket → outcome moves the household).
func wireMonitoring(ctx context.Context, a *App, tickets *ticketing.Service) (*monitoring.Service, error) {
	box, err := piiBox(a.cfg, hasEmbeddedData(a.cfg))
	if err != nil {
		return nil, err
	}
	s := newMonitoring(a.cfg, a.db, box, lookupLimiter(a))
	s.AttachTickets(tickets)
	a.webDeps.Monitoring = s
	return s, nil
}

// hasEmbeddedData reports whether the data directory holds the embedded PostgreSQL of `hotline up`: only then
// may a personal-data key be generated and kept beside it.
func hasEmbeddedData(cfg *Config) bool {
	_, err := os.Stat(filepath.Join(cfg.DataDir, "postgres", "PG_VERSION"))
	return err == nil
}

// piiBox builds the personal-data box from HOTLINE_PII_KEY, or from <data dir>/pii.key, which is created on the
// first run of `hotline up` (generate) and reused ever after.
func piiBox(cfg *Config, generate bool) (*pii.Box, error) {
	raw := cfg.Monitoring.PIIKey
	path := filepath.Join(cfg.DataDir, "pii.key")
	if raw == "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			raw = strings.TrimSpace(string(b))
		case errors.Is(err, fs.ErrNotExist) && generate:
			raw = pii.NewKey()
			if err := writeKeyFile(path, raw); err != nil {
				return nil, fmt.Errorf("personal-data key: cannot write %s: %v", path, err)
			}
		case errors.Is(err, fs.ErrNotExist):
			return nil, usageError{"HOTLINE_PII_KEY is not set (nor " + path + "): set it to base64 of 32 random bytes (openssl rand -base64 32) and keep it safe; it seals ID and phone numbers"}
		default:
			return nil, fmt.Errorf("personal-data key %s: %v", path, err)
		}
	}
	key, err := pii.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("personal-data key: %v", err)
	}
	var prev []byte
	if cfg.Monitoring.PIIKeyPrevious != "" {
		if prev, err = pii.ParseKey(cfg.Monitoring.PIIKeyPrevious); err != nil {
			return nil, fmt.Errorf("previous personal-data key: %v", err)
		}
	}
	return pii.NewRotating(key, prev)
}

// writeKeyFile creates the key file readable by its owner only, and never overwrites one.
func writeKeyFile(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// demoHouseholds loads the synthetic households on the first run of `hotline up`.
func demoHouseholds(ctx context.Context, a *App) error {
	s := a.monitoring
	n := a.cfg.Monitoring.DemoHouseholds
	if n == 0 {
		return nil
	}
	from, err := s.DemoNext(ctx)
	if err != nil {
		return err
	}
	if err := s.LoadDemo(ctx, from, n, nil); err != nil {
		return fmt.Errorf("demo households: %w", err)
	}
	fmt.Fprintf(a.stdout, "demo households: %d (numbers D%08d-D%08d; phones 1700xxxxxxx)\n", n, from, from+n-1)
	return nil
}

// toolDB connects a command-line tool to HOTLINE_DATABASE_URL, or to the embedded PostgreSQL of a running
// `hotline up`, and checks the schema is current.
func toolDB(ctx context.Context, cfg *Config) (*pgxpool.Pool, error) {
	url := cfg.DatabaseURL
	if url == "" {
		url = fmt.Sprintf("postgres://hotline@127.0.0.1:%d/hotline?sslmode=disable", cfg.PGPort)
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("HOTLINE_DATABASE_URL is not a valid PostgreSQL URL: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		db.Close()
		if cfg.DatabaseURL == "" {
			return nil, usageError{fmt.Sprintf("no database: set HOTLINE_DATABASE_URL, or start `hotline up` (its PostgreSQL listens on 127.0.0.1:%d)", cfg.PGPort)}
		}
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (HOTLINE_DATABASE_URL): %v", redact(cfg.DatabaseURL), err)
	}
	if err := migrations.Check(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%v: run `hotline migrate` first", err)
	}
	return db, nil
}

func runImport(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	accept := len(args) == 3 && args[2] == "--accept-unknown-columns"
	if (len(args) != 2 && !accept) || args[0] != "households" {
		return usageError{"usage: hotline import households FILE.csv [--accept-unknown-columns]"}
	}
	f, err := os.Open(args[1])
	if err != nil {
		return usageError{fmt.Sprintf("cannot open %s: %v", args[1], err)}
	}
	defer f.Close()
	db, err := toolDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	box, err := piiBox(cfg, false)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := newMonitoring(cfg, db, box, nil).ImportWith(ctx, org.System, f, monitoring.ImportOptions{AcceptUnknownColumns: accept})
	if err != nil {
		return err
	}
	if rep.Refused {
		for _, c := range rep.UnknownColumns {
			fmt.Fprintf(stdout, "unknown column %q (did you mean %q?)\n", c.Column, c.Nearest)
		}
		return usageError{"nothing imported: fix the header, or add --accept-unknown-columns to ignore those columns"}
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "%s: %d rows (%s), %d accepted in %d households: %d created, %d updated, %d unchanged; %d rows rejected; %.1fs (%.0f rows/s)\n",
		args[1], rep.Rows, rep.Encoding, rep.RowsAccepted, rep.Households, rep.Created, rep.Updated, rep.Unchanged,
		len(rep.Rejected), took.Seconds(), float64(rep.Rows)/took.Seconds())
	for _, r := range rep.Rejected {
		fmt.Fprintf(stdout, "  line %d (%s): %s\n", r.Line, r.Household, strings.Join(r.Reasons, "; "))
	}
	if len(rep.Rejected) > 0 {
		return errors.New("some rows were rejected (listed above); the accepted households were imported")
	}
	return nil
}

func runDemoData(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{"usage: hotline demo-data [--demo-households N]"}
	}
	db, err := toolDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	box, err := piiBox(cfg, false)
	if err != nil {
		return err
	}
	s := newMonitoring(cfg, db, box, nil)
	from, err := s.DemoNext(ctx)
	if err != nil {
		return err
	}
	n := cfg.Monitoring.DemoHouseholds
	start := time.Now()
	err = s.LoadDemo(ctx, from, n, func(done int) {
		fmt.Fprintf(stdout, "\r%d/%d households", done, n)
	})
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %d synthetic households (D%08d-D%08d) in %.1fs\n", n, from, from+n-1, time.Since(start).Seconds())
	return nil
}

// lookupLimiter counts look-ups by a full ID or phone number per user across every process (households, caller
// lookup and the calls' caller filter share one count).
func lookupLimiter(a *App) *org.RateLimiter {
	return &org.RateLimiter{Redis: a.rdb, Prefix: a.cfg.RedisPrefix, Limit: a.cfg.Security.PIILookupLimit, Window: time.Minute}
}

// runPII is `hotline pii rotate [--batch N]`: it re-seals what the previous key sealed, in batches of N rows per
// transaction, while the service keeps running with both keys configured.
func runPII(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	usage := usageError{"usage: hotline pii rotate [--batch N] (with HOTLINE_PII_KEY the new key and HOTLINE_PII_KEY_PREVIOUS the old one)"}
	batch := 500
	switch {
	case len(args) == 1 && args[0] == "rotate":
	case len(args) == 3 && args[0] == "rotate" && args[1] == "--batch",
		len(args) == 2 && args[0] == "rotate" && strings.HasPrefix(args[1], "--batch="):
		v := strings.TrimPrefix(args[len(args)-1], "--batch=")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100_000 {
			return usageError{"--batch: a number of rows from 1 to 100000"}
		}
		batch = n
	default:
		return usage
	}
	db, err := toolDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	box, err := piiBox(cfg, false)
	if err != nil {
		return err
	}
	if !box.Rotating() {
		// Still useful: it re-seals ciphertexts written before they carried a key id.
		fmt.Fprintln(stdout, "HOTLINE_PII_KEY_PREVIOUS is not set: only values sealed under HOTLINE_PII_KEY without a key id are re-sealed")
	}
	start := time.Now()
	rep, err := rotate.Run(ctx, db, box, batch, stdout)
	if err != nil {
		return err
	}
	total := 0
	for _, n := range rep.Rows {
		total += n
	}
	fmt.Fprintf(stdout, "done: %d rows re-sealed in %.1fs; every value now opens with HOTLINE_PII_KEY alone: remove HOTLINE_PII_KEY_PREVIOUS and restart\n",
		total, time.Since(start).Seconds())
	if rep.OptOutsUnknown > 0 {
		fmt.Fprintf(stdout, "note: %d SMS opt-outs have no message to recover their number from; those hashed under the previous key stop matching once it is removed\n", rep.OptOutsUnknown)
	}
	return nil
}

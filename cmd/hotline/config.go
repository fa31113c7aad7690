package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"

	"hotline/telephony/media"
	"hotline/ticketing/phone"
)

// Config is every setting of hotline, read once at start from flags and HOTLINE_* environment variables
// (a flag wins over the environment, the environment over the default). A secret may instead come from a file
// named by <VAR>_FILE. `hotline help` and deploy/hotline.env.example list them all; a test keeps the example
// true.
type Config struct {
	DataDir         string
	HTTPAddr        string
	PGPort          int
	RedisPort       int
	PGBinDir        string
	DatabaseURL     string
	RedisURL        string
	RedisPrefix     string
	LogLevel        string
	LogFormat       string
	DemoData        bool
	ShutdownTimeout time.Duration
	DBMaxConns      int

	// HTTP admission and timeouts (issue 15).
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration
	HTTPMaxWrites    int // 0: half of DBMaxConns (filled in at load)
	HTTPMaxReads     int // 0: DBMaxConns (filled in at load)
	DBAcquireTimeout time.Duration

	Ticketing  TicketingConfig
	Monitoring MonitoringConfig
	Telephony  TelephonyConfig
	Dialer     DialerConfig
	Notify     NotifyConfig
	Security   SecurityConfig
	Console    ConsoleConfig
	Exchange   ExchangeConfig
	Public     PublicConfig
	Admin      AdminConfig
	Scale      ScaleConfig
	Storage    StorageConfig
}

// setting binds one variable to a field of Config.
type setting struct {
	Env     string // HOTLINE_…
	Flag    string
	Default string
	Doc     string
	Secret  bool                  // may come from <Env>_FILE; never printed
	field   func(c *Config) any   // pointer to the field
	check   func(c *Config) error // optional extra validation
}

// settings is the table of every setting; feature files append theirs in init.
var settings = []setting{
	{Env: "HOTLINE_DATA_DIR", Flag: "data-dir", Default: "./.hotline", Doc: "hotline up: where PostgreSQL, Redis, recordings and prompts live",
		field: func(c *Config) any { return &c.DataDir }},
	{Env: "HOTLINE_HTTP_ADDR", Flag: "http-addr", Default: "127.0.0.1:8080", Doc: "address of the console, API, /healthz and /readyz",
		field: func(c *Config) any { return &c.HTTPAddr }},
	{Env: "HOTLINE_PG_PORT", Flag: "pg-port", Default: "5433", Doc: "hotline up: loopback port of the embedded PostgreSQL",
		field: func(c *Config) any { return &c.PGPort }, check: portCheck("HOTLINE_PG_PORT", func(c *Config) int { return c.PGPort })},
	{Env: "HOTLINE_REDIS_PORT", Flag: "redis-port", Default: "6380", Doc: "hotline up: loopback port of the embedded Redis",
		field: func(c *Config) any { return &c.RedisPort }, check: portCheck("HOTLINE_REDIS_PORT", func(c *Config) int { return c.RedisPort })},
	{Env: "HOTLINE_PG_BINDIR", Flag: "pg-bindir", Default: "", Doc: "hotline up: directory of initdb and postgres (default: newest /usr/lib/postgresql/*/bin)",
		field: func(c *Config) any { return &c.PGBinDir }},
	{Env: "HOTLINE_DATABASE_URL", Flag: "database-url", Default: "", Doc: "hotline serve/migrate: PostgreSQL URL (postgres://user:pass@host:5432/db)", Secret: true,
		field: func(c *Config) any { return &c.DatabaseURL }},
	{Env: "HOTLINE_REDIS_URL", Flag: "redis-url", Default: "", Doc: "hotline serve: Redis URL (redis://host:6379/0)", Secret: true,
		field: func(c *Config) any { return &c.RedisURL }},
	{Env: "HOTLINE_REDIS_PREFIX", Flag: "redis-prefix", Default: "hl:", Doc: "prefix of every Redis key, so several deployments can share one Redis",
		field: func(c *Config) any { return &c.RedisPrefix }},
	{Env: "HOTLINE_LOG_LEVEL", Flag: "log-level", Default: "info", Doc: "debug, info, warn or error",
		field: func(c *Config) any { return &c.LogLevel }, check: oneOf("HOTLINE_LOG_LEVEL", func(c *Config) string { return c.LogLevel }, "debug", "info", "warn", "error")},
	{Env: "HOTLINE_LOG_FORMAT", Flag: "log-format", Default: "text", Doc: "text or json",
		field: func(c *Config) any { return &c.LogFormat }, check: oneOf("HOTLINE_LOG_FORMAT", func(c *Config) string { return c.LogFormat }, "text", "json")},
	{Env: "HOTLINE_DEMO_DATA", Flag: "demo-data", Default: "true", Doc: "hotline up: load demo users and households on first run",
		field: func(c *Config) any { return &c.DemoData }},
	{Env: "HOTLINE_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "30s", Doc: "how long calls and requests may drain on SIGTERM",
		field: func(c *Config) any { return &c.ShutdownTimeout }},
	{Env: "HOTLINE_DB_MAX_CONNS", Flag: "db-max-conns", Default: "40", Doc: "PostgreSQL connections per process",
		field: func(c *Config) any { return &c.DBMaxConns }, check: func(c *Config) error {
			if c.DBMaxConns < 2 {
				return errors.New("HOTLINE_DB_MAX_CONNS: must be at least 2")
			}
			return nil
		}},
	{Env: "HOTLINE_DB_ACQUIRE_TIMEOUT", Flag: "db-acquire-timeout", Default: "500ms", Doc: "longest wait for a free PostgreSQL connection; then the request gets 503 with Retry-After (keep it well under clients' patience)",
		field: func(c *Config) any { return &c.DBAcquireTimeout }},
	{Env: "HOTLINE_HTTP_READ_TIMEOUT", Flag: "http-read-timeout", Default: "30s", Doc: "longest time to read a request with its body (a client dripping its body is cut off); headers get 10s",
		field: func(c *Config) any { return &c.HTTPReadTimeout }},
	{Env: "HOTLINE_HTTP_WRITE_TIMEOUT", Flag: "http-write-timeout", Default: "60s", Doc: "longest time to answer a request (websockets set their own deadlines)",
		field: func(c *Config) any { return &c.HTTPWriteTimeout }},
	{Env: "HOTLINE_HTTP_MAX_WRITES", Flag: "http-max-writes", Default: "0", Doc: "API writes in progress at once; more get 503 with Retry-After at once (0: half of HOTLINE_DB_MAX_CONNS, so reads and /readyz keep connections)",
		field: func(c *Config) any { return &c.HTTPMaxWrites }, check: func(c *Config) error {
			if c.HTTPMaxWrites < 0 {
				return errors.New("HOTLINE_HTTP_MAX_WRITES: must not be negative")
			}
			if c.HTTPMaxWrites == 0 {
				c.HTTPMaxWrites = max(1, c.DBMaxConns/2)
			}
			return nil
		}},
	{Env: "HOTLINE_HTTP_MAX_READS", Flag: "http-max-reads", Default: "0", Doc: "API reads in progress at once; more get 503 with Retry-After at once (0: HOTLINE_DB_MAX_CONNS)",
		field: func(c *Config) any { return &c.HTTPMaxReads }, check: func(c *Config) error {
			if c.HTTPMaxReads < 0 {
				return errors.New("HOTLINE_HTTP_MAX_READS: must not be negative")
			}
			if c.HTTPMaxReads == 0 {
				c.HTTPMaxReads = c.DBMaxConns
			}
			return nil
		}},
}

// flagName is the flag of a variable: HOTLINE_HTTP_ADDR → http-addr. A test holds every setting to it, so a
// flag always says which variable it sets.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "HOTLINE_"), "_", "-"))
}

func portCheck(name string, get func(*Config) int) func(*Config) error {
	return func(c *Config) error {
		if p := get(c); p < 1 || p > 65535 {
			return fmt.Errorf("%s: %d is not a port (1-65535)", name, p)
		}
		return nil
	}
}

func oneOf(name string, get func(*Config) string, allowed ...string) func(*Config) error {
	return func(c *Config) error {
		v := get(c)
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%s: %q is not one of %s", name, v, strings.Join(allowed, ", "))
	}
}

// loadConfig reads defaults, then the environment, then flags. It returns warnings (unknown HOTLINE_*
// variables) separately so the caller can log them once a logger exists.
func loadConfig(args []string, environ []string) (*Config, []string, []string, error) {
	c := &Config{}
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "HOTLINE_") {
			env[k] = v
		}
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.Env] = true
		if s.Secret {
			known[s.Env+"_FILE"] = true
		}
		if err := setValue(s.field(c), s.Default); err != nil {
			panic(fmt.Sprintf("default of %s: %v", s.Env, err)) // a bad default is a programming error
		}
	}
	for _, s := range settings {
		v, ok := env[s.Env]
		if !ok && s.Secret {
			if file, fok := env[s.Env+"_FILE"]; fok {
				b, err := os.ReadFile(file)
				if err != nil {
					return nil, nil, nil, fmt.Errorf("%s_FILE: %w", s.Env, err)
				}
				v, ok = strings.TrimSpace(string(b)), true
			}
		}
		if ok {
			if err := setValue(s.field(c), v); err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %q %v", s.Env, v, err)
			}
		}
	}
	var warnings []string
	for k := range env {
		if !known[k] {
			warnings = append(warnings, fmt.Sprintf("unknown environment variable %s ignored (see hotline help)", k))
		}
	}
	sort.Strings(warnings)

	fs := flag.NewFlagSet("hotline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings {
		s := s
		fs.Func(s.Flag, s.Doc, func(v string) error {
			if err := setValue(s.field(c), v); err != nil {
				return fmt.Errorf("%v (%s)", err, s.Env)
			}
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, err
	}
	for _, s := range settings {
		if s.check != nil {
			if err := s.check(c); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	// Defaults that depend on other settings.
	if c.Telephony.RecordingsDir == "" {
		c.Telephony.RecordingsDir = filepath.Join(c.DataDir, "recordings")
	}
	if c.Dialer.PromptDir == "" {
		c.Dialer.PromptDir = filepath.Join(c.DataDir, "prompts", "dialer")
	}
	return c, fs.Args(), warnings, nil
}

func setValue(p any, v string) error {
	switch f := p.(type) {
	case *string:
		*f = v
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not a whole number")
		}
		*f = n
	case *float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return errors.New("is not a number")
		}
		*f = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not true or false")
		}
		*f = b
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return errors.New("is not a duration such as 30s or 5m")
		}
		*f = d
	default:
		return fmt.Errorf("unsupported setting type %s", reflect.TypeOf(p))
	}
	return nil
}

// newLogger is the process's one logger; run makes it the default (slog.SetDefault) once, at start.
func newLogger(c *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// No log line carries a full phone or ID number, whoever writes it: sipgo logs a raw SIP message (From,
	// Contact) when it cannot parse one, through its default logger, which is set to this one too.
	log := slog.New(phone.RedactHandler(h))
	sip.SetDefaultLogger(log)
	dmedia.SetDefaultLogger(slog.New(media.DiagoLogHandler(log.Handler())))
	return log
}

// envExample renders deploy/hotline.env.example from the settings table.
func envExample() string {
	var b strings.Builder
	b.WriteString("# Every setting of hotline with its default. Generated from cmd/hotline/config.go;\n")
	b.WriteString("# `go test ./cmd/hotline` fails when this file and the code disagree.\n")
	b.WriteString("# A flag (--name) overrides the variable; a secret may come from <VAR>_FILE.\n\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "# %s (--%s)\n%s=%s\n\n", s.Doc, s.Flag, s.Env, s.Default)
	}
	return b.String()
}

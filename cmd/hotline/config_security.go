package main

import (
	"errors"
	"time"

	"hotline/ticketing/org"
)

// SecurityConfig holds the settings of look-up limits, the security audit log and the metrics listener.
type SecurityConfig struct {
	MetricsAddr    string        // where /metrics is served; "" serves it nowhere
	Profiles       bool          // also serve Go's profiles (/debug/pprof/) on MetricsAddr
	PIILookupLimit int           // exact-match look-ups by a full ID or phone number, per user per minute
	AuditRetention time.Duration // security audit rows older than this are purged; 0 keeps everything
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_METRICS_ADDR", Flag: "metrics-addr", Default: "127.0.0.1:9464",
			Doc:   "address of /metrics (Prometheus), apart from the console so it is not public; empty: not served",
			field: func(c *Config) any { return &c.Security.MetricsAddr }},
		setting{Env: "HOTLINE_METRICS_PROFILES", Flag: "metrics-profiles", Default: "false",
			Doc:   "also serve Go's profiles on HOTLINE_METRICS_ADDR under /debug/pprof/ (CPU, heap, goroutines, execution trace) for diagnosing; keep that address private",
			field: func(c *Config) any { return &c.Security.Profiles }},
		setting{Env: "HOTLINE_PII_LOOKUP_LIMIT", Flag: "pii-lookup-limit", Default: "30",
			Doc:   "look-ups by a full ID or phone number (search, caller lookup, call filter) per user per minute",
			field: func(c *Config) any { return &c.Security.PIILookupLimit },
			check: func(c *Config) error {
				if c.Security.PIILookupLimit < 1 {
					return errors.New("HOTLINE_PII_LOOKUP_LIMIT: must be at least 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_AUDIT_RETENTION", Flag: "audit-retention", Default: "8760h",
			Doc:   "how long security audit rows are kept (at least 720h; 0 keeps them forever)",
			field: func(c *Config) any { return &c.Security.AuditRetention },
			check: func(c *Config) error {
				if r := c.Security.AuditRetention; r != 0 && r < org.MinAuditRetention {
					return errors.New("HOTLINE_AUDIT_RETENTION: at least 720h (30 days), or 0")
				}
				return nil
			}},
	)
}

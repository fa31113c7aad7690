package main

import (
	"errors"
	"time"

	"hotline/ticketing/monitoring/pii"
)

// MonitoringConfig holds the settings of monitoring records (personal-data key, statutory clocks).
type MonitoringConfig struct {
	// PIIKey is base64 of 32 random bytes: it seals ID and phone numbers and keys their lookup hashes. Losing it
	// loses those numbers; changing it needs a re-encryption. Empty: `hotline up` keeps one in <data dir>/pii.key.
	PIIKey string
	// PIIKeyPrevious is the key being rotated away from: still accepted to open and look up, never used to
	// seal, until `hotline pii rotate` has re-sealed everything and the operator removes it.
	PIIKeyPrevious       string
	LeadToIdentify       time.Duration
	IdentifyPublicity    time.Duration
	EliminationPublicity time.Duration
	YellowBefore         time.Duration
	DemoHouseholds       int
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_PII_KEY", Flag: "pii-key", Default: "", Secret: true,
			Doc:   "base64 of 32 random bytes sealing ID and phone numbers (openssl rand -base64 32); empty: hotline up keeps one in <data dir>/pii.key",
			field: func(c *Config) any { return &c.Monitoring.PIIKey },
			check: func(c *Config) error {
				if c.Monitoring.PIIKey == "" {
					return nil
				}
				if _, err := pii.ParseKey(c.Monitoring.PIIKey); err != nil {
					return errors.New("HOTLINE_PII_KEY: " + err.Error())
				}
				return nil
			}},
		setting{Env: "HOTLINE_PII_KEY_PREVIOUS", Flag: "pii-key-previous", Default: "", Secret: true,
			Doc:   "during a key rotation: the previous HOTLINE_PII_KEY, still accepted to open and look up; remove it after hotline pii rotate",
			field: func(c *Config) any { return &c.Monitoring.PIIKeyPrevious },
			check: func(c *Config) error {
				if c.Monitoring.PIIKeyPrevious == "" {
					return nil
				}
				if _, err := pii.ParseKey(c.Monitoring.PIIKeyPrevious); err != nil {
					return errors.New("HOTLINE_PII_KEY_PREVIOUS: " + err.Error())
				}
				return nil
			}},
		setting{Env: "HOTLINE_MONITORING_LEAD_TO_IDENTIFY", Flag: "monitoring-lead-to-identify", Default: "360h",
			Doc:   "longest time from a risk lead to identification (15 days); the clock turns red after it",
			field: func(c *Config) any { return &c.Monitoring.LeadToIdentify }},
		setting{Env: "HOTLINE_MONITORING_IDENTIFY_PUBLICITY", Flag: "monitoring-identify-publicity", Default: "120h",
			Doc:   "shortest publicity (公示) before identification (5 days)",
			field: func(c *Config) any { return &c.Monitoring.IdentifyPublicity }},
		setting{Env: "HOTLINE_MONITORING_ELIMINATION_PUBLICITY", Flag: "monitoring-elimination-publicity", Default: "168h",
			Doc:   "publicity before risk elimination (7 days)",
			field: func(c *Config) any { return &c.Monitoring.EliminationPublicity }},
		setting{Env: "HOTLINE_MONITORING_YELLOW_BEFORE", Flag: "monitoring-yellow-before", Default: "72h",
			Doc:   "a monitoring clock turns yellow this long before its deadline",
			field: func(c *Config) any { return &c.Monitoring.YellowBefore }},
		setting{Env: "HOTLINE_DEMO_HOUSEHOLDS", Flag: "demo-households", Default: "200",
			Doc:   "synthetic households: hotline up loads this many on first run; hotline demo-data adds this many",
			field: func(c *Config) any { return &c.Monitoring.DemoHouseholds },
			check: func(c *Config) error {
				if c.Monitoring.DemoHouseholds < 0 {
					return errors.New("HOTLINE_DEMO_HOUSEHOLDS: must not be negative")
				}
				return nil
			}},
	)
}

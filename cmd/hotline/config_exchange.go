package main

import (
	"errors"
	"fmt"
	"time"

	"hotline/ticketing/exchange"
)

// ExchangeConfig holds the settings of the 12345 platform exchange (ticketing/exchange).
type ExchangeConfig struct {
	Platforms      string
	Secrets        string
	PlatformList   []exchange.Platform // parsed at load
	AttachmentsDir string
	MaxAttempts    int
	RetryBase      time.Duration
	RetryMax       time.Duration
	ReconcileHour  int
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_EXCHANGE_PLATFORMS", Flag: "exchange-platforms", Default: "",
			Doc:   "12345 platforms that send us work orders, ';'-separated: name=N,url=BASE[,dialect=12345v1][,poll=5m] (poll: the platform cannot push; empty: no exchange)",
			field: func(c *Config) any { return &c.Exchange.Platforms }},
		setting{Env: "HOTLINE_EXCHANGE_SECRETS", Flag: "exchange-secrets", Default: "", Secret: true,
			Doc:   "the HMAC secret of each platform, ';'-separated name=SECRET (at least 16 bytes each)",
			field: func(c *Config) any { return &c.Exchange.Secrets }, check: func(c *Config) error {
				var err error
				if c.Exchange.PlatformList, err = exchange.ParsePlatforms(c.Exchange.Platforms, c.Exchange.Secrets); err != nil {
					return fmt.Errorf("HOTLINE_EXCHANGE_PLATFORMS/HOTLINE_EXCHANGE_SECRETS: %v", err)
				}
				return nil
			}},
		setting{Env: "HOTLINE_EXCHANGE_ATTACHMENTS_DIR", Flag: "exchange-attachments-dir", Default: "", Doc: "where attachments fetched from the platforms are kept (default: <data dir>/exchange-attachments)",
			field: func(c *Config) any { return &c.Exchange.AttachmentsDir }},
		setting{Env: "HOTLINE_EXCHANGE_MAX_ATTEMPTS", Flag: "exchange-max-attempts", Default: "12", Doc: "sends of one 签收/答复/退单/延期/回访 to the platform before it is dead-lettered (an admin can retry it)",
			field: func(c *Config) any { return &c.Exchange.MaxAttempts }, check: positive("HOTLINE_EXCHANGE_MAX_ATTEMPTS", func(c *Config) int { return c.Exchange.MaxAttempts })},
		setting{Env: "HOTLINE_EXCHANGE_RETRY_BASE", Flag: "exchange-retry-base", Default: "5s", Doc: "first retry delay of a failed send to the platform, doubled per attempt",
			field: func(c *Config) any { return &c.Exchange.RetryBase }},
		setting{Env: "HOTLINE_EXCHANGE_RETRY_MAX", Flag: "exchange-retry-max", Default: "30m", Doc: "longest retry delay of a send to the platform",
			field: func(c *Config) any { return &c.Exchange.RetryMax }},
		setting{Env: "HOTLINE_EXCHANGE_RECONCILE_HOUR", Flag: "exchange-reconcile-hour", Default: "2", Doc: "hour of the day (China time, 1-23) of the daily comparison of open orders with each platform",
			field: func(c *Config) any { return &c.Exchange.ReconcileHour }, check: func(c *Config) error {
				if c.Exchange.ReconcileHour < 1 || c.Exchange.ReconcileHour > 23 {
					return errors.New("HOTLINE_EXCHANGE_RECONCILE_HOUR: 1 to 23")
				}
				return nil
			}},
	)
}

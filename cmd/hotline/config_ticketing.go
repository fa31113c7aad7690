package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"hotline/ticketing/calendar"
)

// TicketingConfig holds the settings of ticketing (SLA clocks, routing, queues, outbox relay).
type TicketingConfig struct {
	SignDays         int
	ReplyDaysShort   int // 咨询, 求助
	ReplyDaysLong    int // 投诉, 举报, 建议
	CallbackDays     int
	UrgentSignHours  int
	UrgentReplyHours int
	YellowShare      float64
	HolidaysFile     string
	Calendar         *calendar.Calendar // HolidaysFile parsed at load; nil: the embedded calendar
	DuplicateDays    int
	SweepInterval    time.Duration
	OutboxPoll       time.Duration
	OutboxBatch      int
	EventsMaxLen     int
	PublicQueryLimit int
	QueueGuard       time.Duration
	CoOpinionDays    int    // config_workorder.go
	CoOpinionPolicy  string // block or warn
}

func positive(name string, get func(c *Config) int) func(*Config) error {
	return func(c *Config) error {
		if get(c) < 1 {
			return errors.New(name + ": must be at least 1")
		}
		return nil
	}
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_SLA_SIGN_DAYS", Flag: "sla-sign-days", Default: "1", Doc: "working days from dispatch to sign for a ticket (签收时限)",
			field: func(c *Config) any { return &c.Ticketing.SignDays }, check: positive("HOTLINE_SLA_SIGN_DAYS", func(c *Config) int { return c.Ticketing.SignDays })},
		setting{Env: "HOTLINE_SLA_REPLY_DAYS_SHORT", Flag: "sla-reply-days-short", Default: "3", Doc: "working days from dispatch to reply for 咨询 and 求助 (a category's reply_days overrides)",
			field: func(c *Config) any { return &c.Ticketing.ReplyDaysShort }, check: positive("HOTLINE_SLA_REPLY_DAYS_SHORT", func(c *Config) int { return c.Ticketing.ReplyDaysShort })},
		setting{Env: "HOTLINE_SLA_REPLY_DAYS_LONG", Flag: "sla-reply-days-long", Default: "13", Doc: "working days from dispatch to reply for 投诉, 举报 and 建议",
			field: func(c *Config) any { return &c.Ticketing.ReplyDaysLong }, check: positive("HOTLINE_SLA_REPLY_DAYS_LONG", func(c *Config) int { return c.Ticketing.ReplyDaysLong })},
		setting{Env: "HOTLINE_SLA_CALLBACK_DAYS", Flag: "sla-callback-days", Default: "1", Doc: "working days from the reply to the callback (回访)",
			field: func(c *Config) any { return &c.Ticketing.CallbackDays }, check: positive("HOTLINE_SLA_CALLBACK_DAYS", func(c *Config) int { return c.Ticketing.CallbackDays })},
		setting{Env: "HOTLINE_SLA_URGENT_SIGN_HOURS", Flag: "sla-urgent-sign-hours", Default: "2", Doc: "working hours to sign for an urgent ticket",
			field: func(c *Config) any { return &c.Ticketing.UrgentSignHours }, check: positive("HOTLINE_SLA_URGENT_SIGN_HOURS", func(c *Config) int { return c.Ticketing.UrgentSignHours })},
		setting{Env: "HOTLINE_SLA_URGENT_REPLY_HOURS", Flag: "sla-urgent-reply-hours", Default: "24", Doc: "working hours to reply to an urgent ticket (a category's urgent_reply_hours overrides)",
			field: func(c *Config) any { return &c.Ticketing.UrgentReplyHours }, check: positive("HOTLINE_SLA_URGENT_REPLY_HOURS", func(c *Config) int { return c.Ticketing.UrgentReplyHours })},
		setting{Env: "HOTLINE_SLA_YELLOW_SHARE", Flag: "sla-yellow-share", Default: "0.25", Doc: "a clock turns yellow when this share of its allowed working time is left",
			field: func(c *Config) any { return &c.Ticketing.YellowShare }, check: func(c *Config) error {
				if c.Ticketing.YellowShare <= 0 || c.Ticketing.YellowShare >= 1 {
					return errors.New("HOTLINE_SLA_YELLOW_SHARE: must be between 0 and 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_HOLIDAYS_FILE", Flag: "holidays-file", Default: "", Doc: "CSV (date,name,is_off_day) of a newer holiday calendar; default: the embedded 2024-2026 calendar",
			field: func(c *Config) any { return &c.Ticketing.HolidaysFile }, check: func(c *Config) error {
				if c.Ticketing.HolidaysFile == "" {
					return nil
				}
				f, err := os.Open(c.Ticketing.HolidaysFile)
				if err != nil {
					return fmt.Errorf("HOTLINE_HOLIDAYS_FILE: %v", err)
				}
				defer f.Close()
				if c.Ticketing.Calendar, err = calendar.Parse(f); err != nil {
					return fmt.Errorf("HOTLINE_HOLIDAYS_FILE: %v", err)
				}
				return nil
			}},
		setting{Env: "HOTLINE_DUPLICATE_DAYS", Flag: "duplicate-days", Default: "30", Doc: "look-back in days for merge suggestions (same phone or household, same category)",
			field: func(c *Config) any { return &c.Ticketing.DuplicateDays }, check: positive("HOTLINE_DUPLICATE_DAYS", func(c *Config) int { return c.Ticketing.DuplicateDays })},
		setting{Env: "HOTLINE_SLA_SWEEP_INTERVAL", Flag: "sla-sweep-interval", Default: "30s", Doc: "how often the SLA sweeper looks for yellow and red clocks",
			field: func(c *Config) any { return &c.Ticketing.SweepInterval }},
		setting{Env: "HOTLINE_OUTBOX_POLL", Flag: "outbox-poll", Default: "100ms", Doc: "how often the outbox relay looks for rows written by other processes",
			field: func(c *Config) any { return &c.Ticketing.OutboxPoll }},
		setting{Env: "HOTLINE_OUTBOX_BATCH", Flag: "outbox-batch", Default: "500", Doc: "outbox rows the relay publishes per round",
			field: func(c *Config) any { return &c.Ticketing.OutboxBatch }, check: positive("HOTLINE_OUTBOX_BATCH", func(c *Config) int { return c.Ticketing.OutboxBatch })},
		setting{Env: "HOTLINE_EVENTS_MAXLEN", Flag: "events-maxlen", Default: "100000", Doc: "approximate length cap of the Redis event stream <prefix>events",
			field: func(c *Config) any { return &c.Ticketing.EventsMaxLen }, check: positive("HOTLINE_EVENTS_MAXLEN", func(c *Config) int { return c.Ticketing.EventsMaxLen })},
		setting{Env: "HOTLINE_PUBLIC_QUERY_LIMIT", Flag: "public-query-limit", Default: "20", Doc: "public progress queries per client address per minute",
			field: func(c *Config) any { return &c.Ticketing.PublicQueryLimit }, check: positive("HOTLINE_PUBLIC_QUERY_LIMIT", func(c *Config) int { return c.Ticketing.PublicQueryLimit })},
		setting{Env: "HOTLINE_QUEUE_GUARD_INTERVAL", Flag: "queue-guard-interval", Default: "5s", Doc: "how often to check that Redis still holds the unit queues; if it lost them (flushed, replaced), they are rebuilt from PostgreSQL",
			field: func(c *Config) any { return &c.Ticketing.QueueGuard }, check: func(c *Config) error {
				if c.Ticketing.QueueGuard <= 0 {
					return errors.New("HOTLINE_QUEUE_GUARD_INTERVAL: must be above 0")
				}
				return nil
			}},
	)
}

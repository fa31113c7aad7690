package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DialerConfig holds the settings of outbound campaigns, 回访 callbacks and click-to-call.
type DialerConfig struct {
	Enabled        bool          // this process places campaign calls (any number of processes may)
	Trunk          string        // where INVITEs go: host:port of the carrier trunk / SBC
	TrunkTransport string        // udp or tcp
	TrunkUser      string        // digest user, if the trunk challenges
	TrunkPassword  string        // digest password
	TrunkChannels  int           // simultaneous calls the carrier allows, shared by every dialer process
	Workers        int           // simultaneous calls one process places at most
	PromptDir      string        // campaign prompt WAVs (8 kHz 16-bit mono); default <data dir>/prompts/dialer
	CallerID       string        // caller ID of the standing 回访 campaign and click-to-call
	DeadAfter      time.Duration // a dialer process silent this long is dead: its calls are recorded interrupted
	StaleQueued    time.Duration // a queued target not taken this long is put on the stream again
	Callback       bool          // keep the standing 回访 campaign (created and launched at start)
	ClickRing      time.Duration // click-to-call: how long the agent's phone and then the household ring
	AgentURI       string        // click-to-call: agent phone URI template, {user} = SIP user (when no registrar binding)

	// Parsed at load (issue 17).
	TrunkHost string // Trunk
	TrunkPort int
}

func (d DialerConfig) trunkHostPort() (string, int, error) {
	host, p, err := net.SplitHostPort(d.Trunk)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_DIALER_ENABLED", Flag: "dialer-enabled", Default: "true",
			Doc:   "run the outbound dialer in this process (scheduler + workers; any number of processes may)",
			field: func(c *Config) any { return &c.Dialer.Enabled }},
		setting{Env: "HOTLINE_DIALER_TRUNK", Flag: "dialer-trunk", Default: "",
			Doc:   "host:port of the carrier trunk or SBC that campaign calls go to (sip:<number>@host:port); empty: no calls are placed",
			field: func(c *Config) any { return &c.Dialer.Trunk },
			check: func(c *Config) error {
				if c.Dialer.Trunk == "" {
					return nil
				}
				var err error
				if c.Dialer.TrunkHost, c.Dialer.TrunkPort, err = c.Dialer.trunkHostPort(); err != nil {
					return fmt.Errorf("HOTLINE_DIALER_TRUNK: want host:port: %v", err)
				}
				return nil
			}},
		setting{Env: "HOTLINE_DIALER_TRUNK_TRANSPORT", Flag: "dialer-trunk-transport", Default: "udp",
			Doc:   "udp or tcp towards the trunk",
			field: func(c *Config) any { return &c.Dialer.TrunkTransport },
			check: oneOf("HOTLINE_DIALER_TRUNK_TRANSPORT", func(c *Config) string { return c.Dialer.TrunkTransport }, "udp", "tcp")},
		setting{Env: "HOTLINE_DIALER_TRUNK_USER", Flag: "dialer-trunk-user", Default: "",
			Doc:   "digest user name, if the trunk challenges INVITEs",
			field: func(c *Config) any { return &c.Dialer.TrunkUser }},
		setting{Env: "HOTLINE_DIALER_TRUNK_PASSWORD", Flag: "dialer-trunk-password", Default: "", Secret: true,
			Doc:   "digest password of the trunk",
			field: func(c *Config) any { return &c.Dialer.TrunkPassword }},
		setting{Env: "HOTLINE_DIALER_TRUNK_CHANNELS", Flag: "dialer-trunk-channels", Default: "60",
			Doc:   "simultaneous calls the carrier allows on the trunk, shared by every dialer process (Redis)",
			field: func(c *Config) any { return &c.Dialer.TrunkChannels },
			check: func(c *Config) error {
				if c.Dialer.TrunkChannels < 1 {
					return errors.New("HOTLINE_DIALER_TRUNK_CHANNELS: at least 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_DIALER_WORKERS", Flag: "dialer-workers", Default: "200",
			Doc:   "simultaneous calls one dialer process places at most",
			field: func(c *Config) any { return &c.Dialer.Workers },
			check: func(c *Config) error {
				if c.Dialer.Workers < 1 || c.Dialer.Workers > 5000 {
					return errors.New("HOTLINE_DIALER_WORKERS: 1 to 5000")
				}
				return nil
			}},
		setting{Env: "HOTLINE_DIALER_PROMPT_DIR", Flag: "dialer-prompt-dir", Default: "",
			Doc:   "directory of campaign prompt WAV files (8 kHz 16-bit mono); default <data dir>/prompts/dialer",
			field: func(c *Config) any { return &c.Dialer.PromptDir }},
		setting{Env: "HOTLINE_DIALER_CALLER_ID", Flag: "dialer-caller-id", Default: "12345",
			Doc:   "caller ID (digits) of the standing 回访 campaign and of click-to-call",
			field: func(c *Config) any { return &c.Dialer.CallerID },
			check: func(c *Config) error {
				if c.Dialer.CallerID == "" || strings.Trim(c.Dialer.CallerID, "0123456789") != "" {
					return errors.New("HOTLINE_DIALER_CALLER_ID: digits only")
				}
				return nil
			}},
		setting{Env: "HOTLINE_DIALER_DEAD_AFTER", Flag: "dialer-dead-after", Default: "5s",
			Doc:   "a dialer process that has not beaten for this long is dead: its calls in progress are recorded interrupted and retried",
			field: func(c *Config) any { return &c.Dialer.DeadAfter }},
		setting{Env: "HOTLINE_DIALER_STALE_QUEUED", Flag: "dialer-stale-queued", Default: "30s",
			Doc:   "a target queued this long without being taken is put on the Redis stream again (lost entries)",
			field: func(c *Config) any { return &c.Dialer.StaleQueued }},
		setting{Env: "HOTLINE_DIALER_CALLBACK", Flag: "dialer-callback", Default: "true",
			Doc:   "keep the standing 回访 campaign: every replied ticket with a caller's number gets a keypad satisfaction call",
			field: func(c *Config) any { return &c.Dialer.Callback }},
		setting{Env: "HOTLINE_DIALER_CLICK_RING", Flag: "dialer-click-ring", Default: "30s",
			Doc:   "click-to-call: how long the agent's phone, then the household, may ring",
			field: func(c *Config) any { return &c.Dialer.ClickRing }},
		setting{Env: "HOTLINE_DIALER_AGENT_URI", Flag: "dialer-agent-uri", Default: "",
			Doc:   "click-to-call: agent phone URI with {user} for the agent's SIP user (e.g. sip:{user}@10.0.0.5:5060), used when the phone has no registration",
			field: func(c *Config) any { return &c.Dialer.AgentURI }},
	)
}

package main

import (
	"errors"
	"net/url"
	"strings"
	"time"
)

// ConsoleConfig holds the settings of browser sessions, the login limiter and the websocket hub.
type ConsoleConfig struct {
	SessionIdle      time.Duration
	SessionAbsolute  time.Duration
	SecureCookie     bool
	Origins          string // comma-separated
	LoginMaxFailures int
	LoginWindow      time.Duration
	LoginBackoff     time.Duration
	LoginBackoffMax  time.Duration
	WSSendQueue      int
}

// origins returns the configured console origins.
func (c ConsoleConfig) origins() []string {
	var out []string
	for _, o := range strings.Split(c.Origins, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_SESSION_IDLE", Flag: "session-idle", Default: "30m", Doc: "a console session unused this long ends (sign in again)",
			field: func(c *Config) any { return &c.Console.SessionIdle }, check: func(c *Config) error {
				if c.Console.SessionIdle < time.Minute {
					return errors.New("HOTLINE_SESSION_IDLE: at least 1m")
				}
				return nil
			}},
		setting{Env: "HOTLINE_SESSION_ABSOLUTE", Flag: "session-absolute", Default: "12h", Doc: "no console session lives longer than this, however busy",
			field: func(c *Config) any { return &c.Console.SessionAbsolute }, check: func(c *Config) error {
				if c.Console.SessionAbsolute < c.Console.SessionIdle {
					return errors.New("HOTLINE_SESSION_ABSOLUTE: at least HOTLINE_SESSION_IDLE")
				}
				return nil
			}},
		setting{Env: "HOTLINE_SECURE_COOKIE", Flag: "secure-cookie", Default: "false", Doc: "mark the session cookie Secure even on plain HTTP (TLS ends at a proxy in front); it is always Secure over TLS",
			field: func(c *Config) any { return &c.Console.SecureCookie }},
		setting{Env: "HOTLINE_CONSOLE_ORIGINS", Flag: "console-origins", Default: "", Doc: "comma-separated origins (https://host[:port]) whose pages may open the websocket; empty: the host the request was sent to",
			field: func(c *Config) any { return &c.Console.Origins }, check: func(c *Config) error {
				for _, o := range c.Console.origins() {
					u, err := url.Parse(o)
					if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
						return errors.New("HOTLINE_CONSOLE_ORIGINS: " + o + " is not an origin such as https://hotline.example.gov.cn")
					}
				}
				return nil
			}},
		setting{Env: "HOTLINE_LOGIN_MAX_FAILURES", Flag: "login-max-failures", Default: "10", Doc: "wrong passwords per user name and source address before each further attempt waits",
			field: func(c *Config) any { return &c.Console.LoginMaxFailures }, check: positive("HOTLINE_LOGIN_MAX_FAILURES", func(c *Config) int { return c.Console.LoginMaxFailures })},
		setting{Env: "HOTLINE_LOGIN_WINDOW", Flag: "login-window", Default: "15m", Doc: "quiet time after which a user name and address start counting failures again",
			field: func(c *Config) any { return &c.Console.LoginWindow }},
		setting{Env: "HOTLINE_LOGIN_BACKOFF", Flag: "login-backoff", Default: "1s", Doc: "wait after the last free attempt; doubles with each further wrong password",
			field: func(c *Config) any { return &c.Console.LoginBackoff }},
		setting{Env: "HOTLINE_LOGIN_BACKOFF_MAX", Flag: "login-backoff-max", Default: "5m", Doc: "the longest wait between login attempts of one user name and address",
			field: func(c *Config) any { return &c.Console.LoginBackoffMax }},
		setting{Env: "HOTLINE_WS_SEND_QUEUE", Flag: "ws-send-queue", Default: "256", Doc: "events waiting per console websocket before the connection counts as slow and is closed",
			field: func(c *Config) any { return &c.Console.WSSendQueue }, check: positive("HOTLINE_WS_SEND_QUEUE", func(c *Config) int { return c.Console.WSSendQueue })},
	)
}

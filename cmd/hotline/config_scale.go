package main

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
)

// ScaleConfig says what this process runs and how it finds Redis when Redis fails over (issue 16).
type ScaleConfig struct {
	Roles          string // comma-separated: web, sip, dialer, workers; "all" (the default) is every one
	RedisSentinels string // comma-separated host:port of Redis Sentinels; empty: HOTLINE_REDIS_URL directly
	RedisMaster    string // the Sentinels' name of the Redis primary
	WaitReplicas   int    // the outbox relay keeps rows until this many replicas have its publications

	roles     map[string]bool // parsed Roles
	sentinels []string        // parsed RedisSentinels
}

// The roles a process may take. Every one may run in any number of processes: what must happen once (the
// outbox relay, the SLA sweeper, campaign scheduling, notification delivery) is claimed in PostgreSQL with
// SKIP LOCKED or a lease, never by being the only process.
const (
	roleWeb     = "web"     // console, API, websockets (HTTP /healthz and /readyz run in every process)
	roleSIP     = "sip"     // the SIP user agent: intake of 12345 calls, agents' registrations
	roleDialer  = "dialer"  // campaign calls and click-to-call, through this process's SIP user agent
	roleWorkers = "workers" // background work: outbox relay, sweepers, notifications, retention
)

var allRoles = []string{roleWeb, roleSIP, roleDialer, roleWorkers}

// has reports whether the process runs role.
func (s ScaleConfig) has(role string) bool { return s.roles == nil || s.roles[role] } // nil: not loaded, all

// roleList is the roles in a fixed order, for logs and the start-up banner.
func (s ScaleConfig) roleList() []string {
	var out []string
	for _, r := range allRoles {
		if s.roles[r] {
			out = append(out, r)
		}
	}
	return out
}

func parseRoles(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range strings.Split(v, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "all":
			for _, a := range allRoles {
				out[a] = true
			}
		case r == roleWeb || r == roleSIP || r == roleDialer || r == roleWorkers:
			out[r] = true
		case r == "":
		default:
			return nil, fmt.Errorf("HOTLINE_ROLES: unknown role %q (want all or some of %s)", r, strings.Join(allRoles, ","))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("HOTLINE_ROLES: no role given (want all or some of %s)", strings.Join(allRoles, ","))
	}
	return out, nil
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_ROLES", Flag: "roles", Default: "all",
			Doc:   "what this process runs: all, or some of web (console, API), sip (calls in, registrations), dialer (calls out; needs sip), workers (relay, sweepers, notifications)",
			field: func(c *Config) any { return &c.Scale.Roles },
			check: func(c *Config) error {
				var err error
				if c.Scale.roles, err = parseRoles(c.Scale.Roles); err != nil {
					return err
				}
				if c.Scale.roles[roleDialer] && !c.Scale.roles[roleSIP] {
					// One SIP user agent per process: the dialer places its calls through the sip role's.
					return fmt.Errorf("HOTLINE_ROLES: dialer needs sip (the dialer places calls through the process's one SIP user agent)")
				}
				return nil
			}},
		setting{Env: "HOTLINE_REDIS_SENTINELS", Flag: "redis-sentinels", Default: "",
			Doc:   "comma-separated host:port of Redis Sentinels; when set, hotline asks them for the primary and follows a failover (HOTLINE_REDIS_URL then only gives password and database)",
			field: func(c *Config) any { return &c.Scale.RedisSentinels },
			check: func(c *Config) error {
				c.Scale.sentinels = nil
				for _, a := range strings.Split(c.Scale.RedisSentinels, ",") {
					if a = strings.TrimSpace(a); a == "" {
						continue
					}
					if _, _, err := net.SplitHostPort(a); err != nil {
						return fmt.Errorf("HOTLINE_REDIS_SENTINELS: %q is not host:port", a)
					}
					c.Scale.sentinels = append(c.Scale.sentinels, a)
				}
				sort.Strings(c.Scale.sentinels)
				return nil
			}},
		setting{Env: "HOTLINE_REDIS_MASTER_NAME", Flag: "redis-master-name", Default: "hotline",
			Doc:   "name of the Redis primary in the Sentinels' configuration (with HOTLINE_REDIS_SENTINELS)",
			field: func(c *Config) any { return &c.Scale.RedisMaster }},
		setting{Env: "HOTLINE_REDIS_WAIT_REPLICAS", Flag: "redis-wait-replicas", Default: "0",
			Doc:   "with Redis replicas: the outbox relay deletes published rows only once this many replicas acknowledged them (WAIT), so a failover loses no event; 0: do not wait",
			field: func(c *Config) any { return &c.Scale.WaitReplicas },
			check: func(c *Config) error {
				if c.Scale.WaitReplicas < 0 {
					return fmt.Errorf("HOTLINE_REDIS_WAIT_REPLICAS: must not be negative")
				}
				return nil
			}},
	)
}

// roleHandler is the HTTP handler of a process: everything with the web role, else only /healthz and /readyz (the
// balancer and the orchestrator probe every process; consoles and the API go to web processes only).
func roleHandler(s ScaleConfig, h http.Handler) http.Handler {
	if s.has(roleWeb) {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "this hotline process does not have the web role (HOTLINE_ROLES)", http.StatusNotFound)
	})
}

// Package web serves hotline's HTTP side: the JSON API, health and metrics endpoints, authentication (bearer
// tokens for machines; for people, server-side sessions with a cookie, a CSRF token and a login limiter), the
// websocket endpoint of the hub, and the embedded web console. It never talks SQL itself beyond the store
// functions of the packages it serves; errors map to HTTP statuses in one place (errors.go).
package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hotline/migrations"
	"hotline/telephony"
	"hotline/ticketing/exchange"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// Deps is what the web layer is built from. Optional services are nil when their role is not running.
type Deps struct {
	DB        *pgxpool.Pool
	Redis     *redis.Client
	Log       *slog.Logger
	Registry  *prometheus.Registry // the process metrics (served apart, on HOTLINE_METRICS_ADDR, by cmd/hotline)
	Version   string
	Tickets   *Tickets           // the ticket API (ticketing); nil: not served
	Telephony *telephony.Service // agents, calls, callbacks, recordings; nil without telephony

	Monitoring *monitoring.Service // households, caller lookup (nil: routes not registered)
	Campaigns  *Campaigns          // outbound campaigns and click-to-call (nil: routes not registered)
	Notify     NotifyAdmin         // notification rules, templates and delivery log (nil: routes not registered)
	Exchange   *exchange.Service   // the 12345 platform exchange (nil: routes not registered)
	Content    *Content            // attachments, knowledge base, reply templates (nil: routes not registered)
	// SIPBindings counts an agent's live SIP registrations (the console's state bar); nil: not shown.
	SIPBindings func(ctx context.Context, sipUser string) (int, error)
	SIPRealm    string   // digest realm of agents' SIP accounts set by admins (HOTLINE_SIP_REALM); "" = "hotline"
	EnvTrunks   []string // names of the trunks of HOTLINE_SIP_TRUNKS (they override stored trunks of that name)

	// TokenChannel is the Redis pub/sub channel on which revoked tokens are announced to every process's token
	// cache (org.WatchRevocations); "" uses org.DefaultTokenChannel.
	TokenChannel string
	Limits       Limits // in-flight requests per route class (zero: unlimited)
	// Draining, if set and true, makes /readyz answer 503 so balancers take the instance out of rotation
	// while it shuts down.
	Draining    func() bool
	RedisPrefix string           // prefix of Redis keys (login limiter); default Tickets.RedisPrefix
	Sessions    SessionConfig    // browser sessions, CSRF and the login limiter
	Hub         Hub              // the websocket hub behind GET /ws (notify/hub); nil: /ws not served
	Public      PublicLimits     // the public channels' limits and proxy trust (web form, progress query, Open311)
	Now         func() time.Time // the clock of sessions, the login limiter and per-minute limits; default time.Now
}

// Hub is the websocket hub as web needs it: web authenticates the request and checks its Origin, the hub
// upgrades it and streams the events this actor may see, starting after lastID ("" = from now on).
type Hub interface {
	ServeWS(w http.ResponseWriter, r *http.Request, a org.Actor, lastID string)
}

// Server holds the dependencies of every handler.
type Server struct {
	deps     Deps
	log      *slog.Logger
	mux      *routeMux
	adm      *admission
	handler  http.Handler // mux behind admission control
	sessions *org.Sessions
	limiter  *loginLimiter
	now      func() time.Time
	// checkPassword is org.CheckPassword; tests count its calls (each is a bcrypt comparison).
	checkPassword func(ctx context.Context, db org.DB, username, password string) (org.User, error)
}

// routeMux is the ServeMux that remembers every pattern registered, so the authorization test can walk the
// whole route table (a route added without a row in that test's table fails it).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// New returns the whole HTTP surface as one handler; the route table is in routes().
func New(deps Deps) http.Handler { return securityHeaders(newServer(deps).handler) }

func newServer(deps Deps) *Server {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.RedisPrefix == "" && deps.Tickets != nil {
		deps.RedisPrefix = deps.Tickets.RedisPrefix
	}
	var reg prometheus.Registerer
	if deps.Registry != nil {
		reg = deps.Registry
	}
	s := &Server{deps: deps, log: deps.Log, mux: &routeMux{ServeMux: http.NewServeMux()}, now: deps.Now,
		adm: newAdmission(deps.Limits, reg), checkPassword: org.CheckPassword}
	s.sessions = org.NewSessions(deps.DB, org.SessionOptions{Idle: deps.Sessions.Idle, Absolute: deps.Sessions.Absolute, Now: deps.Now})
	s.limiter = newLoginLimiter(deps.Redis, deps.RedisPrefix, deps.Sessions.Login, deps.Now)
	s.routes()
	s.handler = s.guard(s.admit(s.mux))
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.api(s.healthz))
	s.mux.HandleFunc("GET /readyz", s.api(s.readyz))
	s.mux.HandleFunc("GET /api/v1/units", s.authed(s.listUnits))
	s.mux.HandleFunc("GET /api/v1/me", s.authed(s.me))
	s.sessionRoutes()
	s.ticketRoutes()
	s.callRoutes()
	s.householdRoutes()
	s.campaignRoutes()
	s.campaignConsoleRoutes()
	s.notifyRoutes()
	s.exchangeRoutes()
	s.statsRoutes()
	s.securityRoutes()
	s.adminRoutes()
	s.contentRoutes()
	s.consoleRoutes()
	s.workorderRoutes()
	s.docRoutes()
	s.open311Routes()
	s.publicRoutes()
	s.mux.HandleFunc("/api/", s.api(s.notFound))
	s.mux.Handle("/", s.console())
}

// healthz answers as long as the process can serve HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when PostgreSQL and Redis answer and the schema is current (migrations.Check, as serve), so a load balancer keeps
// traffic away from an instance that cannot do its work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if s.deps.Draining != nil && s.deps.Draining() {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "checks": map[string]string{"process": "shutting down"}})
	}
	if err := s.deps.DB.Ping(ctx); err != nil {
		checks["postgres"], ok = err.Error(), false
	} else if err := migrations.Check(ctx, s.deps.DB); err != nil {
		checks["postgres"], checks["schema"], ok = "ok", err.Error(), false
	} else {
		checks["postgres"], checks["schema"] = "ok", "ok"
	}
	if err := s.deps.Redis.Ping(ctx).Err(); err != nil {
		checks["redis"], ok = err.Error(), false
	} else {
		checks["redis"] = "ok"
	}
	if s.deps.Tickets != nil && s.deps.Tickets.Service != nil {
		// Detail only: a missing holiday year flags deadlines, it does not stop the service.
		checks["calendar"] = "ok"
		if st := s.tickets().CalendarStatus(); st.NextYearMissing {
			checks["calendar"] = st.Warning
		}
	}
	if s.deps.Telephony != nil {
		// Detail only: with the recordings disk full calls are still taken (without recordings).
		checks["recordings"] = s.deps.Telephony.RecordingsHealth()
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
}

// notFound answers API paths no route serves: 405 with Allow when the path exists under another method, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	if allow := s.allowedMethods(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return errMethod
	}
	return errNoRoute
}

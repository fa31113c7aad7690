package exchange

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// Platform is one 12345 platform we exchange work orders with.
type Platform struct {
	Name    string        // in our paths and tables: [a-z0-9-]{1,32}
	URL     string        // base URL of the platform's side of the contract (feedback, poll, open orders)
	Secret  []byte        // the shared HMAC key, both directions
	Dialect string        // default "12345v1"
	Poll    time.Duration // > 0: the platform cannot push; we poll it this often
}

// Config builds a Service; DB, Redis and Tickets are required.
type Config struct {
	DB        org.TxBeginner
	Redis     *redis.Client
	Prefix    string // Redis key prefix
	Tickets   *ticketing.Service
	Platforms []Platform
	Files     FileStore    // where fetched attachments go; default: the exchange_attachments rows only record failures
	HTTP      *http.Client // to the platforms; default: 15 s timeout
	Log       *slog.Logger
	Now       func() time.Time
	Kick      func() // wakes the ticket outbox relay after our transactions (they write ticket events)

	MaxAttempts int           // sends of one outbound row before it is dead-lettered; default 12
	BaseDelay   time.Duration // first retry delay, doubled per attempt; default 5s
	MaxDelay    time.Duration // longest retry delay; default 30m
	Interval    time.Duration // how often Run looks for due work when not woken; default 1s
	ReconcileAt int           // hour of the day (China time) of the daily reconciliation; default 2
}

// Service is the exchange with every configured platform.
type Service struct {
	cfg       Config
	db        org.TxBeginner
	rdb       *redis.Client
	tickets   *ticketing.Service
	log       *slog.Logger
	now       func() time.Time
	http      *http.Client
	platforms map[string]*platform
	wake      chan struct{}

	// afterSend, in tests, runs after the platform answered and before the row's state commits (a crash there).
	afterSend func() error
}

type platform struct {
	Platform
	d Dialect
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// New checks the platforms and returns the service. Register its hook on the ticket service with
// tickets.OnTransition(s.Hook()) at wiring time.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Tickets == nil || cfg.Redis == nil {
		return nil, errors.New("exchange: DB, Redis and Tickets are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 5 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ReconcileAt < 0 || cfg.ReconcileAt > 23 {
		return nil, errors.New("exchange: ReconcileAt is an hour, 0-23")
	}
	if cfg.ReconcileAt == 0 {
		cfg.ReconcileAt = 2
	}
	s := &Service{cfg: cfg, db: cfg.DB, rdb: cfg.Redis, tickets: cfg.Tickets, log: cfg.Log, now: cfg.Now, http: cfg.HTTP,
		platforms: map[string]*platform{}, wake: make(chan struct{}, 1)}
	for _, p := range cfg.Platforms {
		if !nameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("exchange: platform name %q: want [a-z0-9-]{1,32}", p.Name)
		}
		if _, dup := s.platforms[p.Name]; dup {
			return nil, fmt.Errorf("exchange: platform %q twice", p.Name)
		}
		if len(p.Secret) < 16 {
			return nil, fmt.Errorf("exchange: platform %q: the secret must be at least 16 bytes", p.Name)
		}
		if p.Dialect == "" {
			p.Dialect = "12345v1"
		}
		d, err := dialectByName(p.Dialect)
		if err != nil {
			return nil, fmt.Errorf("exchange: platform %q: %w", p.Name, err)
		}
		s.platforms[p.Name] = &platform{Platform: p, d: d}
	}
	return s, nil
}

// Platforms lists the configured platforms' names.
func (s *Service) Platforms() []string {
	out := make([]string, 0, len(s.platforms))
	for n := range s.platforms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ListPlatforms is the configured platforms' names for the administration (admins): the console's page asks
// for them to know whose mappings and unmapped codes to show.
func (s *Service) ListPlatforms(a org.Actor) ([]string, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return nil, err
	}
	return s.Platforms(), nil
}

func (s *Service) platform(name string) (*platform, error) {
	p, ok := s.platforms[name]
	if !ok {
		return nil, fmt.Errorf("platform %q: %w", name, org.ErrNotFound)
	}
	return p, nil
}

// actor is who the platform's changes are made by, on the tickets' history.
func (p *platform) actor() org.Actor {
	return org.Actor{Username: "12345:" + p.Name, Name: "12345平台(" + p.Name + ")", Role: org.RoleAdmin}
}

func (s *Service) kick() {
	if s.cfg.Kick != nil {
		s.cfg.Kick()
	}
}

// Wake makes Run look for due work at once.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// AuthorizeAdmin answers whether the actor may read and change the exchange's administration (mappings, the
// unmapped report, dead letters, reconciliations): admins only. The push endpoint is not a person's: it is
// authenticated by the platform's HMAC signature (Receive).
func AuthorizeAdmin(a org.Actor) error {
	if a.Role != org.RoleAdmin {
		return fmt.Errorf("exchange administration: %w: role %s", org.ErrForbidden, a.Role)
	}
	return nil
}

// Package mail sends email over SMTP with STARTTLS and authentication, through github.com/wneessen/go-mail.
// One connection per message: digests are a few hundred a day, so a pool would only hold idle connections open
// to the relay. The idempotency key becomes the Message-ID, so a receiving system can recognise a resend.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Config is the SMTP relay.
type Config struct {
	Addr     string // host:port of the relay (587 for submission with STARTTLS)
	Username string
	Password string
	From     string
	// TLS overrides the TLS configuration (tests: a private CA); nil: system roots and the relay's host name.
	TLS     *tls.Config
	Timeout time.Duration // default 15s
	// Insecure allows a relay without STARTTLS (a local relay on loopback only; never across a network).
	Insecure bool
}

// Sender sends plain-text mail.
type Sender struct {
	cfg  Config
	host string
	port int
}

// New checks the configuration.
func New(cfg Config) (*Sender, error) {
	host, ps, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: bad port", cfg.Addr)
	}
	if cfg.From == "" {
		return nil, errors.New("smtp: a From address is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &Sender{cfg: cfg, host: host, port: port}, nil
}

// Send sends one message to one address.
func (s *Sender) Send(ctx context.Context, to, subject, body, idemKey string) error {
	m := gomail.NewMsg()
	if err := m.From(s.cfg.From); err != nil {
		return permanent{fmt.Errorf("smtp from: %w", err)}
	}
	if err := m.To(to); err != nil {
		return permanent{fmt.Errorf("smtp to: %w", err)}
	}
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, body)
	if idemKey != "" {
		m.SetMessageIDWithValue(idemKey + "@hotline")
	}
	m.SetDate()
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.cfg.Timeout), gomail.WithTLSPolicy(gomail.TLSMandatory)}
	if s.cfg.Insecure {
		opts[2] = gomail.WithTLSPolicy(gomail.TLSOpportunistic)
	}
	if s.cfg.TLS != nil {
		opts = append(opts, gomail.WithTLSConfig(s.cfg.TLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// permanent marks an address the library refuses to parse: no retry can help.
type permanent struct{ error }

func (p permanent) Permanent() bool { return true }
func (p permanent) Unwrap() error   { return p.error }

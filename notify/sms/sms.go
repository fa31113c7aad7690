// Package sms sends text messages through cloud SMS providers' published APIs: Alibaba Cloud SMS (dysmsapi
// SendSms, RPC signature HMAC-SHA1), Tencent Cloud SMS (SendSms 2021-01-11, TC3-HMAC-SHA256) and a generic HTTP
// gateway for a provincial SMS platform. Chinese carriers accept only registered templates under a registered
// signature, so a Message names its template code and carries the template's parameters; Text is the rendered
// message for gateways that take free text.
//
// Providers are safe for concurrent use and hold no goroutines. Every request carries the caller's
// idempotency key where the provider has a field for it (Alibaba OutId, Tencent SessionContext, the gateway's
// header), so a retry after a crash can be recognised.
package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Param is one template parameter; order matters to providers that take a positional list (Tencent).
type Param struct {
	Name  string
	Value string
}

// Message is one SMS to one mobile number.
type Message struct {
	Phone    string // normalised mainland mobile number (11 digits)
	Template string // registered template code (Alibaba TemplateCode, Tencent TemplateId)
	Params   []Param
	Text     string // the rendered text (generic gateway, logs never)
	IdemKey  string // the same for every attempt of one delivery
}

// Provider sends one message and returns the provider's reference (BizId, SerialNo, ...).
type Provider interface {
	Send(ctx context.Context, m Message) (ref string, err error)
}

// Error is a refusal by the provider. Permanent errors (a number or template the provider will never accept)
// are not worth retrying; RetryIn is the provider's hint for rate limits.
type Error struct {
	Provider string
	Code     string
	Message  string
	Perm     bool
	Retry    time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Provider, e.Code, e.Message)
}

// Permanent reports whether a retry cannot succeed.
func (e *Error) Permanent() bool { return e.Perm }

// RetryAfter is the least wait before the next attempt (0: the caller's back-off).
func (e *Error) RetryAfter() time.Duration { return e.Retry }

// ErrNotConfigured is returned by a provider missing credentials.
var ErrNotConfigured = errors.New("sms provider not configured")

// defaultClient has a timeout so a hung provider cannot hold a worker (callers' contexts bound it further),
// and keeps enough idle connections per host for the workers' concurrency: net/http's default of 2 would open
// (and TLS-handshake) a new connection for almost every message under load.
var defaultClient = NewHTTPClient(10*time.Second, 128)

// NewHTTPClient returns a client for a provider: timeout per request, up to conns idle connections kept.
func NewHTTPClient(timeout time.Duration, conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns*2, conns
	return &http.Client{Timeout: timeout, Transport: t}
}

func client(c *http.Client) *http.Client {
	if c == nil {
		return defaultClient
	}
	return c
}

// httpStatusError classifies a non-2xx answer that carried no provider error body.
func httpStatusError(provider string, status int, body string) error {
	e := &Error{Provider: provider, Code: fmt.Sprintf("HTTP %d", status), Message: truncate(body, 200)}
	switch {
	case status == http.StatusTooManyRequests:
		e.Retry = time.Minute
	case status >= 500:
	case status >= 400 && status != http.StatusUnauthorized && status != http.StatusForbidden && status != http.StatusRequestTimeout:
		e.Perm = true
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

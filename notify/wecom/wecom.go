// Package wecom sends WeChat Work (企业微信) messages: markdown to a group through its robot webhook, and
// application messages to named users (corp id + secret → access token, cached and refreshed once however many
// sends find it expired at the same time). Errors carry WeChat Work's errcode: 42001/40014/40001 (token expired
// or invalid) refresh the token and retry once; 45009/45033 (rate limits) ask the caller to wait.
//
// Clients are safe for concurrent use and hold no goroutines.
package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultAPI is WeChat Work's API base.
const DefaultAPI = "https://qyapi.weixin.qq.com"

// Errcodes acted upon.
const (
	CodeInvalidToken = 40014
	CodeTokenExpired = 42001
	CodeRateLimit    = 45009 // API call frequency exceeded
	CodeConcurrency  = 45033 // too many concurrent calls
)

// Error is an errcode other than 0.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("wecom: errcode %d: %s", e.Code, e.Msg) }

// Permanent: a user, chat or message WeChat Work refuses for good (bad user id, content too long...).
func (e *Error) Permanent() bool {
	switch e.Code {
	case 40003, 40008, 44004, 45002, 81013, 93000:
		return true
	}
	return false
}

// RetryAfter: rate limits are per minute, so wait one.
func (e *Error) RetryAfter() time.Duration {
	if e.Code == CodeRateLimit || e.Code == CodeConcurrency {
		return time.Minute
	}
	return 0
}

// defaultClient keeps idle connections for concurrent sends (net/http keeps 2 per host by default).
var defaultClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}()

func hc(c *http.Client) *http.Client {
	if c == nil {
		return defaultClient
	}
	return c
}

// Robot posts markdown to group robot webhooks; the URL (with its key) is per unit, so it is an argument.
type Robot struct {
	Client *http.Client
}

// Send posts content as a markdown message to the webhook.
func (r *Robot) Send(ctx context.Context, webhook, content string) error {
	if webhook == "" {
		return &Error{Code: 93000, Msg: "no webhook URL"}
	}
	body := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}}
	_, err := post(ctx, hc(r.Client), webhook, body)
	return err
}

func post(ctx context.Context, c *http.Client, u string, body any) (map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return do(c, req)
}

func do(c *http.Client, req *http.Request) (map[string]any, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wecom: %w", redactURL(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("wecom: HTTP %d", resp.StatusCode)
	}
	var r map[string]any
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("wecom: answer is not JSON: %w", err)
	}
	code, _ := r["errcode"].(float64)
	if code != 0 {
		msg, _ := r["errmsg"].(string)
		return r, &Error{Code: int(code), Msg: msg}
	}
	return r, nil
}

// redactURL drops the query (access token, robot key) from a transport error's URL, so logs never hold it.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// App sends application messages as one agent of a corp.
type App struct {
	API     string // default DefaultAPI
	CorpID  string
	Secret  string
	AgentID int64
	// DuplicateCheck asks WeChat Work to drop a message identical to one sent within this window (at most 4 h):
	// the closest thing to an idempotency key it offers. Default 30 minutes.
	DuplicateCheck time.Duration
	Client         *http.Client
	Now            func() time.Time

	mu      sync.Mutex // guards token, expires
	token   string
	expires time.Time
	fetch   sync.Mutex // one token fetch at a time
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *App) api() string {
	if a.API == "" {
		return DefaultAPI
	}
	return strings.TrimRight(a.API, "/")
}

// Token returns a valid access token, fetching one when none is cached or the cached one is near its end.
// Concurrent callers wait for one fetch.
func (a *App) Token(ctx context.Context) (string, error) {
	a.mu.Lock()
	tok, exp := a.token, a.expires
	a.mu.Unlock()
	if tok != "" && a.now().Before(exp) {
		return tok, nil
	}
	a.fetch.Lock()
	defer a.fetch.Unlock()
	a.mu.Lock()
	tok, exp = a.token, a.expires
	a.mu.Unlock()
	if tok != "" && a.now().Before(exp) {
		return tok, nil
	}
	q := url.Values{"corpid": {a.CorpID}, "corpsecret": {a.Secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.api()+"/cgi-bin/gettoken?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	r, err := do(hc(a.Client), req)
	if err != nil {
		return "", fmt.Errorf("wecom gettoken: %w", err)
	}
	tok, _ = r["access_token"].(string)
	secs, _ := r["expires_in"].(float64)
	if tok == "" {
		return "", fmt.Errorf("wecom gettoken: no access_token")
	}
	// Refresh five minutes early (or at half life for short tokens) so a send does not race the expiry.
	life := time.Duration(secs) * time.Second
	margin := min(5*time.Minute, life/2)
	a.mu.Lock()
	a.token, a.expires = tok, a.now().Add(life-margin)
	a.mu.Unlock()
	return tok, nil
}

// invalidate forgets tok if it is still the cached one; a token another sender already replaced stays.
func (a *App) invalidate(tok string) {
	a.mu.Lock()
	if a.token == tok {
		a.token = ""
	}
	a.mu.Unlock()
}

// Send sends markdown content to users (WeChat Work user ids). A token WeChat Work calls expired or invalid
// is dropped and the message sent once more with a fresh one.
func (a *App) Send(ctx context.Context, users []string, content string) (string, error) {
	if a.CorpID == "" || a.Secret == "" {
		return "", &Error{Code: 93000, Msg: "wecom application not configured"}
	}
	dup := a.DuplicateCheck
	if dup <= 0 {
		dup = 30 * time.Minute
	}
	body := map[string]any{"touser": strings.Join(users, "|"), "msgtype": "markdown", "agentid": a.AgentID,
		"markdown": map[string]string{"content": content}, "enable_duplicate_check": 1,
		"duplicate_check_interval": int(min(dup, 4*time.Hour) / time.Second)}
	for try := 0; ; try++ {
		tok, err := a.Token(ctx)
		if err != nil {
			return "", err
		}
		r, err := post(ctx, hc(a.Client), a.api()+"/cgi-bin/message/send?access_token="+url.QueryEscape(tok), body)
		if we, ok := err.(*Error); ok && try == 0 && (we.Code == CodeTokenExpired || we.Code == CodeInvalidToken) {
			a.invalidate(tok)
			continue
		}
		if err != nil {
			return "", err
		}
		id, _ := r["msgid"].(string)
		return id, nil
	}
}

package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"
)

// Gateway posts a JSON body built from a template to a provincial SMS platform's URL, with one authentication
// header and the idempotency key in the Idempotency-Key header. A 2xx answer is success; 429 and 5xx are
// retried; other 4xx are permanent.
type Gateway struct {
	URL string
	// AuthHeader is "Name: value" (e.g. "Authorization: Bearer …"); empty: none.
	AuthHeader string
	// Body is a text/template producing the JSON body; fields .Phone .Text .Template .IdemKey .Params (map);
	// the function json quotes a value. Empty: DefaultGatewayBody.
	Body   string
	Client *http.Client

	tmpl *template.Template
}

// DefaultGatewayBody is the body template used when none is configured.
const DefaultGatewayBody = `{"phone":{{json .Phone}},"content":{{json .Text}},"template":{{json .Template}},"params":{{json .Params}},"request_id":{{json .IdemKey}}}`

// NewGateway parses the body template.
func NewGateway(g Gateway) (*Gateway, error) {
	body := g.Body
	if body == "" {
		body = DefaultGatewayBody
	}
	t, err := template.New("body").Funcs(template.FuncMap{"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}).Parse(body)
	if err != nil {
		return nil, fmt.Errorf("sms gateway body template: %w", err)
	}
	if g.AuthHeader != "" {
		if name, _, ok := strings.Cut(g.AuthHeader, ":"); !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("sms gateway auth header must be \"Name: value\"")
		}
	}
	g.tmpl = t
	return &g, nil
}

// Send posts the message.
func (g *Gateway) Send(ctx context.Context, m Message) (string, error) {
	if g.URL == "" || g.tmpl == nil {
		return "", ErrNotConfigured
	}
	params := map[string]string{}
	for _, p := range m.Params {
		params[p.Name] = p.Value
	}
	var buf bytes.Buffer
	err := g.tmpl.Execute(&buf, map[string]any{"Phone": m.Phone, "Text": m.Text, "Template": m.Template, "IdemKey": m.IdemKey, "Params": params})
	if err != nil {
		return "", &Error{Provider: "gateway", Code: "template", Message: err.Error(), Perm: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, &buf)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if m.IdemKey != "" {
		req.Header.Set("Idempotency-Key", m.IdemKey)
	}
	if name, val, ok := strings.Cut(g.AuthHeader, ":"); ok {
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(val))
	}
	resp, err := client(g.Client).Do(req)
	if err != nil {
		return "", fmt.Errorf("sms gateway: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return "", httpStatusError("gateway", resp.StatusCode, string(raw))
	}
	var r struct {
		ID string `json:"id"`
	}
	json.Unmarshal(raw, &r)
	return r.ID, nil
}

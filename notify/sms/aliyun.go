package sms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- Alibaba Cloud's RPC signature is HMAC-SHA1 by its specification
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Aliyun is Alibaba Cloud SMS (dysmsapi, API version 2017-05-25), signed as Alibaba's RPC signature
// documentation specifies: the parameters sorted by name and percent-encoded (RFC 3986) into a canonicalised
// query string, StringToSign = METHOD & percentEncode("/") & percentEncode(query), Signature =
// base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)).
type Aliyun struct {
	Endpoint        string // default https://dysmsapi.aliyuncs.com/
	AccessKeyID     string
	AccessKeySecret string
	SignName        string // registered signature (签名)
	RegionID        string // default cn-hangzhou
	Client          *http.Client
	Now             func() time.Time
}

// Send calls SendSms. OutId carries the idempotency key (Alibaba echoes it in delivery receipts).
func (p *Aliyun) Send(ctx context.Context, m Message) (string, error) {
	if p.AccessKeyID == "" || p.AccessKeySecret == "" || p.SignName == "" {
		return "", ErrNotConfigured
	}
	tp := map[string]string{}
	for _, prm := range m.Params {
		tp[prm.Name] = prm.Value
	}
	tpJSON, err := json.Marshal(tp)
	if err != nil {
		return "", err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	region := p.RegionID
	if region == "" {
		region = "cn-hangzhou"
	}
	params := map[string]string{
		"AccessKeyId":      p.AccessKeyID,
		"Action":           "SendSms",
		"Format":           "JSON",
		"RegionId":         region,
		"SignatureMethod":  "HMAC-SHA1",
		"SignatureNonce":   nonce(),
		"SignatureVersion": "1.0",
		"Timestamp":        now().UTC().Format("2006-01-02T15:04:05Z"),
		"Version":          "2017-05-25",
		"PhoneNumbers":     m.Phone,
		"SignName":         p.SignName,
		"TemplateCode":     m.Template,
		"TemplateParam":    string(tpJSON),
	}
	if m.IdemKey != "" {
		params["OutId"] = m.IdemKey
	}
	params["Signature"] = AliyunSign(http.MethodPost, params, p.AccessKeySecret)
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	endpoint := p.Endpoint
	if endpoint == "" {
		endpoint = "https://dysmsapi.aliyuncs.com/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client(p.Client).Do(req)
	if err != nil {
		return "", fmt.Errorf("aliyun sms: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r struct {
		Code      string `json:"Code"`
		Message   string `json:"Message"`
		BizID     string `json:"BizId"`
		RequestID string `json:"RequestId"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Code == "" {
		return "", httpStatusError("aliyun", resp.StatusCode, string(body))
	}
	if r.Code == "OK" {
		return r.BizID, nil
	}
	return "", aliyunError(r.Code, r.Message)
}

// aliyunError sorts Alibaba's error codes: throttling waits, number and template errors are permanent, the rest
// (signature, keys, service errors) is retried, since an operator can fix a key within the retry budget.
func aliyunError(code, msg string) error {
	e := &Error{Provider: "aliyun", Code: code, Message: msg}
	switch {
	case code == "isv.BUSINESS_LIMIT_CONTROL" || strings.HasPrefix(code, "Throttling"):
		e.Retry = time.Minute
	case code == "isv.MOBILE_NUMBER_ILLEGAL" || code == "isv.SMS_TEMPLATE_ILLEGAL" || code == "isv.SMS_SIGNATURE_ILLEGAL" ||
		code == "isv.TEMPLATE_MISSING_PARAMETERS" || code == "isv.INVALID_PARAMETERS" || code == "isv.BLACK_KEY_CONTROL_LIMIT" ||
		code == "isv.PARAM_LENGTH_LIMIT" || code == "isv.MOBILE_COUNT_OVER_LIMIT":
		e.Perm = true
	}
	return e
}

// AliyunSign returns the RPC signature of params (without Signature) for method under secret.
func AliyunSign(method string, params map[string]string, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(AliyunStringToSign(method, params)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// AliyunStringToSign builds the string Alibaba signs: the canonicalised query string of params (Signature
// excluded) under the method and the percent-encoded "/".
func AliyunStringToSign(method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(PercentEncode(k))
		b.WriteByte('=')
		b.WriteString(PercentEncode(params[k]))
	}
	return method + "&" + PercentEncode("/") + "&" + PercentEncode(b.String())
}

// PercentEncode is RFC 3986 encoding as Alibaba specifies it: everything but A-Z a-z 0-9 - _ . ~ is %XX of its
// UTF-8 bytes, in upper-case hex (so a space is %20, '*' is %2A, and '~' stays).
func PercentEncode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func nonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Tencent is Tencent Cloud SMS (SendSms, API version 2021-01-11), signed with TC3-HMAC-SHA256 as Tencent's
// "Signature v3" documentation specifies: a canonical request over the method, "/", the empty query, the signed
// headers content-type, host and x-tc-action and the SHA-256 of the JSON body; a string to sign with the
// timestamp and the credential scope <date>/sms/tc3_request; and a signing key derived by HMAC-SHA256 chaining
// "TC3"+SecretKey → date → service → "tc3_request".
type Tencent struct {
	Endpoint  string // default https://sms.tencentcloudapi.com/
	SecretID  string
	SecretKey string
	Region    string // default ap-guangzhou
	SdkAppID  string // SmsSdkAppId
	SignName  string
	Client    *http.Client
	Now       func() time.Time
}

// TencentAction, TencentVersion and TencentService are the constants of SendSms.
const (
	TencentAction  = "SendSms"
	TencentVersion = "2021-01-11"
	TencentService = "sms"
	tencentCT      = "application/json; charset=utf-8"
)

type tencentRequest struct {
	PhoneNumberSet   []string `json:"PhoneNumberSet"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	SignName         string   `json:"SignName"`
	TemplateID       string   `json:"TemplateId"`
	TemplateParamSet []string `json:"TemplateParamSet"`
	SessionContext   string   `json:"SessionContext,omitempty"`
}

// Send calls SendSms for one number. SessionContext carries the idempotency key (Tencent returns it in the
// status set and in receipts).
func (p *Tencent) Send(ctx context.Context, m Message) (string, error) {
	if p.SecretID == "" || p.SecretKey == "" || p.SdkAppID == "" || p.SignName == "" {
		return "", ErrNotConfigured
	}
	vals := make([]string, len(m.Params))
	for i, prm := range m.Params {
		vals[i] = prm.Value
	}
	body, err := json.Marshal(tencentRequest{PhoneNumberSet: []string{"+86" + m.Phone}, SmsSdkAppID: p.SdkAppID,
		SignName: p.SignName, TemplateID: m.Template, TemplateParamSet: vals, SessionContext: m.IdemKey})
	if err != nil {
		return "", err
	}
	endpoint := p.Endpoint
	if endpoint == "" {
		endpoint = "https://sms.tencentcloudapi.com/"
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("tencent sms: endpoint: %w", err)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	ts := now().Unix()
	region := p.Region
	if region == "" {
		region = "ap-guangzhou"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", tencentCT)
	req.Header.Set("X-TC-Action", TencentAction)
	req.Header.Set("X-TC-Version", TencentVersion)
	req.Header.Set("X-TC-Region", region)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("Authorization", TencentAuthorization(p.SecretID, p.SecretKey, u.Host, TencentAction, body, ts))
	resp, err := client(p.Client).Do(req)
	if err != nil {
		return "", fmt.Errorf("tencent sms: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r struct {
		Response struct {
			Error *struct {
				Code    string `json:"Code"`
				Message string `json:"Message"`
			} `json:"Error"`
			SendStatusSet []struct {
				SerialNo       string `json:"SerialNo"`
				Code           string `json:"Code"`
				Message        string `json:"Message"`
				SessionContext string `json:"SessionContext"`
			} `json:"SendStatusSet"`
			RequestID string `json:"RequestId"`
		} `json:"Response"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || (r.Response.Error == nil && len(r.Response.SendStatusSet) == 0) {
		return "", httpStatusError("tencent", resp.StatusCode, string(raw))
	}
	if e := r.Response.Error; e != nil {
		return "", tencentError(e.Code, e.Message)
	}
	st := r.Response.SendStatusSet[0]
	if !strings.EqualFold(st.Code, "Ok") {
		return "", tencentError(st.Code, st.Message)
	}
	return st.SerialNo, nil
}

func tencentError(code, msg string) error {
	e := &Error{Provider: "tencent", Code: code, Message: msg}
	switch {
	case code == "RequestLimitExceeded" || strings.HasPrefix(code, "LimitExceeded"):
		e.Retry = time.Minute
	case strings.HasPrefix(code, "InvalidParameterValue") || strings.HasPrefix(code, "UnsupportedOperation") ||
		code == "FailedOperation.TemplateIncorrectOrUnapproved" || code == "FailedOperation.SignatureIncorrectOrUnapproved" ||
		code == "FailedOperation.PhoneNumberInBlacklist":
		e.Perm = true
	}
	return e
}

// TencentAuthorization returns the Authorization header of a TC3-HMAC-SHA256 signed POST of body to host.
func TencentAuthorization(secretID, secretKey, host, action string, body []byte, ts int64) string {
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	scope := date + "/" + TencentService + "/tc3_request"
	sig := TencentSignature(secretKey, host, action, body, ts)
	return "TC3-HMAC-SHA256 Credential=" + secretID + "/" + scope + ", SignedHeaders=content-type;host;x-tc-action, Signature=" + sig
}

// TencentSignature computes the hex signature over the canonical request (content-type, host and x-tc-action
// signed, the action lower-cased as the documentation's example does).
func TencentSignature(secretKey, host, action string, body []byte, ts int64) string {
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	scope := date + "/" + TencentService + "/tc3_request"
	sum := sha256.Sum256(body)
	canonical := "POST\n/\n\n" +
		"content-type:" + tencentCT + "\nhost:" + host + "\nx-tc-action:" + strings.ToLower(action) + "\n\n" +
		"content-type;host;x-tc-action\n" + hex.EncodeToString(sum[:])
	creq := sha256.Sum256([]byte(canonical))
	sts := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, TencentService)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

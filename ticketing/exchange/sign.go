package exchange

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"hotline/ticketing/org"
)

// The signing headers, in both directions.
const (
	HeaderTimestamp = "X-Exchange-Timestamp" // Unix seconds
	HeaderNonce     = "X-Exchange-Nonce"     // 16-64 characters of A-Z a-z 0-9 _ -, never used twice
	HeaderSignature = "X-Exchange-Signature" // lowercase hex HMAC-SHA256
	// Skew is how far a request's timestamp may be from our clock either way.
	Skew = 5 * time.Minute
)

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// AuthError refuses a request that is not the platform's (401); Code says why, for the integrator.
type AuthError struct {
	Code   string // signature_missing, signature_invalid, timestamp_out_of_window, nonce_reused, unknown_platform
	Detail string
}

func (e *AuthError) Error() string { return "exchange: " + e.Code + ": " + e.Detail }
func (e *AuthError) Unwrap() error { return org.ErrAuth }

// StringToSign is what the signature covers: method, request target (path and query as sent), timestamp,
// nonce and the body, joined by newlines.
func StringToSign(method, target, timestamp, nonce string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(target)+len(timestamp)+len(nonce)+len(body)+4)
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, target...)
	b = append(b, '\n')
	b = append(b, timestamp...)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	return append(b, body...)
}

// Signature is the hex HMAC-SHA256 of StringToSign under secret.
func Signature(secret []byte, method, target, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(StringToSign(method, target, timestamp, nonce, body))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign sets the signing headers on req for body (which req must carry), with a fresh nonce.
func Sign(req *http.Request, secret []byte, body []byte, now time.Time) {
	var raw [16]byte
	rand.Read(raw[:])
	nonce := hex.EncodeToString(raw[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, Signature(secret, req.Method, req.URL.RequestURI(), ts, nonce, body))
}

// verify checks the signature and the timestamp window; the nonce's freshness is checked by the caller (it needs
// Redis and PostgreSQL). It returns the nonce.
func verify(secret []byte, method, target string, h http.Header, body []byte, now time.Time) (string, error) {
	ts, nonce, sig := h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature)
	if ts == "" || nonce == "" || sig == "" {
		return "", &AuthError{Code: "signature_missing", Detail: fmt.Sprintf("%s, %s and %s are required", HeaderTimestamp, HeaderNonce, HeaderSignature)}
	}
	if !nonceRE.MatchString(nonce) {
		return "", &AuthError{Code: "signature_invalid", Detail: "the nonce must be 16-64 characters of A-Z a-z 0-9 _ -"}
	}
	got, err := hex.DecodeString(sig)
	want := hmac.New(sha256.New, secret)
	want.Write(StringToSign(method, target, ts, nonce, body))
	if err != nil || !hmac.Equal(got, want.Sum(nil)) {
		return "", &AuthError{Code: "signature_invalid", Detail: "the signature does not match"}
	}
	// The window is checked after the signature, so an unsigned request learns nothing about our clock.
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", &AuthError{Code: "timestamp_out_of_window", Detail: "the timestamp must be Unix seconds"}
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Skew || d < -Skew {
		return "", &AuthError{Code: "timestamp_out_of_window", Detail: fmt.Sprintf("the timestamp is %s from our clock (at most %s either way)", d.Round(time.Second), Skew)}
	}
	return nonce, nil
}

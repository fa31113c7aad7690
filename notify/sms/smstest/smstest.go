// Package smstest runs local HTTP servers that speak the SMS providers' published request formats and verify
// their signatures, for tests and benchmarks: an Alibaba dysmsapi SendSms endpoint (RPC signature, HMAC-SHA1),
// a Tencent SendSms 2021-01-11 endpoint (TC3-HMAC-SHA256) and a generic gateway. Each records accepted
// messages by idempotency key (a retry with a key already accepted is answered with the first reference and
// not counted again, as a provider honouring the key would), counts every request, can be told to fail the
// next n requests, and can add latency. Servers stop with the test (t.Cleanup).
package smstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hotline/notify/sms"
)

// Received is one accepted message.
type Received struct {
	Phone    string
	Template string
	Params   map[string]string // Alibaba: TemplateParam; Tencent: "0", "1", ... ; gateway: params
	Text     string
	IdemKey  string
	Ref      string
}

// Server is a local provider endpoint.
type Server struct {
	URL string

	mu         sync.Mutex
	requests   int
	rejected   []string // reasons of refused requests (bad signature etc.)
	failNext   int
	failStatus int
	latency    time.Duration
	byKey      map[string]Received
	order      []string
	keys       []string // idempotency key of every request, accepted or not
	nonces     map[string]bool
}

func newServer(t testing.TB, h func(s *Server, w http.ResponseWriter, r *http.Request)) *Server {
	s := &Server{byKey: map[string]Received{}, nonces: map[string]bool{}, failStatus: http.StatusInternalServerError}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		lat := s.latency
		s.mu.Unlock()
		if lat > 0 {
			select {
			case <-time.After(lat):
			case <-r.Context().Done():
				return
			}
		}
		h(s, w, r)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL + "/"
	return s
}

// FailNext makes the next n requests fail with an HTTP 500 (before any other check).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// SetLatency delays every answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// Requests is the number of requests seen.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Rejected lists the reasons of refused requests.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Messages returns the accepted messages in order of first acceptance (one per idempotency key).
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.byKey[k])
	}
	return out
}

// Keys returns the idempotency key of every request that reached the provider logic (after FailNext).
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...)
}

// begin counts a request and reports whether it must fail now.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.failNext > 0 {
		s.failNext--
		return true
	}
	return false
}

func (s *Server) reject(reason string) {
	s.mu.Lock()
	s.rejected = append(s.rejected, reason)
	s.mu.Unlock()
}

// accept records m under its key and returns the reference (the first one for a repeated key).
func (s *Server) accept(m Received) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, m.IdemKey)
	key := m.IdemKey
	if key == "" {
		key = fmt.Sprintf("nokey-%d", s.requests)
	}
	if old, ok := s.byKey[key]; ok {
		return old.Ref
	}
	m.Ref = fmt.Sprintf("ref-%d", len(s.order)+1)
	s.byKey[key] = m
	s.order = append(s.order, key)
	return m.Ref
}

func (s *Server) freshNonce(n string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces[n] {
		return false
	}
	s.nonces[n] = true
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Aliyun starts an Alibaba dysmsapi endpoint that knows one AccessKey pair.
func Aliyun(t testing.TB, keyID, secret string) *Server {
	return newServer(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if s.begin() {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"Code": "ServiceUnavailable", "Message": "injected failure", "RequestId": "x"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, 400, map[string]string{"Code": "MissingParameter", "Message": err.Error()})
			return
		}
		// Alibaba accepts the parameters in the query (GET) or the form body (POST); r.Form has both.
		params := map[string]string{}
		for k, v := range r.Form {
			params[k] = v[0]
		}
		fail := func(code, msg string) {
			s.reject(code + ": " + msg)
			writeJSON(w, http.StatusBadRequest, map[string]string{"Code": code, "Message": msg, "RequestId": "x"})
		}
		for _, k := range []string{"AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
			"SignatureVersion", "Timestamp", "Version", "PhoneNumbers", "SignName", "TemplateCode", "Signature"} {
			if params[k] == "" {
				fail("MissingParameter", k)
				return
			}
		}
		if params["AccessKeyId"] != keyID {
			fail("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
			return
		}
		if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" || params["Action"] != "SendSms" || params["Version"] != "2017-05-25" {
			fail("InvalidParameter", "method, version or action")
			return
		}
		ts, err := time.Parse("2006-01-02T15:04:05Z", params["Timestamp"])
		if err != nil || time.Since(ts).Abs() > 15*time.Minute {
			fail("InvalidTimeStamp.Expired", params["Timestamp"])
			return
		}
		want := sms.AliyunSign(r.Method, params, secret)
		if params["Signature"] != want {
			fail("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
			return
		}
		if !s.freshNonce(params["SignatureNonce"]) {
			fail("SignatureNonceUsed", "Specified signature nonce was used already.")
			return
		}
		tp := map[string]string{}
		if v := params["TemplateParam"]; v != "" {
			if err := json.Unmarshal([]byte(v), &tp); err != nil {
				fail("isv.INVALID_JSON_PARAM", "TemplateParam is not JSON")
				return
			}
		}
		ref := s.accept(Received{Phone: params["PhoneNumbers"], Template: params["TemplateCode"], Params: tp, IdemKey: params["OutId"]})
		writeJSON(w, http.StatusOK, map[string]string{"Code": "OK", "Message": "OK", "BizId": ref, "RequestId": "req-" + ref})
	})
}

// Tencent starts a Tencent SendSms endpoint that knows one SecretId/SecretKey pair and one SmsSdkAppId.
func Tencent(t testing.TB, secretID, secretKey, appID string) *Server {
	return newServer(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		errResp := func(code, msg string) {
			s.reject(code + ": " + msg)
			writeJSON(w, http.StatusOK, map[string]any{"Response": map[string]any{"Error": map[string]string{"Code": code, "Message": msg}, "RequestId": "x"}})
		}
		if s.begin() {
			writeJSON(w, http.StatusOK, map[string]any{"Response": map[string]any{"Error": map[string]string{"Code": "InternalError", "Message": "injected failure"}, "RequestId": "x"}})
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			errResp("InvalidParameter", "POST application/json; charset=utf-8 expected")
			return
		}
		if r.Header.Get("X-TC-Action") != sms.TencentAction || r.Header.Get("X-TC-Version") != sms.TencentVersion || r.Header.Get("X-TC-Region") == "" {
			errResp("InvalidParameter", "X-TC-Action, X-TC-Version, X-TC-Region")
			return
		}
		ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
			errResp("AuthFailure.SignatureExpire", "timestamp")
			return
		}
		auth := r.Header.Get("Authorization")
		rest, ok := strings.CutPrefix(auth, "TC3-HMAC-SHA256 ")
		if !ok {
			errResp("AuthFailure.InvalidAuthorization", "algorithm")
			return
		}
		fields := map[string]string{}
		for _, part := range strings.Split(rest, ", ") {
			k, v, _ := strings.Cut(part, "=")
			fields[k] = v
		}
		cred := strings.Split(fields["Credential"], "/")
		date := time.Unix(ts, 0).UTC().Format("2006-01-02")
		if len(cred) != 4 || cred[0] != secretID || cred[1] != date || cred[2] != "sms" || cred[3] != "tc3_request" {
			errResp("AuthFailure.SecretIdNotFound", "credential "+fields["Credential"])
			return
		}
		if fields["SignedHeaders"] != "content-type;host;x-tc-action" {
			errResp("AuthFailure.InvalidAuthorization", "signed headers")
			return
		}
		if fields["Signature"] != sms.TencentSignature(secretKey, r.Host, r.Header.Get("X-TC-Action"), body, ts) {
			errResp("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
			return
		}
		var req struct {
			PhoneNumberSet   []string
			SmsSdkAppId      string
			SignName         string
			TemplateId       string
			TemplateParamSet []string
			SessionContext   string
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.PhoneNumberSet) != 1 || req.SignName == "" || req.TemplateId == "" {
			errResp("InvalidParameter", "body")
			return
		}
		if req.SmsSdkAppId != appID {
			errResp("InvalidParameterValue.SdkAppIdNotExist", req.SmsSdkAppId)
			return
		}
		params := map[string]string{}
		for i, v := range req.TemplateParamSet {
			params[strconv.Itoa(i)] = v
		}
		phone := strings.TrimPrefix(req.PhoneNumberSet[0], "+86")
		ref := s.accept(Received{Phone: phone, Template: req.TemplateId, Params: params, IdemKey: req.SessionContext})
		writeJSON(w, http.StatusOK, map[string]any{"Response": map[string]any{"RequestId": "req-" + ref,
			"SendStatusSet": []map[string]any{{"SerialNo": ref, "PhoneNumber": req.PhoneNumberSet[0], "Fee": 1,
				"SessionContext": req.SessionContext, "Code": "Ok", "Message": "send success", "IsoCode": "CN"}}}})
	})
}

// Gateway starts a generic gateway that wants authHeader ("Name: value") and the default body shape.
func Gateway(t testing.TB, authHeader string) *Server {
	name, val, _ := strings.Cut(authHeader, ":")
	return newServer(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if s.begin() {
			http.Error(w, "injected failure", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get(strings.TrimSpace(name)) != strings.TrimSpace(val) {
			s.reject("auth")
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		var b struct {
			Phone     string            `json:"phone"`
			Content   string            `json:"content"`
			Template  string            `json:"template"`
			Params    map[string]string `json:"params"`
			RequestID string            `json:"request_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Phone == "" {
			s.reject("body")
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key != b.RequestID {
			s.reject("idempotency key header and body differ")
			http.Error(w, "key mismatch", http.StatusBadRequest)
			return
		}
		ref := s.accept(Received{Phone: b.Phone, Template: b.Template, Params: b.Params, Text: b.Content, IdemKey: key})
		writeJSON(w, http.StatusOK, map[string]string{"id": ref})
	})
}

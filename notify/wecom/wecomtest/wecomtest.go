// Package wecomtest runs a local WeChat Work API for tests: /cgi-bin/gettoken issues access tokens for one corp
// id and secret, /cgi-bin/message/send accepts application messages with a live token (42001 for an expired
// one), /cgi-bin/webhook/send accepts group robot messages for known keys. It can expire every token at once
// and answer the next send with a rate-limit errcode (45009) once.
package wecomtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Message is one accepted message.
type Message struct {
	To      string // touser (application) or robot key
	Content string
}

// Server is the local API.
type Server struct {
	URL string

	mu          sync.Mutex
	corp, sec   string
	tokens      map[string]bool // token → live
	tokenCalls  int
	sends       int
	rateOnce    bool
	expiredHits int
	app         []Message
	robot       []Message
	robotKeys   map[string]bool
	latency     time.Duration
	failNext    int
}

// New starts the server for one corp.
func New(t testing.TB, corpID, secret string) *Server {
	s := &Server{corp: corpID, sec: secret, tokens: map[string]bool{}, robotKeys: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", s.gettoken)
	mux.HandleFunc("POST /cgi-bin/message/send", s.send)
	mux.HandleFunc("POST /cgi-bin/webhook/send", s.webhook)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		lat := s.latency
		s.mu.Unlock()
		if lat > 0 {
			time.Sleep(lat)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) gettoken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenCalls++
	if r.URL.Query().Get("corpid") != s.corp || r.URL.Query().Get("corpsecret") != s.sec {
		reply(w, map[string]any{"errcode": 40001, "errmsg": "invalid secret"})
		return
	}
	tok := fmt.Sprintf("tok-%d", s.tokenCalls)
	s.tokens[tok] = true
	reply(w, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": tok, "expires_in": 7200})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	var b struct {
		ToUser   string `json:"touser"`
		MsgType  string `json:"msgtype"`
		AgentID  int64  `json:"agentid"`
		Markdown struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		reply(w, map[string]any{"errcode": 47001, "errmsg": "data format error"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends++
	live, known := s.tokens[r.URL.Query().Get("access_token")]
	switch {
	case !known:
		reply(w, map[string]any{"errcode": 40014, "errmsg": "invalid access_token"})
	case !live:
		s.expiredHits++
		reply(w, map[string]any{"errcode": 42001, "errmsg": "access_token expired"})
	case s.rateOnce:
		s.rateOnce = false
		reply(w, map[string]any{"errcode": 45009, "errmsg": "api freq out of limit"})
	case b.MsgType != "markdown" || b.ToUser == "" || b.Markdown.Content == "":
		reply(w, map[string]any{"errcode": 44004, "errmsg": "empty content"})
	default:
		s.app = append(s.app, Message{To: b.ToUser, Content: b.Markdown.Content})
		reply(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": fmt.Sprintf("msg-%d", len(s.app))})
	}
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	var b struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	json.NewDecoder(r.Body).Decode(&b)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.URL.Query().Get("key")
	switch {
	case s.failNext > 0:
		s.failNext--
		http.Error(w, "unavailable", http.StatusBadGateway)
	case !s.robotKeys[key]:
		reply(w, map[string]any{"errcode": 93000, "errmsg": "invalid webhook url"})
	case s.rateOnce:
		s.rateOnce = false
		reply(w, map[string]any{"errcode": 45009, "errmsg": "api freq out of limit"})
	case b.MsgType != "markdown" || b.Markdown.Content == "":
		reply(w, map[string]any{"errcode": 44004, "errmsg": "empty content"})
	default:
		s.robot = append(s.robot, Message{To: key, Content: b.Markdown.Content})
		reply(w, map[string]any{"errcode": 0, "errmsg": "ok"})
	}
}

// RobotURL registers a robot key and returns its webhook URL.
func (s *Server) RobotURL(key string) string {
	s.mu.Lock()
	s.robotKeys[key] = true
	s.mu.Unlock()
	return s.URL + "/cgi-bin/webhook/send?key=" + key
}

// ExpireTokens makes every token issued so far expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for k := range s.tokens {
		s.tokens[k] = false
	}
	s.mu.Unlock()
}

// RateLimitOnce answers the next send (application or robot) with errcode 45009.
func (s *Server) RateLimitOnce() {
	s.mu.Lock()
	s.rateOnce = true
	s.mu.Unlock()
}

// FailRobotNext makes the next n robot posts fail with HTTP 502.
func (s *Server) FailRobotNext(n int) {
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

// TokenCalls is the number of gettoken requests.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// AppMessages and RobotMessages return what was accepted.
func (s *Server) AppMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.app...)
}

func (s *Server) RobotMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.robot...)
}

package exchange_test

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

	"hotline/ticketing/exchange"
)

// testPlatform is a 12345 platform speaking the 12345v1 contract on a real loopback HTTP server: it checks our
// signatures, takes feedback once per idempotency key, serves polled messages, open orders and attachments.
type testPlatform struct {
	t      testing.TB
	secret []byte
	srv    *httptest.Server

	mu         sync.Mutex
	down       bool                   // answer 503 to feedback
	refuse     bool                   // answer 400 to feedback
	deliveries map[string]int         // idempotency key → requests seen on the wire
	applied    []map[string]any       // feedback applied, once per key, in order
	messages   []json.RawMessage      // what a poll returns, by index (the cursor is the next index)
	open       []exchange.RemoteOrder // what the open-order list returns
	files      map[string][]byte      // path → attachment content
	badSigs    int
}

func newTestPlatform(t testing.TB, secret []byte) *testPlatform {
	p := &testPlatform{t: t, secret: secret, deliveries: map[string]int{}, files: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}/feedback", p.feedback)
	mux.HandleFunc("GET /orders/changes", p.changes)
	mux.HandleFunc("GET /orders", p.openOrders)
	mux.HandleFunc("GET /files/{name}", p.file)
	p.srv = httptest.NewServer(p.checkSignature(mux))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testPlatform) checkSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		want := exchange.Signature(p.secret, r.Method, r.URL.RequestURI(), r.Header.Get(exchange.HeaderTimestamp),
			r.Header.Get(exchange.HeaderNonce), body)
		if r.Header.Get(exchange.HeaderSignature) != want {
			p.mu.Lock()
			p.badSigs++
			p.mu.Unlock()
			http.Error(w, `{"code":"signature_invalid"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *testPlatform) feedback(w http.ResponseWriter, r *http.Request) {
	var fb map[string]any
	if err := json.NewDecoder(r.Body).Decode(&fb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deliveries[key]++
	if p.down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	if p.refuse {
		http.Error(w, `{"code":"unknown_action"}`, http.StatusBadRequest)
		return
	}
	if key == "" || fb["idempotency_key"] != key || fb["order_id"] != r.PathValue("id") {
		http.Error(w, "key or order mismatch", http.StatusBadRequest)
		return
	}
	for _, a := range p.applied {
		if a["idempotency_key"] == key {
			w.WriteHeader(http.StatusOK) // a repeat: acknowledged, not applied again
			return
		}
	}
	p.applied = append(p.applied, fb)
	w.WriteHeader(http.StatusOK)
}

func (p *testPlatform) changes(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	if from > len(p.messages) {
		from = len(p.messages)
	}
	json.NewEncoder(w).Encode(map[string]any{"messages": p.messages[from:], "next_cursor": strconv.Itoa(len(p.messages))})
}

func (p *testPlatform) openOrders(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.URL.Query().Get("status") != "open" {
		http.Error(w, "status=open only", http.StatusBadRequest)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"orders": p.open})
}

func (p *testPlatform) file(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b, ok := p.files[r.URL.Path]
	p.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func (p *testPlatform) set(f func(p *testPlatform)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// appliedActions lists the feedback actions applied for an order, in order.
func (p *testPlatform) appliedActions(orderID string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, a := range p.applied {
		if a["order_id"] == orderID {
			out = append(out, fmt.Sprint(a["action"]))
		}
	}
	return out
}

func (p *testPlatform) deliveriesOf(action, orderID string) (wire int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.applied {
		if a["order_id"] == orderID && a["action"] == action {
			return p.deliveries[fmt.Sprint(a["idempotency_key"])]
		}
	}
	return 0
}

// signed is a push as the platform sends it: the request target, headers and body, signed at now.
type signed struct {
	target string
	header http.Header
	body   []byte
}

func (p *testPlatform) sign(platform string, body []byte, now time.Time, nonce string) signed {
	target := "/api/v1/exchange/" + platform + "/orders"
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(exchange.HeaderTimestamp, ts)
	h.Set(exchange.HeaderNonce, nonce)
	h.Set(exchange.HeaderSignature, exchange.Signature(p.secret, http.MethodPost, target, ts, nonce, body))
	return signed{target: target, header: h, body: body}
}

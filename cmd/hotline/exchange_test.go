package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"hotline/ticketing/exchange"
)

// killPlatform is a 12345 platform on a loopback HTTP server that applies feedback once per Idempotency-Key and
// can hold its answer to the first 签收, so the test can kill hotline while that request is in flight.
type killPlatform struct {
	secret []byte
	mu     sync.Mutex
	wire   map[string]int // idempotency key → requests seen
	action map[string]string
	order  []string // keys applied, in order
	hold   chan struct{}
	held   chan struct{} // closed when the first sign arrived and is being held
	once   sync.Once
}

func (p *killPlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get(exchange.HeaderSignature) != exchange.Signature(p.secret, r.Method, r.URL.RequestURI(),
		r.Header.Get(exchange.HeaderTimestamp), r.Header.Get(exchange.HeaderNonce), body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		// The daily reconciliation asks for our open orders (the first round after a start runs it).
		w.Write([]byte(`{"orders":[{"order_id":"YY-K-1","status":"open"}]}`))
		return
	}
	var fb struct{ Action, IdempotencyKey string }
	json.Unmarshal(body, &fb)
	key := r.Header.Get("Idempotency-Key")
	p.mu.Lock()
	p.wire[key]++
	first := p.action[key] == ""
	if first {
		p.action[key] = fb.Action
		p.order = append(p.order, key)
	}
	p.mu.Unlock()
	if first && fb.Action == "sign" {
		// Applied on our side; hotline is killed before it hears so.
		p.once.Do(func() { close(p.held) })
		<-p.hold
	}
	w.WriteHeader(http.StatusOK)
}

func (p *killPlatform) applied() (actions []string, wire map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wire = map[string]int{}
	for _, k := range p.order {
		actions = append(actions, p.action[k])
		wire[p.action[k]] = p.wire[k]
	}
	return actions, wire
}

// The real binary is SIGKILLed after it committed the 签收 and while the platform holds the request that carries
// it: after a restart the 签收 is sent again with the same key, the 答复 follows, and the platform has applied
// each once.
func TestExchangeSIGKILLBetweenCommitAndSend(t *testing.T) {
	secret := []byte("kill-test-secret-of-32-bytes-len")
	kp := &killPlatform{secret: secret, wire: map[string]int{}, action: map[string]string{}, hold: make(chan struct{}), held: make(chan struct{})}
	srv := httptest.NewServer(kp)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-kp.hold:
		default:
			close(kp.hold)
		}
	})
	r := newFaultRig(t, "HOTLINE_EXCHANGE_PLATFORMS=name=yiyang,url="+srv.URL, "HOTLINE_EXCHANGE_SECRETS=yiyang="+string(secret),
		"HOTLINE_EXCHANGE_RETRY_BASE=100ms", "HOTLINE_EXCHANGE_RETRY_MAX=500ms")
	r.shutdown()
	ctx := context.Background()
	if _, err := r.check.Exec(ctx, `INSERT INTO exchange_category_map (platform, code, category) VALUES ('yiyang', '0301', 'monitoring_help')`); err != nil {
		t.Fatal(err)
	}
	p := startHotline(t, r.env, "serve")
	r.waitReady()

	if code, ack := pushOrder(t, r.base, "yiyang", secret, "YY-K-1", map[string]any{
		"content": "家中老人住院,收入下降", "category_code": "0301", "region_code": r.region[:6], "appeal_type": "求助"}); code != 201 {
		t.Fatalf("push: %d %s", code, ack)
	}
	var id int64
	var version int
	if err := r.check.QueryRow(ctx, `SELECT t.id, t.version FROM tickets t JOIN exchange_orders o ON o.ticket_id = t.id
		WHERE o.order_id = 'YY-K-1'`).Scan(&id, &version); err != nil {
		t.Fatal(err)
	}
	a, err := r.do("POST", fmt.Sprintf("/api/v1/tickets/%d/sign", id), r.staff, "", map[string]any{"version": version})
	if err != nil || a.code != 200 {
		t.Fatalf("sign: %v %d %s", err, a.code, a.body)
	}
	select {
	case <-kp.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the platform never got the 签收; output:\n%s", p.out.String())
	}
	p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	close(kp.hold)

	p2 := startHotline(t, r.env, "serve")
	r.waitReady()
	a, err = r.do("POST", fmt.Sprintf("/api/v1/tickets/%d/reply", id), r.staff, "", map[string]any{"version": version + 1, "reply": "已核实并落实帮扶"})
	if err != nil || a.code != 200 {
		t.Fatalf("reply: %v %d %s", err, a.code, a.body)
	}
	waitFor(t, "签收 and 答复 at the platform", func() bool {
		acts, _ := kp.applied()
		return len(acts) >= 2
	})
	var v struct{ Exchange exchange.TicketSync }
	waitFor(t, "已同步 on the ticket", func() bool {
		a, err := r.do("GET", fmt.Sprintf("/api/v1/tickets/%d", id), r.staff, "", nil)
		return err == nil && json.Unmarshal(a.body, &v) == nil && v.Exchange.Sync == "synced"
	})
	acts, wire := kp.applied()
	if !slices.Equal(acts, []string{"sign", "reply"}) || wire["sign"] != 2 || wire["reply"] != 1 {
		t.Fatalf("platform applied %v with deliveries %v; want sign (2 on the wire, the second recognised) then reply (1)", acts, wire)
	}
	if v.Exchange.SyncLabel != "已同步" {
		t.Fatalf("label %q", v.Exchange.SyncLabel)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := p2.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, p2.out.String())
	}
}

// pushOrder pushes a work order to hotline as the platform does (12345v1, signed with secret) and returns the
// status and the answer.
func pushOrder(t *testing.T, base, platform string, secret []byte, orderID string, order map[string]any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "order", "order_id": orderID, "order": order})
	target := "/api/v1/exchange/" + platform + "/orders"
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), fmt.Sprintf("test-nonce-%s-%d", orderID, time.Now().UnixNano())
	req, _ := http.NewRequest("POST", base+target, bytes.NewReader(body))
	req.Header.Set(exchange.HeaderTimestamp, ts)
	req.Header.Set(exchange.HeaderNonce, nonce)
	req.Header.Set(exchange.HeaderSignature, exchange.Signature(secret, "POST", target, ts, nonce, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ack, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, ack
}

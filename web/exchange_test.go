package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/exchange"
	"hotline/ticketing/org"
)

// The push endpoint over HTTP: a signed order makes a ticket (201), the same order again answers with it (200),
// a replayed request and a wrong signature get 401 with the contract's codes; the ticket API shows the platform
// side; admins map codes.
func TestExchangePushOverHTTP(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	svc := ticketing.NewService(db, ticketing.Options{})
	secret := []byte("web-test-secret-of-32-bytes-long")
	ex, err := exchange.New(exchange.Config{DB: db, Redis: rdb, Prefix: prefix, Tickets: svc,
		Platforms: []exchange.Platform{{Name: "yiyang", URL: "http://127.0.0.1:9", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	svc.OnTransition(ex.Hook())
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Exchange: ex,
		Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix}}))
	t.Cleanup(srv.Close)
	f := &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}
	admin := f.user("admin", org.RoleAdmin, org.CodeBureau)
	clerk := f.user("heshan1", org.RoleStaff, "430903")

	var m exchange.Mapping
	if code := f.call(admin, "PUT", "/api/v1/exchange/platforms/yiyang/mappings/categories/0301", map[string]string{"ours": "monitoring_help"}, nil, &m); code != 200 || m.Ours != "monitoring_help" {
		t.Fatalf("save mapping: %d %+v", code, m)
	}
	var bad apiError
	if code := f.call(admin, "PUT", "/api/v1/exchange/platforms/yiyang/mappings/categories/0302", map[string]string{"ours": "nope"}, nil, &bad); code != 400 || bad.Fields["ours"] == "" {
		t.Fatalf("mapping to no category: %d %+v", code, bad)
	}
	if code := f.call(clerk, "GET", "/api/v1/exchange/platforms/yiyang/unmapped", nil, nil, nil); code != 403 {
		t.Fatalf("a clerk read the unmapped report: %d", code)
	}

	seq := 0
	push := func(body []byte, sig string) (int, []byte, map[string]string) {
		seq++
		target := "/api/v1/exchange/yiyang/orders"
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), fmt.Sprintf("web-nonce-%08d-%d", seq, time.Now().UnixNano())
		h := map[string]string{exchange.HeaderTimestamp: ts, exchange.HeaderNonce: nonce, "Content-Type": "application/json",
			exchange.HeaderSignature: exchange.Signature(secret, "POST", target, ts, nonce, body)}
		if sig != "" {
			h[exchange.HeaderSignature] = sig
		}
		return exchangeSend(t, srv.URL+target, body, h), body, h
	}
	order, _ := json.Marshal(map[string]any{"type": "order", "order_id": "YY-W-1", "order": map[string]any{
		"content": "收入下降,申请帮扶", "caller_name": "刘建国", "caller_phone": "13807371234", "category_code": "0301",
		"region_code": "430903", "appeal_type": "求助", "deadline": "2026-12-10T18:00:00+08:00"}})
	code, _, hdr := push(order, "")
	if code != 201 {
		t.Fatalf("first push: %d", code)
	}
	if code, _, _ := push(order, ""); code != 200 {
		t.Fatalf("the same order again: %d", code)
	}
	// The very same request again (same nonce and signature): refused as a replay.
	var e apiError
	if code := exchangeSendJSON(t, srv.URL+"/api/v1/exchange/yiyang/orders", order, hdr, &e); code != 401 || e.Code != "nonce_reused" {
		t.Fatalf("replay: %d %+v", code, e)
	}
	if code, _, _ := push(order, "00"+exchange.Signature(secret, "POST", "/x", "1", "n", nil)[2:]); code != 401 {
		t.Fatalf("wrong signature: %d", code)
	}
	var malformed apiError
	bodyBad := []byte(`{"type":"order","order_id":"YY-W-2","order":{"category_code":"0301","appeal_type":"投诉"}}`)
	seq++
	target := "/api/v1/exchange/yiyang/orders"
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), fmt.Sprintf("web-nonce-bad-%08d", seq)
	if code := exchangeSendJSON(t, srv.URL+target, bodyBad, map[string]string{exchange.HeaderTimestamp: ts, exchange.HeaderNonce: nonce,
		exchange.HeaderSignature: exchange.Signature(secret, "POST", target, ts, nonce, bodyBad)}, &malformed); code != 400 || malformed.Fields["order.content"] == "" {
		t.Fatalf("an order without content: %d %+v", code, malformed)
	}

	var id int64
	db.QueryRow(t.Context(), `SELECT ticket_id FROM exchange_orders WHERE order_id = 'YY-W-1'`).Scan(&id)
	var v struct {
		Ticket   ticketing.Ticket
		Exchange *exchange.TicketSync
	}
	if code := f.call(clerk, "GET", fmt.Sprintf("/api/v1/tickets/%d", id), nil, nil, &v); code != 200 || v.Exchange == nil ||
		v.Exchange.OrderID != "YY-W-1" || v.Exchange.PlatformDeadline == nil || v.Exchange.SyncLabel != "无需同步" {
		t.Fatalf("ticket API: %d %+v", code, v.Exchange)
	}
	if code := f.call(clerk, "POST", fmt.Sprintf("/api/v1/tickets/%d/sign", id), map[string]any{"version": v.Ticket.Version}, nil, nil); code != 200 {
		t.Fatalf("sign: %d", code)
	}
	f.call(clerk, "GET", fmt.Sprintf("/api/v1/tickets/%d", id), nil, nil, &v)
	if v.Exchange.Sync != "pending" || v.Exchange.SyncLabel != "同步中" || len(v.Exchange.Outbound) != 1 || v.Exchange.Outbound[0].Action != "sign" {
		t.Fatalf("after sign: %+v", v.Exchange)
	}
	var list struct{ Outbound []exchange.OutboundRow }
	if code := f.call(admin, "GET", "/api/v1/exchange/outbound?state=pending", nil, nil, &list); code != 200 || len(list.Outbound) != 1 {
		t.Fatalf("outbound list: %d %+v", code, list)
	}
	if code := f.call(admin, "POST", fmt.Sprintf("/api/v1/exchange/outbound/%d/retry", list.Outbound[0].ID), "{}", nil, &e); code != 409 {
		t.Fatalf("retry of a pending row: %d %+v", code, e)
	}
}

func exchangeSend(t *testing.T, url string, body []byte, h map[string]string) int {
	return exchangeSendJSON(t, url, body, h, nil)
}

func exchangeSendJSON(t *testing.T, url string, body []byte, h map[string]string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %d %s", url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

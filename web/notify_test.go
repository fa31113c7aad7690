package web

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/notify/deliver"
	"hotline/notify/wecom"
	"hotline/notify/wecom/wecomtest"
	"hotline/ticketing"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// newNotifyAPI serves the API with a notify service (WeChat Work robot channel) on the test's PostgreSQL and
// Redis; box seals the phones it stores.
func newNotifyAPI(t *testing.T) (f *apiFixture, nsvc *deliver.Service, box *pii.Box) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	box, _ = pii.New(make([]byte, 32))
	nsvc, err := deliver.New(deliver.Options{DB: db, Redis: rdb, Prefix: prefix, Box: box, Channels: deliver.Channels{Robot: &wecom.Robot{}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := ticketing.NewService(db, ticketing.Options{})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Notify: nsvc,
		Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix, PublicLimit: 5}}))
	t.Cleanup(srv.Close)
	return &apiFixture{t: t, srv: srv, db: db, rdb: rdb, prefix: prefix}, nsvc, box
}

func TestNotifyAdminAPI(t *testing.T) {
	f, nsvc, box := newNotifyAPI(t)
	db := f.db
	wc := wecomtest.New(t, "corp", "secret")
	admin := f.user("nadmin", org.RoleAdmin, "desk")
	agent := f.user("nagent", org.RoleAgent, "desk")

	var rules struct{ Rules []deliver.Rule }
	if code := f.call(agent, "GET", "/api/v1/notify/rules", nil, nil, nil); code != 403 {
		t.Fatalf("agent reads rules: %d", code)
	}
	if code := f.call(admin, "GET", "/api/v1/notify/rules", nil, nil, &rules); code != 200 || len(rules.Rules) == 0 {
		t.Fatalf("rules: %d %d", code, len(rules.Rules))
	}
	var p deliver.Preview
	if code := f.call(admin, "POST", "/api/v1/notify/templates/sla_red/preview", map[string]any{"vars": map[string]string{"unit": "测试局"}}, nil, &p); code != 200 || p.Body == "" {
		t.Fatalf("preview: %d %+v", code, p)
	}
	var apiErr apiError
	if code := f.call(admin, "PUT", "/api/v1/notify/templates/sla_red", map[string]any{"body": "{bogus}"}, nil, &apiErr); code != 400 || apiErr.Fields["body"] == "" {
		t.Fatalf("bad template: %d %+v", code, apiErr)
	}
	var unit deliver.UnitChannels
	u, _ := org.UnitByCode(context.Background(), db, "div-development")
	if code := f.call(admin, "PUT", "/api/v1/notify/units/"+itoa(int64(u.ID)), map[string]string{"head_phone": "13912345678", "email": "a@b.cn"}, nil, &unit); code != 200 || unit.HeadPhone != "139****5678" {
		t.Fatalf("unit channels: %d %+v", code, unit)
	}
	// An editor that only saw the masked phone keeps it with "keep" (the masked text is not stored in its place);
	// a field sent empty is cleared; keep names only the masked fields.
	if code := f.call(admin, "PUT", "/api/v1/notify/units/"+itoa(int64(u.ID)), map[string]any{"head_phone": "139****5678", "keep": []string{"head_phone"},
		"liaison_phone": "13812345678"}, nil, &unit); code != 200 || unit.HeadPhone != "139****5678" || unit.LiaisonPhone != "138****5678" || unit.Email != "" {
		t.Fatalf("unit channels with keep: %d %+v", code, unit)
	}
	var sealed []byte
	db.QueryRow(context.Background(), `SELECT head_phone_sealed FROM notify_unit_channels WHERE unit_id = $1`, int64(u.ID)).Scan(&sealed)
	if n, err := box.Open(pii.FieldPhone, sealed); err != nil || n != "13912345678" {
		t.Fatalf("kept head phone opens to %q, %v", n, err)
	}
	if code := f.call(admin, "PUT", "/api/v1/notify/units/"+itoa(int64(u.ID)), map[string]any{"keep": []string{"email"}, "liaison_phone": "12"}, nil, &apiErr); code != 400 ||
		apiErr.Fields["keep"] == "" || apiErr.Fields["liaison_phone"] == "" {
		t.Fatalf("keep of an unmasked field and a bad phone: %d %+v", code, apiErr)
	}
	if code := f.call(agent, "POST", "/api/v1/notify/optouts", map[string]string{"phone": "13900000001"}, nil, nil); code != 200 {
		t.Fatalf("agent records an opt-out: %d", code)
	}
	// A dead delivery (its robot was down past the budget) is listed, retried through the API, and sent.
	var id int64
	err := db.QueryRow(context.Background(), `INSERT INTO notify_deliveries (event_id, topic, recipient, channel, address,
		address_masked, template, body, idem_key, status, attempts, next_at, event_at, last_error)
		VALUES ('1-1', 'ticket.dispatch', 'unit:1:group', 'wecom_robot', $1, 'k***', 'unit_dispatched', '### 新工单', 'k', 'dead', 10, now(), now(), 'HTTP 502')
		RETURNING id`, wc.RobotURL("k1")).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Deliveries []deliver.Delivery }
	if code := f.call(admin, "GET", "/api/v1/notify/deliveries?status=dead", nil, nil, &list); code != 200 || len(list.Deliveries) != 1 || list.Deliveries[0].LastError != "HTTP 502" {
		t.Fatalf("dead list: %d %+v", code, list)
	}
	if code := f.call(agent, "POST", "/api/v1/notify/deliveries/"+itoa(id)+"/retry", nil, nil, nil); code != 403 {
		t.Fatalf("agent retry: %d", code)
	}
	var d deliver.Delivery
	if code := f.call(admin, "POST", "/api/v1/notify/deliveries/"+itoa(id)+"/retry", nil, nil, &d); code != 200 || d.Status != "pending" || d.NextAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("retry: %d %+v", code, d)
	}
	if code := f.call(admin, "POST", "/api/v1/notify/deliveries/"+itoa(id)+"/retry", nil, nil, &apiErr); code != 409 {
		t.Fatalf("retry of a pending delivery: %d", code)
	}
	if n, err := nsvc.SendDue(context.Background()); n != 1 || err != nil {
		t.Fatalf("send after retry: %d %v", n, err)
	}
	if code := f.call(admin, "GET", "/api/v1/notify/deliveries/"+itoa(id), nil, nil, &d); code != 200 || d.Status != "sent" || len(d.Log) != 1 || len(wc.RobotMessages()) != 1 {
		t.Fatalf("after retry: %d %+v, %d robot messages", code, d, len(wc.RobotMessages()))
	}
	if code := f.call(admin, "GET", "/api/v1/notify/deliveries?status=nope", nil, nil, &apiErr); code != 400 || apiErr.Fields["status"] == "" {
		t.Fatalf("bad filter: %d %+v", code, apiErr)
	}
}

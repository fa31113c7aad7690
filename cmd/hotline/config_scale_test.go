package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// HOTLINE_ROLES: all by default, a list otherwise; an unknown role or the dialer without the process's SIP user
// agent stops the start. A process without the web role answers only the probes.
func TestRolesSetting(t *testing.T) {
	c, _, _, err := loadConfig(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Scale.roleList(); len(got) != 4 {
		t.Errorf("default roles %v, want all four", got)
	}
	c, _, _, err = loadConfig([]string{"--roles", "web,workers"}, nil)
	if err != nil || !c.Scale.has(roleWeb) || !c.Scale.has(roleWorkers) || c.Scale.has(roleSIP) || c.Scale.has(roleDialer) {
		t.Errorf("--roles web,workers: %v %v", c.Scale.roleList(), err)
	}
	for _, bad := range []string{"dialer", "web,dialer", "web,bogus", ","} {
		if _, _, _, err := loadConfig(nil, []string{"HOTLINE_ROLES=" + bad}); err == nil {
			t.Errorf("HOTLINE_ROLES=%s accepted", bad)
		}
	}
	c, _, _, err = loadConfig(nil, []string{"HOTLINE_REDIS_SENTINELS=10.0.0.2:26379, 10.0.0.1:26379", "HOTLINE_REDIS_MASTER_NAME=hl"})
	if err != nil || len(c.Scale.sentinels) != 2 || c.Scale.sentinels[0] != "10.0.0.1:26379" || c.Scale.RedisMaster != "hl" {
		t.Errorf("sentinels %v master %q: %v", c.Scale.sentinels, c.Scale.RedisMaster, err)
	}
	if _, _, _, err := loadConfig(nil, []string{"HOTLINE_REDIS_SENTINELS=nohostport"}); err == nil {
		t.Error("a Sentinel without a port accepted")
	}

	c, _, _, _ = loadConfig(nil, []string{"HOTLINE_ROLES=sip"})
	h := roleHandler(c.Scale, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	for path, want := range map[string]int{"/readyz": 299, "/healthz": 299, "/api/v1/tickets": 404, "/": 404, "/ws": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("sip-only process: %s answered %d, want %d", path, rec.Code, want)
		}
	}
}

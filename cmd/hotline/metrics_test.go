package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// TestMetricsProfiles: Go's profiles are served on the metrics address only when HOTLINE_METRICS_PROFILES asks.
func TestMetricsProfiles(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(metricsMux(reg, on))
		get := func(path string) (int, string) {
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
			t.Errorf("profiles %v: /metrics %d", on, code)
		}
		code, body := get("/debug/pprof/goroutine?debug=1")
		switch {
		case on && (code != 200 || !strings.Contains(body, "goroutine profile")):
			t.Errorf("profiles on: goroutine profile %d %.100s", code, body)
		case !on && code != 404:
			t.Errorf("profiles off: /debug/pprof/goroutine answered %d", code)
		}
		srv.Close()
	}
}

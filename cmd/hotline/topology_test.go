package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony/phonetest"
)

// topology is deploy/topology.sh running: PostgreSQL, Redis with replicas and Sentinels, three hotline processes,
// Kamailio and HAProxy, all on loopback (issue 16).
type topology struct {
	t   *testing.T
	dir string
	env map[string]string // topology.env
}

// startTopology runs deploy/topology.sh with extra HOTLINE_* settings for the hotline processes. It stops at the
// test's end, and by itself after TOPOLOGY_TTL whatever happens to the test.
func startTopology(t *testing.T, hotlineEnv ...string) *topology {
	t.Helper()
	for _, b := range []string{"kamailio", "haproxy", "redis-sentinel", "redis-server", "curl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is missing (deploy/install-deps.sh installs it): %v", b, err)
		}
	}
	dir := testenv.TempDir(t)
	// 42 ports from a base under the ephemeral range (32768+) that FreePort and RTP draw from.
	base := 23000 + rand.IntN(180)*50
	cmd := exec.Command("../../deploy/topology.sh", "start", dir, strconv.Itoa(base))
	cmd.Env = append(append(cleanEnv(), "HOTLINE_BIN="+hotlineBinary(t), "TOPOLOGY_TTL=300"), hotlineEnv...)
	out, err := cmd.CombinedOutput()
	tp := &topology{t: t, dir: dir, env: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"hotline1", "hotline2", "hotline3", "kamailio", "sentinel0"} {
				b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
				t.Logf("%s.log: %s", n, tail(string(b), 1500))
			}
		}
		exec.Command("../../deploy/topology.sh", "stop", dir).Run()
	})
	if err != nil {
		t.Fatalf("topology.sh start: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "topology.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			tp.env[k] = v
		}
	}
	return tp
}

func (tp *topology) list(key string) []string { return strings.Split(tp.env[key], ",") }

// kill SIGKILLs one process of the topology (hotline1, redis0, ...).
func (tp *topology) kill(name string) {
	tp.t.Helper()
	if out, err := exec.Command("../../deploy/topology.sh", "kill", tp.dir, name).CombinedOutput(); err != nil {
		tp.t.Fatalf("kill %s: %v %s", name, err, out)
	}
}

// metric reads one unlabelled counter or gauge from a hotline process's /metrics (node 0-based); -1 when the
// process does not answer.
func (tp *topology) metric(node int, name string) float64 {
	resp, err := http.Get("http://" + tp.list("METRICS")[node] + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// TestTopologySIPFailover: calls sent to Kamailio reach both SIP nodes; after one is SIGKILLed, new calls go to the
// other (Kamailio's failure route at once, its OPTIONS probes soon after) and a call up on the survivor is
// untouched. It logs the time from the kill to the first call answered around the dead node.
func TestTopologySIPFailover(t *testing.T) {
	tp := startTopology(t)
	kam := tp.env["KAMAILIO"]
	phone, err := phonetest.Start(phonetest.Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	call := func(timeout time.Duration) (*phonetest.Call, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return phone.Dial(ctx, "sip:12345@"+kam, phonetest.DialOptions{From: "13812345678"})
	}
	hangup := func(c *phonetest.Call) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Hangup(ctx)
	}
	const accepted = "hotline_sip_calls_accepted_total"
	for i := range 6 {
		c, err := call(10 * time.Second)
		if err != nil {
			t.Fatalf("call %d through Kamailio: %v", i, err)
		}
		hangup(c)
	}
	a1, a2 := tp.metric(0, accepted), tp.metric(1, accepted)
	if a1 < 1 || a2 < 1 || a1+a2 != 6 {
		t.Fatalf("6 calls through Kamailio: node 1 took %v, node 2 %v; want both, 6 in all", a1, a2)
	}
	// A call that stays up; the node that took it survives, the other is killed.
	up, err := call(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hangup(up)
	survivor, victim := 0, 1
	if tp.metric(1, accepted) > a2 {
		survivor, victim = 1, 0
	}
	before := tp.metric(survivor, accepted)
	killed := time.Now()
	tp.kill(fmt.Sprintf("hotline%d", victim+1))
	first, err := call(30 * time.Second)
	if err != nil {
		t.Fatalf("first call after node %d was killed: %v", victim+1, err)
	}
	around := time.Since(killed)
	hangup(first)
	for i := range 6 {
		c, err := call(15 * time.Second)
		if err != nil {
			t.Fatalf("call %d after the kill (the first came %v after it): %v", i, around, err)
		}
		hangup(c)
	}
	if got := tp.metric(survivor, accepted) - before; got != 7 {
		t.Errorf("the survivor took %v of the 7 calls after the kill", got)
	}
	select {
	case <-up.Done():
		t.Error("the call up on the surviving node ended when the other node was killed")
	default:
	}
	t.Logf("SIP node killed → first call answered around it: %v", around.Round(time.Millisecond))
}

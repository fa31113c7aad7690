// Command loadanswer measures the time from a caller's INVITE to the agent's phone ringing and to the two being
// put through, with an idle agent, and reads the 15-second answer rate (15秒接通率) off the KPI endpoint.
//
// It builds and starts `hotline up` (its own PostgreSQL and Redis in a temporary directory, all on 127.0.0.1, the
// built-in prompts, after-call work 0), registers our diago test phone (telephony/phonetest) as the demo agent
// agent1 answering after -answer-after, signs agent1 in as ready through the API, and runs SIPp as the caller:
// -calls calls one after the other (each INVITE 300 ms after the previous call ended, so the agent is idle),
// each sending audio from the moment it is answered (SIPp's g711a.pcap; pcap play needs root) and hanging up
// -talk after the agent answered. Then it stops everything.
//
//	go run ./cmd/loadanswer -calls 200 -answer-after 1s       # ringing and bridging latency
//	go run ./cmd/loadanswer -calls 50 -answer-after 3s        # the 15-second answer rate with agents answering after 3 s
//
// Measured points: INVITE = SIPp sending it (its -trace_msg log); ringing = the agent's phone receiving the
// INVITE; answered = the agent's phone having answered; bridged = the agent's phone receiving the caller's first
// audio packet (hotline forwards the caller's audio only once the two are put through). The phone's moments are
// polled every 0.5 ms. SIPp and this process read the same clock.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"hotline/telephony/phonetest"
)

const scenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="loadanswer caller">
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "13900000001" <sip:13900000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:13900000001@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "13900000001" <sip:13900000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:13900000001@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>
  <pause milliseconds="HOLD_MS"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "13900000001" <sip:13900000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:13900000001@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`

func main() {
	var (
		calls       = flag.Int("calls", 200, "calls, one after the other")
		answerAfter = flag.Duration("answer-after", time.Second, "the agent's phone rings this long before answering")
		talk        = flag.Duration("talk", 1500*time.Millisecond, "the caller hangs up this long after the agent answered")
		hotlineBin  = flag.String("hotline", "", "hotline binary (default: go build ./cmd/hotline)")
		greetingMin = flag.String("greeting-min", "", "HOTLINE_GREETING_MIN for the run (default: hotline's)")
		full        = flag.Bool("greeting-full", false, "HOTLINE_GREETING_FULL=true for the run")
	)
	flag.Parse()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // diago logs through the default logger
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*calls)*(*answerAfter+*talk+3*time.Second)+2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "loadanswer-")
	if err != nil {
		fatal(err)
	}
	os.Chmod(dir, 0o755) // hotline up runs PostgreSQL as the postgres user when run as root
	defer os.RemoveAll(dir)

	bin := *hotlineBin
	if bin == "" {
		bin = filepath.Join(dir, "hotline")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/hotline").CombinedOutput(); err != nil {
			fatal(fmt.Errorf("go build ./cmd/hotline (run from the repository root): %v\n%s", err, out))
		}
	}
	sipPort, httpPort := freePort("udp"), freePort("tcp")
	env := append(os.Environ(), "HOTLINE_SIP_LISTEN=udp:127.0.0.1:"+strconv.Itoa(sipPort),
		"HOTLINE_SIP_TRUNKS=name=bench,net=127.0.0.1/32,numbers=12345", "HOTLINE_AFTER_CALL_WORK=0s",
		"HOTLINE_LOG_LEVEL=warn", "HOTLINE_SIP_RATE_PER_SOURCE=100000")
	if *greetingMin != "" {
		env = append(env, "HOTLINE_GREETING_MIN="+*greetingMin)
	}
	if *full {
		env = append(env, "HOTLINE_GREETING_FULL=true")
	}
	hl := exec.Command(bin, "up", "--data-dir", filepath.Join(dir, "data"), "--http", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--pg-port", strconv.Itoa(freePort("tcp")), "--redis-port", strconv.Itoa(freePort("tcp")))
	hl.Env = env
	hlLog, _ := os.Create(filepath.Join(dir, "hotline.log"))
	hl.Stdout, hl.Stderr = hlLog, hlLog
	hl.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := hl.Start(); err != nil {
		fatal(err)
	}
	hlDone := make(chan struct{})
	go func() { hl.Wait(); close(hlDone) }()
	defer func() {
		hl.Process.Signal(syscall.SIGTERM)
		select {
		case <-hlDone:
		case <-time.After(30 * time.Second):
			hl.Process.Kill()
			<-hlDone
		}
	}()
	api := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	ready := false
	for i := 0; i < 240 && !ready; i++ {
		if r, err := http.Get(api + "/readyz"); err == nil {
			r.Body.Close()
			ready = r.StatusCode == 200
		}
		if !ready {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !ready {
		hlLog.Close()
		b, _ := os.ReadFile(filepath.Join(dir, "hotline.log"))
		fatal(fmt.Errorf("hotline up not ready after 60 s:\n%s", b))
	}

	phone, err := phonetest.Start(phonetest.Options{AnswerAfter: *answerAfter, ToneHz: 1000})
	if err != nil {
		fatal(err)
	}
	defer phone.Close()
	if err := phone.Register(ctx, fmt.Sprintf("sip:agent1@127.0.0.1:%d", sipPort), "agent1", "sip-agent1-demo", time.Hour); err != nil {
		fatal(fmt.Errorf("register agent1: %w", err))
	}
	agentTok := login(api, "agent1")
	if code, body := do(api, "PUT", "/api/v1/agents/me/state", agentTok, map[string]string{"state": "ready"}); code != 200 {
		fatal(fmt.Errorf("agent1 ready: %d %s", code, body))
	}

	// The phone's moments, polled: rings (INVITEs received) and, per answered call, its first audio packet.
	type moments struct{ ring, answered, bridged time.Time }
	got := make(chan moments, *calls)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		seen := 0
		for ctx.Err() == nil && seen < *calls {
			var m moments
			for phone.Rang() <= seen {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(500 * time.Microsecond)
			}
			m.ring = time.Now()
			seen++
			var c *phonetest.Call
			select {
			case c = <-phone.Answered():
			case <-ctx.Done():
				return
			}
			m.answered = time.Now()
			for c.Stats().Packets == 0 {
				select {
				case <-c.Done():
					got <- m // never bridged
					goto next
				case <-ctx.Done():
					return
				default:
				}
				time.Sleep(500 * time.Microsecond)
			}
			m.bridged = time.Now()
			got <- m
		next:
		}
	}()

	sc := strings.ReplaceAll(scenario, "HOLD_MS", strconv.FormatInt((*answerAfter+*talk).Milliseconds(), 10))
	os.WriteFile(filepath.Join(dir, "caller.xml"), []byte(sc), 0o644)
	start := time.Now()
	sipp := exec.CommandContext(ctx, "sipp", fmt.Sprintf("127.0.0.1:%d", sipPort), "-sf", "caller.xml", "-s", "12345",
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort("udp")), "-mi", "127.0.0.1", "-mp", strconv.Itoa(10000+rand.IntN(20)*1000), // below the ephemeral range; apart from other runs
		"-m", strconv.Itoa(*calls), "-l", "1", "-r", "100", "-nostdin", "-trace_msg", "-timeout", "3600s")
	sipp.Dir = dir
	sipp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := sipp.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sipp: %v\n%s\n", err, lastLines(string(out), 30))
	}
	end := time.Now()
	cancel2 := time.AfterFunc(5*time.Second, cancel)
	<-pollDone
	cancel2.Stop()
	close(got)
	var ms []moments
	for m := range got {
		ms = append(ms, m)
	}
	invites := sippInvites(dir)
	if len(invites) != len(ms) {
		fmt.Fprintf(os.Stderr, "loadanswer: %d INVITEs sent, %d rings seen: pairing by order is unsafe\n", len(invites), len(ms))
	}
	var ring, bridged, afterAnswer []time.Duration
	for i := 0; i < min(len(invites), len(ms)); i++ {
		ring = append(ring, ms[i].ring.Sub(invites[i]))
		if !ms[i].bridged.IsZero() {
			bridged = append(bridged, ms[i].bridged.Sub(invites[i]))
			afterAnswer = append(afterAnswer, ms[i].bridged.Sub(ms[i].answered))
		}
	}
	fmt.Printf("loadanswer: %d calls one after the other, agent answers %s after ringing, built-in greeting%s\n",
		len(invites), *answerAfter, greetingNote(*greetingMin, *full))
	fmt.Printf("  INVITE → agent's phone ringing: %s\n", dist(ring))
	fmt.Printf("  INVITE → bridged (caller's audio at the agent): %s\n", dist(bridged))
	fmt.Printf("  agent's answer → bridged: %s\n", dist(afterAnswer))

	superTok := login(api, "super1")
	q := fmt.Sprintf("/api/v1/calls/kpis?per=day&from=%s&to=%s", start.Add(-time.Minute).Format(time.RFC3339), end.Add(time.Minute).Format(time.RFC3339))
	code, body := do(api, "GET", q, superTok, nil)
	if code != 200 {
		fatal(fmt.Errorf("KPIs: %d %s", code, body))
	}
	var k struct {
		KPIs []struct {
			Offered, Answered int
			AnsweredIn15s     int     `json:"answered_in_15s"`
			Rate              float64 `json:"answer_15s_rate"`
			AvgWait           float64 `json:"avg_wait_seconds"`
		} `json:"kpis"`
	}
	json.Unmarshal(body, &k)
	for _, b := range k.KPIs {
		fmt.Printf("  KPI endpoint: offered %d, answered %d, answered within 15 s %d: 15-second answer rate %.1f %%; average wait %.2f s\n",
			b.Offered, b.Answered, b.AnsweredIn15s, 100*b.Rate, b.AvgWait)
	}
}

func greetingNote(minimum string, full bool) string {
	switch {
	case full:
		return " (played in full before bridging)"
	case minimum != "":
		return " (GREETING_MIN " + minimum + ")"
	}
	return ""
}

func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	p := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)].Round(100 * time.Microsecond) }
	return fmt.Sprintf("n %d, p50 %s, p99 %s, max %s", len(s), p(0.5), p(0.99), s[len(s)-1].Round(100*time.Microsecond))
}

// sippInvites returns the times SIPp sent each call's first INVITE, in order (its -trace_msg log).
func sippInvites(dir string) []time.Time {
	logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
	if len(logs) != 1 {
		fatal(fmt.Errorf("sipp message logs: %v", logs))
	}
	f, err := os.Open(logs[0])
	if err != nil {
		fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []time.Time
	var stamp time.Time
	invite := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			if t, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(strings.Trim(line, "-")), time.Local); err == nil {
				stamp = t
			}
			invite = false
		case strings.HasPrefix(line, "INVITE sip:"):
			invite = true
		case invite && strings.HasPrefix(strings.ToLower(line), "call-id:"):
			if id := strings.TrimSpace(line[len("call-id:"):]); !seen[id] {
				seen[id] = true
				out = append(out, stamp)
			}
			invite = false
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func login(api, user string) string {
	code, body := do(api, "POST", "/api/v1/tokens", "", map[string]string{"username": user, "password": "hotline-demo"})
	var r struct{ Token string }
	if code != 201 || json.Unmarshal(body, &r) != nil || r.Token == "" {
		fatal(fmt.Errorf("login %s: %d %s", user, code, body))
	}
	return r.Token
}

func do(api, method, path, token string, v any) (int, []byte) {
	var b bytes.Buffer
	if v != nil {
		json.NewEncoder(&b).Encode(v)
	}
	req, _ := http.NewRequest(method, api+path, &b)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

func freePort(network string) int {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadanswer:", err)
	os.Exit(1)
}

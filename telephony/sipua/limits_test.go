package sipua

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestRegisterFailuresAreCapped: after the allowed number of failed authentications from one address, REGISTER
// gets 503 with Retry-After — even with the right password — instead of another guess (issue 14).
func TestRegisterFailuresAreCapped(t *testing.T) {
	_, port := startServerWith(t, func(c *Config) { c.RegisterFailures = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	register := func(password string) *sip.Response {
		t.Helper()
		req := sip.NewRequest(sip.REGISTER, sip.Uri{User: "agent7", Host: "127.0.0.1", Port: port})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "agent7", Host: "127.0.0.1", Port: 5999}})
		res, err := client.Do(ctx, req)
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("REGISTER: %v %v, want 401", res, err)
		}
		res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "agent7", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := range 3 {
		if res := register("guess-" + strconv.Itoa(i)); res.StatusCode != 403 {
			t.Fatalf("guess %d: %d, want 403", i, res.StatusCode)
		}
	}
	res := register("sip-secret-7")
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("after 3 failures: %d (Retry-After %v), want 503 with Retry-After", res.StatusCode, res.GetHeader("Retry-After"))
	}
}

// TestHalfSentMessageIsDropped: a TCP peer that sends half a message and stops loses the connection after the
// read timeout instead of holding it (issue 14).
func TestHalfSentMessageIsDropped(t *testing.T) {
	_, port := startServerWith(t, func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{Transport: "tcp", Addr: c.Listeners[0].Addr})
		c.ReadTimeout = 300 * time.Millisecond
	})
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-half\r\nFrom: <sip:a@127.0.0.1>;ta")); err != nil {
		t.Fatal(err)
	}
	// Far longer than the read timeout: without it the server would keep the connection open indefinitely.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 512)
	for {
		_, err := conn.Read(buf)
		if err == io.EOF || isReset(err) {
			return // closed by the server
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection with a half-sent message still open")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestAdmissionFollowsPressure drives the admission controller with measured windows: under pressure the rate
// drops to 90 % of what was admitted, without pressure it grows back, and a full backlog refuses at once.
func TestAdmissionFollowsPressure(t *testing.T) {
	a := newAdmission(10)
	w := admitWindow
	// Calm and nothing refused: unlimited.
	p := Pressure{CPU: 0.5, Admitted: 100, Completed: 80}
	a.adjust(&p, w)
	if p.Overloded || p.Limit != admitUnlimited {
		t.Fatalf("calm window: %+v", p)
	}
	// One lagging window while busy is not enough to cut.
	busyLag := Pressure{TickLag: 300 * time.Millisecond, CPU: 0.6, Admitted: 100, Completed: 80}
	p = busyLag
	a.adjust(&p, w)
	if !p.Overloded || p.Limit != admitUnlimited {
		t.Fatalf("first overloaded window: %+v, want no cut yet", p)
	}
	// The second one cuts to 90 % of what got through in the last second (80 setups per 100 ms = 800/s → 720/s).
	p = busyLag
	a.adjust(&p, w)
	if !p.Overloded || p.Limit != 720 {
		t.Fatalf("confirmed overload: %+v, want limit 720", p)
	}
	// Still overloaded in the next window: hold until the cut can show.
	p = busyLag
	a.adjust(&p, w)
	if p.Limit != 720 {
		t.Fatalf("window after a cut: %+v, want the limit held at 720", p)
	}
	// Lag while this process is nearly idle is someone else's load: no cut.
	p = Pressure{TickLag: 300 * time.Millisecond, CPU: 0.05, Admitted: 10, Completed: 10}
	a.adjust(&p, w)
	if p.Overloded || p.Limit < 720 {
		t.Fatalf("idle but lagging: %+v", p)
	}
	// Slow setups alone are no pressure (after our 100 Trying they cost no retransmission).
	p = Pressure{CPU: 0.4, Admitted: 50, Completed: 50, Slow: 50}
	a.adjust(&p, w)
	if p.Overloded {
		t.Fatalf("slow setups: %+v", p)
	}
	// Calm with refusals: grows by 1 % a window.
	before := float64(a.lim.Limit())
	p = Pressure{CPU: 0.5, Admitted: 45, Refused: 30, Completed: 45}
	a.adjust(&p, w)
	if p.Limit <= before || p.Limit > before*1.02 {
		t.Fatalf("recovering window: limit %v → %v", before, p.Limit)
	}
	// Never below the floor.
	for range 200 {
		p = Pressure{SchedP99: time.Second, CPU: 1, Admitted: 0}
		a.adjust(&p, w)
	}
	if p.Limit != admitFloor {
		t.Fatalf("limit %v after a long overload, want the floor %v", p.Limit, admitFloor)
	}
	// A full backlog of setups refuses whatever the rate.
	b := newAdmission(2)
	d1, d2 := b.setupStarted(), b.setupStarted()
	if b.allow() {
		t.Fatal("admitted with the backlog full")
	}
	d1()
	d1() // idempotent
	if !b.allow() {
		t.Fatal("refused with room in the backlog")
	}
	d2()
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "12345", Host: "127.0.0.1"})
	if res := Response(req, ErrOverloaded); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("overload answer %d without Retry-After", res.StatusCode)
	}
}

// TestSetupCapFollowsCompletedSetups: the calls allowed in setup at once follow the recent peak of completed
// setups per second × setupBudget, never below the floor nor above MaxSetups, and the INVITE beyond it is refused
// at the door; a stall lowers the limit only slowly (no spiral: a lower limit, fewer completions, a lower limit).
func TestSetupCapFollowsCompletedSetups(t *testing.T) {
	a := newAdmission(2000)
	if got := a.setupCap.Load(); got != setupFloor {
		t.Fatalf("before any measurement: cap %d, want the floor %d", got, setupFloor)
	}
	var p Pressure
	for range history {
		p = Pressure{CPU: 0.5, Completed: 100} // 1,000 setups/s
		a.adjust(&p, admitWindow)
	}
	want := int64(1000 * setupBudget.Seconds())
	if p.SetupCap != want || a.setupCap.Load() != want {
		t.Fatalf("1,000 setups/s: cap %d, want %d", p.SetupCap, want)
	}
	var done []func()
	for range want {
		if !a.allow() {
			t.Fatalf("refused with %d of %d in setup", len(done), want)
		}
		done = append(done, a.setupStarted())
	}
	if a.allow() {
		t.Fatal("admitted beyond the setup cap")
	}
	done[0]()
	if !a.allow() {
		t.Fatal("refused after a setup completed")
	}
	// A one-second stall (nothing completes): the limit holds nearly where it was.
	for range history {
		p = Pressure{CPU: 0.5}
		a.adjust(&p, admitWindow)
	}
	if p.SetupCap < want*8/10 || p.SetupCap >= want {
		t.Fatalf("after a one-second stall: cap %d, want slightly below %d", p.SetupCap, want)
	}
	// A long one: down to the floor, never below.
	for range 1000 {
		p = Pressure{CPU: 0.5}
		a.adjust(&p, admitWindow)
	}
	if p.SetupCap != setupFloor {
		t.Fatalf("no setup completed for 100 s: cap %d, want the floor %d", p.SetupCap, setupFloor)
	}
	// MaxSetups stays the ceiling.
	b := newAdmission(300)
	for range history {
		p = Pressure{CPU: 0.5, Completed: 100}
		b.adjust(&p, admitWindow)
	}
	if p.SetupCap != 300 {
		t.Fatalf("cap %d above MaxSetups 300", p.SetupCap)
	}
}

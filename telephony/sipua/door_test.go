package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rawUAC is a SIP client of raw datagrams on its own UDP port: what the door sees is exactly what it sent.
type rawUAC struct {
	t      *testing.T
	conn   *net.UDPConn
	srv    *net.UDPAddr
	port   int
	trying int
}

func newRawUAC(t *testing.T, srvPort int) *rawUAC {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUAC{t: t, conn: c, srv: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srvPort}, port: c.LocalAddr().(*net.UDPAddr).Port}
}

func (u *rawUAC) send(msg string) {
	u.t.Helper()
	if _, err := u.conn.WriteToUDP([]byte(msg), u.srv); err != nil {
		u.t.Fatal(err)
	}
}

const doorSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\n" +
	"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"

// invite is a new INVITE (no To tag) with two Vias, the top one ours, and an offer.
func (u *rawUAC) invite(id string) string {
	return "INVITE sip:12345@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(u.port) + ";rport;branch=z9hG4bK-" + id + "\r\n" +
		"Via: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-upstream-" + id + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: \"Caller; <x>\" <sip:13812345678@127.0.0.1>;tag=f-" + id + "\r\n" +
		"To: <sip:12345@127.0.0.1>\r\n" +
		"Call-ID: " + id + "@door.test\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@127.0.0.1:" + strconv.Itoa(u.port) + ">\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(doorSDP)) + "\r\n\r\n" + doorSDP
}

// inDialog is an ACK or BYE inside the dialog the INVITE id set up; to is the To header of the answer.
func (u *rawUAC) inDialog(method, id, branch, to string, cseq int) string {
	return method + " sip:12345@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(u.port) + ";rport;branch=z9hG4bK-" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: \"Caller; <x>\" <sip:13812345678@127.0.0.1>;tag=f-" + id + "\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: " + id + "@door.test\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// recv returns the next response, or nil when none comes before the deadline.
func (u *rawUAC) recv(deadline time.Time) (*sip.Response, string) {
	u.t.Helper()
	buf := make([]byte, 65535)
	u.conn.SetReadDeadline(deadline)
	n, _, err := u.conn.ReadFromUDP(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, ""
	}
	if err != nil {
		u.t.Fatal(err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		u.t.Fatalf("unparseable answer: %v\n%s", err, buf[:n])
	}
	res, ok := m.(*sip.Response)
	if !ok {
		u.t.Fatalf("a request came back:\n%s", buf[:n])
	}
	return res, string(buf[:n])
}

// final waits for the final response to the transaction of the given branch; u.trying counts the 100s before it.
func (u *rawUAC) final(branch string) (*sip.Response, string) {
	u.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	u.trying = 0
	for {
		res, raw := u.recv(deadline)
		if res == nil {
			u.t.Fatalf("no final answer to %s", branch)
		}
		if b, _ := res.Via().Params.Get("branch"); b == "z9hG4bK-"+branch {
			if res.StatusCode == 100 {
				u.trying++
			}
			if res.StatusCode >= 200 {
				return res, raw
			}
		}
	}
}

// holdDoor stops the door's reader before its next read, so that datagrams wait in the socket, and returns the
// release. The reader is parked by a keep-alive it reads first.
func holdDoor(t *testing.T, d *door, port int) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	h := func() {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
	}
	d.hold.Store(&h)
	poke := newRawUAC(t, port)
	poke.send("\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the door's reader did not come back for its next datagram")
	}
	return func() { d.hold.Store(nil); close(gate) }
}

// queueUp lets the held datagrams wait in the socket well past the door's target and interval: what a reader
// starved of CPU does to a peer's requests.
func queueUp() { time.Sleep(queueTarget + 3*queueInterval) }

// TestDoorStatelessRefusal: a new INVITE that waited in the socket past the door's limit is refused at the door
// with a 503 + Retry-After that copies its Vias (in order), From, To (plus a tag), Call-ID and CSeq; its
// retransmission gets the very same 503, its ACK gets nothing, and no transaction exists for it in sipgo (a
// server transaction would retransmit its 503 until the ACK). The next INVITE, read at once, is a call again.
func TestDoorStatelessRefusal(t *testing.T) {
	srv, port := startServer(t)
	if len(srv.doors) != 1 || !srv.doors[0].stamped {
		t.Fatalf("%d doors; want one, with kernel receive times", len(srv.doors))
	}
	refused := func() float64 { return testutil.ToFloat64(srv.mRefused.WithLabelValues("503")) }
	before := refused()
	u := newRawUAC(t, port)
	id := fmt.Sprintf("door%d", time.Now().UnixNano())
	inv := u.invite(id)
	release := holdDoor(t, srv.doors[0], port)
	u.send(inv)
	queueUp()
	release()

	res, raw := u.final(id)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil || u.trying != 0 {
		t.Fatalf("answer %d, want 503 with Retry-After:\n%s", res.StatusCode, raw)
	}
	vias := res.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), "branch=z9hG4bK-"+id) || !strings.Contains(vias[1].Value(), "upstream-"+id) {
		t.Errorf("Vias not copied in order:\n%s", raw)
	}
	tag, _ := res.To().Params.Get("tag")
	if ft, _ := res.From().Params.Get("tag"); ft != "f-"+id || res.From().DisplayName != "Caller; <x>" || tag == "" ||
		res.To().Address.User != "12345" || res.CallID().Value() != id+"@door.test" || res.CSeq().Value() != "1 INVITE" {
		t.Errorf("headers not those of the INVITE:\n%s", raw)
	}
	// No server transaction: nothing retransmits the 503 while the ACK is missing (timer G would, from T1).
	if again, r := u.recv(time.Now().Add(3 * sip.T1)); again != nil {
		t.Fatalf("answered again without a retransmission (a transaction exists):\n%s", r)
	}
	u.send(inv) // the peer's retransmission
	res2, raw2 := u.final(id)
	if tag2, _ := res2.To().Params.Get("tag"); res2.StatusCode != 503 || tag2 != tag {
		t.Fatalf("retransmission answered differently:\n%s", raw2)
	}
	u.send(u.inDialog("ACK", id, id, res.To().Value(), 1))
	if got, r := u.recv(time.Now().Add(2 * sip.T1)); got != nil {
		t.Fatalf("the ACK of the 503 produced:\n%s", r)
	}
	if n := refused() - before; n != 1 {
		t.Errorf("hotline_sip_refused_total{503} grew by %v, want 1 (a retransmission is the same refusal)", n)
	}
	// The door opens again once a datagram is read within the target: the next call reaches the handler (486).
	id2 := id + "b"
	u.send(u.invite(id2))
	if res, raw := u.final(id2); res.StatusCode != 486 || u.trying != 1 {
		t.Fatalf("next INVITE answered %d after %d × 100 Trying, want the handler's 486 after one (the door's):\n%s", res.StatusCode, u.trying, raw)
	}
}

// answerAll answers every call and keeps it up until the caller hangs up; confirmed gets each call's ACK.
type answerAll struct{ confirmed chan string }

func (a answerAll) HandleCall(ctx context.Context, c *Call) {
	c.Dialog.OnState(func(s sip.DialogState) {
		if s == sip.DialogStateConfirmed {
			a.confirmed <- c.SIPCallID
		}
	})
	if _, err := c.Dialog.Answer(diago.AnswerOptions{}); err != nil {
		return
	}
	select {
	case <-c.Dialog.Context().Done():
	case <-ctx.Done():
	}
}

func (answerAll) Refused(*Trunk, *sip.Request, error) {}

// TestDoorQueueDelay: when datagrams have waited in the socket past the door's target for its interval, the new
// INVITEs among them are refused with 503 while the ACK and the BYE of a call already admitted, queued with
// them, are processed (the ACK confirms the call, the BYE gets 200).
func TestDoorQueueDelay(t *testing.T) {
	h := answerAll{confirmed: make(chan string, 8)}
	srv, port := startServerHandler(t, func(*Config) {}, h)
	u := newRawUAC(t, port)
	id := fmt.Sprintf("call%d", time.Now().UnixNano())
	u.send(u.invite(id))
	res, raw := u.final(id)
	if res.StatusCode != 200 {
		t.Fatalf("call answered %d:\n%s", res.StatusCode, raw)
	}
	to := res.To().Value()

	// Each in-dialog request is queued with a burst of new INVITEs; the ACK and the BYE in separate rounds, as a
	// peer sends them (sipgo handles each request in a goroutine of its own, so an ACK and a BYE read together
	// may be handled in either order).
	round := func(name string, inDialog string, want map[string]int) {
		release := holdDoor(t, srv.doors[0], port)
		u.send(inDialog)
		for i := range 5 {
			n := fmt.Sprintf("%s-%s%d", id, name, i)
			u.send(u.invite(n))
			want[n] = 503
		}
		queueUp()
		release()
		deadline := time.Now().Add(10 * time.Second)
		for len(want) > 0 {
			res, raw := u.recv(deadline)
			if res == nil {
				t.Fatalf("%s round: no answer for %v", name, want)
			}
			b, _ := res.Via().Params.Get("branch")
			b = strings.TrimPrefix(b, "z9hG4bK-")
			code, ok := want[b]
			if !ok || res.StatusCode < 200 {
				continue // the 200 to the INVITE, retransmitted while the ACK waited, or a 100
			}
			if res.StatusCode != code {
				t.Fatalf("%s round: answered %d, want %d:\n%s", name, res.StatusCode, code, raw)
			}
			delete(want, b)
		}
	}
	round("ack", u.inDialog("ACK", id, id+"-ack", to, 1), map[string]int{})
	select {
	case got := <-h.confirmed:
		if got != id+"@door.test" {
			t.Errorf("confirmed %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the ACK queued with the refused INVITEs did not confirm the call")
	}
	round("bye", u.inDialog("BYE", id, id+"-bye", to, 2), map[string]int{id + "-bye": 200})
}

// TestDoorScan: what the door reads of raw requests, and what it leaves to sipgo.
func TestDoorScan(t *testing.T) {
	base := "INVITE sip:1@h SIP/2.0\r\nv: SIP/2.0/UDP h:5060;branch=z9hG4bK-1\r\nf: <sip:a@h>;tag=1\r\n" +
		"t: \"Bob;tag=x >\" <sip:1@h;tag=inuri>\r\ni: c1\r\nCSeq: 7 INVITE\r\n\r\n"
	var m rawRequest
	if !m.scan([]byte(base), methodInvite) || m.toTag || string(m.callID) != "c1" || string(m.branch) != "z9hG4bK-1" {
		t.Fatalf("compact form: %+v", m)
	}
	for name, c := range map[string]struct {
		raw      string
		ok, tag  bool
		callID   string
		isMethod int
	}{
		"tagged":      {strings.Replace(base, "inuri>", "inuri>;tag=abc", 1), true, true, "c1", methodInvite},
		"tag no val":  {strings.Replace(base, "inuri>", "inuri>;tag", 1), false, false, "", methodInvite},
		"folded":      {strings.Replace(base, "i: c1\r\n", "i: c1\r\n continued\r\n", 1), false, false, "", methodInvite},
		"nul":         {strings.Replace(base, "i: c1", "i: c\x001", 1), false, false, "", methodInvite},
		"bare cr":     {strings.Replace(base, "i: c1", "i: c\r1", 1), false, false, "", methodInvite},
		"two call-id": {strings.Replace(base, "i: c1\r\n", "i: c1\r\nCall-ID: c2\r\n", 1), false, false, "", methodInvite},
		"no branch":   {strings.Replace(base, ";branch=z9hG4bK-1", "", 1), false, false, "", methodInvite},
		"cseq method": {strings.Replace(base, "7 INVITE", "7 BYE", 1), false, false, "", methodInvite},
		"no cseq":     {strings.Replace(base, "CSeq: 7 INVITE\r\n", "", 1), false, false, "", methodInvite},
		"version":     {strings.Replace(base, "SIP/2.0\r\n", "SIP/7.0\r\n", 1), false, false, "", methodInvite},
		"open quote":  {strings.Replace(base, "\"Bob;tag=x >\"", "\"Bob", 1), false, false, "", methodInvite},
		"ack":         {strings.Replace(strings.Replace(base, "7 INVITE", "7 ACK", 1), "inuri>", "inuri>;tag=t", 1), true, true, "c1", methodAck},
	} {
		var m rawRequest
		ok := m.scan([]byte(c.raw), c.isMethod)
		if ok != c.ok || ok && (m.toTag != c.tag || string(m.callID) != c.callID) {
			t.Errorf("%s: ok %v tag %v call-id %q", name, ok, m.toTag, m.callID)
		}
	}
}

// TestDoorRefusesSourceOverItsRate: once a source has used up its per-source INVITE rate, its next INVITE is
// refused at the door (a 503 with the gate's Retry-After of 5 s and no 100 Trying before it: sipgo never saw
// it), so a flooding source costs no parse or transaction and does not queue the other sources' requests.
func TestDoorRefusesSourceOverItsRate(t *testing.T) {
	srv, port := startServerWith(t, func(c *Config) { c.RatePerSource, c.Burst = 0.01, 1 })
	refused := func() float64 { return testutil.ToFloat64(srv.mRefused.WithLabelValues("503")) }
	u := newRawUAC(t, port)
	id := fmt.Sprintf("rate%d", time.Now().UnixNano())
	u.send(u.invite(id))
	if res, raw := u.final(id); res.StatusCode != 486 || u.trying != 1 {
		t.Fatalf("first INVITE answered %d after %d × 100 Trying, want the handler's 486 after the door's 100:\n%s", res.StatusCode, u.trying, raw)
	}
	before := refused()
	id2 := id + "b"
	u.send(u.invite(id2))
	res, raw := u.final(id2)
	if res.StatusCode != 503 || u.trying != 0 {
		t.Fatalf("INVITE over the source's rate answered %d after %d × 100 Trying, want the door's 503 with none:\n%s", res.StatusCode, u.trying, raw)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "5" {
		t.Errorf("Retry-After %v, want 5 (as the gate gives ErrRateLimited):\n%s", h, raw)
	}
	// The peer's retransmission gets the same answer from the door's memory, Retry-After included.
	u.send(u.invite(id2))
	res, raw = u.final(id2)
	if h := res.GetHeader("Retry-After"); res.StatusCode != 503 || u.trying != 0 || h == nil || h.Value() != "5" {
		t.Errorf("retransmission answered %d (%d × 100 Trying, Retry-After %v), want the same 503 with 5:\n%s", res.StatusCode, u.trying, h, raw)
	}
	if n := refused() - before; n != 1 {
		t.Errorf("hotline_sip_refused_total{503} grew by %v, want 1 (a retransmission is the same refusal)", n)
	}
}

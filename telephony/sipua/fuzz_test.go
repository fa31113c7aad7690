package sipua

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzGate feeds raw bytes through what a datagram meets before any handler: rawFilter, sipgo's parser,
// normalizeParams, validRequest and, for an INVITE, checkOffer. Seeds: the torture corpus. Nothing may panic, and
// a request the gate lets through must carry no NUL, CR or LF inside a header (B9 on the way in).
//
//	go test -run '^$' -fuzz FuzzGate -fuzztime 60s ./telephony/sipua/
func FuzzGate(f *testing.F) {
	addTortureSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		data, err := rawFilter(sip.TransportReadProps{Transport: "UDP"}, bytes.Clone(data))
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		normalizeParams(req)
		if validRequest(req) != nil {
			return
		}
		for _, h := range req.Headers() {
			if strings.ContainsAny(h.Value(), "\x00\r\n") {
				t.Fatalf("accepted header %s with NUL/CR/LF: %q", h.Name(), h.Value())
			}
		}
		if req.Method == sip.INVITE {
			ct := ""
			if h := req.ContentType(); h != nil {
				ct = h.Value()
			}
			if checkOffer(ct, req.Body()) == nil && !bytes.Contains(req.Body(), []byte("m=audio")) {
				t.Fatalf("offer without an audio stream accepted: %q", req.Body())
			}
		}
	})
}

// FuzzOffer checks the SDP reader alone: no panic, and what it accepts has an audio line with a port in range.
func FuzzOffer(f *testing.F) {
	for _, s := range []string{"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n", "v=0\nm=audio 70000 RTP/AVP 0\n",
		"v=0\r\nm=audio 1/2 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000\r\nc=IN IP6 ::1\r\n", "v=0\r\nm=video 1 RTP/AVP 31\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkOffer("application/sdp", body) != nil {
			return
		}
		if !bytes.Contains(body, []byte("m=audio ")) {
			t.Fatalf("accepted %q", body)
		}
	})
}

// FuzzDoor feeds raw bytes to the door's reader of INVITEs and ACKs: no panic, and what it reads cleanly enough to
// answer without sipgo gets a stateless answer that sipgo parses back as a response of the same call and CSeq.
//
//	go test -run '^$' -fuzz FuzzDoor -fuzztime 60s ./telephony/sipua/
func FuzzDoor(f *testing.F) {
	addTortureSeeds(f)
	f.Add([]byte("INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, method := range []int{methodInvite, methodAck} {
			var m rawRequest
			if !m.scan(data, method) {
				continue
			}
			out := m.reply(nil, "503 Service Unavailable", append(append([]byte{}, m.callID...), m.branch...), "1")
			msg, err := sip.ParseMessage(out)
			if err != nil {
				t.Fatalf("the door's answer does not parse: %v\n%q", err, out)
			}
			res, ok := msg.(*sip.Response)
			if !ok || res.StatusCode != 503 {
				t.Fatalf("the door's answer is not a 503: %q", out)
			}
			if res.CallID() == nil || res.CallID().Value() != string(m.callID) {
				t.Fatalf("the door's answer has another Call-ID: %q (read %q)", out, m.callID)
			}
		}
	})
}

// addTortureSeeds seeds a fuzz target with the torture corpus (testdata/torture), as sent over UDP.
func addTortureSeeds(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob("testdata/torture/*.sip")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("$ID"), []byte("seed")), []byte("$TRANSPORT"), []byte("UDP")))
	}
}

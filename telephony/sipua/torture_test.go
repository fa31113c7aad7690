package sipua

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The torture corpus (testdata/torture) holds raw messages written after the classes of RFC 4475 (SIP torture
// tests) and RFC 5118 (IPv6), plus the malformed cases of issue 15. A file's name starts with the answer it must
// get: 486 means the INVITE passed every check and reached the call handler (which answers 486 in these tests);
// 200/401/405 are the answers of OPTIONS, the registrar and unknown methods; 4xx/5xx the refusal. "$ID" and
// "$TRANSPORT" are filled in per send; a ".udp" file is sent only over UDP (its point is datagram framing).
//
// TestTortureCorpus sends each message over real UDP and TCP to a running server and checks the final answer;
// a crash would end the test process.
func TestTortureCorpus(t *testing.T) {
	_, port := startServerWith(t, func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{Transport: "tcp", Addr: c.Listeners[0].Addr})
	})
	files, err := filepath.Glob(tortureGlob)
	if err != nil || len(files) < tortureMin {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			for i, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".sip")
				if strings.HasSuffix(name, ".udp") && transport != "UDP" {
					continue
				}
				want, _ := strconv.Atoi(name[:3])
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("t%d%s%d", i, strings.ToLower(transport), time.Now().UnixNano())
				msg := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("$ID"), []byte(id)), []byte("$TRANSPORT"), []byte(transport))
				got, resp := exchange(t, transport, addr, msg)
				if got != want {
					t.Errorf("%s over %s: answered %d, want %d\n%s", name, transport, got, want, resp)
					continue
				}
				switch want {
				case 420:
					if !strings.Contains(resp, "Unsupported: nothingpossible") {
						t.Errorf("%s: 420 without the Unsupported header:\n%s", name, resp)
					}
				case 405:
					if !strings.Contains(resp, "Allow: ") {
						t.Errorf("%s: 405 without Allow:\n%s", name, resp)
					}
				case 415:
					if !strings.Contains(resp, "Accept: application/sdp") {
						t.Errorf("%s: 415 without Accept:\n%s", name, resp)
					}
				}
			}
		})
	}
	// Still serving after all of it.
	if got, resp := exchange(t, "UDP", addr, optionsPing()); got != 200 {
		t.Fatalf("OPTIONS after the corpus: %d\n%s", got, resp)
	}
}

var tortureGlob, tortureMin = "testdata/torture/*.sip", 40

var statusLine = regexp.MustCompile(`(?m)^SIP/2\.0 (\d{3}) `)

// exchange sends one raw message and returns the first final status code in the answer (0: none within 2 s)
// and the text of that response.
func exchange(t *testing.T, transport, addr string, msg []byte) (int, string) {
	t.Helper()
	var conn net.Conn
	var err error
	if transport == "UDP" {
		conn, err = net.Dial("udp", addr)
	} else {
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	var acc []byte
	buf := make([]byte, 65535)
	for time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if n > 0 {
			acc = append(acc, buf[:n]...)
			locs := statusLine.FindAllSubmatchIndex(acc, -1)
			for k, l := range locs {
				code, _ := strconv.Atoi(string(acc[l[2]:l[3]]))
				if code >= 200 {
					end := len(acc)
					if k+1 < len(locs) {
						end = locs[k+1][0]
					}
					return code, string(acc[l[0]:end])
				}
			}
		}
		if err != nil {
			break
		}
	}
	return 0, string(acc)
}

func optionsPing() []byte {
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	return []byte("OPTIONS sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-" + id +
		"\r\nMax-Forwards: 70\r\nFrom: <sip:ping@127.0.0.1>;tag=" + id + "\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: " + id +
		"@ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
}

// TestValidRequestRefusals checks the mapping of each check to its answer without a network.
func TestValidRequestRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		raw  string
		want int
	}{
		"ok":          {optionsString("OPTIONS", "1 OPTIONS", "70"), 0},
		"cseq method": {optionsString("OPTIONS", "1 INVITE", "70"), 400},
		"hops":        {optionsString("INVITE", "1 INVITE", "0"), 483},
		"bye hops":    {optionsString("BYE", "1 BYE", "0"), 0}, // in-dialog: never refused for hops
		"mf range":    {optionsString("OPTIONS", "1 OPTIONS", "256"), 400},
	} {
		m, err := sip.ParseMessage([]byte(c.raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := 0
		if err := validRequest(m.(*sip.Request)); err != nil {
			got, _ = Status(err)
		}
		if got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
}

func optionsString(method, cseq, mf string) string {
	return method + " sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nMax-Forwards: " + mf +
		"\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: 1@x\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n"
}

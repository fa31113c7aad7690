package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
	"hotline/telephony/media"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// writePrompt writes a short 8 kHz 16-bit mono WAV tone (the format diago plays without resampling).
func writePrompt(t testing.TB, path string, ms int) {
	if err := os.WriteFile(path, media.ToneWAV(440, time.Duration(ms)*time.Millisecond), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startSipp runs sipp as a UAS with our households scenario (answerDelay before the key is sent) and returns its
// SIP port. SIPp's pcap play needs root (CAP_NET_RAW); the process is killed at cleanup.
func startSipp(t testing.TB, answerDelay time.Duration) int {
	t.Helper()
	port, _ := startSippIn(t, answerDelay)
	return port
}

// startSippIn is startSipp with extra sipp arguments; it also returns sipp's working directory (its logs).
func startSippIn(t testing.TB, answerDelay time.Duration, extra ...string) (int, string) {
	t.Helper()
	dir := testenv.TempDir(t)
	b, err := os.ReadFile("testdata/households.xml")
	if err != nil {
		t.Fatal(err)
	}
	sc := strings.ReplaceAll(string(b), "ANSWER_DELAY_MS", fmt.Sprint(answerDelay.Milliseconds()))
	if err := os.WriteFile(filepath.Join(dir, "households.xml"), []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"1", "2", "3", "9"} {
		p, err := os.ReadFile("/usr/share/sip-tester/dtmf_2833_" + k + ".pcap")
		if err != nil {
			t.Fatalf("sip-tester pcaps (apt-get install sip-tester): %v", err)
		}
		os.WriteFile(filepath.Join(dir, "dtmf_2833_"+k+".pcap"), p, 0o644)
	}
	return runSipp(t, dir, append([]string{"-sf", "households.xml"}, extra...)...), dir
}

func runSipp(t testing.TB, dir string, args ...string) int {
	t.Helper()
	// A port picked free may be taken again before sipp binds it (RTP sockets of other engines use the same
	// ephemeral range): if sipp exits at once, try other ports.
	for try := 0; try < 4; try++ {
		port := freeUDPPort(t)
		// sipp's [auto_media_port] counts up from -mp per call: keep it below the ephemeral range (32768+) that
		// diago's RTP sockets and freeUDPPort draw from.
		mp := 10000 + rand.IntN(12)*1000
		full := append(append([]string(nil), args...), "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-mi", "127.0.0.1",
			"-mp", fmt.Sprint(mp), "-nostdin", "-trace_err", "-timeout", "300s", "-max_socket", "2000")
		cmd := exec.Command("sipp", full...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		outPath := filepath.Join(dir, fmt.Sprintf("sipp-%d.out", try))
		out, _ := os.Create(outPath)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sipp (apt-get install sip-tester): %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
			out.Close()
			b, _ := os.ReadFile(outPath)
			t.Logf("sipp exited at start (try %d): %s", try, tail(string(b), 400))
			continue
		case <-time.After(400 * time.Millisecond):
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			out.Close()
			if t.Failed() {
				b, _ := os.ReadFile(outPath)
				t.Logf("sipp output: %s", tail(string(b), 2000))
				if logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log")); len(logs) > 0 {
					b, _ := os.ReadFile(logs[0])
					t.Logf("sipp errors: %s", tail(string(b), 2000))
				}
			}
		})
		return port
	}
	t.Fatal("sipp did not start")
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// numberOf is the phone scheme of the tests: household h's first phone ends in h%10, which tells sipp what to do.
func numberOf(h campaign.HouseholdID, idx int) string {
	return fmt.Sprintf("139%04d%04d", idx, int64(h)%10000)
}

// schemePhones gives households ending in 7 with h%20 == 7 a second phone that answers (…2), so a busy first
// phone is followed by the second one.
type schemePhones struct{}

func (schemePhones) Phones(_ context.Context, h campaign.HouseholdID, _ campaign.TicketID) ([]string, error) {
	ps := []string{numberOf(h, 0)}
	if int64(h)%20 == 7 {
		ps = append(ps, fmt.Sprintf("1380000%03d2", int64(h)%1000))
	}
	return ps, nil
}

type rangeDirectory struct{ from, to int }

func (d rangeDirectory) SelectHouseholds(context.Context, org.DB, campaign.TargetQuery) ([]campaign.Household, error) {
	var out []campaign.Household
	for i := d.from; i <= d.to; i++ {
		n := 1
		if i%20 == 7 {
			n = 2
		}
		out = append(out, campaign.Household{ID: campaign.HouseholdID(i), RegionCode: "430903", PhoneCount: n})
	}
	return out, nil
}

// hookLog counts what the closing transactions did.
type hookLog struct {
	mu       sync.Mutex
	contacts map[campaign.HouseholdID]int
	risks    map[campaign.HouseholdID]int
}

func (h *hookLog) hooks() campaign.Hooks {
	h.contacts, h.risks = map[campaign.HouseholdID]int{}, map[campaign.HouseholdID]int{}
	return campaign.Hooks{
		Contact: func(_ context.Context, _ pgx.Tx, _ *campaign.Campaign, t *campaign.Target, _ *campaign.Attempt) error {
			h.mu.Lock()
			h.contacts[t.HouseholdID]++
			h.mu.Unlock()
			return nil
		},
		Risk: func(_ context.Context, _ pgx.Tx, _ *campaign.Campaign, t *campaign.Target, _ *campaign.Attempt, _ []string) error {
			h.mu.Lock()
			h.risks[t.HouseholdID]++
			h.mu.Unlock()
			return nil
		},
	}
}

func allDay() *campaign.Windows {
	return &campaign.Windows{Spans: []campaign.Span{{Start: "00:00", End: "24:00"}}, CallOnHolidays: true}
}

// waitFinished polls until the campaign is finished.
func waitFinished(t *testing.T, svc *campaign.Service, id campaign.ID, limit time.Duration) *campaign.Progress {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		p, err := svc.Progress(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == campaign.StatusFinished {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %d not finished after %s: %+v", id, limit, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

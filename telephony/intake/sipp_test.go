package intake

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotline/telephony"
	"hotline/telephony/media"
)

// TestSIPpVoicemailKeypad: SIPp calls in through the trunk, speaks a message and ends it with # — once as an
// RFC 4733 event from SIPp's own pcap (first packet Duration 0, which diago's detector drops: B1) and once as
// SIP INFO (which diago answers 406: B3). Both must end the message and leave a voicemail ticket.
func TestSIPpVoicemailKeypad(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed (deploy/install-deps.sh test)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("SIPp's pcap playback needs root (CI runs as root)")
	}
	base, err := os.ReadFile("testdata/uac_voicemail.xml")
	if err != nil {
		t.Fatal(err)
	}
	prompts := media.ShortPrompt().Duration()*2 + media.DefaultPrompts().Beep.Duration()
	for _, end := range []string{"rtp", "info"} {
		t.Run(end, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			key, err := os.ReadFile("testdata/end_" + end + ".xml")
			if err != nil {
				t.Fatal(err)
			}
			sc := strings.Replace(string(base), "END_KEY\n", string(key), 1)
			sc = strings.ReplaceAll(sc, "WAIT_MS", strconv.Itoa(int(prompts*1000)+400))
			dir := t.TempDir()
			file := filepath.Join(dir, "scenario.xml")
			if err := os.WriteFile(file, []byte(sc), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sipp", "127.0.0.1:"+strconv.Itoa(r.port), "-sf", file, "-s", "12345",
				"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDP(t)), "-mi", "127.0.0.1", "-mp", strconv.Itoa(freeUDP(t)),
				"-m", "1", "-timeout", "40s", "-nostdin", "-trace_err")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
				var detail []byte
				for _, f := range errs {
					b, _ := os.ReadFile(f)
					detail = append(detail, b...)
				}
				t.Fatalf("sipp: %v\n%s\n%s", err, lastLines(string(out), 15), detail)
			}
			c := r.endedCDR("voicemail CDR")
			if *c.Disposition != telephony.DispVoicemail || c.EndReason != "unstaffed/hash" || c.TicketID == 0 || c.Caller != caller {
				t.Fatalf("CDR %+v", c)
			}
			rec, err := telephony.GetRecording(ctx, r.db, c.RecordingID)
			if err != nil {
				t.Fatal(err)
			}
			lv, err := media.Levels(filepath.Join(r.recDir, rec.Path))
			if err != nil || lv[0] < 0.01 || rec.Duration < 5 {
				t.Errorf("voicemail %+v levels %v %v: want SIPp's 7 s of speech", rec, lv, err)
			}
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

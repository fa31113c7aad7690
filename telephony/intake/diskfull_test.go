package intake

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotline/deploy/testenv"
	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
	"hotline/web"
)

// The recordings disk is full (a 16 KiB tmpfs, filled): a caller who leaves a voicemail is heard to the end, the
// ticket and the callback task are still made (without a recording), and the failure shows on /readyz and in
// the metrics.
func TestVoicemailWhenRecordingsDiskIsFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI and deploy/test.sh run as root)")
	}
	dir := testenv.TempDir(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	if f, err := os.Create(dir + "/filler"); err == nil {
		f.Write(make([]byte, 64<<10)) // fills it: ENOSPC part-way
		f.Close()
	}
	r := newRig(t, rigOpts{recDir: dir})
	citizen := r.caller("127.0.0.1", 440)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	prompts := media.ShortPrompt().Duration()*2 + media.DefaultPrompts().Beep.Duration()
	waitFor(t, "prompts heard", func() bool { return call.Stats().Seconds >= prompts-0.1 })
	time.Sleep(1500 * time.Millisecond) // the message
	select {
	case <-call.Done():
		t.Fatal("the call was cut while the caller spoke")
	default:
	}
	if err := call.SendDigits("#"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("hotline did not hang up after #")
	}
	call.Hangup(ctx)
	c := r.endedCDR("voicemail CDR")
	if *c.Disposition != telephony.DispVoicemail || c.TicketID == 0 || c.RecordingID != 0 {
		t.Fatalf("CDR %+v: want a voicemail with a ticket and no recording", c)
	}
	tk, err := r.tsvc.Get(ctx, org.System, org.TicketID(c.TicketID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tk.Content, "录音保存失败") {
		t.Errorf("ticket content %q does not say the recording was lost", tk.Content)
	}
	if cbs := r.openCallbacks(); len(cbs) != 1 || cbs[0].TicketID != c.TicketID {
		t.Errorf("callback tasks %+v", cbs)
	}
	if n := testutil.ToFloat64(r.svc.StorageCollectors()[0]); n < 1 {
		t.Errorf("hotline_recording_failures_total = %v", n)
	}
	rdb, _ := testenv.Redis(t)
	rec := httptest.NewRecorder()
	web.New(web.Deps{DB: r.db, Redis: rdb, Telephony: r.svc}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var body struct {
		Ready  bool
		Checks map[string]string
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if !body.Ready || !strings.Contains(body.Checks["recordings"], "no space left") {
		t.Errorf("/readyz %d %s: want ready with the recordings failure in its detail", rec.Code, rec.Body)
	}
}

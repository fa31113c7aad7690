package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/telephony/phonetest"
)

// Backup and restore, as the README says to do it: pg_dump of a running `hotline up`, a copy of its recordings
// and personal-data key; then a fresh data directory given the key and the recordings, a fresh `hotline up` on
// it, pg_restore into it, and a restart. The voicemail's ticket, its recording (same bytes) and the demo users
// are all there.
func TestBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	a := newUpEnv(t)
	env := append(a.env, "HOTLINE_QUEUE_LIMIT=1s", "HOTLINE_VOICEMAIL_MAX=2s", "HOTLINE_DEMO_HOUSEHOLDS=5")
	p := startHotline(t, env, "up")
	waitReady(t, p, a.base)

	// A voicemail: a ticket with a recording on disk.
	citizen, err := phonetest.Start(phonetest.Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer citizen.Close()
	dctx, cancel := context.WithTimeout(ctx, 90*time.Second) // the built-in greeting and prompts take a while
	defer cancel()
	call, err := citizen.Dial(dctx, "sip:12345@"+a.sip, phonetest.DialOptions{From: "13812345678"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-dctx.Done():
		call.Hangup(ctx)
		t.Fatalf("the voicemail call did not end:\n%s", p.out.String())
	}
	admin := login(t, a.base, "admin")
	var rec struct {
		Recordings []struct {
			ID       int64 `json:"id"`
			TicketID int64 `json:"ticket_id"`
		}
	}
	waitFor(t, "the voicemail ticket", func() bool {
		code, body := get(t, a.base+"/api/v1/tickets?source=voicemail", "Authorization", "Bearer "+admin)
		return code == 200 && strings.Contains(body, "voicemail")
	})
	var calls struct {
		Calls []struct {
			RecordingID int64 `json:"recording_id"`
			TicketID    int64 `json:"ticket_id"`
		}
	}
	_, body := get(t, a.base+"/api/v1/calls", "Authorization", "Bearer "+admin)
	json.Unmarshal([]byte(body), &calls)
	_ = rec
	var recID, ticketID int64
	for _, c := range calls.Calls {
		if c.RecordingID != 0 {
			recID, ticketID = c.RecordingID, c.TicketID
		}
	}
	if recID == 0 {
		t.Fatalf("no call with a recording: %s", body)
	}
	_, wav := get(t, fmt.Sprintf("%s/api/v1/recordings/%d", a.base, recID), "Authorization", "Bearer "+admin)

	dctx2, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel2()
	// Backup: the database, the recordings, the file store (where a finished recording moves), the personal-data key.
	backup := testenv.TempDir(t)
	dump := filepath.Join(backup, "hotline.dump")
	if out, err := exec.CommandContext(dctx2, "pg_dump", "--format=custom", "--file="+dump, a.dbURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(a.dir, "recordings"), filepath.Join(a.dir, "files"), filepath.Join(a.dir, "pii.key"), backup).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, 60*time.Second)

	// Restore into a fresh data directory: key and recordings first, then `hotline up`, pg_restore, restart.
	b := newUpEnv(t)
	os.MkdirAll(b.dir, 0o755)
	if out, err := exec.Command("cp", "-a", filepath.Join(backup, "recordings"), filepath.Join(backup, "files"), filepath.Join(backup, "pii.key"), b.dir).CombinedOutput(); err != nil {
		t.Fatalf("copy back: %v %s", err, out)
	}
	benv := append(b.env, "HOTLINE_DEMO_DATA=false")
	p2 := startHotline(t, benv, "up")
	waitReady(t, p2, b.base)
	if out, err := exec.CommandContext(dctx2, "pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname="+b.dbURL, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v %s", err, out)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	p2.wait(t, 60*time.Second)
	p3 := startHotline(t, benv, "up")
	waitReady(t, p3, b.base)
	admin = login(t, b.base, "admin")
	if code, body := get(t, fmt.Sprintf("%s/api/v1/tickets/%d", b.base, ticketID), "Authorization", "Bearer "+admin); code != 200 {
		t.Errorf("the voicemail ticket after restore: %d %.200s", code, body)
	}
	code, wav2 := get(t, fmt.Sprintf("%s/api/v1/recordings/%d", b.base, recID), "Authorization", "Bearer "+admin)
	if code != 200 || len(wav2) < 1000 || wav2 != wav {
		t.Errorf("the recording after restore: %d, %d bytes (had %d)", code, len(wav2), len(wav))
	}
	p3.cmd.Process.Signal(syscall.SIGTERM)
	if code := p3.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// login signs a demo user in and returns the bearer token.
func login(t *testing.T, base, user string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/tokens", "application/json", bytes.NewReader([]byte(`{"username":"`+user+`","password":"`+demoPassword+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Token string }
	if json.Unmarshal(b, &out); out.Token == "" {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, b)
	}
	return out.Token
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/localrt"
	"hotline/deploy/testenv"
	"hotline/migrations"
	"hotline/telephony/phonetest"
	"hotline/ticketing/org"
)

// SIGTERM to the real binary while a caller is in the queue: readiness turns 503 at once, a new INVITE is
// refused, the call in progress goes on to its end (voicemail here), the process exits 0, and afterwards every
// call has its CDR and nothing is left in the outbox (the relay's final pass published what the drain wrote).
func TestSIGTERMMidCall(t *testing.T) {
	ctx := context.Background()
	dir := testenv.TempDir(t)
	rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: testenv.FreePort(t), RedisPort: testenv.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	db, err := pgxpool.New(ctx, rt.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		t.Fatal(err)
	}
	httpPort, sipPort := testenv.FreePort(t), testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", sipPort)
	p := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + rt.DatabaseURL, "HOTLINE_REDIS_URL=" + rt.RedisURL,
		"HOTLINE_DATA_DIR=" + dir, fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", httpPort), "HOTLINE_SIP_LISTEN=udp:" + sipAddr,
		"HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		// Nobody staffed: the caller waits 1 s, then leaves a message of at most 3 s — all inside the drain.
		"HOTLINE_QUEUE_LIMIT=1s", "HOTLINE_VOICEMAIL_MAX=3s", "HOTLINE_SIP_DRAIN_TIMEOUT=30s"}, "serve")
	waitReady(t, p, base)

	citizen, err := phonetest.Start(phonetest.Options{ToneHz: 440})
	if err != nil {
		t.Fatal(err)
	}
	defer citizen.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call, err := citizen.Dial(dctx, "sip:12345@"+sipAddr, phonetest.DialOptions{From: "13812345678"})
	if err != nil {
		t.Fatalf("call before SIGTERM: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	// Out of rotation at once, while the call is still up.
	waitFor(t, "/readyz 503 after SIGTERM", func() bool { code, _ := tryGet(base + "/readyz"); return code == 503 })
	select {
	case <-call.Done():
		t.Fatal("the call in progress was cut at SIGTERM")
	default:
	}
	late, err := phonetest.Start(phonetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	if _, err := late.Dial(lctx, "sip:12345@"+sipAddr, phonetest.DialOptions{From: "13812345679"}); err == nil {
		t.Error("a new call was answered while draining")
	}
	select {
	case <-call.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not end")
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.out.String())
	}
	var calls, open, outbox, voicemails int
	db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL OR disposition IS NULL) FROM calls`).Scan(&calls, &open)
	db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox)
	db.QueryRow(ctx, `SELECT count(*) FROM tickets WHERE source = 'voicemail'`).Scan(&voicemails)
	if calls == 0 || open != 0 {
		t.Errorf("%d calls, %d without an ended CDR", calls, open)
	}
	if voicemails != 1 {
		t.Errorf("%d voicemail tickets, want 1 (the call drained to its end)", voicemails)
	}
	if outbox != 0 {
		t.Errorf("%d outbox rows left after shutdown", outbox)
	}
}

func tryGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

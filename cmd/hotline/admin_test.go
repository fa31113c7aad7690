package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
)

// `hotline users create --admin NAME` reads the password from a file or stdin (never the command line), refuses a
// weak one or a taken name, and leaves an admin audit row.
func TestUsersCreateAdmin(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	cfg, _, _, err := loadConfig(nil, []string{"HOTLINE_DATABASE_URL=" + url})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("first-admin-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runUsers(ctx, cfg, []string{"create", "--admin", "ops", "--display-name", "运维管理员", "--password-file", file}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "created admin ops") {
		t.Errorf("output %q", out.String())
	}
	stdin = strings.NewReader("second-admin-pw\n")
	defer func() { stdin = os.Stdin }()
	if err := runUsers(ctx, cfg, []string{"create", "--admin=ops2"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		input string
	}{
		{[]string{"create", "--admin", "ops3"}, "short\n"},             // too short
		{[]string{"create", "--admin", "ops"}, "another-long-pw\n"},    // taken
		{[]string{"create", "--admin", "ops4"}, ""},                    // no password at all
		{[]string{"create", "--admin", "ops5", "--password", "x"}, ""}, // a password on the command line is not a flag
		{[]string{"delete", "--admin", "ops"}, ""},
	} {
		stdin = strings.NewReader(c.input)
		err := runUsers(ctx, cfg, c.args, &out)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v, want a usage error", c.args, err)
		}
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM users u JOIN admin_audit a ON a.object = 'user:' || u.id
		WHERE u.role = 'admin' AND u.username IN ('ops', 'ops2') AND a.action = 'user.create' AND a.source_addr = 'cli'`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d admins created with their audit rows, want 2", n)
	}
}

// On an empty installation `hotline serve` creates the first admin from HOTLINE_BOOTSTRAP_ADMIN and the password
// file; started again with another password it changes nothing.
func TestServeBootstrapsFirstAdmin(t *testing.T) {
	url := testenv.NewDatabase(t)
	// A generous acquire timeout: opening a connection on a loaded test machine can take longer than the default.
	p := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + url, "HOTLINE_DB_ACQUIRE_TIMEOUT=10s"}, "migrate", "up")
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, p.out.String())
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "admin-password")
	os.WriteFile(pw, []byte("Hunan-first-2026\n"), 0o600)
	key := "HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	serve := func(extra ...string) (*proc, string) {
		port := testenv.FreePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		env := append(append([]string{"HOTLINE_DATABASE_URL=" + url, key, "HOTLINE_DB_ACQUIRE_TIMEOUT=10s", "HOTLINE_REDIS_URL=" + testenv.RedisURL(t),
			fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", port)}, serveEnv(t)...), extra...)
		s := startHotline(t, env, "serve")
		waitReady(t, s, base)
		return s, base
	}
	login := func(base, password string) int {
		resp, err := http.Post(base+"/api/v1/tokens", "application/json", strings.NewReader(`{"username":"root","password":"`+password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	stop := func(s *proc) {
		s.cmd.Process.Signal(syscall.SIGTERM)
		if code := s.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("serve exit %d\n%s", code, s.out.String())
		}
	}

	s, base := serve("HOTLINE_BOOTSTRAP_ADMIN=root", "HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE="+pw)
	if code := login(base, "Hunan-first-2026"); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("the bootstrapped admin cannot sign in: %d\n%s", code, s.out.String())
	}
	if out := s.out.String(); !strings.Contains(out, "created the first admin") || strings.Contains(out, "Hunan-first-2026") {
		t.Errorf("serve output (must announce the admin and never print the password):\n%s", out)
	}
	stop(s)

	os.WriteFile(pw, []byte("Hunan-second-2026\n"), 0o600)
	s, base = serve("HOTLINE_BOOTSTRAP_ADMIN=root", "HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE="+pw)
	if code := login(base, "Hunan-second-2026"); code != http.StatusUnauthorized {
		t.Errorf("a second bootstrap changed the admin's password: %d", code)
	}
	if code := login(base, "Hunan-first-2026"); code != http.StatusOK && code != http.StatusCreated {
		t.Errorf("the first password stopped working: %d", code)
	}
	if !strings.Contains(s.out.String(), "HOTLINE_BOOTSTRAP_ADMIN ignored") {
		t.Errorf("serve output:\n%s", s.out.String())
	}
	stop(s)

	// A bootstrap name without a password stops the start with the variable's name.
	bad := startHotline(t, []string{"HOTLINE_DATABASE_URL=" + url, "HOTLINE_BOOTSTRAP_ADMIN=root"}, "serve")
	if code := bad.wait(t, 30*time.Second); code != 2 || !strings.Contains(bad.out.String(), "HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE") {
		t.Errorf("exit %d\n%s", code, bad.out.String())
	}
}

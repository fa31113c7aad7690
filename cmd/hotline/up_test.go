package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
	"hotline/ticketing/org"
)

type upEnv struct {
	dir, base, dbURL, sip, metrics string
	env                            []string
}

func newUpEnv(t *testing.T) upEnv {
	dir := filepath.Join(testenv.TempDir(t), "data")
	httpPort, pgPort, redisPort, sipPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	metricsPort := testenv.FreePort(t)
	return upEnv{
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		sip:     fmt.Sprintf("127.0.0.1:%d", sipPort),
		dir:     dir,
		base:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		dbURL:   fmt.Sprintf("postgres://hotline@127.0.0.1:%d/hotline?sslmode=disable", pgPort),
		env: []string{
			"HOTLINE_DATA_DIR=" + dir,
			fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", httpPort),
			fmt.Sprintf("HOTLINE_METRICS_ADDR=127.0.0.1:%d", metricsPort),
			fmt.Sprintf("HOTLINE_PG_PORT=%d", pgPort),
			fmt.Sprintf("HOTLINE_REDIS_PORT=%d", redisPort),
			fmt.Sprintf("HOTLINE_SIP_LISTEN=udp:127.0.0.1:%d,tcp:127.0.0.1:%d", sipPort, sipPort),
		},
	}
}

// The embedded default end to end: start, ready, the organisation tree, the API, clean stop, restart with the
// same data, and recovery after SIGKILL.
func TestUpEndToEnd(t *testing.T) {
	e := newUpEnv(t)
	ctx := context.Background()

	p := startHotline(t, e.env, "up")
	waitReady(t, p, e.base)
	if !strings.Contains(p.out.String(), "initialised PostgreSQL cluster") {
		t.Errorf("first run did not initialise a cluster:\n%s", p.out.String())
	}
	if !strings.Contains(p.out.String(), e.base+"/api/v1/") || !strings.Contains(p.out.String(), e.sip) {
		t.Errorf("start-up output does not say where the API and the SIP listener are:\n%s", p.out.String())
	}

	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var counties, prefectures, divisions int
	conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'county'), count(*) FILTER (WHERE kind = 'prefecture'),
		count(*) FILTER (WHERE kind = 'division') FROM units`).Scan(&counties, &prefectures, &divisions)
	if counties != 122 || prefectures != 14 || divisions != 12 {
		t.Errorf("org tree: %d county bureaus, %d prefecture bureaus, %d divisions; want 122, 14, 12", counties, prefectures, divisions)
	}
	var parentCode, name string
	if err := conn.QueryRow(ctx, `SELECT p.code, c.name FROM units c JOIN units p ON p.id = c.parent_id WHERE c.code = '430903'`).Scan(&parentCode, &name); err != nil {
		t.Fatal(err)
	}
	if parentCode != "430900" || name != "益阳市赫山区乡村振兴局" {
		t.Errorf("430903 hangs under %s as %q; want 430900 益阳市赫山区乡村振兴局", parentCode, name)
	}
	var users int
	conn.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users)
	if users == 0 {
		t.Error("no demo users on first run")
	}

	// The API: unauthenticated is a JSON 401; a token of a demo user works.
	if code, body := get(t, e.base+"/api/v1/units"); code != 401 || !strings.Contains(body, `"code":"unauthenticated"`) {
		t.Errorf("no token: %d %s", code, body)
	}
	var adminID org.UserID
	conn.QueryRow(ctx, `SELECT id FROM users WHERE username = 'admin'`).Scan(&adminID)
	token, err := org.CreateToken(ctx, conn, adminID, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, e.base+"/api/v1/units", "Authorization", "Bearer "+token); code != 200 || !strings.Contains(body, "赫山区乡村振兴局") {
		t.Errorf("units with token: %d %.200s", code, body)
	}
	// Metrics are served on their own address, not on the console's port.
	if code, body := get(t, e.metrics); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d", code)
	}
	if code, _ := get(t, e.base+"/metrics"); code == 200 {
		t.Errorf("/metrics is served on the console port")
	}
	if code, _ := get(t, e.base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	conn.Close(ctx)

	// SIGTERM stops everything in order and leaves no server behind.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d\n%s", code, p.out.String())
	}
	waitNoProcesses(t, e.dir)

	// A second start reuses the data: no new cluster, no second set of demo users.
	p2 := startHotline(t, e.env, "up")
	waitReady(t, p2, e.base)
	if strings.Contains(p2.out.String(), "initialised PostgreSQL cluster") {
		t.Error("second run initialised a new cluster")
	}
	conn, err = pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var users2 int
	conn.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users2)
	conn.Close(ctx)
	if users2 != users {
		t.Errorf("users after restart: %d, before: %d", users2, users)
	}

	// SIGKILL: the servers die with hotline (parent-death signal), and the next start recovers.
	p2.cmd.Process.Kill()
	p2.wait(t, 10*time.Second)
	waitNoProcesses(t, e.dir)
	p3 := startHotline(t, e.env, "up")
	waitReady(t, p3, e.base)
	p3.cmd.Process.Signal(syscall.SIGTERM)
	if code := p3.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d\n%s", code, p3.out.String())
	}
	waitNoProcesses(t, e.dir)
}

// Each start-up fault gives one clear line, a non-zero exit, and no half-made cluster.
func TestUpFaults(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		e := newUpEnv(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		p := startHotline(t, append(e.env, fmt.Sprintf("HOTLINE_PG_PORT=%d", port)), "up")
		if code := p.wait(t, 60*time.Second); code == 0 {
			t.Fatal("exit 0 with the port taken")
		}
		out := p.out.String()
		if !strings.Contains(out, fmt.Sprintf("port %d", port)) || !strings.Contains(out, "HOTLINE_PG_PORT") {
			t.Errorf("message does not name the port and the setting:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "postgres")); err == nil {
			t.Error("a cluster was created although start-up failed")
		}
	})
	t.Run("data directory is not a directory", func(t *testing.T) {
		e := newUpEnv(t)
		file := filepath.Join(filepath.Dir(e.dir), "file")
		os.WriteFile(file, []byte("x"), 0o644)
		p := startHotline(t, append(e.env, "HOTLINE_DATA_DIR="+filepath.Join(file, "data")), "up")
		if code := p.wait(t, 60*time.Second); code == 0 {
			t.Fatal("exit 0")
		}
		if out := p.out.String(); !strings.Contains(out, "cannot create data directory") || !strings.Contains(out, "HOTLINE_DATA_DIR") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("cluster of another major version", func(t *testing.T) {
		e := newUpEnv(t)
		os.MkdirAll(filepath.Join(e.dir, "postgres"), 0o700)
		os.WriteFile(filepath.Join(e.dir, "postgres", "PG_VERSION"), []byte("9\n"), 0o600)
		p := startHotline(t, e.env, "up")
		if code := p.wait(t, 60*time.Second); code == 0 {
			t.Fatal("exit 0")
		}
		if out := p.out.String(); !strings.Contains(out, "PostgreSQL 9 cluster") {
			t.Errorf("output:\n%s", out)
		}
		if b, _ := os.ReadFile(filepath.Join(e.dir, "postgres", "PG_VERSION")); string(b) != "9\n" {
			t.Error("the foreign cluster was touched")
		}
	})
}

// serveEnv keeps a serve test off the default SIP ports and out of the working directory.
func serveEnv(t *testing.T) []string {
	return []string{
		"HOTLINE_DATA_DIR=" + testenv.TempDir(t),
		fmt.Sprintf("HOTLINE_METRICS_ADDR=127.0.0.1:%d", testenv.FreePort(t)),
		fmt.Sprintf("HOTLINE_SIP_LISTEN=udp:127.0.0.1:%d", testenv.FreePort(t)),
	}
}

func TestServeFaults(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	t.Run("unreachable database", func(t *testing.T) {
		p := startHotline(t, append(serveEnv(t), "HOTLINE_DATABASE_URL=postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "HOTLINE_REDIS_URL="+redisURL), "serve")
		if code := p.wait(t, 30*time.Second); code != 1 {
			t.Fatalf("exit %d", code)
		}
		if out := p.out.String(); !strings.Contains(out, "cannot reach PostgreSQL") || !strings.Contains(out, "HOTLINE_DATABASE_URL") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("not a URL", func(t *testing.T) {
		p := startHotline(t, append(serveEnv(t), "HOTLINE_DATABASE_URL=::not a url::", "HOTLINE_REDIS_URL="+redisURL), "serve")
		if code := p.wait(t, 30*time.Second); code == 0 {
			t.Fatal("exit 0")
		}
		if out := p.out.String(); !strings.Contains(out, "HOTLINE_DATABASE_URL") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("schema out of date", func(t *testing.T) {
		url := testenv.NewDatabase(t)
		p := startHotline(t, append(serveEnv(t), "HOTLINE_DATABASE_URL="+url, "HOTLINE_REDIS_URL="+redisURL, fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", testenv.FreePort(t))), "serve")
		if code := p.wait(t, 30*time.Second); code != 1 {
			t.Fatalf("exit %d", code)
		}
		if out := p.out.String(); !strings.Contains(out, "out of date") || !strings.Contains(out, "hotline migrate") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("schema newer than the binary", func(t *testing.T) {
		url := testenv.DatabaseURL(t)
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')`); err != nil {
			t.Fatal(err)
		}
		p := startHotline(t, append(serveEnv(t), "HOTLINE_DATABASE_URL="+url, "HOTLINE_REDIS_URL="+redisURL, fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", testenv.FreePort(t))), "serve")
		if code := p.wait(t, 30*time.Second); code != 1 {
			t.Fatalf("exit %d", code)
		}
		if out := p.out.String(); !strings.Contains(out, "database schema 9999 is newer than this binary's") || !strings.Contains(out, "upgrade hotline") {
			t.Errorf("output:\n%s", out)
		}
	})
}

// migrate status/up against an empty database, then serve comes up ready on it.
func TestMigrateThenServe(t *testing.T) {
	url := testenv.NewDatabase(t)
	env := []string{"HOTLINE_DATABASE_URL=" + url}
	p := startHotline(t, env, "migrate", "status")
	if code := p.wait(t, 30*time.Second); code != 0 || !strings.Contains(p.out.String(), "pending") {
		t.Fatalf("status on empty: exit %d\n%s", code, p.out.String())
	}
	p = startHotline(t, env, "migrate", "up")
	if code := p.wait(t, 60*time.Second); code != 0 || !strings.Contains(p.out.String(), "units in the organisation tree") {
		t.Fatalf("migrate up: exit %d\n%s", code, p.out.String())
	}
	p = startHotline(t, env, "migrate", "status")
	if code := p.wait(t, 30*time.Second); code != 0 || !strings.Contains(p.out.String(), "current") {
		t.Fatalf("status after up: exit %d\n%s", code, p.out.String())
	}
	p = startHotline(t, env, "migrate", "sideways")
	if code := p.wait(t, 30*time.Second); code != 2 {
		t.Fatalf("bad argument: exit %d", code)
	}

	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// serve needs the personal-data key (hotline up makes one in its data directory).
	key := "HOTLINE_PII_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	s := startHotline(t, append(append(env, serveEnv(t)...), key, "HOTLINE_REDIS_URL="+testenv.RedisURL(t), fmt.Sprintf("HOTLINE_HTTP_ADDR=127.0.0.1:%d", port)), "serve")
	waitReady(t, s, base)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("serve exit %d\n%s", code, s.out.String())
	}
}

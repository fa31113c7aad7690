// Package testenv gives tests real PostgreSQL and Redis servers, started by deploy/localrt — the same code as
// `hotline up` — once per test binary, in a temporary directory, on free loopback ports.
//
// Each test gets isolation of its own: DB returns a pool on a fresh database cloned from a template that holds
// every migration and the organisation tree (cloning takes milliseconds, so tests may run in parallel); Redis
// returns a client and a key prefix of its own. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// The servers stop when Main returns, and die with the test binary if it is killed (parent-death signal).
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/ticketing/org"
)

var (
	once     sync.Once
	rt       *localrt.Runtime
	dir      string
	startErr error
	counter  atomic.Int64
	template = "hotline_template"
)

// Main runs the tests and stops the servers afterwards.
func Main(m *testing.M) int {
	// Passwords hashed at bcrypt's least cost: see org.PasswordCost.
	org.PasswordCost = bcrypt.MinCost
	code := m.Run()
	if rt != nil {
		rt.Stop()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	p, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return p
}

// freePort finds a loopback port free a moment ago. It is drawn from 10000–22999, below the topology tests' ports (23000+) and the kernel's ephemeral range
// (32768+): a port the kernel handed out would be handed out again, to some client socket of another test
// process, before the server meant to have it binds (seen in CI: "address already in use" with three test
// groups side by side). It is free for TCP and UDP both, since SIP listens on both.
func freePort() (int, error) {
	for range 200 {
		p := 10000 + rand.IntN(13000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port in 10000-22999 after 200 tries")
}

// TempDir returns a directory that the postgres system user can traverse too (t.TempDir is private to root).
func TempDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "hotline-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := os.MkdirTemp("", "hotline-testenv-")
	if err != nil {
		startErr = err
		return
	}
	os.Chmod(d, 0o755)
	dir = d
	pgPort, err := freePort()
	if err != nil {
		startErr = err
		return
	}
	redisPort, err := freePort()
	if err != nil {
		startErr = err
		return
	}
	rt, startErr = localrt.Start(ctx, localrt.Options{Dir: filepath.Join(d, "data"), PGPort: pgPort, RedisPort: redisPort})
	if startErr != nil {
		return
	}
	startErr = buildTemplate(ctx)
}

func buildTemplate(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, dbURL(template))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool, nil); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	if _, err := org.SeedUnits(ctx, pool); err != nil {
		return fmt.Errorf("seed template: %w", err)
	}
	return nil
}

func servers(t testing.TB) {
	t.Helper()
	once.Do(start)
	if startErr != nil {
		t.Fatalf("testenv: start PostgreSQL and Redis: %v", startErr)
	}
}

func dbURL(name string) string {
	return strings.Replace(rt.DatabaseURL, "/hotline?", "/"+name+"?", 1)
}

// NewDatabase creates an empty database (no migrations) and returns its URL; it is dropped at cleanup.
func NewDatabase(t testing.TB) string {
	return newDatabase(t, "")
}

func newDatabase(t testing.TB, from string) string {
	t.Helper()
	servers(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer admin.Close(ctx)
	sql := "CREATE DATABASE " + name
	if from != "" {
		sql += " TEMPLATE " + from
	}
	if _, err := admin.Exec(ctx, sql); err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dbURL("postgres"))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return dbURL(name)
}

// DatabaseURL returns the URL of a fresh, migrated and seeded database of this test's own.
func DatabaseURL(t testing.TB) string {
	return newDatabase(t, template)
}

// DB returns a pool on a fresh, migrated and seeded database of this test's own. The pool fails the test if a
// goroutine acquires a second connection while it holds one (see nestedGuard).
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return DBWith(t, nil)
}

// DBWith is DB with the pool configuration adjusted by tune (e.g. a small MaxConns), if not nil.
func DBWith(t testing.TB, tune func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	url := DatabaseURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("testenv: pool: %v", err)
	}
	g := newNestedGuard()
	cfg.ConnConfig.Tracer = g
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testenv: pool: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		if msg := g.report(); msg != "" {
			t.Error(msg)
		}
	})
	return pool
}

// RedisURL is the URL of the shared test Redis.
func RedisURL(t testing.TB) string {
	servers(t)
	return rt.RedisURL
}

// Redis returns a client of the shared Redis and a key prefix of this test's own ("t<pid>_<n>:"); every key
// under the prefix is deleted at cleanup.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	servers(t)
	opt, err := redis.ParseURL(rt.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	prefix := fmt.Sprintf("t%d_%d:", os.Getpid(), counter.Add(1))
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		c.Close()
	})
	return c, prefix
}

// MainNoLeaks is Main that also fails the run when goroutines outlive the tests (go.uber.org/goleak): every
// goroutine a package starts must have an owner that stops it. Use it in packages that start goroutines.
func MainNoLeaks(m *testing.M, ignore ...goleak.Option) int {
	code := Main(m)
	if code != 0 {
		return code
	}
	if err := goleak.Find(ignore...); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests:\n%v\n", err)
		return 1
	}
	return 0
}

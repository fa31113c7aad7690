package testenv

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Two databases from the template are separate, both seeded.
func TestDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := DB(t), DB(t)
	if _, err := a.Exec(ctx, `UPDATE units SET name = 'changed' WHERE code = '430903'`); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := b.QueryRow(ctx, `SELECT name FROM units WHERE code = '430903'`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "益阳市赫山区乡村振兴局" {
		t.Fatalf("second database sees %q: not isolated or not seeded", name)
	}
}

func TestRedisPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	c1, p1 := Redis(t)
	_, p2 := Redis(t)
	if p1 == p2 {
		t.Fatalf("prefixes collide: %q", p1)
	}
	if err := c1.Set(ctx, p1+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := c1.Exists(ctx, p2+"k").Result(); n != 0 {
		t.Fatal("key visible under the other prefix")
	}
}

// The guard sees a pool query made while the same goroutine holds a transaction.
func TestNestedAcquireIsCaught(t *testing.T) {
	ctx := context.Background()
	g := newNestedGuard()
	cfg, err := pgxpool.ParseConfig(DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = g
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Sequential use is fine.
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if msg := g.report(); msg != "" {
		t.Fatalf("sequential use flagged: %s", msg)
	}
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil { // the nested acquisition
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if msg := g.report(); !strings.Contains(msg, "TestNestedAcquireIsCaught") {
		t.Fatalf("nested acquisition not reported with its stack: %q", msg)
	}
}

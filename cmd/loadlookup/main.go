// Command loadlookup measures the monitoring records at scale: how long generating N synthetic households takes,
// the caller lookup's latency (p50/p99) over those households, and import throughput (rows/s) for a CSV file of
// a given size. It starts its own PostgreSQL (deploy/localrt, in a temporary directory, loopback only) unless
// -database-url is given, runs a fixed number of lookups, and stops by itself.
//
//	go run ./cmd/loadlookup -households 1000000 -lookups 20000 -import-rows 100000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

func main() {
	var (
		dbURL      = flag.String("database-url", "", "PostgreSQL to use (default: a private one in a temporary directory)")
		households = flag.Int("households", 1_000_000, "synthetic households to generate before the lookups")
		lookups    = flag.Int("lookups", 20_000, "caller lookups to time (one at a time)")
		importRows = flag.Int("import-rows", 100_000, "rows of the CSV file whose import is timed (0: skip)")
		durable    = flag.Bool("durable", true, "fsync on, as `hotline up` runs (private PostgreSQL only)")
		tickets    = flag.Int("tickets", 200_000, "tickets linked to random households (a third closed), so lookups find open tickets")
		csvOut     = flag.String("csv-out", "", "only write a CSV of -import-rows synthetic rows to this file and exit")
	)
	flag.Parse()
	if *csvOut != "" {
		data, n := monitoring.DemoCSVRows(0, *importRows)
		if err := os.WriteFile(*csvOut, []byte(data), 0o644); err != nil {
			fatal(err)
		}
		fmt.Printf("wrote %s: %d households, %d rows\n", *csvOut, n, strings.Count(data, "\n")-1)
		return
	}
	ctx := context.Background()
	url := *dbURL
	if url == "" {
		dir, err := os.MkdirTemp("", "loadlookup-")
		if err != nil {
			fatal(err)
		}
		os.Chmod(dir, 0o755)
		defer os.RemoveAll(dir)
		rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: freePort(), RedisPort: freePort(), Durable: *durable})
		if err != nil {
			fatal(err)
		}
		defer rt.Stop()
		url = rt.DatabaseURL
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db, slog.New(slog.DiscardHandler)); err != nil {
		fatal(err)
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		fatal(err)
	}
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	svc := monitoring.New(monitoring.Config{DB: db, Box: box})

	from, err := svc.DemoNext(ctx)
	if err != nil {
		fatal(err)
	}
	if from > 0 {
		fatal(fmt.Errorf("the database already holds synthetic households; use an empty one"))
	}
	start := time.Now()
	last := time.Now()
	if err := svc.LoadDemo(ctx, 0, *households, func(done int) {
		if time.Since(last) > 10*time.Second {
			fmt.Printf("  generated %d households (%.0fs)\n", done, time.Since(start).Seconds())
			last = time.Now()
		}
	}); err != nil {
		fatal(err)
	}
	gen := time.Since(start)
	var members, phones int
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM household_members), (SELECT count(*) FROM household_phones)`).Scan(&members, &phones)
	fmt.Printf("generation: %d households, %d members, %d phones in %.1fs (%.0f households/s, COPY, sealed in Go)\n",
		*households, members, phones, gen.Seconds(), float64(*households)/gen.Seconds())
	if *tickets > 0 {
		start = time.Now()
		if _, err := db.Exec(ctx, `INSERT INTO tickets (number, query_code, source, household_id, kind, category, content,
				status, lead_unit_id)
			SELECT 'LOAD-' || g, '000000', 'phone', (g::bigint * 7919) % $2 + 1, 'help', 'monitoring_help', '压测工单',
			       CASE WHEN g % 3 = 0 THEN 'closed' ELSE 'dispatched' END, (SELECT id FROM units WHERE code = 'desk')
			  FROM generate_series(1, $1) AS g`, *tickets, *households); err != nil {
			fatal(err)
		}
		fmt.Printf("tickets: %d linked to households in %.1fs (generate_series)\n", *tickets, time.Since(start).Seconds())
	}
	start = time.Now()
	for _, t := range []string{"households", "household_members", "household_phones", "tickets"} {
		if _, err := db.Exec(ctx, `VACUUM ANALYZE `+t); err != nil {
			fatal(err)
		}
	}
	fmt.Printf("vacuum analyze: %.1fs\n", time.Since(start).Seconds())

	// Lookups: 90% known numbers in the formats callers' numbers arrive in, 10% unknown ones.
	rng := rand.New(rand.NewPCG(1, 2))
	formats := []func(string) string{
		func(p string) string { return p },
		func(p string) string { return "+86 " + p[:3] + " " + p[3:7] + " " + p[7:] },
		func(p string) string { return "0086" + p },
	}
	number := func() string {
		if rng.IntN(10) == 0 {
			return fmt.Sprintf("1390000%04d", rng.IntN(10000))
		}
		return formats[rng.IntN(len(formats))](monitoring.DemoPhone(rng.IntN(*households)))
	}
	for i := 0; i < 1000; i++ { // warm the connections and caches
		if _, err := svc.LookupPhone(ctx, number()); err != nil {
			fatal(err)
		}
	}
	lat := make([]time.Duration, *lookups)
	found, openTickets := 0, 0
	start = time.Now()
	for i := range lat {
		n := number()
		t0 := time.Now()
		ms, err := svc.LookupPhone(ctx, n)
		lat[i] = time.Since(t0)
		if err != nil {
			fatal(err)
		}
		found += len(ms)
		for _, m := range ms {
			openTickets += len(m.OpenTickets)
		}
	}
	total := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	fmt.Printf("caller lookup over %d households: %d lookups in %.1fs (one at a time), %d households and %d open tickets matched\n",
		*households, *lookups, total.Seconds(), found, openTickets)
	fmt.Printf("  p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))

	if *importRows > 0 {
		data, n := monitoring.DemoCSVRows(*households, *importRows)
		rows := strings.Count(data, "\n") - 1
		for _, run := range []string{"new households", "same file again (unchanged)"} {
			start = time.Now()
			rep, err := svc.Import(ctx, org.System, strings.NewReader(data))
			if err != nil {
				fatal(err)
			}
			d := time.Since(start)
			fmt.Printf("import %s: %d rows (%d households, %.1f MB) in %.1fs = %.0f rows/s; created %d, updated %d, unchanged %d, rejected %d\n",
				run, rows, n, float64(len(data))/1e6, d.Seconds(), float64(rows)/d.Seconds(), rep.Created, rep.Updated,
				rep.Unchanged, len(rep.Rejected))
		}
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadlookup:", err)
	os.Exit(1)
}

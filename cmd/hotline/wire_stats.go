package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"hotline/ticketing/stats"
)

func init() {
	commands = append(commands, command{name: "stats",
		summary: "stats refresh [--all]: bring the case statistics (KPI facts and day sums) up to date now, so no request waits for it; --all recomputes every ticket",
		run:     runStats})
}

// runStats: `hotline stats refresh`. The KPI facts and day sums are brought up to date by the first KPI read after
// tickets changed; after an upgrade that marks every ticket (or with --all), that first read would wait minutes at
// a million tickets, so an operator runs this once beforehand. Safe beside a running service: refreshes take an
// advisory lock and commit in batches.
func runStats(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	const usage = "usage: hotline stats refresh [--all]"
	if len(args) == 0 || args[0] != "refresh" || len(args) > 2 || (len(args) == 2 && args[1] != "--all") {
		return usageError{usage}
	}
	db, err := toolDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(args) == 2 {
		n, err := stats.MarkAll(ctx, db)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "marked %d tickets for recomputation\n", n)
	}
	start, last := time.Now(), time.Now()
	n, err := stats.RefreshReporting(ctx, db, func(done int) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "… %d tickets recomputed\n", done)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "case statistics up to date: %d tickets recomputed in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

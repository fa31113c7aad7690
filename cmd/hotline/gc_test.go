package main

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC and GOMEMLIMIT in the environment the process collects at gcPercent under a memory
// limit of half the memory; either variable set leaves Go's own reading of it alone.
func TestTuneGC(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })

	tuneGC([]string{"PATH=/usr/bin", "GOGC="}, log)
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC %d, want %d", got, gcPercent)
	}
	limit := debug.SetMemoryLimit(math.MaxInt64)
	if total := memoryTotal(); total <= 0 || limit != total/2 {
		t.Errorf("memory limit %d with %d bytes of memory, want half", limit, total)
	}

	tuneGC([]string{"GOGC=150", "GOMEMLIMIT=1GiB"}, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set in the environment, but changed to %d", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set in the environment, but the limit changed to %d", got)
	}
}

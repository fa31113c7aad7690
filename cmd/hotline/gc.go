package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the garbage collector's GOGC when the environment sets none.
//
// The live heap is small (about 35–45 MB with 1,500 calls up) and the heap grows fast while calls are set up, so
// at Go's default of 100 a cycle starts at every doubling: eight cycles while 1,500 calls were answered, the last
// ones marking for 200–550 ms on two cores. During a mark the collector and the goroutines it makes assist take
// the Ps, and the media pacing threads, woken on time by the kernel, wait for a P: the one burst of RTP gaps left
// on a quiet machine (up to 60 ms, all calls at once) fell in such a mark. At 400 a cycle starts when the heap is
// five times what was live, two cycles in the same run and none while the calls were held. The memory limit set
// beside it (half the machine's or the container's memory, unless GOMEMLIMIT is set) makes the collector work
// harder instead of letting a large live heap grow five-fold into swap.
const gcPercent = 400

// tuneGC applies gcPercent and the memory limit unless GOGC or GOMEMLIMIT are in environ (Go has read them).
func tuneGC(environ []string, log *slog.Logger) {
	set := map[string]bool{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" {
			set[k] = true
		}
	}
	if !set["GOGC"] {
		debug.SetGCPercent(gcPercent)
	}
	if !set["GOMEMLIMIT"] {
		if total := memoryTotal(); total > 0 {
			debug.SetMemoryLimit(total / 2)
		} else {
			log.Debug("memory size unknown: no memory limit for the garbage collector")
		}
	}
}

// memoryTotal is the container's memory limit (cgroup v2 or v1) or else the machine's memory, in bytes; 0 if
// neither can be read.
func memoryTotal() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total = kb << 10
			}
		}
		f.Close()
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path) // #nosec G304 -- fixed paths of the kernel's cgroup files
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n // "max" (no limit) does not parse, and v1's "no limit" is larger than the machine
		}
	}
	return total
}

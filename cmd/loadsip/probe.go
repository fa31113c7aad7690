package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prober sleeps 1 ms at a time on a thread of its own, at real-time priority when the kernel allows it, and notes
// how late it woke. A stall that this thread sees too is the machine's (the hypervisor or the kernel held every
// thread), not hotline's; one it does not see happened inside hotline or to hotline's threads alone.
type prober struct {
	start    time.Time
	policy   string
	stalls   []silence // wake-ups later than 5 ms, in order
	wakeups  int
	late     int
	stop     chan struct{}
	finished chan struct{}
}

func startProber(start time.Time) *prober {
	p := &prober{start: start, stop: make(chan struct{}), finished: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.finished)
		runtime.LockOSThread() // stays locked: the thread ends with the goroutine, taking its priority with it
		p.policy = "SCHED_FIFO 50"
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 50}, 0); err != nil {
			p.policy = "normal priority (" + err.Error() + ")"
		}
		close(ready)
		var now unix.Timespec
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
			due := unix.NsecToTimespec(now.Nano() + int64(time.Millisecond))
			// A raw syscall keeps this goroutine's P: it wakes straight into its own code, so the figure is the
			// kernel's wake-up latency, not Go's scheduler.
			unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, uintptr(unsafe.Pointer(&due)), 0, 0, 0)
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
			p.wakeups++
			if late := time.Duration(now.Nano() - due.Nano()); late > 5*time.Millisecond {
				p.late++
				if len(p.stalls) < 1_000_000 {
					p.stalls = append(p.stalls, silence{at: time.Since(p.start) - late, length: late})
				}
			}
		}
	}()
	<-ready
	return p
}

// end stops the prober; its stalls may be read after.
func (p *prober) end() {
	close(p.stop)
	<-p.finished
}

// explained tells how much of the stretch [from, to) (since the run's start) the machine itself stood still, by
// the longest stall of the prober that overlaps it.
func (p *prober) explained(from, to time.Duration) time.Duration {
	var most time.Duration
	i, _ := slices.BinarySearchFunc(p.stalls, from-time.Second, func(s silence, t time.Duration) int { return int(s.at - t) })
	for ; i < len(p.stalls) && p.stalls[i].at < to; i++ {
		if s := p.stalls[i]; s.at+s.length > from {
			most = max(most, s.length)
		}
	}
	return most
}

func (p *prober) report() {
	byLength := slices.Clone(p.stalls)
	slices.SortFunc(byLength, func(a, b silence) int { return int(b.length - a.length) })
	var line []string
	for _, x := range byLength[:min(10, len(byLength))] {
		line = append(line, fmt.Sprintf("%.2f+%dms", x.at.Seconds(), x.length.Milliseconds()))
	}
	fmt.Printf("machine: a 1 ms sleeper (%s) woke > 5 ms late %d times in %d; longest (start s + lateness): %s\n",
		p.policy, p.late, p.wakeups, strings.Join(line, " "))
}

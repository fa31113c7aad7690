package telephony

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storageHealth remembers the last failure to write a recording (a full or read-only disk), so an operator sees
// it on /readyz and in metrics while calls go on without their recordings (issue 15: disk full must not drop
// calls or lose tickets). A success after the failure clears it.
type storageHealth struct {
	mu       sync.Mutex
	failures int64
	lastErr  error
	lastAt   time.Time
}

// RecordingFailed notes that a recording could not be written; the call it belongs to goes on without it.
func (s *Service) RecordingFailed(err error) {
	s.storage.mu.Lock()
	s.storage.failures++
	s.storage.lastErr, s.storage.lastAt = err, time.Now()
	s.storage.mu.Unlock()
	s.log.Error("recording could not be written; the call goes on without it", "dir", s.recDir, "err", err)
}

// RecordingSaved notes a recording written whole, clearing an earlier failure.
func (s *Service) RecordingSaved() {
	s.storage.mu.Lock()
	s.storage.lastErr = nil
	s.storage.mu.Unlock()
}

// RecordingsHealth describes the recordings store for /readyz: "ok", or the last write failure and when it
// happened. It never makes the process unready: calls are still taken, only their recordings are missing.
func (s *Service) RecordingsHealth() string {
	s.storage.mu.Lock()
	defer s.storage.mu.Unlock()
	if s.storage.lastErr == nil {
		return "ok"
	}
	return fmt.Sprintf("failing: %v (%s ago, %d failures since start)", s.storage.lastErr,
		time.Since(s.storage.lastAt).Round(time.Second), s.storage.failures)
}

// StorageCollectors are the recordings store's metrics.
func (s *Service) StorageCollectors() []prometheus.Collector {
	return []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_recording_failures_total",
		Help: "Recordings that could not be written (disk full, permissions); their calls went on without them."},
		func() float64 {
			s.storage.mu.Lock()
			defer s.storage.mu.Unlock()
			return float64(s.storage.failures)
		})}
}

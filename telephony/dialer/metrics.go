package dialer

import "github.com/prometheus/client_golang/prometheus"

// metrics of one dialer process.
type metrics struct {
	attempts *prometheus.CounterVec
	enqueued prometheus.Counter
	swept    prometheus.Counter
	active   prometheus.GaugeFunc
}

func newMetrics(d *Dialer) *metrics {
	return &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_dialer_attempts_total",
			Help: "Campaign call attempts this process finished, by outcome."}, []string{"outcome"}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_dialer_enqueued_total",
			Help: "Targets the scheduler put on the Redis stream (while this process led)."}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_dialer_interrupted_total",
			Help: "Attempts of dead dialer processes recorded as interrupted (while this process led)."}),
		active: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_dialer_calls_active",
			Help: "Campaign calls this process has up (channels held)."}, func() float64 { return float64(d.inFlight()) }),
	}
}

// Collectors returns the dialer's metrics for the process registry.
func (d *Dialer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{d.m.attempts, d.m.enqueued, d.m.swept, d.m.active}
}

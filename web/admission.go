package web

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound the requests in flight per route class (issue 15). A request over its class's limit is refused
// at once with 503 and Retry-After instead of queueing for a database connection: under a burst the server keeps
// serving what it can at full speed, and clients learn at once to come back. Writes get fewer slots than the
// database pool has connections, so reads and /readyz still find one while writes are shed. Zero: no limit.
type Limits struct {
	Writes int // POST, PUT, PATCH, DELETE under /api/
	Reads  int // GET and HEAD under /api/
	Health int // /healthz, /readyz, /metrics
}

var errOverloaded = errors.New("the server is at its limit of requests in progress; retry shortly")

type routeClass int

const (
	classNone routeClass = iota // console assets and websocket upgrades: not counted
	classHealth
	classRead
	classWrite
)

func classify(r *http.Request) routeClass {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return classHealth
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") || isUpgrade(r) {
		return classNone
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return classRead
	}
	return classWrite
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// admission counts requests in flight per class; a full class answers 503 without waiting.
type admission struct {
	limit    [4]int64
	inFlight [4]atomic.Int64
	shed     *prometheus.CounterVec
}

func newAdmission(l Limits, reg prometheus.Registerer) *admission {
	a := &admission{shed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_http_shed_total",
		Help: "HTTP requests refused with 503 because their route class was at its in-flight limit."}, []string{"class"})}
	a.limit[classHealth], a.limit[classRead], a.limit[classWrite] = int64(l.Health), int64(l.Reads), int64(l.Writes)
	if reg != nil {
		// A second server on the same registry (tests) keeps the first's counter.
		if err := reg.Register(a.shed); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				a.shed = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return a
}

var classNames = [4]string{"none", "health", "read", "write"}

func (s *Server) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			// The server's read and write timeouts bound ordinary requests (a dripping body, a client that does
			// not read); a websocket lives for hours, so its handler sets its own deadlines (ping/pong) instead.
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
		}
		c := classify(r)
		lim := s.adm.limit[c]
		if c == classNone || lim <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		n := &s.adm.inFlight[c]
		if n.Add(1) > lim {
			n.Add(-1)
			s.adm.shed.WithLabelValues(classNames[c]).Inc()
			writeError(w, r, s.log, errOverloaded)
			return
		}
		defer n.Add(-1)
		next.ServeHTTP(w, r)
	})
}

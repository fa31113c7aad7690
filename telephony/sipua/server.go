package sipua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"hotline/ticketing/org"
)

// Listener is one SIP listening address.
type Listener struct {
	Transport string // udp, tcp or tls
	Addr      string // host:port
	TLS       *tls.Config
}

// Config is the SIP side's configuration.
type Config struct {
	Listeners     []Listener
	ExternalHost  string // address put in Contact and SDP when behind NAT; default: the listen host
	Trunks        []Trunk
	Realm         string
	MaxCalls      int     // concurrent calls; beyond: 503
	RatePerSource float64 // out-of-dialog requests (INVITE, REGISTER) per second per source address
	Burst         int
	DrainTimeout  time.Duration
	RTPPortStart  int // 0: ephemeral ports
	RTPPortEnd    int
	UserAgent     string
	// MaxSetups is the most INVITEs between the gate and their answer (the transaction backlog) before new ones
	// get 503; default 2000 (a bound on memory, not a rate). Calls the handler answers late on purpose count until answered.
	MaxSetups int
	// ReadTimeout closes a TCP/TLS connection that sends nothing for this long (default 32 s = 64×T1): a
	// half-sent message cannot hold a connection (issue 14).
	ReadTimeout time.Duration
	// RegisterFailures is how many failed REGISTER authentications a source address, and separately a SIP user,
	// may have per minute before further attempts get 503 (default 10 per source, 3× that per user).
	RegisterFailures int
	// UDPReadBuffer is the receive buffer asked for on each UDP listener, in bytes (default 4 MiB; the kernel
	// caps it at net.core.rmem_max). See sipRcvBuf.
	UDPReadBuffer int
	// KeepOpen: the user agent is shared (the dialer and click-to-call place calls through it). Run then drains
	// the calls in and returns, leaving the listeners up until Close.
	KeepOpen bool
}

// Deps are what the server needs from the rest of the process.
type Deps struct {
	DB       org.DB // SIP accounts (registrar)
	Redis    *redis.Client
	Prefix   string // Redis key prefix
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// Call is an accepted INVITE, handed to the handler before it is answered.
type Call struct {
	Dialog    *diago.DialogServerSession
	Trunk     *Trunk
	Caller    string // From user, as sent
	Dialled   string // To user
	SIPCallID string
	Source    string
	Digits    <-chan rune // keypad digits that came as SIP INFO (B3); RTP events are the handler's to read
}

// Handler runs calls. HandleCall is the call: it runs in the INVITE's goroutine, and when it returns the call is
// hung up. ctx ends when the server gives up draining. Refused is told of calls from a known trunk that were
// refused before answer (capacity, draining, number not served), for their CDRs.
type Handler interface {
	HandleCall(ctx context.Context, c *Call)
	Refused(t *Trunk, req *sip.Request, err error)
}

// Server is the SIP user agent.
type Server struct {
	cfg Config
	log *slog.Logger
	// trunks is the trunk list every INVITE is checked against: cfg.Trunks at start, replaced whole by SetTrunks
	// (the stored trunks reloaded while running).
	trunks atomic.Pointer[[]Trunk]
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	dg     *diago.Diago
	reg    *Registrar
	trunk  nonces

	handler  Handler
	hardStop context.Context
	stopAll  context.CancelFunc

	limMu    sync.Mutex
	limiters map[netip.Addr]*rate.Limiter
	adm      *admission

	pending  sync.Map // pendingKey → pending, from the gate to the dialog handler
	digits   Digits
	active   atomic.Int64
	draining atomic.Bool
	ready    chan struct{}
	addrs    []string

	stopListeners context.CancelFunc // set by Run
	admDone       chan struct{}
	listeners     sync.WaitGroup // the listeners' serving goroutines
	doors         []*door        // one per UDP listener (door.go)
	closeOnce     sync.Once
	closeErr      error

	mCalls    *prometheus.GaugeVec
	mWait     prometheus.Histogram
	mRefused  *prometheus.CounterVec
	mAccepted prometheus.Counter
}

// New builds the server; nothing listens until Run.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Listeners) == 0 {
		return nil, errors.New("no SIP listeners configured")
	}
	if cfg.Realm == "" {
		cfg.Realm = "hotline"
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = 2000
	}
	if cfg.RatePerSource <= 0 {
		cfg.RatePerSource = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = int(cfg.RatePerSource)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hotline"
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 64 * sip.T1
	}
	if cfg.RegisterFailures <= 0 {
		cfg.RegisterFailures = 10
	}
	if cfg.UDPReadBuffer <= 0 {
		cfg.UDPReadBuffer = sipRcvBuf
	}
	// B10 (found here, not in the notes' list): sipgo answers an INVITE with its own 100 Trying when the handler
	// has not responded within Timer_1xx (200 ms), from a timer goroutine that races with the handler's response;
	// under load the 100 can go out after our 180, and strict peers (SIPp) fail the call. The gate sends 100 itself
	// at once, so the timer is not needed. Process-wide, like the RTP port range.
	sip.Timer_1xx = time.Hour
	if cfg.RTPPortStart > 0 {
		// Process-wide in diago; set once, here.
		dmedia.RTPPortStart, dmedia.RTPPortEnd = cfg.RTPPortStart, cfg.RTPPortEnd
	}
	host, _, err := net.SplitHostPort(cfg.Listeners[0].Addr)
	if err != nil {
		return nil, fmt.Errorf("SIP listen address %q: %w", cfg.Listeners[0].Addr, err)
	}
	// Stream transports get a read deadline: sipgo's default is none, and a peer that sends half a message (or
	// nothing) held the connection for as long as it liked.
	tcp := func() *sip.TransportTCP {
		return &sip.TransportTCP{ReadTimeout: cfg.ReadTimeout, WriteTimeout: 10 * time.Second}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerReadFilter(rawFilter),
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp(), TLS: &sip.TransportTLS{TransportTCP: tcp()}})))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(deps.Log))
	if err != nil {
		ua.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: deps.Log, ua: ua, srv: srv, limiters: map[netip.Addr]*rate.Limiter{}, ready: make(chan struct{}),
		trunk: nonces{rdb: deps.Redis, prefix: deps.Prefix, ttl: 30 * time.Second}, adm: newAdmission(cfg.MaxSetups)}
	s.adm.log = deps.Log
	trunks := slices.Clone(cfg.Trunks)
	s.trunks.Store(&trunks)
	s.reg = newRegistrar(deps.DB, deps.Redis, deps.Prefix, cfg.Realm, deps.Log)
	s.reg.failures = failureLimit{rdb: deps.Redis, prefix: deps.Prefix, perSource: cfg.RegisterFailures, perUser: 3 * cfg.RegisterFailures, window: time.Minute}
	opts := []diago.DiagoOption{
		diago.WithLogger(deps.Log), diago.WithServer(srv), diago.WithServerRequestMiddleware(s.gate),
		// China's carrier trunks speak G.711 A-law first.
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []dmedia.Codec{dmedia.CodecAudioAlaw, dmedia.CodecAudioUlaw, dmedia.CodecTelephoneEvent8000}}),
	}
	for _, l := range cfg.Listeners {
		h, p, err := net.SplitHostPort(l.Addr)
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("SIP listen address %q: %w", l.Addr, err)
		}
		port, _ := strconv.Atoi(p)
		t := diago.Transport{Transport: l.Transport, BindHost: h, BindPort: port, ExternalHost: cfg.ExternalHost, TLSConf: l.TLS}
		if l.Transport == "tls" && l.TLS == nil {
			ua.Close()
			return nil, fmt.Errorf("SIP listener %s: tls needs a certificate", l.Addr)
		}
		opts = append(opts, diago.WithTransport(t))
	}
	s.dg = diago.NewDiago(ua, opts...)
	// Registered after NewDiago: the last registration wins, replacing diago's 406-for-everything INFO (B3).
	// Handlers registered here bypass diago's middleware, so each validates the request itself (checked).
	srv.OnInfo(s.checked(s.digits.Handle))
	srv.OnRegister(s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := s.admit(req); err != nil {
			tx.Respond(Response(req, err))
			return
		}
		s.reg.serve(req, tx)
	}))
	srv.OnNoRoute(s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(Response(req, ErrMethodNotAllowed))
	}))
	s.metrics(deps.Registry)
	return s, nil
}

func (s *Server) metrics(reg prometheus.Registerer) {
	s.mRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_sip_refused_total",
		Help: "Out-of-dialog SIP requests refused, by SIP status."}, []string{"status"})
	s.mAccepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "hotline_sip_calls_accepted_total",
		Help: "INVITEs accepted from trunks."})
	s.mWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hotline_sip_udp_wait_seconds",
		Help:    "How long SIP datagrams waited in the UDP socket before hotline read them (kernel receive time to read); over 0.5 s the peer has retransmitted.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.03, 0.1, 0.25, 0.5, 1, 2}})
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_sip_calls_active", Help: "Calls up."},
		func() float64 { return float64(s.active.Load()) })
	if reg != nil {
		reg.Register(s.mRefused)
		reg.Register(s.mAccepted)
		reg.Register(active)
		reg.Register(s.mWait)
	}
}

// Diago returns the media stack, for ringing agents and for tests.
func (s *Server) Diago() *diago.Diago { return s.dg }

// Registrar returns the registrar (agents' contacts).
func (s *Server) Registrar() *Registrar { return s.reg }

// Digits is the SIP INFO dispatcher: calls placed through this user agent (the dialer's) register their
// Call-IDs here to receive keypad digits sent as INFO.
func (s *Server) Digits() *Digits { return &s.digits }

// FromHost is the host this user agent puts in From and Contact: the external host when set, else the first
// listener's.
func (s *Server) FromHost() string {
	if s.cfg.ExternalHost != "" {
		return s.cfg.ExternalHost
	}
	h, _, _ := net.SplitHostPort(s.cfg.Listeners[0].Addr)
	return h
}

// Close stops the listeners and closes the user agent. With Config.KeepOpen, Run leaves that to Close, so calls
// placed through the agent (the dialer's) can finish after intake has drained; otherwise Run does it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stopListeners != nil {
			s.stopListeners()
			<-s.admDone
			s.listeners.Wait()
		}
		s.closeErr = s.ua.Close()
	})
	return s.closeErr
}

// Ready is closed when the listeners are up.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the listening addresses as "transport://host:port" (valid after Ready).
func (s *Server) Addrs() []string { return s.addrs }

// Draining reports whether the server refuses new calls because it is stopping.
func (s *Server) Draining() bool { return s.draining.Load() }

// ActiveCalls is the number of calls in progress.
func (s *Server) ActiveCalls() int { return int(s.active.Load()) }

// listen opens the listeners and serves them until ctx ends. UDP sockets are hotline's own, read through the door
// (door.go); TCP and TLS are sipgo's. It returns once every listener is up, or the first error. Diago's
// ServeBackground would open them all itself, which leaves no place for the door.
func (s *Server) listen(ctx context.Context) error {
	s.dg.HandleFunc(s.serveDialog)
	refused := s.mRefused.WithLabelValues("503")
	for _, l := range s.cfg.Listeners {
		if l.Transport == "udp" {
			c, err := listenUDP(l.Addr, s.cfg.UDPReadBuffer)
			if err != nil {
				return err
			}
			if got := grantedReadBuffer(c); got >= 0 && got < s.cfg.UDPReadBuffer {
				// A silent cap: bursts the buffer was sized for are dropped by the kernel, and each drop comes back
				// as the peer's retransmission.
				s.log.Warn("SIP UDP: the kernel gave a smaller receive buffer than asked; raise net.core.rmem_max (sysctl) or lower HOTLINE_SIP_UDP_RCVBUF",
					"addr", l.Addr, "asked", s.cfg.UDPReadBuffer, "granted", got)
			}
			d := newDoor(c, s.adm, refused)
			d.waits = s.mWait
			d.overSource = s.overSource
			if !d.stamped {
				s.log.Warn("SIP UDP: no kernel receive times; the door admits on the other pressure signals only", "addr", l.Addr)
			}
			s.doors = append(s.doors, d)
			s.listeners.Add(2)
			go func() { defer s.listeners.Done(); <-ctx.Done(); c.Close() }()
			go func() { defer s.listeners.Done(); s.srv.ServeUDP(d) }()
			continue
		}
		up := make(chan struct{}, 1)
		errc := make(chan error, 1)
		lctx := context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyFuncCtxValue(func(string, string) { up <- struct{}{} }))
		s.listeners.Add(1)
		go func() {
			defer s.listeners.Done()
			if l.Transport == "tls" {
				errc <- s.srv.ListenAndServeTLS(lctx, "tls", l.Addr, l.TLS)
			} else {
				errc <- s.srv.ListenAndServe(lctx, l.Transport, l.Addr)
			}
		}()
		select {
		case <-up:
		case err := <-errc:
			return fmt.Errorf("%s %s: %w", l.Transport, l.Addr, err)
		}
	}
	return nil
}

// Run serves until ctx ends, then drains (see the package comment).
func (s *Server) Run(ctx context.Context, h Handler) error {
	s.handler = h
	var stopAll context.CancelFunc
	s.hardStop, stopAll = context.WithCancel(context.Background())
	defer stopAll()
	lctx, stopListeners := context.WithCancel(context.Background())
	if err := s.listen(lctx); err != nil {
		stopListeners()
		s.listeners.Wait()
		return fmt.Errorf("SIP listen: %w", err)
	}
	admDone := make(chan struct{})
	go func() { defer close(admDone); s.adm.run(lctx) }()
	s.stopListeners, s.admDone = stopListeners, admDone
	if !s.cfg.KeepOpen {
		defer s.Close()
	}
	// B5: sipgo reports a listener ready before it is in the connection pool; an INVITE sent at once could try
	// to bind the port again. Settle before declaring ready.
	time.Sleep(100 * time.Millisecond)
	for _, l := range s.cfg.Listeners {
		s.addrs = append(s.addrs, l.Transport+"://"+l.Addr)
	}
	close(s.ready)
	s.log.Info("SIP listening", "addrs", s.addrs, "trunks", len(*s.trunks.Load()))

	<-ctx.Done()
	s.draining.Store(true)
	s.log.Info("SIP draining: new calls get 503", "calls", s.active.Load(), "timeout", s.cfg.DrainTimeout)
	deadline := time.Now().Add(s.cfg.DrainTimeout)
	for s.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.active.Load(); n > 0 {
		s.log.Warn("SIP drain timeout: hanging up calls still up", "calls", n)
		stopAll()
		for end := time.Now().Add(10 * time.Second); s.active.Load() > 0 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s.cfg.KeepOpen {
		return nil // Close ends the listeners, once the calls placed through them are over
	}
	return s.Close()
}

func (s *Server) refuse(req *sip.Request, tx sip.ServerTransaction, err error) {
	code, _ := Status(err)
	s.mRefused.WithLabelValues(strconv.Itoa(code)).Inc()
	if code >= 500 || err == ErrUnknownSource {
		s.log.Debug("INVITE refused", "source", req.Source(), "err", err)
	}
	tx.Respond(Response(req, err))
}

// overSource reports whether a source has used up its rate, without taking a token: the door refuses its INVITE
// at once, and what the door lets through takes its token in admit.
func (s *Server) overSource(addr *net.UDPAddr) bool {
	a, ok := netip.AddrFromSlice(addr.IP)
	if !ok {
		return false
	}
	s.limMu.Lock()
	l := s.limiters[a.Unmap()]
	s.limMu.Unlock()
	return l != nil && l.Tokens() < 1
}

// admit applies the per-source rate limit to an out-of-dialog request.
func (s *Server) admit(req *sip.Request) error {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return ErrMalformed
	}
	a := ap.Addr().Unmap()
	s.limMu.Lock()
	l, ok := s.limiters[a]
	if !ok {
		if len(s.limiters) > 10000 {
			// Forget sources whose bucket is full again (idle): the map cannot grow without bound under a spoofed flood.
			for k, v := range s.limiters {
				if v.Tokens() >= float64(s.cfg.Burst) {
					delete(s.limiters, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(s.cfg.RatePerSource), s.cfg.Burst)
		s.limiters[a] = l
	}
	s.limMu.Unlock()
	if !l.Allow() {
		return ErrRateLimited
	}
	return nil
}

// checked validates a request before h sees it (validate.go); the refusal is answered through Response. An
// invalid ACK cannot be answered and is dropped.
func (s *Server) checked(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		normalizeParams(req)
		if err := validRequest(req); err != nil {
			code, _ := Status(err)
			s.mRefused.WithLabelValues(strconv.Itoa(code)).Inc()
			s.log.Debug("malformed SIP request refused", "method", string(req.Method), "source", req.Source(), "err", err)
			if req.Method != sip.ACK && tx != nil {
				tx.Respond(Response(req, err))
			}
			return
		}
		h(req, tx)
	}
}

// gate wraps diago's handlers: every request is validated, and every new INVITE passes the checks here before
// diago builds a dialog for it.
func (s *Server) gate(next sipgo.RequestHandler) sipgo.RequestHandler {
	return s.checked(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method != sip.INVITE {
			next(req, tx)
			return
		}
		if to := req.To(); to != nil {
			if _, hasTag := to.Params.Get("tag"); hasTag {
				// re-INVITE inside a dialog; one for a dialog we do not have is 481 (RFC 3261 12.2.2), answered
				// here because diago leaves it unanswered when the tags are unusual (RFC 4475 3.1.1.1).
				if !s.knownDialog(req) {
					s.refuse(req, tx, ErrNoSuchCall)
					return
				}
				next(req, tx)
				return
			}
		}
		t, err := s.check(req)
		udp := strings.EqualFold(req.Transport(), "udp")
		if err == nil && (udp && s.adm.full() || !udp && !s.adm.allow()) {
			// Shed before any media, CDR or dialog exists; no CDR either (a database write per refused INVITE is
			// the work overload cannot afford): hotline_sip_refused_total{status="503"} counts them. Over UDP the
			// door (door.go) has decided already, before sipgo read the INVITE; the calls in setup are bounded
			// here still for INVITEs the door could not read and left to sipgo.
			err = ErrOverloaded
		}
		if err != nil {
			if errors.Is(err, ErrAuthRequired) {
				if res, cerr := s.trunk.challenge(context.Background(), req, s.cfg.Realm, "trunk:"+t.Name, false); cerr == nil {
					tx.Respond(res)
					return
				}
			}
			// Answer first, then write the CDR: a refusal that waits for the database is retransmitted by the
			// peer after T1, which is how overload used to feed itself.
			s.refuse(req, tx, err)
			if t != nil && errorsAny(err, ErrDraining, ErrNumberNotServed, ErrNoOffer, ErrUnusableOffer, ErrUnsupportedMediaType) {
				s.handler.Refused(t, req, err)
			}
			return
		}
		if n := s.active.Add(1); n > int64(s.cfg.MaxCalls) {
			s.active.Add(-1)
			s.refuse(req, tx, ErrOverCapacity)
			s.handler.Refused(t, req, ErrOverCapacity)
			return
		}
		defer s.active.Add(-1)
		s.mAccepted.Inc()
		if !udp {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil)) // over UDP the door sent it
		}
		k := pendingKey(req)
		setupDone := s.adm.setupStarted()
		defer setupDone()
		if _, dup := s.pending.LoadOrStore(k, pending{trunk: t, setupDone: setupDone}); dup {
			s.refuse(req, tx, ErrMalformed) // same Call-ID and From tag as a call already being set up
			return
		}
		defer s.pending.Delete(k)
		next(req, tx)
	})
}

// knownDialog reports whether an in-dialog request belongs to a dialog diago holds (ours as UAS or as UAC).
func (s *Server) knownDialog(req *sip.Request) bool {
	ctx := context.Background()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if _, err := s.dg.DialogCacheServer().DialogLoad(ctx, id); err == nil {
			return true
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if _, err := s.dg.DialogCacheClient().DialogLoad(ctx, id); err == nil {
			return true
		}
	}
	return false
}

// pending is what the gate hands to the dialog handler.
type pending struct {
	trunk     *Trunk
	setupDone func() // the INVITE leaves the admission backlog
}

func errorsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// check decides whether a new INVITE may become a call; it returns the trunk when the source is known.
func (s *Server) check(req *sip.Request) (*Trunk, error) {
	if err := s.admit(req); err != nil {
		return nil, err
	}
	from, to, cid := req.From(), req.To(), req.CallID()
	if from == nil || to == nil || cid == nil || SafeHeaderValue(from.Address.User) != nil ||
		SafeHeaderValue(to.Address.User) != nil || SafeHeaderValue(cid.Value()) != nil || len(from.Address.User) > 64 {
		return nil, ErrMalformed
	}
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return nil, ErrMalformed
	}
	t := matchTrunk(*s.trunks.Load(), ap.Addr().Unmap())
	if t == nil {
		return nil, ErrUnknownSource
	}
	if t.Username != "" {
		if err := s.authTrunk(req, t); err != nil {
			return t, err
		}
	}
	if s.draining.Load() {
		return t, ErrDraining
	}
	if !t.serves(to.Address.User) {
		return t, ErrNumberNotServed
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if err := checkOffer(ct, req.Body()); err != nil {
		return t, err
	}
	return t, nil
}

func (s *Server) authTrunk(req *sip.Request, t *Trunk) error {
	cred := credentials(req)
	if cred == nil {
		return ErrAuthRequired
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, err := s.trunk.consume(ctx, cred.Nonce, "trunk:"+t.Name)
	if err != nil {
		return ErrInternal
	}
	if !ok {
		return ErrAuthRequired
	}
	ha1 := t.HA1
	if ha1 == "" {
		ha1 = md5hex(t.Username + ":" + s.cfg.Realm + ":" + t.Password)
	}
	if cred.Username != t.Username || !verify(cred, string(req.Method), ha1) {
		return ErrBadCredentials
	}
	return nil
}

// serveDialog is diago's handler for an INVITE that passed the gate.
func (s *Server) serveDialog(d *diago.DialogServerSession) {
	v, ok := s.pending.Load(pendingKey(d.InviteRequest))
	if !ok {
		d.Respond(sip.StatusInternalServerError, "Server Internal Error", nil)
		return
	}
	p := v.(pending)
	d.OnState(func(st sip.DialogState) {
		if st == sip.DialogStateEstablished || st == sip.DialogStateConfirmed || st == sip.DialogStateEnded {
			p.setupDone()
		}
	})
	digits := make(chan rune, 32)
	callID := d.InviteRequest.CallID().Value()
	s.digits.Register(callID, digits, d.ReadRequest)
	defer s.digits.Unregister(callID)
	c := &Call{Dialog: d, Trunk: p.trunk, Caller: d.FromUser(), Dialled: d.ToUser(),
		SIPCallID: callID, Source: d.InviteRequest.Source(), Digits: digits}
	s.handler.HandleCall(s.hardStop, c)
}

// pendingKey identifies a new INVITE between the gate and diago's dialog handler (diago hands on a copy of the
// request, not the same pointer).
func pendingKey(req *sip.Request) string {
	tag, _ := req.From().Params.Get("tag")
	return req.CallID().Value() + "\x00" + tag
}

// SetTrunks replaces the trunk list new INVITEs are checked against (calls in progress keep theirs).
func (s *Server) SetTrunks(ts []Trunk) {
	ts = slices.Clone(ts)
	s.trunks.Store(&ts)
}

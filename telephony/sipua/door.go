package sipua

import (
	"github.com/emiago/sipgo/sip"

	"bytes"
	"hash/fnv"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The door: admission of new INVITEs below sipgo, on each UDP listener (issue 15, "fast 503s with Retry-After
// for the excess").
//
// hotline owns its UDP sockets and hands sipgo a wrapping net.PacketConn whose ReadFrom sees every datagram
// first. The kernel stamps each datagram when it arrives (SO_TIMESTAMPNS); now − that stamp is how long it waited
// in the socket, which is exactly what makes a peer retransmit (an answer later than T1 = 500 ms). When datagrams
// have waited longer than queueTarget for queueInterval (CoDel's rule: a standing queue, not a burst), new INVITEs
// are refused until a datagram is read within the target again; the other pressure signals (admission.allow:
// lag, CPU, calls in setup) are applied here too. A refused INVITE is answered 503 + Retry-After built from its
// raw headers, without sipgo parsing it or creating a transaction (as Kamailio's sl module replies statelessly);
// its (Call-ID, branch) is remembered for 64×T1 so the ACK of that 503 is swallowed and a retransmission gets
// the same 503, and so are admitted ones, so their retransmissions reach sipgo's transaction whatever the door
// says by then. An admitted INVITE gets its 100 Trying from the door too, at once: the peer's retransmissions
// then depend only on how long datagrams wait for the door, which is what the door bounds. Everything else — responses, in-dialog and non-INVITE requests, admitted INVITEs, and any
// message the door cannot read cleanly — goes to sipgo unchanged.

const (
	// A datagram that waits under queueTarget is fine: the door answers an INVITE with its 100 Trying as it reads
	// it, so only a wait near T1 (500 ms) makes the peer retransmit. A standing queue over target for
	// queueInterval (or one datagram that waited target+interval) refuses new INVITEs: the budget left is half of
	// T1 for the BYEs and ACKs behind them. Measured (bench.sh cps, 2,000/s): 30 ms / 100 ms also refused a
	// quarter of a 1,000/s load that completes cleanly; 50 ms / 200 ms let datagrams wait over 0.5 s with a CPU
	// burner beside hotline (3.6 % retransmissions); 50 ms / 100 ms kept every wait under 0.5 s.
	queueTarget   = 50 * time.Millisecond
	queueInterval = 100 * time.Millisecond
	memoTTL       = 32 * time.Second // 64×T1: an INVITE's retransmissions and its ACK come within this
	memoSize      = 1 << 16          // remembered INVITEs at most (a bound on memory under a flood)
	retryBusy     = "1"              // Retry-After of a 503 for pressure: it passes within a second or so
	retrySource   = "5"              // and for a source over its rate, as sipgo's per-source gate answers it
	maxVias       = 16               // more Via headers than this: not the door's to answer
)

// door is the net.PacketConn sipgo reads one UDP listener through. ReadFrom is called by sipgo's single reader
// goroutine; everything but ReadFrom is the embedded socket's.
type door struct {
	*net.UDPConn
	adm      *admission
	refused  prometheus.Counter   // hotline_sip_refused_total{status="503"}
	waits    prometheus.Histogram // hotline_sip_udp_wait_seconds; nil: none
	stamped  bool                 // the socket gives kernel receive times
	oob      []byte
	memo     memo
	above    time.Time // since when datagrams have waited more than queueTarget; zero: they do not
	refusing bool      // the queue has stood above target for queueInterval
	out      []byte    // the 503 being built
	key      []byte
	now      func() time.Time // tests
	// overSource, when set, reports (taking nothing from it) that a source has used up its per-source INVITE
	// rate: its INVITE is refused here, statelessly, before it costs a parse, a transaction and a gate.
	overSource func(*net.UDPAddr) bool
	// hold, when set, is called before each read: tests use it to let datagrams queue in the socket.
	hold atomic.Pointer[func()]
}

func newDoor(c *net.UDPConn, adm *admission, refused prometheus.Counter) *door {
	d := &door{UDPConn: c, adm: adm, refused: refused, oob: make([]byte, oobSize), now: time.Now}
	d.stamped = enableRxTimestamps(c) == nil
	d.memo.init()
	return d
}

// ReadFrom returns the next datagram sipgo should see; datagrams the door answered itself are not returned.
func (d *door) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if h := d.hold.Load(); h != nil {
			(*h)()
		}
		n, oobn, _, addr, err := d.ReadMsgUDP(b, d.oob)
		if err != nil {
			return n, addr, err
		}
		now := d.now()
		if d.stamped {
			if rx, ok := rxTime(d.oob[:oobn]); ok {
				d.observe(now, now.Sub(rx))
			}
		}
		if d.screen(b[:n], addr, now) {
			continue
		}
		return n, addr, nil
	}
}

// observe applies one datagram's wait in the socket to the door's state.
func (d *door) observe(now time.Time, wait time.Duration) {
	d.adm.queueDelay(wait)
	if d.waits != nil {
		d.waits.Observe(wait.Seconds())
	}
	if wait < queueTarget {
		d.above, d.refusing = time.Time{}, false
		return
	}
	if d.above.IsZero() {
		d.above = now
	}
	// This datagram alone shows the queue stood above target from its arrival+target until now.
	if now.Sub(d.above) >= queueInterval || wait-queueTarget >= queueInterval {
		d.refusing = true
	}
}

// screen decides a datagram: true when the door has dealt with it (answered or swallowed).
func (d *door) screen(b []byte, addr *net.UDPAddr, now time.Time) bool {
	var method int
	switch {
	case bytes.HasPrefix(b, []byte("INVITE ")):
		method = methodInvite
	case bytes.HasPrefix(b, []byte("ACK ")):
		if d.memo.empty() {
			return false
		}
		method = methodAck
	default:
		return false
	}
	var m rawRequest
	if !m.scan(b, method) || method == methodInvite && m.toTag {
		return false // in-dialog, or not clean enough to answer without sipgo: sipgo parses, validates and answers it
	}
	d.key = append(append(append(d.key[:0], m.callID...), 0), m.branch...)
	seen, retry := d.memo.get(d.key, now)
	if method == methodAck {
		return seen && retry != "" // the ACK of our 503: nobody else knows that transaction
	}
	if seen && retry == "" {
		// A retransmission of an admitted INVITE: sipgo's transaction re-sends its last answer. Not a 100 from
		// here: it could arrive after the 200, and a peer that takes the To of the last response it got (SIPp's
		// [last_To]) would then send its BYE without our tag (measured: calls left up, BYE answered 481).
		return false
	}
	if !seen && d.overSource != nil && d.overSource(addr) {
		// One source over its rate (a flood, a looping trunk): refused at the door, so that its INVITEs do not
		// queue the other sources' behind sipgo's parse and make the door refuse everyone.
		d.memo.put(d.key, retrySource, now)
		d.refused.Inc()
		d.out = m.reply(d.out[:0], "503 Service Unavailable", d.key, retrySource)
		_, _ = d.WriteToUDP(d.out, addr)
		return true
	}
	if !seen && !d.refusing && d.adm.allow() {
		// Admitted. The 100 Trying goes out from here, as the INVITE is read: the peer stops retransmitting
		// however long the INVITE then waits in sipgo and for the CPU. sipgo's transaction gives the rest.
		d.memo.put(d.key, "", now)
		d.out = m.reply(d.out[:0], "100 Trying", nil, "")
		_, _ = d.WriteToUDP(d.out, addr)
		return false
	}
	if !seen {
		if d.refusing {
			d.adm.refused.Add(1) // counted in the window like the other refusals
		}
		retry = retryBusy
		d.memo.put(d.key, retry, now)
		d.refused.Inc()
	}
	// A retransmission gets the answer its first copy got, Retry-After included.
	d.out = m.reply(d.out[:0], "503 Service Unavailable", d.key, retry)
	_, _ = d.WriteToUDP(d.out, addr) // lost: the peer retransmits the INVITE and gets it again
	return true
}

const (
	methodInvite = iota + 1
	methodAck
)

// rawRequest is what the door reads of a request: slices of the datagram, no copies.
type rawRequest struct {
	vias           [maxVias][]byte
	nVia           int
	from, to, cseq []byte
	callID, branch []byte
	toTag          bool
}

// scan reads the header section of an INVITE or ACK. It answers false for anything unusual — a header folded
// over lines, a control character, a repeated single header, a missing one, a CSeq of another method, a top
// Via without a branch — which is then left to sipgo and validRequest.
func (m *rawRequest) scan(b []byte, method int) bool {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return false
	}
	hdr := b[:end+2]
	eol := bytes.Index(hdr, []byte("\r\n"))
	if !bytes.HasSuffix(hdr[:eol], []byte(" SIP/2.0")) {
		return false
	}
	for rest := hdr[eol+2:]; len(rest) > 0; {
		eol = bytes.Index(rest, []byte("\r\n"))
		line := rest[:eol]
		rest = rest[eol+2:]
		for _, c := range line {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return false // NUL, a bare CR or LF: validRequest's to refuse
			}
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return false
		}
		name := bytes.TrimRight(line[:colon], " \t")
		value := bytes.TrimSpace(line[colon+1:])
		var slot *[]byte
		switch {
		case headerIs(name, "via", "v"):
			if m.nVia == maxVias {
				return false
			}
			m.vias[m.nVia] = value
			m.nVia++
			continue
		case headerIs(name, "from", "f"):
			slot = &m.from
		case headerIs(name, "to", "t"):
			slot = &m.to
		case headerIs(name, "call-id", "i"):
			slot = &m.callID
		case headerIs(name, "cseq", ""):
			slot = &m.cseq
		default:
			continue
		}
		if *slot != nil || len(value) == 0 {
			return false
		}
		*slot = value
	}
	if m.nVia == 0 || m.from == nil || m.to == nil || m.callID == nil || m.cseq == nil {
		return false
	}
	// The answer copies these: they must be what sipgo would read as such, or the answer is garbage to the peer
	// (found by FuzzDoor: "Via: ;branch=0", "From: 0" were answered).
	for _, v := range m.vias[:m.nVia] {
		if !viaLooksRight(v) {
			return false
		}
	}
	if !addressOK(m.from) || !addressOK(m.to) || bytes.ContainsAny(m.callID, " \t") {
		return false
	}
	sp := bytes.IndexAny(m.cseq, " \t")
	if sp < 0 {
		return false
	}
	if _, err := strconv.ParseUint(string(m.cseq[:sp]), 10, 31); err != nil {
		return false
	}
	want := "INVITE"
	if method == methodAck {
		want = "ACK"
	}
	if !bytes.EqualFold(bytes.TrimSpace(m.cseq[sp:]), []byte(want)) {
		return false
	}
	var ok bool
	if m.branch, ok = param(firstElement(m.vias[0]), "branch"); !ok || len(m.branch) == 0 {
		return false
	}
	tag, ok := param(m.to, "tag")
	if !ok {
		return false
	}
	m.toTag = tag != nil
	return true
}

// reply appends a stateless response to m: RFC 3261 8.2.6.2's copies (every Via in order, From, To, Call-ID,
// CSeq). A final answer (key set) adds our To tag, a hash of the key, so a retransmission gets the very same
// answer, and Retry-After; a 100 Trying has neither.
func (m *rawRequest) reply(out []byte, status string, key []byte, retryAfter string) []byte {
	out = append(append(append(out, "SIP/2.0 "...), status...), "\r\n"...)
	for _, v := range m.vias[:m.nVia] {
		out = append(append(append(out, "Via: "...), v...), "\r\n"...)
	}
	out = append(append(append(out, "From: "...), m.from...), "\r\n"...)
	out = append(append(out, "To: "...), m.to...)
	if key != nil {
		h := fnv.New64a()
		_, _ = h.Write(key)
		out = strconv.AppendUint(append(out, ";tag=hd"...), h.Sum64(), 36)
	}
	out = append(append(append(out, "\r\nCall-ID: "...), m.callID...), "\r\n"...)
	out = append(append(append(out, "CSeq: "...), m.cseq...), "\r\n"...)
	if retryAfter != "" {
		// As Response gives them: 1 s for ErrOverloaded (the pressure is measured every few milliseconds), 5 s
		// for ErrRateLimited.
		out = append(append(append(out, "Retry-After: "...), retryAfter...), "\r\n"...)
	}
	return append(out, "Content-Length: 0\r\n\r\n"...)
}

// viaLooksRight: "SIP/2.0/transport host…" for every via-parm of the value.
func viaLooksRight(v []byte) bool {
	for len(v) > 0 {
		e := firstElement(v)
		v = v[len(e):]
		if len(v) > 0 {
			v = v[1:] // the comma
		}
		e = bytes.TrimSpace(e)
		const proto = "SIP/2.0/"
		if len(e) <= len(proto) || !bytes.EqualFold(e[:len(proto)], []byte(proto)) {
			return false
		}
		e = e[len(proto):]
		i := 0
		for i < len(e) && (e[i] >= 'A' && e[i] <= 'Z' || e[i] >= 'a' && e[i] <= 'z') {
			i++
		}
		if i == 0 || i == len(e) || e[i] != ' ' && e[i] != '\t' {
			return false
		}
		host := bytes.TrimLeft(e[i:], " \t")
		if len(host) == 0 || host[0] == ';' || host[0] == ':' {
			return false
		}
	}
	return true
}

// addressOK: a From or To that sipgo's own address parser reads (a URI, with brackets when a display name or
// parameters need them). It costs an allocation or two, against a whole message and a transaction in sipgo.
func addressOK(v []byte) bool {
	var u sip.Uri
	_, err := sip.ParseAddressValue(string(v), &u, nil)
	return err == nil && !u.Wildcard
}

func headerIs(name []byte, long, compact string) bool {
	return bytes.EqualFold(name, []byte(long)) || compact != "" && bytes.EqualFold(name, []byte(compact))
}

// firstElement is a Via value's first via-parm (a Via header may carry several, comma-separated).
func firstElement(v []byte) []byte {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return v[:i]
	}
	return v
}

// param finds a header parameter (after the name-addr's closing '>', or after the URI when there are no
// brackets; quoted display names skipped). It returns (nil, true) when absent and (nil, false) when the value is
// too unusual to judge (a quote left open, a bracket not closed).
func param(v []byte, name string) ([]byte, bool) {
	i, inQuote := 0, false
	for ; i < len(v); i++ {
		c := v[i]
		if inQuote {
			switch c {
			case '\\':
				i++
			case '"':
				inQuote = false
			}
			continue
		}
		if c == '"' {
			inQuote = true
		} else if c == '<' {
			j := bytes.IndexByte(v[i:], '>')
			if j < 0 {
				return nil, false
			}
			i += j
		} else if c == ';' {
			break
		}
	}
	if inQuote {
		return nil, false
	}
	for rest := v[min(i, len(v)):]; len(rest) > 0; {
		rest = rest[1:] // the ';'
		p := rest
		if j := bytes.IndexByte(rest, ';'); j >= 0 {
			p, rest = rest[:j], rest[j:]
		} else {
			rest = nil
		}
		k, val, _ := bytes.Cut(p, []byte("="))
		if bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			val = bytes.TrimSpace(val)
			if len(val) == 0 || val[0] == '"' {
				return nil, false
			}
			return val, true
		}
	}
	return nil, true
}

// memo remembers the INVITEs the door decided, by Call-ID and branch, for memoTTL: a map plus a ring in
// insertion order that bounds it and expires it. Only the reader goroutine uses it.
type memo struct {
	m    map[string]memoEntry
	ring []memoSlot
	head int // oldest slot
	n    int
}

type memoEntry struct {
	at    time.Time
	retry string // the Retry-After of the 503 it got; "" when admitted
}

type memoSlot struct {
	key string
	at  time.Time
}

func (c *memo) init() {
	c.m = map[string]memoEntry{}
	c.ring = make([]memoSlot, memoSize)
}

func (c *memo) empty() bool { return c.n == 0 }

func (c *memo) get(key []byte, now time.Time) (seen bool, retry string) {
	e, ok := c.m[string(key)]
	if !ok || now.Sub(e.at) > memoTTL {
		return false, ""
	}
	return true, e.retry
}

func (c *memo) put(key []byte, retry string, now time.Time) {
	for c.n > 0 && (c.n == len(c.ring) || now.Sub(c.ring[c.head].at) > memoTTL) {
		old := c.ring[c.head]
		if e, ok := c.m[old.key]; ok && e.at.Equal(old.at) {
			delete(c.m, old.key)
		}
		c.ring[c.head] = memoSlot{}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	k := string(key)
	c.m[k] = memoEntry{at: now, retry: retry}
	c.ring[(c.head+c.n)%len(c.ring)] = memoSlot{key: k, at: now}
	c.n++
}

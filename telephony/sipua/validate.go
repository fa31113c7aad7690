package sipua

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The checks here are what sipgo's parser lets through (it is fast and lenient: of RFC 4475's invalid messages it
// refuses about a third, and it does not check the semantics of what it parsed). Every request passes
// validRequest before any handler acts on it; an INVITE's offer passes checkOffer. Each failure is one of the
// refusal errors, so Response (responses.go) stays the only place that picks the SIP answer.

// singleValued are the headers RFC 3261 allows once per message (section 7.3.1 and 20): a second value is a 400
// (RFC 4475 3.2.8 and 3.2.9), never "the first one wins".
var singleValued = map[string]bool{"call-id": true, "cseq": true, "from": true, "to": true, "max-forwards": true,
	"content-length": true, "content-type": true, "expires": true}

// supportedExtensions are the option tags we implement (RFC 3261 8.2.2.3); any other in Require gets 420.
var supportedExtensions = map[string]bool{}

// validRequest checks what sipgo parsed against RFC 3261's rules for a request a UAS acts on.
func validRequest(req *sip.Request) error {
	if h := req.GetHeader(malformedMarker); h != nil {
		if h.Value() == "505" {
			return ErrVersionNotSupported
		}
		return ErrMalformed
	}
	if req.SipVersion != "SIP/2.0" {
		return ErrVersionNotSupported
	}
	switch req.Recipient.Scheme {
	case "sip", "sips":
	default:
		return ErrUnsupportedURIScheme // RFC 4475 3.2.2 (and tel: — we are no gateway)
	}
	if req.Recipient.Host == "" || strings.ContainsAny(req.Recipient.Host, " \t<>\"") {
		return ErrMalformed
	}
	if req.Recipient.Headers != nil && req.Recipient.Headers.Length() > 0 {
		return ErrMalformed // RFC 4475 3.1.2.11: URI headers have no place in a Request-URI
	}
	if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return ErrMalformed // RFC 3261 8.1.1: the mandatory six (Max-Forwards tolerated missing, RFC 4475 3.5.1)
	}
	if req.CallID().Value() == "" {
		return ErrMalformed
	}
	seen := map[string]bool{}
	for _, h := range req.Headers() {
		name := strings.ToLower(h.Name())
		if SafeHeaderValue(h.Name()) != nil || SafeHeaderValue(h.Value()) != nil {
			return ErrMalformed // NUL or a bare CR/LF inside a header (B9 on the way in)
		}
		if singleValued[name] {
			if seen[name] {
				return ErrMalformed
			}
			seen[name] = true
		}
	}
	if SafeHeaderValue(req.Recipient.String()) != nil {
		return ErrMalformed
	}
	cseq := req.CSeq()
	// sipgo upper-cases the request line's method but not CSeq's, so compare without case.
	if !strings.EqualFold(string(cseq.MethodName), string(req.Method)) || cseq.SeqNo > 1<<31-1 {
		return ErrMalformed // RFC 4475 3.1.2.17/18: CSeq method must be the request's
	}
	if h := req.GetHeader("Content-Length"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n != len(req.Body()) {
			return ErrMalformed // RFC 4475 3.1.2.2: more announced than sent
		}
	}
	if mf := req.MaxForwards(); mf != nil {
		if *mf > 255 {
			return ErrMalformed // RFC 4475 3.1.2.4: Max-Forwards is 0..255
		}
		// A UAS may treat 0 as positive (RFC 4475 3.2.11), but hotline sits behind trunks and Kamailio: a request
		// that used up its hops is looping upstream, and answering it would put a call up at the end of a loop.
		// OPTIONS with 0 is answered, as RFC 3261 16.3 lets the element reached answer it.
		// Only requests that would start something: refusing an in-dialog BYE could leave a call up.
		if *mf == 0 && (req.Method == sip.INVITE || req.Method == sip.REGISTER) {
			return ErrTooManyHops
		}
	}
	if req.Method == sip.INVITE || req.Method == sip.BYE || req.Method == sip.OPTIONS || req.Method == sip.REGISTER {
		if req.Method == sip.INVITE && req.Contact() == nil {
			return ErrMalformed // RFC 3261 8.1.1.8: an INVITE must carry a Contact
		}
		if opts := unsupportedRequires(req); len(opts) > 0 {
			return &ExtensionError{Options: opts}
		}
	}
	return nil
}

// normalizeParams undoes what sipgo's lenient parser leaves of linear white space around parameters (RFC 4475
// 3.1.1.1: "tag = 98asjd8" is tag=98asjd8; sipgo keeps the key "tag " and the value "\" 98asjd8\""), in From, To
// and the top Via, the ones dialogs and transactions are keyed on. Without it such an INVITE passes the gate and
// then hangs: sipgo finds no From tag and never answers.
func normalizeParams(req *sip.Request) {
	fix := func(p sip.HeaderParams) {
		for i := range p {
			p[i].K = strings.TrimSpace(p[i].K)
			if v := strings.TrimSpace(p[i].V); len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && (p[i].K == "tag" || p[i].K == "branch") {
				p[i].V = strings.TrimSpace(v[1 : len(v)-1])
			} else {
				p[i].V = v
			}
		}
	}
	if h := req.From(); h != nil {
		fix(h.Params)
	}
	if h := req.To(); h != nil {
		fix(h.Params)
	}
	if h := req.Via(); h != nil {
		fix(h.Params)
	}
}

// unsupportedRequires lists the option tags in Require that we do not implement.
func unsupportedRequires(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !supportedExtensions[strings.ToLower(tag)] {
				out = append(out, tag)
			}
		}
	}
	return out
}

// checkOffer decides whether an INVITE's body is an SDP offer we can answer: a session description with at least
// one audio stream on RTP/AVP, a port in range, an address to send to, and a codec we speak (PCMA or PCMU,
// static or by rtpmap). Anything else is 415 (not SDP) or 488 (SDP we cannot use), decided here before diago
// sets up any media.
func checkOffer(contentType string, body []byte) error {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	if len(body) == 0 {
		return ErrNoOffer
	}
	if ct != "application/sdp" {
		return ErrUnsupportedMediaType
	}
	return usableSDP(body)
}

func usableSDP(body []byte) error {
	lines := bytes.Split(body, []byte("\n"))
	sessionConn := false
	var streams []sdpStream
	for i, raw := range lines {
		l := strings.TrimSuffix(string(raw), "\r")
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' || strings.ContainsAny(l, "\x00\r") {
			return ErrUnusableOffer
		}
		if i == 0 && l != "v=0" {
			return ErrUnusableOffer
		}
		v := l[2:]
		switch l[0] {
		case 'c':
			if !validConnection(v) {
				return ErrUnusableOffer
			}
			if len(streams) == 0 {
				sessionConn = true
			} else {
				streams[len(streams)-1].conn = true
			}
		case 'm':
			s, ok := parseMediaLine(v)
			if !ok {
				return ErrUnusableOffer
			}
			streams = append(streams, s)
		case 'a':
			if len(streams) > 0 {
				streams[len(streams)-1].attr(v)
			}
		}
	}
	for _, s := range streams {
		if s.usable(sessionConn) {
			return nil
		}
	}
	return ErrUnusableOffer
}

type sdpStream struct {
	audio, avp bool
	port       int
	fmts       []string
	g711       bool // PCMA/PCMU among the formats
	conn       bool
}

// parseMediaLine reads "audio 49170 RTP/AVP 0 8 101"; false when the line is not well formed or the port is out
// of range (RFC 4566 5.14: a port is 0..65535, 0 meaning the stream is declined).
func parseMediaLine(v string) (sdpStream, bool) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return sdpStream{}, false
	}
	port := f[1]
	if i := strings.IndexByte(port, '/'); i >= 0 {
		port = port[:i] // port/number-of-ports
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return sdpStream{}, false
	}
	s := sdpStream{audio: f[0] == "audio", avp: f[2] == "RTP/AVP", port: p, fmts: f[3:]}
	for _, pt := range s.fmts {
		n, err := strconv.Atoi(pt)
		if err != nil || n < 0 || n > 127 {
			return sdpStream{}, false
		}
		if n == 0 || n == 8 {
			s.g711 = true
		}
	}
	return s, true
}

func (s *sdpStream) attr(v string) {
	name, val, _ := strings.Cut(v, ":")
	if name != "rtpmap" {
		return
	}
	pt, enc, _ := strings.Cut(val, " ")
	enc = strings.ToUpper(strings.TrimSpace(enc))
	for _, f := range s.fmts {
		if f == pt && (strings.HasPrefix(enc, "PCMA/8000") || strings.HasPrefix(enc, "PCMU/8000")) {
			s.g711 = true
		}
	}
}

func (s sdpStream) usable(sessionConn bool) bool {
	return s.audio && s.avp && s.port > 0 && s.g711 && (s.conn || sessionConn)
}

// validConnection reads "IN IP4 192.0.2.1" (or IP6).
func validConnection(v string) bool {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return false
	}
	addr, _, _ := strings.Cut(f[2], "/") // multicast TTL
	return addr != "" && !strings.ContainsAny(addr, "<>\"")
}

// malformedMarker is the header rawFilter adds to a message it had to repair so that sipgo parses it; its value
// is the status the gate answers with. Only the gate reads it; a peer sending it only gets itself refused.
const malformedMarker = "X-Hotline-Malformed"

// rawFilter runs on raw bytes before sipgo parses them (sipgo's TransportReadFilter: a whole datagram on UDP, one
// read on TCP). sipgo's parser drops whatever it cannot parse without answering; RFC 3261 wants a 400 (505 for
// a version) where the message can be answered at all. So:
//   - a bare CR inside the header section becomes a NUL: sipgo's parser would stop at it and drop the message; a
//     NUL it keeps, and validRequest refuses it like a bare LF (which sipgo keeps inside the value);
//   - a request line sipgo cannot parse (a Request-URI in <>, an IPv6 host without brackets, a version other
//     than SIP/2.0, wrong spacing) is replaced by a parseable one plus malformedMarker;
//   - on UDP, a Content-Length larger than the datagram's body (RFC 3261 18.3: "SHOULD generate a 400") is
//     corrected to the body's length, plus malformedMarker.
//
// Nothing is touched in bodies, in TCP reads that continue a message, or at the very end of a read (a CR whose LF
// is in the next TCP segment). The common case — a well-formed message — is scanned once and not copied.
func rawFilter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	i := 0
	for i+1 < len(data) && data[i] == '\r' && data[i+1] == '\n' {
		i += 2 // keep-alives before the message
	}
	lineEnd := bytes.Index(data[i:], []byte("\r\n"))
	if lineEnd < 0 {
		return data, nil
	}
	line := data[i : i+lineEnd]
	// A request line ends in its version. A response starts with it. Anything else (a TCP read that continues
	// a message: "Via: SIP/2.0/TCP host" ends in the host) is left alone.
	if bytes.HasPrefix(line, []byte("SIP/")) || !bytes.HasPrefix(line[bytes.LastIndexByte(line, ' ')+1:], []byte("SIP/")) {
		return data, nil
	}
	end := bytes.Index(data[i:], []byte("\r\n\r\n"))
	udp := strings.EqualFold(props.Transport, "udp")
	if end < 0 {
		if !udp {
			return data, nil // on a stream, only a read holding a whole header section is repaired
		}
		end = len(data) - i
	}
	hdr := data[i : i+end]
	for k := bytes.IndexByte(hdr, '\r'); k >= 0; {
		if k+1 < len(hdr) && hdr[k+1] != '\n' || k+1 == len(hdr) && i+end < len(data) && data[i+end] != '\n' {
			hdr[k] = 0
		}
		next := bytes.IndexByte(hdr[k+1:], '\r')
		if next < 0 {
			break
		}
		k += 1 + next
	}
	status := requestLineFault(line)
	var fixedCL []byte
	if udp && i+end+4 <= len(data) {
		if cl, ok := contentLength(hdr); ok && cl > len(data)-(i+end+4) {
			fixedCL = []byte(strconv.Itoa(len(data) - (i + end + 4)))
			if status == "" {
				status = "400"
			}
		}
	}
	if status == "" {
		return data, nil
	}
	method := line
	if sp := bytes.IndexByte(line, ' '); sp > 0 {
		method = line[:sp]
	}
	if !isToken(method) {
		method = []byte("INVALID")
	}
	var out bytes.Buffer
	out.Write(data[:i])
	out.Write(method)
	out.WriteString(" sip:invalid.invalid SIP/2.0\r\n" + malformedMarker + ": " + status + "\r\n")
	rest := data[i+lineEnd+2:]
	if fixedCL != nil {
		for _, l := range bytes.SplitAfter(rest[:max(end-lineEnd-2, 0)], []byte("\r\n")) {
			name, _, _ := bytes.Cut(l, []byte(":"))
			if n := strings.ToLower(strings.TrimSpace(string(name))); n == "content-length" || n == "l" {
				out.WriteString("Content-Length: ")
				out.Write(fixedCL)
				out.WriteString("\r\n")
				continue
			}
			out.Write(l)
		}
		if !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
			out.WriteString("\r\n")
		}
		rest = data[i+end+2:]
	}
	out.Write(rest)
	return out.Bytes(), nil
}

// requestLineFault returns the status for a request line sipgo would not parse ("" when it is fine): exactly
// three parts with single spaces, SIP/2.0, a URI with a token scheme, IPv6 hosts in brackets.
func requestLineFault(line []byte) string {
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || !isToken(parts[0]) {
		return "400"
	}
	if v := parts[2]; !bytes.Equal(v, []byte("SIP/2.0")) {
		if bytes.HasPrefix(v, []byte("SIP/")) {
			return "505"
		}
		return "400"
	}
	uri := parts[1]
	colon := bytes.IndexByte(uri, ':')
	if colon <= 0 || !isToken(uri[:colon]) {
		return "400" // RFC 4475 3.1.2.7: <sip:...> as Request-URI
	}
	scheme := strings.ToLower(string(uri[:colon]))
	if scheme != "sip" && scheme != "sips" {
		return ""
	}
	hostport := uri[colon+1:]
	if at := bytes.LastIndexByte(hostport, '@'); at >= 0 {
		hostport = hostport[at+1:]
	}
	if k := bytes.IndexAny(hostport, ";?"); k >= 0 {
		hostport = hostport[:k]
	}
	if len(hostport) == 0 {
		return "400"
	}
	if hostport[0] != '[' && bytes.Count(hostport, []byte(":")) > 1 {
		return "400" // RFC 5118 4.2: an IPv6 reference must be in brackets
	}
	return ""
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// contentLength finds the Content-Length (or its compact form l) in a header section.
func contentLength(hdr []byte) (int, bool) {
	for _, l := range bytes.Split(hdr, []byte("\r\n")) {
		name, val, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(string(name))); n == "content-length" || n == "l" {
			v, err := strconv.Atoi(strings.TrimSpace(string(val)))
			return v, err == nil
		}
	}
	return 0, false
}

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
	if cseq.MethodName != req.Method || cseq.SeqNo > 1<<31-1 {
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
		if *mf == 0 && req.Method != sip.OPTIONS && req.Method != sip.ACK {
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

// bareCRFilter runs on raw bytes before sipgo parses them. sipgo's parser stops at a CR that is not followed by
// LF and drops the whole message unanswered; a bare LF it keeps inside the header value. So that both get the
// same 400 from validRequest (the issue: "NUL or bare CR/LF inside header values → 400"), a bare CR inside the
// header section of a message that starts in this read becomes a NUL, which the parser keeps and the gate
// refuses. Nothing is changed in bodies, in reads that continue a stream message, or at the very end of a read
// (a CR whose LF is in the next TCP segment).
func bareCRFilter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	i := 0
	for i+1 < len(data) && data[i] == '\r' && data[i+1] == '\n' {
		i += 2 // keep-alives before the message
	}
	line := data[i:]
	if j := bytes.Index(line, []byte("\r\n")); j >= 0 {
		line = line[:j]
	}
	if !bytes.HasPrefix(line, []byte("SIP/2.0 ")) && !bytes.Contains(line, []byte(" SIP/")) {
		return data, nil
	}
	end := bytes.Index(data[i:], []byte("\r\n\r\n"))
	if end < 0 {
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
	return data, nil
}

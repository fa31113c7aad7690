package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// PublicLimits bound what the public may ask of us without an account (the progress query, the web form, the
// Open311 API). Limits are counted in Redis per client and per minute, so every instance shares them.
type PublicLimits struct {
	// TrustedHops is how many reverse proxies stand in front of hotline, each appending the address it was
	// connected from to X-Forwarded-For. 0: the peer address is the client (the header is ignored, as anyone can
	// send it). N: the client is the N-th address from the right; addresses further left were written by the
	// client itself and are never trusted.
	TrustedHops int
	// Submit is how many web-form submissions one client may make per hour; default 5.
	Submit int
	// Open311 is how many Open311 requests one API key may make per minute; default 60.
	Open311 int
	// Global is the ceiling of public requests (queries, submissions, challenges, Open311) per minute over all
	// clients together; default 600. It bounds what many addresses together can do, such as a botnet guessing
	// query codes.
	Global int
	// PowBits is the proof-of-work difficulty of the web form (leading zero bits of SHA-256); default 18, about
	// a quarter of a million hashes, a second or two on a phone.
	PowBits int
}

func (l PublicLimits) withDefaults() PublicLimits {
	if l.Submit <= 0 {
		l.Submit = 5
	}
	if l.Open311 <= 0 {
		l.Open311 = 60
	}
	if l.Global <= 0 {
		l.Global = 600
	}
	if l.PowBits <= 0 {
		l.PowBits = 18
	}
	return l
}

// clientKey is what per-client limits count: the client address found through the trusted proxies, an IPv4
// address as itself and an IPv6 address as its /64 (one subscriber's network: a phone or a home router hands
// out addresses from a whole /64, so counting single addresses would let one client take 2^64 of them).
func clientKey(r *http.Request, hops int) string {
	a, ok := clientAddrOf(r, hops)
	if !ok {
		return "unknown"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// clientAddrOf finds the client's address: the peer, or with hops trusted proxies the hops-th entry from the
// right of X-Forwarded-For (all the header lines joined in order). When the header has fewer entries than
// hops, the leftmost is taken: every entry there was written by a trusted proxy. A malformed trusted entry
// means a misconfigured proxy, so the peer address is used rather than anything the client wrote.
func clientAddrOf(r *http.Request, hops int) (netip.Addr, bool) {
	peer, ok := parseAddr(r.RemoteAddr)
	if hops <= 0 {
		return peer, ok
	}
	var chain []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for _, e := range strings.Split(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				chain = append(chain, e)
			}
		}
	}
	if len(chain) == 0 {
		return peer, ok
	}
	i := len(chain) - hops
	if i < 0 {
		i = 0
	}
	if a, good := parseAddr(chain[i]); good {
		return a, true
	}
	return peer, ok
}

// parseAddr reads "1.2.3.4", "1.2.3.4:5", "[::1]:5" or "::1"; IPv4-mapped IPv6 addresses become IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

type clientIPKey struct{}

// withClientIP notes the client's address, found through the trusted proxies, once per request (guard does it),
// so the login limiter, sessions and audit rows record the client and not the proxy in front.
func withClientIP(r *http.Request, hops int) *http.Request {
	a, ok := clientAddrOf(r, hops)
	if !ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), clientIPKey{}, a.String()))
}

// clientIP is the client's address (no port): as guard found it, else the peer's.
func clientIP(r *http.Request) string {
	if a, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

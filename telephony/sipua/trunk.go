package sipua

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Trunk is a SIP peer allowed to send calls in: identified by its source networks and, optionally, digest
// credentials it must answer a challenge with.
type Trunk struct {
	Name     string
	Networks []netip.Prefix
	Username string   // optional digest user; with it every INVITE is challenged
	Password string   // ignored without Username
	HA1      string   // md5(user:realm:password) of a stored trunk, used instead of Password
	Numbers  []string // dialled numbers (To user) it may call, e.g. 12345; empty: any
	Skills   []string // skills an agent needs for calls of this trunk (e.g. a dialect line)
}

// ParseTrunks reads trunks from the configuration syntax, one trunk per ';'-separated entry:
//
//	name=12345,net=10.0.0.0/24|10.0.1.5/32,numbers=12345|12317,user=u,pass=p,skills=xiang
func ParseTrunks(s string) ([]Trunk, error) {
	var out []Trunk
	seen := map[string]bool{}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var t Trunk
		for _, kv := range strings.Split(entry, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("trunk %q: %q is not key=value", entry, kv)
			}
			list := func() []string {
				var l []string
				for _, x := range strings.Split(v, "|") {
					if x = strings.TrimSpace(x); x != "" {
						l = append(l, x)
					}
				}
				return l
			}
			switch k {
			case "name":
				t.Name = v
			case "net":
				for _, n := range list() {
					if !strings.Contains(n, "/") {
						if a, err := netip.ParseAddr(n); err == nil {
							n = netip.PrefixFrom(a, a.BitLen()).String()
						}
					}
					p, err := netip.ParsePrefix(n)
					if err != nil {
						return nil, fmt.Errorf("trunk %q: network %q: %v", entry, n, err)
					}
					t.Networks = append(t.Networks, p.Masked())
				}
			case "numbers":
				t.Numbers = list()
			case "user":
				t.Username = v
			case "pass":
				t.Password = v
			case "skills":
				t.Skills = list()
			default:
				return nil, fmt.Errorf("trunk %q: unknown key %q (name, net, numbers, user, pass, skills)", entry, k)
			}
		}
		if t.Name == "" || SafeHeaderValue(t.Name) != nil {
			return nil, fmt.Errorf("trunk %q: name missing", entry)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("trunk %q defined twice", t.Name)
		}
		seen[t.Name] = true
		if len(t.Networks) == 0 && t.Username == "" {
			return nil, fmt.Errorf("trunk %q: give its source networks (net=) or credentials (user=, pass=)", t.Name)
		}
		if t.Username != "" && t.Password == "" {
			return nil, fmt.Errorf("trunk %q: user without pass", t.Name)
		}
		out = append(out, t)
	}
	return out, nil
}

// matchTrunk returns the trunk a request from addr belongs to: the most specific network match wins; a trunk
// without networks (credentials only) matches any source.
func matchTrunk(trunks []Trunk, addr netip.Addr) *Trunk {
	var best *Trunk
	bestBits := -1
	for i := range trunks {
		t := &trunks[i]
		if len(t.Networks) == 0 && bestBits < 0 {
			best = t
			continue
		}
		for _, p := range t.Networks {
			if p.Contains(addr) && p.Bits() > bestBits {
				best, bestBits = t, p.Bits()
			}
		}
	}
	return best
}

func (t *Trunk) serves(dialled string) bool {
	return len(t.Numbers) == 0 || slices.Contains(t.Numbers, dialled)
}

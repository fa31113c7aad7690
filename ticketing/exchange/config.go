package exchange

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ParsePlatforms reads the platforms of HOTLINE_EXCHANGE_PLATFORMS — ';'-separated entries of
// name=N,url=U[,dialect=D][,poll=DURATION] — and their secrets from HOTLINE_EXCHANGE_SECRETS, ';'-separated
// name=SECRET (at least 16 bytes). Every platform needs a secret and every secret a platform.
func ParsePlatforms(list, secrets string) ([]Platform, error) {
	keys := map[string][]byte{}
	for _, e := range splitList(secrets) {
		name, sec, ok := strings.Cut(e, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("secret entry without name=: an entry of %d characters", len(e))
		}
		if len(sec) < 16 {
			return nil, fmt.Errorf("secret of %q: at least 16 bytes", name)
		}
		keys[name] = []byte(sec)
	}
	var out []Platform
	seen := map[string]bool{}
	for _, e := range splitList(list) {
		var p Platform
		for _, kv := range strings.Split(e, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("%q: want key=value", kv)
			}
			switch k {
			case "name":
				p.Name = v
			case "url":
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return nil, fmt.Errorf("platform url %q: want http(s)://host[/path]", v)
				}
				p.URL = strings.TrimRight(v, "/")
			case "dialect":
				if _, err := dialectByName(v); err != nil {
					return nil, err
				}
				p.Dialect = v
			case "poll":
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Second {
					return nil, fmt.Errorf("poll %q: a duration of at least 1s, such as 5m", v)
				}
				p.Poll = d
			default:
				return nil, fmt.Errorf("unknown key %q (name, url, dialect, poll)", k)
			}
		}
		if !nameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("platform name %q: want [a-z0-9-]{1,32}", p.Name)
		}
		if p.URL == "" {
			return nil, fmt.Errorf("platform %q: url= is required", p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("platform %q twice", p.Name)
		}
		seen[p.Name] = true
		if p.Secret = keys[p.Name]; p.Secret == nil {
			return nil, fmt.Errorf("platform %q has no secret in HOTLINE_EXCHANGE_SECRETS", p.Name)
		}
		out = append(out, p)
	}
	for name := range keys {
		if !seen[name] {
			return nil, fmt.Errorf("secret for %q, which is not a platform", name)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ";") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

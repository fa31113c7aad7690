package main

import (
	"errors"

	"hotline/web"
)

// PublicConfig holds the limits of the public channels (网上留言, the progress query, Open311) and how many
// reverse proxies in front of hotline are trusted to name the client in X-Forwarded-For.
type PublicConfig struct {
	TrustedProxyHops int
	SubmitLimit      int
	Open311Limit     int
	GlobalLimit      int
	PowBits          int
}

func (c PublicConfig) limits() web.PublicLimits {
	return web.PublicLimits{TrustedHops: c.TrustedProxyHops, Submit: c.SubmitLimit, Open311: c.Open311Limit,
		Global: c.GlobalLimit, PowBits: c.PowBits}
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_TRUSTED_PROXY_HOPS", Flag: "trusted-proxy-hops", Default: "0", Doc: "reverse proxies in front of hotline that append to X-Forwarded-For; the client is the entry this many from the right (0: the peer address, the header is ignored)",
			field: func(c *Config) any { return &c.Public.TrustedProxyHops }, check: func(c *Config) error {
				if c.Public.TrustedProxyHops < 0 || c.Public.TrustedProxyHops > 10 {
					return errors.New("HOTLINE_TRUSTED_PROXY_HOPS: 0 to 10")
				}
				return nil
			}},
		setting{Env: "HOTLINE_PUBLIC_SUBMIT_LIMIT", Flag: "public-submit-limit", Default: "5", Doc: "web-form submissions (网上留言) per client address (an IPv6 /64) per hour",
			field: func(c *Config) any { return &c.Public.SubmitLimit }, check: positive("HOTLINE_PUBLIC_SUBMIT_LIMIT", func(c *Config) int { return c.Public.SubmitLimit })},
		setting{Env: "HOTLINE_OPEN311_LIMIT", Flag: "open311-limit", Default: "60", Doc: "Open311 requests posted per API key (and per client address) per minute",
			field: func(c *Config) any { return &c.Public.Open311Limit }, check: positive("HOTLINE_OPEN311_LIMIT", func(c *Config) int { return c.Public.Open311Limit })},
		setting{Env: "HOTLINE_PUBLIC_GLOBAL_LIMIT", Flag: "public-global-limit", Default: "600", Doc: "public requests (progress queries, web form, Open311) per minute over all clients together",
			field: func(c *Config) any { return &c.Public.GlobalLimit }, check: positive("HOTLINE_PUBLIC_GLOBAL_LIMIT", func(c *Config) int { return c.Public.GlobalLimit })},
		setting{Env: "HOTLINE_PUBLIC_POW_BITS", Flag: "public-pow-bits", Default: "18", Doc: "proof-of-work difficulty of the web form: leading zero bits of SHA-256 (18: about 260,000 hashes, a second or two on a phone)",
			field: func(c *Config) any { return &c.Public.PowBits }, check: func(c *Config) error {
				if c.Public.PowBits < 8 || c.Public.PowBits > 28 {
					return errors.New("HOTLINE_PUBLIC_POW_BITS: 8 to 28")
				}
				return nil
			}},
	)
}

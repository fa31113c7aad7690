package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hotline/telephony/intake"
	"hotline/telephony/sipua"
)

// TelephonyConfig holds the settings of SIP intake, ACD, recordings and the dialer.
type TelephonyConfig struct {
	SIPListen     string // "udp:127.0.0.1:5060,tcp:127.0.0.1:5060"; empty: no SIP in this process
	SIPTLSListen  string
	SIPTLSCert    string
	SIPTLSKey     string
	ExternalHost  string
	UDPRcvBuf     int // receive buffer asked for on each SIP UDP listener, bytes
	Trunks        string
	Realm         string
	MaxCalls      int
	RatePerSource float64
	RTPPorts      string // "10000-20000"; empty: ephemeral
	DrainTimeout  time.Duration
	QueueLimit    time.Duration
	RingTimeout   time.Duration
	AnswerDelay   time.Duration
	GreetingMin   time.Duration
	GreetingFull  bool
	VoicemailMax  time.Duration
	ACW           time.Duration
	ServiceHours  string
	RecordingsDir string // default <data dir>/recordings (filled in at load)
	PromptsDir    string // default <data dir>/prompts

	// Parsed at load from the strings above, so wiring never parses (issue 17).
	Listeners []sipua.Listener // SIPListen and SIPTLSListen, TLS certificate loaded
	TrunkList []sipua.Trunk    // Trunks
	RTPLo     int              // RTPPorts; 0: ephemeral
	RTPHi     int
	Hours     intake.Hours // ServiceHours
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_SIP_LISTEN", Flag: "sip-listen", Default: "udp:127.0.0.1:5060,tcp:127.0.0.1:5060",
			Doc:   "SIP listeners as transport:host:port, comma-separated (udp, tcp); empty: this process takes no calls",
			field: func(c *Config) any { return &c.Telephony.SIPListen }, check: func(c *Config) error {
				var err error
				c.Telephony.Listeners, err = sipListeners(c.Telephony)
				return err
			}},
		setting{Env: "HOTLINE_SIP_TLS_LISTEN", Flag: "sip-tls-listen", Default: "", Doc: "SIP over TLS listener host:port (needs HOTLINE_SIP_TLS_CERT and _KEY)",
			field: func(c *Config) any { return &c.Telephony.SIPTLSListen }},
		setting{Env: "HOTLINE_SIP_TLS_CERT", Flag: "sip-tls-cert", Default: "", Doc: "PEM certificate (chain) file for SIP over TLS",
			field: func(c *Config) any { return &c.Telephony.SIPTLSCert }},
		setting{Env: "HOTLINE_SIP_TLS_KEY", Flag: "sip-tls-key", Default: "", Doc: "PEM private key file for SIP over TLS",
			field: func(c *Config) any { return &c.Telephony.SIPTLSKey }},
		setting{Env: "HOTLINE_SIP_EXTERNAL_HOST", Flag: "sip-external-host", Default: "", Doc: "address put in SIP Contact and SDP when behind NAT (default: the listen address)",
			field: func(c *Config) any { return &c.Telephony.ExternalHost }},
		setting{Env: "HOTLINE_SIP_TRUNKS", Flag: "sip-trunks", Default: "name=12345,net=127.0.0.1/32,numbers=12345|12317", Secret: true,
			Doc:   "trunks allowed to send calls, ';'-separated: name=N,net=CIDR|CIDR,numbers=12345|12317[,user=U,pass=P][,skills=S] (a request from elsewhere gets 403)",
			field: func(c *Config) any { return &c.Telephony.Trunks }, check: func(c *Config) error {
				var err error
				if c.Telephony.TrunkList, err = sipua.ParseTrunks(c.Telephony.Trunks); err != nil {
					return fmt.Errorf("HOTLINE_SIP_TRUNKS: %v", err)
				}
				return nil
			}},
		setting{Env: "HOTLINE_SIP_REALM", Flag: "sip-realm", Default: "hotline", Doc: "digest realm of the registrar and trunks (agents' SIP passwords are stored per realm)",
			field: func(c *Config) any { return &c.Telephony.Realm }},
		setting{Env: "HOTLINE_SIP_MAX_CALLS", Flag: "sip-max-calls", Default: "2000", Doc: "concurrent calls per process; more INVITEs get 503",
			field: func(c *Config) any { return &c.Telephony.MaxCalls }, check: positive("HOTLINE_SIP_MAX_CALLS", func(c *Config) int { return c.Telephony.MaxCalls })},
		setting{Env: "HOTLINE_SIP_RATE_PER_SOURCE", Flag: "sip-rate-per-source", Default: "2000", Doc: "INVITE/REGISTER per second allowed from one source address (a flood beyond gets 503; other trunks are not affected)",
			field: func(c *Config) any { return &c.Telephony.RatePerSource }, check: func(c *Config) error {
				if c.Telephony.RatePerSource <= 0 {
					return errors.New("HOTLINE_SIP_RATE_PER_SOURCE: must be above 0")
				}
				return nil
			}},
		setting{Env: "HOTLINE_SIP_UDP_RCVBUF", Flag: "sip-udp-rcvbuf", Default: "4194304", Doc: "receive buffer asked for on each SIP UDP listener, in bytes: it absorbs bursts while the admission door refuses what would wait too long in it; the kernel grants at most net.core.rmem_max (a warning at start says when it granted less)",
			field: func(c *Config) any { return &c.Telephony.UDPRcvBuf }, check: func(c *Config) error {
				if c.Telephony.UDPRcvBuf < 65536 {
					return errors.New("HOTLINE_SIP_UDP_RCVBUF: must be at least 65536 (bytes)")
				}
				return nil
			}},
		setting{Env: "HOTLINE_RTP_PORTS", Flag: "rtp-ports", Default: "", Doc: "UDP port range for RTP, e.g. 10000-20000 (for firewalls); empty: any free port",
			field: func(c *Config) any { return &c.Telephony.RTPPorts }, check: func(c *Config) error {
				var err error
				c.Telephony.RTPLo, c.Telephony.RTPHi, err = rtpPorts(c.Telephony.RTPPorts)
				return err
			}},
		setting{Env: "HOTLINE_SIP_DRAIN_TIMEOUT", Flag: "sip-drain-timeout", Default: "5m", Doc: "on SIGTERM, how long calls up may go on (new calls get 503) before they are hung up",
			field: func(c *Config) any { return &c.Telephony.DrainTimeout }},
		setting{Env: "HOTLINE_QUEUE_LIMIT", Flag: "queue-limit", Default: "60s", Doc: "longest wait for an agent; then the caller may leave a message (voicemail → ticket + callback task)",
			field: func(c *Config) any { return &c.Telephony.QueueLimit }},
		setting{Env: "HOTLINE_RING_TIMEOUT", Flag: "ring-timeout", Default: "15s", Doc: "how long an agent's phone rings before the next agent is tried (the silent agent is paused)",
			field: func(c *Config) any { return &c.Telephony.RingTimeout }},
		setting{Env: "HOTLINE_ANSWER_DELAY", Flag: "answer-delay", Default: "0s", Doc: "let an inbound call ring this long before answering",
			field: func(c *Config) any { return &c.Telephony.AnswerDelay }},
		setting{Env: "HOTLINE_GREETING_MIN", Flag: "greeting-min", Default: "2s", Doc: "agents are rung while the greeting plays; one who answers early waits until the caller has heard this much of it (the recording notice at its start: 2 s of the built-in greeting), then the rest is cut",
			field: func(c *Config) any { return &c.Telephony.GreetingMin }},
		setting{Env: "HOTLINE_GREETING_FULL", Flag: "greeting-full", Default: "false", Doc: "play the whole greeting before the caller is put through to an agent (the agent is still rung while it plays)",
			field: func(c *Config) any { return &c.Telephony.GreetingFull }},
		setting{Env: "HOTLINE_VOICEMAIL_MAX", Flag: "voicemail-max", Default: "120s", Doc: "longest voicemail message (the caller ends it earlier with #)",
			field: func(c *Config) any { return &c.Telephony.VoicemailMax }},
		setting{Env: "HOTLINE_AFTER_CALL_WORK", Flag: "after-call-work", Default: "10s", Doc: "after-call work: an agent becomes ready again this long after a call (0: at once)",
			field: func(c *Config) any { return &c.Telephony.ACW }},
		setting{Env: "HOTLINE_SERVICE_HOURS", Flag: "service-hours", Default: "", Doc: "when agents answer, China time, e.g. \"mon-fri 08:30-17:30,sat 09:00-12:00\"; outside, callers go to voicemail; empty: always",
			field: func(c *Config) any { return &c.Telephony.ServiceHours }, check: func(c *Config) error {
				var err error
				if c.Telephony.Hours, err = intake.ParseHours(c.Telephony.ServiceHours, nil); err != nil {
					return fmt.Errorf("HOTLINE_SERVICE_HOURS: %v", err)
				}
				return nil
			}},
		setting{Env: "HOTLINE_RECORDINGS_DIR", Flag: "recordings-dir", Default: "", Doc: "where call recordings and voicemails (WAV) are stored (default: <data dir>/recordings)",
			field: func(c *Config) any { return &c.Telephony.RecordingsDir }},
		setting{Env: "HOTLINE_PROMPTS_DIR", Flag: "prompts-dir", Default: "", Doc: "prompts (8 kHz 16-bit mono WAV: greeting, queue, hold, voicemail, closed, beep, thanks) replacing the built-in ones (default: <data dir>/prompts, written on first start)",
			field: func(c *Config) any { return &c.Telephony.PromptsDir }},
	)
}

// sipListeners parses HOTLINE_SIP_LISTEN (and the TLS listener).
func sipListeners(c TelephonyConfig) ([]sipua.Listener, error) {
	var out []sipua.Listener
	for _, part := range strings.Split(c.SIPListen, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tr, addr, ok := strings.Cut(part, ":")
		if !ok || (tr != "udp" && tr != "tcp") || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("HOTLINE_SIP_LISTEN: %q is not udp:host:port or tcp:host:port", part)
		}
		out = append(out, sipua.Listener{Transport: tr, Addr: addr})
	}
	if c.SIPTLSListen != "" {
		if c.SIPTLSCert == "" || c.SIPTLSKey == "" {
			return nil, errors.New("HOTLINE_SIP_TLS_LISTEN needs HOTLINE_SIP_TLS_CERT and HOTLINE_SIP_TLS_KEY")
		}
		cert, err := tls.LoadX509KeyPair(c.SIPTLSCert, c.SIPTLSKey)
		if err != nil {
			return nil, fmt.Errorf("HOTLINE_SIP_TLS_CERT/KEY: %v", err)
		}
		out = append(out, sipua.Listener{Transport: "tls", Addr: c.SIPTLSListen,
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	}
	return out, nil
}

func rtpPorts(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi-lo < 100 {
		return 0, 0, fmt.Errorf("HOTLINE_RTP_PORTS: %q is not a range such as 10000-20000 (at least 100 ports above 1023)", s)
	}
	return lo, hi, nil
}

package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// NotifyConfig holds the external channels (SMS, WeChat Work, email) and the delivery policy.
type NotifyConfig struct {
	SMSProvider    string // none, aliyun, tencent or gateway
	SMSSignName    string
	SMSEndpoint    string
	SMSKeyID       string
	SMSKeySecret   string
	SMSRegion      string
	SMSAppID       string
	SMSGatewayAuth string
	SMSGatewayBody string

	WecomAPI     string
	WecomCorpID  string
	WecomSecret  string
	WecomAgentID int

	SMTPAddr     string
	SMTPUser     string
	SMTPPassword string
	SMTPFrom     string

	QuietHours  string
	DailyCap    int
	DigestAt    string
	QueryURL    string
	Concurrency int
	MaxAttempts int
	Backoff     time.Duration
	SendTimeout time.Duration
}

// clockRange parses "HH:MM-HH:MM" into two times of day.
func clockRange(s string) (time.Duration, time.Duration, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errors.New("want HH:MM-HH:MM")
	}
	from, err := clockTime(a)
	if err != nil {
		return 0, 0, err
	}
	to, err := clockTime(b)
	return from, to, err
}

func clockTime(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func init() {
	n := func(c *Config) *NotifyConfig { return &c.Notify }
	settings = append(settings,
		setting{Env: "HOTLINE_NOTIFY_SMS_PROVIDER", Flag: "notify-sms-provider", Default: "none",
			Doc:   "SMS provider: none, aliyun (Alibaba Cloud SMS), tencent (Tencent Cloud SMS) or gateway (generic HTTP gateway)",
			field: func(c *Config) any { return &n(c).SMSProvider },
			check: func(c *Config) error {
				nc := n(c)
				if err := oneOf("HOTLINE_NOTIFY_SMS_PROVIDER", func(c *Config) string { return nc.SMSProvider }, "none", "aliyun", "tencent", "gateway")(c); err != nil {
					return err
				}
				switch {
				case nc.SMSProvider == "gateway" && nc.SMSEndpoint == "":
					return errors.New("HOTLINE_NOTIFY_SMS_ENDPOINT: the gateway's URL is required with HOTLINE_NOTIFY_SMS_PROVIDER=gateway")
				case (nc.SMSProvider == "aliyun" || nc.SMSProvider == "tencent") && (nc.SMSKeyID == "" || nc.SMSKeySecret == "" || nc.SMSSignName == ""):
					return errors.New("HOTLINE_NOTIFY_SMS_KEY_ID, HOTLINE_NOTIFY_SMS_KEY_SECRET and HOTLINE_NOTIFY_SMS_SIGN_NAME are required for " + nc.SMSProvider)
				case nc.SMSProvider == "tencent" && nc.SMSAppID == "":
					return errors.New("HOTLINE_NOTIFY_SMS_APP_ID (SmsSdkAppId) is required for tencent")
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_SMS_SIGN_NAME", Flag: "notify-sms-sign-name", Default: "",
			Doc: "registered SMS signature (签名), e.g. 湖南省乡村振兴局", field: func(c *Config) any { return &n(c).SMSSignName }},
		setting{Env: "HOTLINE_NOTIFY_SMS_ENDPOINT", Flag: "notify-sms-endpoint", Default: "",
			Doc: "SMS API URL: the gateway's URL; for aliyun/tencent empty means the public endpoint", field: func(c *Config) any { return &n(c).SMSEndpoint }},
		setting{Env: "HOTLINE_NOTIFY_SMS_KEY_ID", Flag: "notify-sms-key-id", Default: "",
			Doc: "Alibaba AccessKeyId or Tencent SecretId", field: func(c *Config) any { return &n(c).SMSKeyID }},
		setting{Env: "HOTLINE_NOTIFY_SMS_KEY_SECRET", Flag: "notify-sms-key-secret", Default: "", Secret: true,
			Doc: "Alibaba AccessKeySecret or Tencent SecretKey", field: func(c *Config) any { return &n(c).SMSKeySecret }},
		setting{Env: "HOTLINE_NOTIFY_SMS_REGION", Flag: "notify-sms-region", Default: "",
			Doc: "provider region (aliyun: cn-hangzhou, tencent: ap-guangzhou when empty)", field: func(c *Config) any { return &n(c).SMSRegion }},
		setting{Env: "HOTLINE_NOTIFY_SMS_APP_ID", Flag: "notify-sms-app-id", Default: "",
			Doc: "Tencent SmsSdkAppId", field: func(c *Config) any { return &n(c).SMSAppID }},
		setting{Env: "HOTLINE_NOTIFY_SMS_GATEWAY_AUTH", Flag: "notify-sms-gateway-auth", Default: "", Secret: true,
			Doc: "gateway: one header \"Name: value\" sent with every request", field: func(c *Config) any { return &n(c).SMSGatewayAuth }},
		setting{Env: "HOTLINE_NOTIFY_SMS_GATEWAY_BODY", Flag: "notify-sms-gateway-body", Default: "",
			Doc: "gateway: Go text/template of the JSON body (.Phone .Text .Template .Params .IdemKey; json quotes); empty: a default", field: func(c *Config) any { return &n(c).SMSGatewayBody }},
		setting{Env: "HOTLINE_NOTIFY_WECOM_API", Flag: "notify-wecom-api", Default: "https://qyapi.weixin.qq.com",
			Doc: "WeChat Work API base (a private deployment's address if any)", field: func(c *Config) any { return &n(c).WecomAPI }},
		setting{Env: "HOTLINE_NOTIFY_WECOM_CORP_ID", Flag: "notify-wecom-corp-id", Default: "",
			Doc: "WeChat Work corp id for application messages to unit heads (empty: none)", field: func(c *Config) any { return &n(c).WecomCorpID }},
		setting{Env: "HOTLINE_NOTIFY_WECOM_SECRET", Flag: "notify-wecom-secret", Default: "", Secret: true,
			Doc: "WeChat Work application secret", field: func(c *Config) any { return &n(c).WecomSecret }},
		setting{Env: "HOTLINE_NOTIFY_WECOM_AGENT_ID", Flag: "notify-wecom-agent-id", Default: "0",
			Doc: "WeChat Work application agent id", field: func(c *Config) any { return &n(c).WecomAgentID }},
		setting{Env: "HOTLINE_NOTIFY_SMTP_ADDR", Flag: "notify-smtp-addr", Default: "",
			Doc: "SMTP relay host:port for digests (STARTTLS required); empty: no email", field: func(c *Config) any { return &n(c).SMTPAddr }},
		setting{Env: "HOTLINE_NOTIFY_SMTP_USER", Flag: "notify-smtp-user", Default: "",
			Doc: "SMTP user (AUTH PLAIN after STARTTLS)", field: func(c *Config) any { return &n(c).SMTPUser }},
		setting{Env: "HOTLINE_NOTIFY_SMTP_PASSWORD", Flag: "notify-smtp-password", Default: "", Secret: true,
			Doc: "SMTP password", field: func(c *Config) any { return &n(c).SMTPPassword }},
		setting{Env: "HOTLINE_NOTIFY_SMTP_FROM", Flag: "notify-smtp-from", Default: "",
			Doc:   "From address of digests",
			field: func(c *Config) any { return &n(c).SMTPFrom },
			check: func(c *Config) error {
				if n(c).SMTPAddr != "" && n(c).SMTPFrom == "" {
					return errors.New("HOTLINE_NOTIFY_SMTP_FROM: required with HOTLINE_NOTIFY_SMTP_ADDR")
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_QUIET_HOURS", Flag: "notify-quiet-hours", Default: "21:00-08:00",
			Doc:   "no SMS to the public in this window (China time); held until it ends; \"none\" to send at any hour",
			field: func(c *Config) any { return &n(c).QuietHours },
			check: func(c *Config) error {
				if q := n(c).QuietHours; q != "none" {
					if _, _, err := clockRange(q); err != nil {
						return fmt.Errorf("HOTLINE_NOTIFY_QUIET_HOURS: %v", err)
					}
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_DAILY_CAP", Flag: "notify-daily-cap", Default: "5",
			Doc:   "most SMS to one caller's number per day; more are suppressed",
			field: func(c *Config) any { return &n(c).DailyCap },
			check: func(c *Config) error {
				if n(c).DailyCap < 1 {
					return errors.New("HOTLINE_NOTIFY_DAILY_CAP: at least 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_DIGEST_AT", Flag: "notify-digest-at", Default: "08:30",
			Doc:   "time of the daily digest to units (China time); \"none\" for no digest",
			field: func(c *Config) any { return &n(c).DigestAt },
			check: func(c *Config) error {
				if d := n(c).DigestAt; d != "none" {
					if _, err := clockTime(d); err != nil {
						return fmt.Errorf("HOTLINE_NOTIFY_DIGEST_AT: %v", err)
					}
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_QUERY_URL", Flag: "notify-query-url", Default: "",
			Doc: "where callers check progress with number and query code ({query_url} in SMS templates)", field: func(c *Config) any { return &n(c).QueryURL }},
		setting{Env: "HOTLINE_NOTIFY_CONCURRENCY", Flag: "notify-concurrency", Default: "64",
			Doc:   "sends in flight per process (bounded: a slow provider cannot take more)",
			field: func(c *Config) any { return &n(c).Concurrency },
			check: func(c *Config) error {
				if n(c).Concurrency < 1 {
					return errors.New("HOTLINE_NOTIFY_CONCURRENCY: at least 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_MAX_ATTEMPTS", Flag: "notify-max-attempts", Default: "10",
			Doc:   "attempts per delivery before it is dead (an admin can retry it)",
			field: func(c *Config) any { return &n(c).MaxAttempts },
			check: func(c *Config) error {
				if n(c).MaxAttempts < 1 {
					return errors.New("HOTLINE_NOTIFY_MAX_ATTEMPTS: at least 1")
				}
				return nil
			}},
		setting{Env: "HOTLINE_NOTIFY_BACKOFF", Flag: "notify-backoff", Default: "10s",
			Doc: "first retry delay; doubles per attempt (with jitter) up to 30m", field: func(c *Config) any { return &n(c).Backoff }},
		setting{Env: "HOTLINE_NOTIFY_SEND_TIMEOUT", Flag: "notify-send-timeout", Default: "10s",
			Doc: "longest wait for a provider's answer", field: func(c *Config) any { return &n(c).SendTimeout }},
	)
}

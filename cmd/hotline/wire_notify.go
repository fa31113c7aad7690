package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"hotline/notify/deliver"
	"hotline/notify/mail"
	"hotline/notify/sms"
	"hotline/notify/wecom"
)

// wireNotify builds the external channels from HOTLINE_NOTIFY_* and runs the delivery pipeline in this
// process (intake from the event stream, workers, daily digest); every process may run it.
func wireNotify(ctx context.Context, a *App) error {
	c := a.cfg.Notify
	box, err := piiBox(a.cfg, hasEmbeddedData(a.cfg))
	if err != nil {
		return err
	}
	// One client for every provider: a timeout per request, and idle connections for the workers' concurrency.
	hc := sms.NewHTTPClient(c.SendTimeout, c.Concurrency)
	var ch deliver.Channels
	switch c.SMSProvider {
	case "aliyun":
		ch.SMS = &sms.Aliyun{Endpoint: c.SMSEndpoint, AccessKeyID: c.SMSKeyID, AccessKeySecret: c.SMSKeySecret,
			SignName: c.SMSSignName, RegionID: c.SMSRegion, Client: hc}
	case "tencent":
		ch.SMS = &sms.Tencent{Endpoint: c.SMSEndpoint, SecretID: c.SMSKeyID, SecretKey: c.SMSKeySecret, Region: c.SMSRegion,
			SdkAppID: c.SMSAppID, SignName: c.SMSSignName, Client: hc}
	case "gateway":
		g, err := sms.NewGateway(sms.Gateway{URL: c.SMSEndpoint, AuthHeader: c.SMSGatewayAuth, Body: c.SMSGatewayBody, Client: hc})
		if err != nil {
			return fmt.Errorf("HOTLINE_NOTIFY_SMS_GATEWAY_BODY: %v", err)
		}
		ch.SMS = g
	}
	// Robots need no credentials of ours: each unit's webhook URL carries its key.
	ch.Robot = &wecom.Robot{Client: hc}
	if c.WecomCorpID != "" {
		ch.App = &wecom.App{API: c.WecomAPI, CorpID: c.WecomCorpID, Secret: c.WecomSecret, AgentID: int64(c.WecomAgentID), Client: hc}
	}
	if c.SMTPAddr != "" {
		m, err := mail.New(mail.Config{Addr: c.SMTPAddr, Username: c.SMTPUser, Password: c.SMTPPassword, From: c.SMTPFrom, Timeout: c.SendTimeout})
		if err != nil {
			return fmt.Errorf("HOTLINE_NOTIFY_SMTP_ADDR: %v", err)
		}
		ch.Mail = m
	}
	opt := deliver.Options{DB: a.db, Redis: a.rdb, Prefix: a.cfg.RedisPrefix, Box: box, Channels: ch,
		Log: a.log.With("component", "notify"), Concurrency: c.Concurrency, MaxAttempts: c.MaxAttempts,
		BackoffBase: c.Backoff, SendTimeout: c.SendTimeout, DailyCap: c.DailyCap, QueryURL: c.QueryURL}
	if c.QuietHours == "none" {
		opt.NoQuietHours = true
	} else {
		opt.QuietStart, opt.QuietEnd, _ = clockRange(c.QuietHours) // checked with the configuration
	}
	if c.DigestAt == "none" {
		opt.DigestAt = -1
	} else {
		at, _ := clockTime(c.DigestAt)
		opt.DigestAt = max(at, time.Minute) // 00:00 would read as "default"
	}
	svc, err := deliver.New(opt)
	if err != nil {
		return err
	}
	for _, col := range svc.Collectors() {
		if err := a.reg.Register(col); err != nil {
			return fmt.Errorf("notify metrics: %w", err)
		}
	}
	on := []string{"wecom robots"}
	if ch.SMS != nil {
		on = append(on, "sms "+c.SMSProvider)
	}
	if ch.App != nil {
		on = append(on, "wecom app")
	}
	if ch.Mail != nil {
		on = append(on, "email")
	}
	// Rules for a channel that is not configured make no deliveries; say which are on.
	a.endpoints = append(a.endpoints, [2]string{"notify", strings.Join(on, ", ") + " (HOTLINE_NOTIFY_*)"})
	a.webDeps.Notify = svc
	// It reads the event stream and sends: it stops with the sweepers, before the relay's last pass, and what
	// that pass publishes waits in the consumer group for the next start.
	a.add(component{name: "notify", stage: stageSweepers, role: roleWorkers, run: svc.Run})
	return nil
}

package mail_test

import (
	"context"
	"strings"
	"testing"

	"hotline/notify/mail"
	"hotline/notify/mail/smtptest"
)

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	srv := smtptest.Start(t, "hotline", "pw")
	s, err := mail.New(mail.Config{Addr: srv.Addr, Username: "hotline", Password: "pw", From: "hotline@example.gov.cn", TLS: srv.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), "head@example.gov.cn", "每日工单提醒", "待签收 3 件", "abc123"); err != nil {
		t.Fatal(err)
	}
	got := srv.Mails()
	if len(got) != 1 || !got[0].TLS || got[0].User != "hotline" || got[0].To[0] != "head@example.gov.cn" {
		t.Fatalf("mails %+v", got)
	}
	if !strings.Contains(string(got[0].Data), "Message-ID: <abc123@hotline>") {
		t.Fatalf("no Message-ID from the idempotency key:\n%s", got[0].Data)
	}
	bad, _ := mail.New(mail.Config{Addr: srv.Addr, Username: "hotline", Password: "wrong", From: "hotline@example.gov.cn", TLS: srv.ClientTLS})
	if err := bad.Send(context.Background(), "head@example.gov.cn", "x", "y", "k"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if len(srv.Mails()) != 1 {
		t.Fatal("mail accepted without auth")
	}
}

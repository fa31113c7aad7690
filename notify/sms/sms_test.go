package sms_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"hotline/notify/sms"
	"hotline/notify/sms/smstest"
)

var msg = sms.Message{Phone: "13912345678", Template: "SMS_123", IdemKey: "k1",
	Params: []sms.Param{{Name: "number", Value: "20261201-0001"}, {Name: "code", Value: "123456"}}, Text: "工单20261201-0001"}

func TestAliyunSignatureVerified(t *testing.T) {
	srv := smstest.Aliyun(t, "LTAIkey", "s3cret")
	p := &sms.Aliyun{Endpoint: srv.URL, AccessKeyID: "LTAIkey", AccessKeySecret: "s3cret", SignName: "湖南乡村振兴"}
	ref, err := p.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("send: %v (server rejected %v)", err, srv.Rejected())
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].Phone != msg.Phone || got[0].Params["code"] != "123456" || got[0].IdemKey != "k1" || got[0].Ref != ref {
		t.Fatalf("received %+v, ref %q", got, ref)
	}
	// A tampered signing key must be refused by the provider, and the refusal is an error the sender sees.
	bad := &sms.Aliyun{Endpoint: srv.URL, AccessKeyID: "LTAIkey", AccessKeySecret: "s3cret-tampered", SignName: "湖南乡村振兴"}
	_, err = bad.Send(context.Background(), msg)
	var pe *sms.Error
	if !errors.As(err, &pe) || pe.Code != "SignatureDoesNotMatch" {
		t.Fatalf("tampered key: %v", err)
	}
	if len(srv.Messages()) != 1 {
		t.Fatal("a badly signed request was accepted")
	}
}

func TestAliyunPercentEncode(t *testing.T) {
	for in, want := range map[string]string{"a b*c~": "a%20b%2Ac~", "/": "%2F", "签": "%E7%AD%BE", "-_.": "-_."} {
		if got := sms.PercentEncode(in); got != want {
			t.Errorf("PercentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTencentSignatureVerified(t *testing.T) {
	srv := smstest.Tencent(t, "AKIDx", "tkey", "1400000001")
	p := &sms.Tencent{Endpoint: srv.URL, SecretID: "AKIDx", SecretKey: "tkey", SdkAppID: "1400000001", SignName: "湖南乡村振兴"}
	if _, err := p.Send(context.Background(), msg); err != nil {
		t.Fatalf("send: %v (server rejected %v)", err, srv.Rejected())
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].Phone != msg.Phone || got[0].Params["0"] != "20261201-0001" || got[0].Params["1"] != "123456" || got[0].IdemKey != "k1" {
		t.Fatalf("received %+v", got)
	}
	bad := &sms.Tencent{Endpoint: srv.URL, SecretID: "AKIDx", SecretKey: "tkey-tampered", SdkAppID: "1400000001", SignName: "湖南乡村振兴"}
	_, err := bad.Send(context.Background(), msg)
	var pe *sms.Error
	if !errors.As(err, &pe) || pe.Code != "AuthFailure.SignatureFailure" {
		t.Fatalf("tampered key: %v", err)
	}
	if len(srv.Messages()) != 1 {
		t.Fatal("a badly signed request was accepted")
	}
}

func TestGateway(t *testing.T) {
	srv := smstest.Gateway(t, "Authorization: Bearer gw")
	g, err := sms.NewGateway(sms.Gateway{URL: srv.URL, AuthHeader: "Authorization: Bearer gw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Send(context.Background(), msg); err != nil {
		t.Fatalf("send: %v %v", err, srv.Rejected())
	}
	if got := srv.Messages(); len(got) != 1 || got[0].Text != msg.Text || got[0].IdemKey != "k1" {
		t.Fatalf("received %+v", got)
	}
	srv.FailNext(1)
	_, err = g.Send(context.Background(), msg)
	var pe *sms.Error
	if !errors.As(err, &pe) || pe.Permanent() {
		t.Fatalf("a 503 must be a retryable error: %v", err)
	}
	wrong, _ := sms.NewGateway(sms.Gateway{URL: srv.URL, AuthHeader: "Authorization: Bearer nope"})
	if _, err := wrong.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong auth: %v", err)
	}
}

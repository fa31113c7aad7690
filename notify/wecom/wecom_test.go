package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"hotline/notify/wecom"
	"hotline/notify/wecom/wecomtest"
)

func TestTokenRefreshedOnceUnderConcurrentSends(t *testing.T) {
	srv := wecomtest.New(t, "ww1", "sec")
	app := &wecom.App{API: srv.URL, CorpID: "ww1", Secret: "sec", AgentID: 1000002}
	ctx := context.Background()
	if _, err := app.Send(ctx, []string{"zhangsan"}, "**派单** 1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.TokenCalls(); n != 1 {
		t.Fatalf("token fetched %d times for one send", n)
	}
	srv.ExpireTokens()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := app.Send(ctx, []string{"zhangsan"}, fmt.Sprintf("**催办** %d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("send: %v", err)
	}
	if n := srv.TokenCalls(); n != 2 {
		t.Fatalf("gettoken called %d times; want exactly one refresh (2 in all)", n)
	}
	if n := len(srv.AppMessages()); n != 21 {
		t.Fatalf("%d messages delivered, want 21", n)
	}
}

func TestRateLimitIsRetryable(t *testing.T) {
	srv := wecomtest.New(t, "ww1", "sec")
	robot := &wecom.Robot{}
	url := srv.RobotURL("k1")
	srv.RateLimitOnce()
	err := robot.Send(context.Background(), url, "# 红牌")
	var we *wecom.Error
	if !errors.As(err, &we) || we.Code != wecom.CodeRateLimit || we.RetryAfter() == 0 || we.Permanent() {
		t.Fatalf("rate limit: %v", err)
	}
	if err := robot.Send(context.Background(), url, "# 红牌"); err != nil {
		t.Fatal(err)
	}
	if got := srv.RobotMessages(); len(got) != 1 || got[0].To != "k1" {
		t.Fatalf("robot messages %+v", got)
	}
}

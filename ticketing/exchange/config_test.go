package exchange_test

import (
	"strings"
	"testing"
	"time"

	"hotline/ticketing/exchange"
)

func TestParsePlatforms(t *testing.T) {
	ps, err := exchange.ParsePlatforms("name=yiyang,url=https://12345.yiyang.example/exchange/;name=cs,url=http://10.0.0.5:8080,poll=5m,dialect=12345v1",
		"yiyang=0123456789abcdef;cs=fedcba9876543210xx")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].URL != "https://12345.yiyang.example/exchange" || ps[1].Poll != 5*time.Minute || string(ps[1].Secret) != "fedcba9876543210xx" {
		t.Fatalf("%+v", ps)
	}
	for _, c := range []struct{ list, secrets, want string }{
		{"name=a,url=https://x", "", "no secret"},
		{"name=a,url=https://x", "a=short", "at least 16"},
		{"name=a,url=https://x", "a=0123456789abcdef;b=0123456789abcdef", "not a platform"},
		{"name=A,url=https://x", "A=0123456789abcdef", "platform name"},
		{"name=a,url=ftp://x", "a=0123456789abcdef", "platform url"},
		{"name=a,url=https://x,poll=10ms", "a=0123456789abcdef", "poll"},
		{"name=a,url=https://x,dialect=xml9", "a=0123456789abcdef", "no platform dialect"},
		{"name=a,url=https://x;name=a,url=https://y", "a=0123456789abcdef", "twice"},
	} {
		if _, err := exchange.ParsePlatforms(c.list, c.secrets); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q / %q: %v, want %q", c.list, c.secrets, err, c.want)
		}
	}
	if ps, err := exchange.ParsePlatforms("", ""); err != nil || len(ps) != 0 {
		t.Fatalf("empty: %v %v", ps, err)
	}
}

package phone

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RedactHandler(slog.NewTextHandler(&buf, nil))).With("caller", "sip:+8613812345678@10.0.0.1")
	raw := "INVITE sip:12345@hotline SIP/2.0\r\nFrom: <sip:13812345678@trunk>;tag=1\r\n"
	log.Error("failed to parse", "data", raw, "error", errors.New("bad header near 13912345678"),
		"id", "43090319650505123X", slog.Group("g", "phone", "0086 13712345678"))
	out := buf.String()
	for _, full := range []string{"13812345678", "13912345678", "43090319650505123X", "INVITE"} {
		if strings.Contains(out, full) {
			t.Fatalf("log line holds %q: %s", full, out)
		}
	}
	for _, masked := range []string{"data_bytes=", "139****5678", "430903********123X", "+86138****5678"} {
		if !strings.Contains(out, masked) {
			t.Fatalf("log line lacks %q: %s", masked, out)
		}
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("13812345678")
	f.Add("身份证43090319650505123X电话+86 138 1234 5678")
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if idRun.MatchString(r) || mobileRun.MatchString(r) {
			t.Fatalf("Redact(%q) = %q still holds a number", s, r)
		}
	})
}

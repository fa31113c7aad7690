package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsEnvAndFlags(t *testing.T) {
	c, rest, warns, err := loadConfig([]string{"--http-addr", "127.0.0.1:9999", "extra"},
		[]string{"HOTLINE_PG_PORT=6000", "HOTLINE_HTTP_ADDR=127.0.0.1:1111", "HOTLINE_SHUTDOWN_TIMEOUT=5s", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.PGPort != 6000 || c.HTTPAddr != "127.0.0.1:9999" || c.ShutdownTimeout != 5*time.Second || c.RedisPort != 6380 {
		t.Fatalf("got %+v", c)
	}
	if len(rest) != 1 || rest[0] != "extra" || len(warns) != 0 {
		t.Fatalf("rest %v warnings %v", rest, warns)
	}
}

func TestUnknownVariableWarned(t *testing.T) {
	_, _, warns, err := loadConfig(nil, []string{"HOTLINE_PG_PROT=5", "HOTLINE_DATA_DIR=/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "HOTLINE_PG_PROT") {
		t.Fatalf("warnings: %v", warns)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{env: []string{"HOTLINE_PG_PORT=abc"}, want: "HOTLINE_PG_PORT"},
		{env: []string{"HOTLINE_PG_PORT=70000"}, want: "HOTLINE_PG_PORT"},
		{env: []string{"HOTLINE_LOG_LEVEL=loud"}, want: "HOTLINE_LOG_LEVEL"},
		{env: []string{"HOTLINE_DEMO_DATA=maybe"}, want: "HOTLINE_DEMO_DATA"},
		{env: []string{"HOTLINE_SHUTDOWN_TIMEOUT=soon"}, want: "HOTLINE_SHUTDOWN_TIMEOUT"},
		{env: []string{"HOTLINE_DB_MAX_CONNS=1"}, want: "HOTLINE_DB_MAX_CONNS"},
		{args: []string{"--redis-port=x"}, want: "HOTLINE_REDIS_PORT"},
		{env: []string{"HOTLINE_DATABASE_URL_FILE=/nonexistent/secret"}, want: "HOTLINE_DATABASE_URL_FILE"},
	}
	for _, c := range cases {
		_, _, _, err := loadConfig(c.args, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want one naming %s", c.env, c.args, err, c.want)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "url")
	os.WriteFile(f, []byte("postgres://u:p@db:5432/hotline\n"), 0o600)
	c, _, warns, err := loadConfig(nil, []string{"HOTLINE_DATABASE_URL_FILE=" + f})
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	if c.DatabaseURL != "postgres://u:p@db:5432/hotline" {
		t.Fatalf("got %q", c.DatabaseURL)
	}
}

// deploy/hotline.env.example lists every setting with its default; regenerate it with
// `UPDATE_ENV_EXAMPLE=1 go test ./cmd/hotline -run EnvExample`.
func TestEnvExampleIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "hotline.env.example")
	want := envExample()
	if os.Getenv("UPDATE_ENV_EXAMPLE") != "" {
		os.WriteFile(path, []byte(want), 0o644)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date: run UPDATE_ENV_EXAMPLE=1 go test ./cmd/hotline -run EnvExample", path)
	}
	for _, s := range settings {
		if !strings.Contains(string(got), s.Env+"=") {
			t.Errorf("%s missing from the example", s.Env)
		}
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var b strings.Builder
	if code := run([]string{"help"}, nil, &b, &b); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range settings {
		if !strings.Contains(b.String(), s.Env) || !strings.Contains(b.String(), "--"+s.Flag) {
			t.Errorf("help lacks %s / --%s", s.Env, s.Flag)
		}
	}
	for _, c := range commands {
		if !strings.Contains(b.String(), c.name) {
			t.Errorf("help lacks command %s", c.name)
		}
	}
}

func TestUnknownCommandAndBadFlag(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"fly"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"serve", "--pg-port=nope"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "HOTLINE_PG_PORT") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// Every flag is named after its variable (HOTLINE_HTTP_ADDR → --http-addr), so one name can be found from the
// other (issue 17: --http, --dialer and --households did not say which variable they set).
func TestFlagsMatchVariables(t *testing.T) {
	for _, s := range settings {
		if want := flagName(s.Env); s.Flag != want {
			t.Errorf("%s has flag --%s, want --%s", s.Env, s.Flag, want)
		}
	}
}

// Compound settings are parsed once, at load, into the typed fields wiring uses; a bad one stops the start.
func TestCompoundSettingsParsedAtLoad(t *testing.T) {
	c, _, _, err := loadConfig(nil, []string{"HOTLINE_DATA_DIR=/srv/h", "HOTLINE_SIP_LISTEN=udp:127.0.0.1:5070,tcp:127.0.0.1:5071",
		"HOTLINE_RTP_PORTS=20000-20999", "HOTLINE_DIALER_TRUNK=10.0.0.9:5062",
		"HOTLINE_DB_MAX_CONNS=20", "HOTLINE_SIP_UDP_RCVBUF=1048576"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Telephony.Listeners) != 2 || c.Telephony.Listeners[1].Transport != "tcp" || c.Telephony.Listeners[1].Addr != "127.0.0.1:5071" {
		t.Errorf("listeners %+v", c.Telephony.Listeners)
	}
	if len(c.Telephony.TrunkList) != 1 || c.Telephony.TrunkList[0].Name != "12345" {
		t.Errorf("trunks %+v", c.Telephony.TrunkList)
	}
	if c.Telephony.RTPLo != 20000 || c.Telephony.RTPHi != 20999 {
		t.Errorf("rtp %d-%d", c.Telephony.RTPLo, c.Telephony.RTPHi)
	}
	if c.Dialer.TrunkHost != "10.0.0.9" || c.Dialer.TrunkPort != 5062 {
		t.Errorf("dialer %+v", c.Dialer)
	}
	if c.Telephony.RecordingsDir != "/srv/h/recordings" || c.Dialer.PromptDir != "/srv/h/prompts/dialer" {
		t.Errorf("default dirs %q %q", c.Telephony.RecordingsDir, c.Dialer.PromptDir)
	}
	if c.Telephony.UDPRcvBuf != 1048576 {
		t.Errorf("SIP UDP receive buffer %d, want 1048576", c.Telephony.UDPRcvBuf)
	}
	if c.HTTPMaxWrites != 10 || c.HTTPMaxReads != 20 {
		t.Errorf("admission limits from the pool: writes %d reads %d, want 10 and 20", c.HTTPMaxWrites, c.HTTPMaxReads)
	}
	for _, bad := range []string{"HOTLINE_HOLIDAYS_FILE=/nonexistent.csv", "HOTLINE_SIP_TLS_LISTEN=127.0.0.1:5061", "HOTLINE_SIP_UDP_RCVBUF=4096"} {
		if _, _, _, err := loadConfig(nil, []string{bad}); err == nil || !strings.Contains(err.Error(), strings.Split(bad, "=")[0]) {
			t.Errorf("%s: error %v, want one naming the variable", bad, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hotline/deploy/testenv"
)

// The tests here mostly drive the real binary in other processes (directly, through deploy/topology.sh and the
// manifests), where the test binary's race detector sees nothing. Under -race the binary is built with -race
// too, and every hotline process the tests start writes its race reports to raceDir (GORACE log_path, inherited
// through the environment by the scripts as well); TestMain fails the run when any report is there.
func TestMain(m *testing.M) {
	if !raceEnabled {
		os.Exit(testenv.Main(m))
	}
	dir, err := os.MkdirTemp("", "hotline-race-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o777) // #nosec G302 -- processes started as the postgres user's peers write here too
	os.Setenv("GORACE", "log_path="+filepath.Join(dir, "race"))
	code := testenv.Main(m)
	if failed := raceReports(dir); failed != "" {
		fmt.Fprintf(os.Stderr, "data races in hotline processes started by the tests:\n%s\n", failed)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceBinary tells whether the hotline binary is built with -race: when the tests are, unless RACE_BINARY=0
// (deploy/test.sh sets it for the browser group and the rest, which run the binary often and long enough that
// the race-built one would take the suite past its budget; their test processes still run under -race).
func raceBinary() bool { return raceEnabled && os.Getenv("RACE_BINARY") != "0" }

// raceReports returns the race detector's reports written under dir (one file per process that found a race).
func raceReports(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "race.*"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f) // #nosec G304 -- our own temporary directory
		if err == nil && len(bytes.TrimSpace(data)) > 0 {
			fmt.Fprintf(&b, "== %s\n%s\n", f, data)
		}
	}
	return b.String()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// hotlineBinary builds the real binary once per test run; the end-to-end tests run it as a person would.
func hotlineBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "hotline-bin-")
		if buildErr != nil {
			return
		}
		os.Chmod(binDir, 0o755)
		binPath = filepath.Join(binDir, "hotline")
		args := []string{"build", "-o", binPath}
		if raceBinary() {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput() // #nosec G204 -- fixed arguments
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running hotline with its output.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	exitEr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHotline(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(hotlineBinary(t), args...)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOTLINE_METRICS_ADDR=") }) {
		// The default metrics address is one fixed port; tests run side by side.
		env = append(env, fmt.Sprintf("HOTLINE_METRICS_ADDR=127.0.0.1:%d", testenv.FreePort(t)))
	}
	cmd.Env = append(cleanEnv(), env...)
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitEr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// cleanEnv drops HOTLINE_* variables of the developer's shell so tests see only what they set.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTLINE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("hotline did not exit within %v; output:\n%s", limit, p.out.String())
	}
	if p.exitEr == nil {
		return 0
	}
	if ee, ok := p.exitEr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// waitReady polls /readyz until it answers 200 or the process exits.
func waitReady(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("hotline exited before it was ready:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz did not answer 200; output:\n%s", p.out.String())
}

// processesUsing lists live processes whose command line mentions dir (the servers started for it).
func processesUsing(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := fmt.Sscanf(e.Name(), "%d", new(int)); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if bytes.Contains(stat, []byte(") Z ")) {
			continue // exited, waiting to be reaped
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

func waitNoProcesses(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := processesUsing(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

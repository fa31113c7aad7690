package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// `hotline health [readyz|healthz]` asks this process's own HTTP address, for container health checks: the image
// is distroless (no curl), and the check must hit /readyz or /healthz, not merely run the binary.
func init() {
	commands = append(commands, command{name: "health",
		summary: "health [readyz|healthz]: exit 0 if the hotline at HOTLINE_HTTP_ADDR answers 200 (for container health checks)",
		run:     runHealth})
}

func runHealth(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	what, err := needArgs(args, "readyz", "healthz")
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return usageError{fmt.Sprintf("HOTLINE_HTTP_ADDR: %v", err)}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// The target is this process's own HOTLINE_HTTP_ADDR (loopback for a wildcard) and one of two fixed paths.
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/"+what, nil) // #nosec G704 -- own address, fixed path
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- own address, fixed path
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: /%s answered %d", what, resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

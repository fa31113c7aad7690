// Command hotline is the whole service in one binary: `hotline up` runs it on one machine with an embedded
// PostgreSQL and Redis, `hotline serve` is the production entry point against external ones, and the other
// subcommands migrate, import and maintain. This package reads the configuration once, wires the packages
// together and stops them in order; it holds no business logic.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

var version = "dev"

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error
}

// commands lists the subcommands; features append theirs in init (e.g. `import households`).
var commands = []command{
	{name: "up", summary: "run everything on this machine: embedded PostgreSQL and Redis in the data directory, demo data, console, API and SIP", run: runUp},
	{name: "serve", summary: "run against external PostgreSQL and Redis (HOTLINE_DATABASE_URL, HOTLINE_REDIS_URL)", run: runServe},
	{name: "migrate", summary: "migrate [up|status]: apply or list the schema migrations (HOTLINE_DATABASE_URL)", run: runMigrate},
	{name: "version", summary: "print the version", run: func(_ context.Context, _ *Config, _ []string, w io.Writer) error {
		fmt.Fprintln(w, "hotline", version)
		return nil
	}},
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args []string, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		return 0
	}
	name := args[0]
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "hotline: unknown command %q (see hotline help)\n", name)
		return 2
	}
	cfg, rest, warnings, err := loadConfig(args[1:], environ)
	if err != nil {
		fmt.Fprintf(stderr, "hotline: %v\n", err)
		return 2
	}
	// The one logger of the process, on stderr (stdout carries what a command prints for people).
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	for _, w := range warnings {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second signal stops at once; the children die with us (parent-death signal).
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(stderr, "hotline: second signal, exiting now")
		os.Exit(1)
	}()
	if err := cmd.run(ctx, cfg, rest, stdout); err != nil {
		var ue usageError
		fmt.Fprintf(stderr, "hotline: %v\n", err)
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "hotline: the 12345 complaint hotline, ticket routing and household call service")
	fmt.Fprintln(w, "\nUsage: hotline COMMAND [--flag=value ...]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nSettings (environment variable, flag, default):")
	for _, s := range settings {
		def := s.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  %-30s --%-22s %s\n      %s\n", s.Env, s.Flag, def, s.Doc)
	}
	fmt.Fprintln(w, "\nA flag overrides its variable. Secrets may be read from a file named by <VAR>_FILE.")
}

func needArgs(args []string, allowed ...string) (string, error) {
	if len(args) == 0 {
		return allowed[0], nil
	}
	if len(args) > 1 {
		return "", usageError{fmt.Sprintf("unexpected arguments: %s", strings.Join(args[1:], " "))}
	}
	for _, a := range allowed {
		if args[0] == a {
			return a, nil
		}
	}
	return "", usageError{fmt.Sprintf("unknown argument %q (want one of %s)", args[0], strings.Join(allowed, ", "))}
}

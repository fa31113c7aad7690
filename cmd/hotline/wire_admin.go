package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/telephony/sipua"
	"hotline/ticketing/org"
)

func init() {
	commands = append(commands, command{name: "users",
		summary: "users create --admin NAME [--display-name TEXT] [--password-file FILE]: create an admin (password from the file, or the first line of stdin)",
		run:     runUsers})
}

// stdin is where `users create` reads a password when no file is given (tests replace it).
var stdin io.Reader = os.Stdin

// runUsers: `hotline users create --admin NAME`. The password never appears on the command line (where ps and
// shell history would keep it): it comes from --password-file or the first line of stdin.
func runUsers(ctx context.Context, cfg *Config, args []string, stdout io.Writer) error {
	const usage = "usage: hotline users create --admin NAME [--display-name TEXT] [--password-file FILE] (password on stdin otherwise)"
	if len(args) == 0 || args[0] != "create" {
		return usageError{usage}
	}
	var name, display, file string
	rest := args[1:]
	for len(rest) > 0 {
		flag, val, hasVal := strings.Cut(strings.TrimLeft(rest[0], "-"), "=")
		if !strings.HasPrefix(rest[0], "--") {
			return usageError{fmt.Sprintf("unexpected argument %q; %s", rest[0], usage)}
		}
		if !hasVal {
			if len(rest) < 2 {
				return usageError{fmt.Sprintf("--%s needs a value; %s", flag, usage)}
			}
			val, rest = rest[1], rest[1:]
		}
		rest = rest[1:]
		switch flag {
		case "admin":
			name = val
		case "display-name":
			display = val
		case "password-file":
			file = val
		default:
			return usageError{fmt.Sprintf("unknown flag --%s; %s", flag, usage)}
		}
	}
	if name == "" {
		return usageError{usage}
	}
	password, err := readPassword(file)
	if err != nil {
		return err
	}
	db, err := toolDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := org.CreateAdmin(ctx, db, name, display, password)
	if err != nil {
		var ve *org.ValidationError
		if errors.As(err, &ve) {
			return usageError{err.Error()}
		}
		return err
	}
	fmt.Fprintf(stdout, "created admin %s (user %d) in the provincial bureau\n", u.Username, u.ID)
	return nil
}

// readPassword reads the first line of the file, or of stdin when file is "".
func readPassword(file string) (string, error) {
	var r io.Reader = stdin
	if file != "" {
		f, err := os.Open(file) // #nosec G304 -- the operator names the file on the command line
		if err != nil {
			return "", usageError{fmt.Sprintf("--password-file: %v", err)}
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError{"no password: give --password-file FILE or the password on stdin"}
	}
	return line, nil
}

// bootstrapAdmin makes the first admin of an empty installation from HOTLINE_BOOTSTRAP_ADMIN and its password
// (serve calls it before serving). Once any active admin exists it does nothing: the settings may stay in place
// without ever resetting or adding an account. Without them, an installation with no admin says how to make one.
func bootstrapAdmin(ctx context.Context, cfg *Config, db *pgxpool.Pool, log *slog.Logger) error {
	if cfg.Admin.BootstrapAdmin == "" {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND active`).Scan(&n); err != nil {
			return fmt.Errorf("count admins: %w", err)
		}
		if n == 0 {
			log.Warn("no active admin: nobody can administer this installation; create one with `hotline users create --admin NAME` " +
				"or set HOTLINE_BOOTSTRAP_ADMIN and HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE")
		}
		return nil
	}
	u, created, err := org.BootstrapAdmin(ctx, db, cfg.Admin.BootstrapAdmin, "", cfg.Admin.BootstrapAdminPassword, org.Source{Addr: "bootstrap"})
	if err != nil {
		return fmt.Errorf("HOTLINE_BOOTSTRAP_ADMIN: %w", err)
	}
	if created {
		log.Info("created the first admin from HOTLINE_BOOTSTRAP_ADMIN; remove the password file now", "username", u.Username, "user_id", int64(u.ID))
	} else {
		log.Info("HOTLINE_BOOTSTRAP_ADMIN ignored: an active admin exists (it only acts on a database without one)")
	}
	return nil
}

// trunkReload is how often every SIP process reloads the trunks admins store (sip_trunks).
const trunkReload = 15 * time.Second

// wireStoredTrunks puts the stored trunks next to HOTLINE_SIP_TRUNKS (the variable wins on a name both define)
// and keeps them current while the process runs.
func wireStoredTrunks(ctx context.Context, a *App, srv *sipua.Server, env []sipua.Trunk) error {
	stored, err := sipua.LoadTrunks(ctx, a.db)
	if err != nil {
		return err
	}
	srv.SetTrunks(sipua.MergeTrunks(env, stored))
	a.webDeps.EnvTrunks = trunkNames(env)
	a.add(component{name: "trunk reload", stage: stageSweepers, run: func(ctx context.Context) error {
		return srv.RunTrunkReload(ctx, a.db, env, trunkReload)
	}})
	return nil
}

func trunkNames(ts []sipua.Trunk) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// Package localrt runs PostgreSQL and Redis from the machine's own binaries as child processes of hotline,
// in one data directory, bound to loopback. It is the engine of `hotline up` and of the test harness
// (deploy/testenv), so tests run against exactly the servers a newcomer runs.
//
// How it runs: Start initialises a PostgreSQL cluster on first use (initdb into a temporary directory that is
// renamed into place only when complete, so a failed first run leaves no half cluster), starts `postgres` and
// `redis-server` in the foreground as children, and waits until both answer. The children carry a parent-death
// signal, so a hotline killed with SIGKILL takes them along; leftovers from an older run (stale pid files,
// processes still holding the data directory) are stopped before a new start. Stop shuts both down (PostgreSQL
// fast shutdown, Redis SHUTDOWN with its AOF flushed) and waits for them to exit.
package localrt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Options say where and how to run the servers.
type Options struct {
	Dir       string // data directory; PostgreSQL lives in Dir/postgres, Redis in Dir/redis
	PGPort    int
	RedisPort int
	// Durable turns fsync on. `hotline up` runs durable; the test harness does not, for speed.
	Durable bool
	// PGBinDir overrides where initdb and postgres are looked for.
	PGBinDir string
	Logger   *slog.Logger
}

// Runtime is a running pair of servers.
type Runtime struct {
	opts        Options
	pg          *exec.Cmd
	redis       *exec.Cmd
	pgDone      chan struct{}
	redisDone   chan struct{}
	DatabaseURL string
	RedisURL    string
	FirstRun    bool // the PostgreSQL cluster was created by this Start
}

// Error is a start-up failure with the one line a person needs: what is wrong and what to do.
type Error struct {
	What string
	Fix  string
	Err  error
}

func (e *Error) Error() string {
	s := e.What
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Binaries are the server programs found on this machine.
type Binaries struct {
	PGBin   string // directory holding initdb and postgres
	PGMajor int
	Redis   string // path of redis-server
}

// FindBinaries looks for PostgreSQL's server binaries (Debian keeps them in /usr/lib/postgresql/<ver>/bin,
// off PATH) and redis-server, and says which package to install when one is missing.
func FindBinaries(pgBinDir string) (Binaries, error) {
	var b Binaries
	var dirs []string
	if pgBinDir != "" {
		dirs = append(dirs, pgBinDir)
	}
	vers, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(vers, func(i, j int) bool { return pgDirMajor(vers[i]) > pgDirMajor(vers[j]) })
	dirs = append(dirs, vers...)
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			b.PGBin = d
			break
		}
	}
	if b.PGBin == "" {
		return b, &Error{What: "PostgreSQL server binaries (initdb, postgres) not found",
			Fix: "install them with: apt-get install postgresql (or set HOTLINE_PG_BINDIR)"}
	}
	major, err := binaryMajor(filepath.Join(b.PGBin, "postgres"))
	if err != nil {
		return b, &Error{What: "cannot tell the PostgreSQL version of " + b.PGBin, Err: err}
	}
	b.PGMajor = major
	r, err := exec.LookPath("redis-server")
	if err != nil {
		return b, &Error{What: "redis-server not found", Fix: "install it with: apt-get install redis-server"}
	}
	b.Redis = r
	return b, nil
}

func pgDirMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

func binaryMajor(postgres string) (int, error) {
	out, err := exec.Command(postgres, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unexpected version output %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

// Start brings both servers up and returns once they answer.
func Start(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	bins, err := FindBinaries(opts.PGBinDir)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, &Error{What: "bad data directory " + opts.Dir, Err: err}
	}
	opts.Dir = dir
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	rt := &Runtime{opts: opts}
	pgdata := filepath.Join(dir, "postgres")

	// Leftovers of a run that was killed before it could stop its children.
	stopStale(filepath.Join(pgdata, "postmaster.pid"), "postgres", opts.Logger)
	stopStale(filepath.Join(dir, "redis.pid"), "redis-server", opts.Logger)

	for _, p := range []struct {
		port int
		what string
		env  string
	}{{opts.PGPort, "PostgreSQL", "HOTLINE_PG_PORT"}, {opts.RedisPort, "Redis", "HOTLINE_REDIS_PORT"}} {
		if err := portFree(p.port); err != nil {
			return nil, &Error{What: fmt.Sprintf("port %d on 127.0.0.1 (for %s) is already in use", p.port, p.what),
				Fix: fmt.Sprintf("stop what uses it or choose another port with %s", p.env)}
		}
	}

	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initCluster(ctx, bins, pgdata, cred, opts.Logger); err != nil {
			return nil, err
		}
		rt.FirstRun = true
	} else if err != nil {
		return nil, &Error{What: "cannot read data directory " + pgdata, Fix: "check its permissions", Err: err}
	}
	if err := checkClusterVersion(pgdata, bins.PGMajor); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := chownTree(pgdata, cred); err != nil {
			return nil, &Error{What: "cannot hand " + pgdata + " to the postgres user", Err: err}
		}
	}
	if err := rt.startPostgres(ctx, bins, pgdata, cred); err != nil {
		return nil, err
	}
	if err := rt.startRedis(ctx, bins); err != nil {
		rt.Stop()
		return nil, err
	}
	return rt, nil
}

func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &Error{What: "cannot create data directory " + dir, Fix: "choose a writable directory with HOTLINE_DATA_DIR", Err: err}
	}
	probe := filepath.Join(dir, ".write-probe")
	f, err := os.Create(probe)
	if err != nil {
		return &Error{What: "data directory " + dir + " is not writable", Fix: "fix its permissions or choose another with HOTLINE_DATA_DIR", Err: err}
	}
	f.Close()
	os.Remove(probe)
	if _, err := os.ReadDir(dir); err != nil {
		return &Error{What: "data directory " + dir + " is not readable", Fix: "fix its permissions or choose another with HOTLINE_DATA_DIR", Err: err}
	}
	return nil
}

// pgCredential returns the identity postgres must run under: initdb and postgres refuse to run as root, so as
// root they run as the `postgres` system user that Debian's package creates.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &Error{What: "running as root, but there is no postgres system user to run PostgreSQL as",
			Fix: "install the postgresql package (it creates the user) or run hotline as a normal user"}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// reachable checks that the postgres user can enter every directory above dir.
func reachable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %v)", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

func initCluster(ctx context.Context, bins Binaries, pgdata string, cred *syscall.Credential, log *slog.Logger) error {
	tmp := pgdata + ".init"
	os.RemoveAll(tmp)
	if cred != nil {
		if err := reachable(tmp); err != nil {
			return &Error{What: "the postgres user cannot reach the data directory",
				Fix: "choose a data directory whose parents are searchable by others (HOTLINE_DATA_DIR)", Err: err}
		}
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return &Error{What: "cannot create " + tmp, Err: err}
	}
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(tmp)
			return &Error{What: "cannot hand " + tmp + " to the postgres user", Err: err}
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(bins.PGBin, "initdb"),
		"-D", tmp, "-U", "hotline", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		return &Error{What: "initdb failed in " + tmp, Err: fmt.Errorf("%w: %s", err, lastLines(string(out), 5))}
	}
	// Only a complete cluster gets the real name: a failed first run leaves nothing half made.
	if err := os.Rename(tmp, pgdata); err != nil {
		os.RemoveAll(tmp)
		return &Error{What: "cannot move the new cluster into place", Err: err}
	}
	log.Info("initialised PostgreSQL cluster", "dir", pgdata, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func checkClusterVersion(pgdata string, major int) error {
	b, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION"))
	if err != nil {
		return &Error{What: "cannot read " + filepath.Join(pgdata, "PG_VERSION"), Err: err}
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if v != major {
		return &Error{What: fmt.Sprintf("data directory %s holds a PostgreSQL %d cluster but the installed server is PostgreSQL %d", pgdata, v, major),
			Fix: fmt.Sprintf("install PostgreSQL %d (HOTLINE_PG_BINDIR), upgrade the cluster with pg_upgrade, or use another HOTLINE_DATA_DIR", v)}
	}
	return nil
}

func chownTree(root string, cred *syscall.Credential) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

func (rt *Runtime) startPostgres(ctx context.Context, bins Binaries, pgdata string, cred *syscall.Credential) error {
	args := []string{"-D", pgdata, "-p", strconv.Itoa(rt.opts.PGPort),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + pgdata,
		"-c", "max_connections=300",
		"-c", "logging_collector=off",
	}
	if !rt.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logf, err := os.OpenFile(filepath.Join(rt.opts.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return &Error{What: "cannot open the PostgreSQL log", Err: err}
	}
	cmd := exec.Command(filepath.Join(bins.PGBin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	// SIGINT is PostgreSQL's fast shutdown: if hotline dies, so does its database, cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return &Error{What: "cannot start postgres", Err: err}
	}
	rt.pg = cmd
	rt.pgDone = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(rt.pgDone) }()
	rt.DatabaseURL = fmt.Sprintf("postgres://hotline@127.0.0.1:%d/hotline?sslmode=disable", rt.opts.PGPort)
	if err := waitPort(ctx, rt.opts.PGPort, rt.pgDone, 60*time.Second); err != nil {
		rt.stopPG()
		return &Error{What: "PostgreSQL did not start", Fix: "see " + filepath.Join(rt.opts.Dir, "postgres.log"),
			Err: fmt.Errorf("%w: %s", err, tailFile(filepath.Join(rt.opts.Dir, "postgres.log"), 3))}
	}
	if err := rt.ensureDatabase(ctx); err != nil {
		rt.stopPG()
		return err
	}
	rt.opts.Logger.Info("postgres started", "port", rt.opts.PGPort, "pid", cmd.Process.Pid)
	return nil
}

// ensureDatabase creates the hotline database once; it waits for the server to accept connections first
// (the port opens a moment before start-up recovery ends).
func (rt *Runtime) ensureDatabase(ctx context.Context) error {
	url := fmt.Sprintf("postgres://hotline@127.0.0.1:%d/postgres?sslmode=disable", rt.opts.PGPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			conn, err := pgx.Connect(cctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(cctx)
			var n int
			if err := conn.QueryRow(cctx, "SELECT count(*) FROM pg_database WHERE datname = 'hotline'").Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				_, err = conn.Exec(cctx, "CREATE DATABASE hotline")
			}
			return err
		}()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return &Error{What: "PostgreSQL does not accept connections", Err: err}
		}
		select {
		case <-rt.pgDone:
			return &Error{What: "PostgreSQL exited during start-up", Fix: "see " + filepath.Join(rt.opts.Dir, "postgres.log")}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (rt *Runtime) startRedis(ctx context.Context, bins Binaries) error {
	rdir := filepath.Join(rt.opts.Dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return &Error{What: "cannot create " + rdir, Err: err}
	}
	fsync := "no"
	if rt.opts.Durable {
		fsync = "everysec"
	}
	args := []string{"--port", strconv.Itoa(rt.opts.RedisPort), "--bind", "127.0.0.1", "--dir", rdir,
		"--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--daemonize", "no",
		"--protected-mode", "yes", "--logfile", "", "--unixsocket", ""}
	logf, err := os.OpenFile(filepath.Join(rt.opts.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return &Error{What: "cannot open the Redis log", Err: err}
	}
	cmd := exec.Command(bins.Redis, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = rdir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return &Error{What: "cannot start redis-server", Err: err}
	}
	rt.redis = cmd
	rt.redisDone = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(rt.redisDone) }()
	os.WriteFile(filepath.Join(rt.opts.Dir, "redis.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	rt.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", rt.opts.RedisPort)
	if err := waitPort(ctx, rt.opts.RedisPort, rt.redisDone, 30*time.Second); err != nil {
		return &Error{What: "Redis did not start", Fix: "see " + filepath.Join(rt.opts.Dir, "redis.log"),
			Err: fmt.Errorf("%w: %s", err, tailFile(filepath.Join(rt.opts.Dir, "redis.log"), 3))}
	}
	// The port opens before an AOF is replayed; until then Redis answers LOADING to every command.
	if err := waitRedisLoaded(ctx, rt.RedisURL, rt.redisDone, 5*time.Minute); err != nil {
		return &Error{What: "Redis did not finish loading its data", Fix: "see " + filepath.Join(rt.opts.Dir, "redis.log"), Err: err}
	}
	rt.opts.Logger.Info("redis started", "port", rt.opts.RedisPort, "pid", cmd.Process.Pid)
	return nil
}

func waitRedisLoaded(ctx context.Context, url string, exited <-chan struct{}, limit time.Duration) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	deadline := time.Now().Add(limit)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts both servers down and waits for them; it is safe to call more than once.
func (rt *Runtime) Stop() {
	if rt.redis != nil {
		rt.redis.Process.Signal(syscall.SIGTERM) // Redis flushes its AOF on SIGTERM
		waitOrKill(rt.redis, rt.redisDone, 10*time.Second)
		os.Remove(filepath.Join(rt.opts.Dir, "redis.pid"))
	}
	rt.stopPG()
}

func (rt *Runtime) stopPG() {
	if rt.pg == nil {
		return
	}
	rt.pg.Process.Signal(syscall.SIGINT)
	waitOrKill(rt.pg, rt.pgDone, 30*time.Second)
}

// Pids returns the process ids of the running servers (for tests that check nothing is left behind).
func (rt *Runtime) Pids() []int {
	var p []int
	for _, c := range []*exec.Cmd{rt.pg, rt.redis} {
		if c != nil && c.Process != nil {
			p = append(p, c.Process.Pid)
		}
	}
	return p
}

// Done is closed when either server has exited.
func (rt *Runtime) Done() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-rt.pgDone:
		case <-rt.redisDone:
		}
		close(ch)
	}()
	return ch
}

func waitOrKill(cmd *exec.Cmd, done chan struct{}, d time.Duration) {
	select {
	case <-done:
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func waitPort(ctx context.Context, port int, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after %v", port, limit)
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

// stopStale ends a server left running by an earlier hotline that was killed, if the pid file names a live
// process of that program; a pid file naming a dead or foreign process is just removed.
func stopStale(pidfile, program string, log *slog.Logger) {
	f, err := os.Open(pidfile)
	if err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Scan()
	f.Close()
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || pid <= 1 {
		os.Remove(pidfile)
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), program) {
		log.Info("removing stale pid file", "file", pidfile, "pid", pid)
		os.Remove(pidfile)
		return
	}
	log.Warn("stopping a server left running by an earlier run", "program", program, "pid", pid)
	sig := syscall.SIGTERM
	if program == "postgres" {
		sig = syscall.SIGINT
	}
	syscall.Kill(pid, sig)
	for i := 0; i < 300; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			os.Remove(pidfile)
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return // a zombie: dead, only its parent's bookkeeping is left
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	os.Remove(pidfile)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func tailFile(p string, n int) string {
	b, _ := os.ReadFile(p)
	return lastLines(string(b), n)
}

// RestartPostgres stops PostgreSQL with sig (SIGQUIT: immediate shutdown, crash recovery on start — as if the
// machine failed; SIGINT: fast shutdown) and starts it again on the same data and port. For fault tests.
func (rt *Runtime) RestartPostgres(ctx context.Context, sig syscall.Signal, down time.Duration) error {
	bins, err := FindBinaries(rt.opts.PGBinDir)
	if err != nil {
		return err
	}
	cred, err := pgCredential()
	if err != nil {
		return err
	}
	rt.pg.Process.Signal(sig)
	waitOrKill(rt.pg, rt.pgDone, 30*time.Second)
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return rt.startPostgres(ctx, bins, filepath.Join(rt.opts.Dir, "postgres"), cred)
}

// RestartRedis stops Redis with sig (SIGKILL: no final AOF flush) and starts it again on the same data and port.
// For fault tests.
func (rt *Runtime) RestartRedis(ctx context.Context, sig syscall.Signal, down time.Duration) error {
	bins, err := FindBinaries(rt.opts.PGBinDir)
	if err != nil {
		return err
	}
	rt.redis.Process.Signal(sig)
	waitOrKill(rt.redis, rt.redisDone, 10*time.Second)
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return rt.startRedis(ctx, bins)
}

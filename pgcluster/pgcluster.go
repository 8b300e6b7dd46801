// Package pgcluster runs a throwaway private PostgreSQL server, for demos and
// tests, when no database URL is configured.
//
// The package owns the whole life of that server: it finds the PostgreSQL
// server programs already installed on the machine, initialises a fresh data
// directory inside a new temporary directory, starts postgres on a free
// loopback port with durability turned off for speed, and on Stop shuts it
// down and deletes every file it made. When the calling process runs as root,
// the server runs as the "postgres" OS user (or "nobody"), because
// PostgreSQL refuses to run as root.
//
// It does not install PostgreSQL (see ErrNoBinaries), create databases,
// roles or schemas beyond what initdb makes (a "postgres" superuser with
// trust authentication and a "postgres" database), or pool connections:
// callers connect to URL with the driver of their choice. Nothing it stores
// is meant to outlive the cluster. It works on Unix-like systems only.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Timings and limits of starting and stopping a server.
const (
	readyTimeout    = 30 * time.Second      // how long postgres may take to accept connections
	pollInterval    = 50 * time.Millisecond // pause between connection attempts while starting
	connectTimeout  = 2 * time.Second       // limit of one connection attempt while starting
	stopTimeout     = 10 * time.Second      // how long a fast shutdown may take before SIGKILL
	maxPortAttempts = 5                     // ports to try when the chosen one turns out taken
	logTailBytes    = 4096                  // how much of a program's output to quote in an error
)

// errPortInUse reports that postgres could not listen on its port because
// something else took it after it was chosen.
var errPortInUse = errors.New("pgcluster: port already in use")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Logger receives progress messages. Nil discards them.
	Logger *slog.Logger

	// BinDir, if set, is the only directory searched for initdb and
	// postgres, instead of PATH and /usr/lib/postgresql/*/bin.
	BinDir string

	// Password, if set, is the postgres superuser's password, and TCP
	// connections must give it (scram-sha-256). Empty means trust auth.
	Password string

	// Settings are server settings (postgresql.conf parameters) on top of
	// the defaults, e.g. {"wal_level": "logical"}.
	Settings map[string]string

	// NextXID, if set, is the server's next transaction id (pg_resetwal
	// -x), a 32-bit value: for testing what happens when transaction ids
	// wrap around. The databases initdb made are frozen first, so that
	// they stay visible.
	NextXID uint32
}

// Cluster is a running private PostgreSQL server started by Start. Its
// methods are safe for concurrent use.
type Cluster struct {
	logger *slog.Logger
	bins   binaries
	cred   *syscall.Credential // user to run as; nil means this process's own user
	dir    string              // temp dir holding data, sockets and the log
	name   string              // cluster_name setting, to recognise our server
	port   int
	proc   *process // the running postgres; set only while Start runs
	pass   string   // superuser password; empty for trust auth
	opts   Options

	stopOnce sync.Once
	stopErr  error
}

// process is one run of the postgres program.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been reaped
	err    error         // result of cmd.Wait; read only after exited is closed
}

// Start creates and starts a new private PostgreSQL server and returns once
// it accepts connections at URL. The server keeps running after ctx ends;
// the caller must call Stop to shut it down and delete its files.
//
// If the server programs cannot be found, the error wraps ErrNoBinaries and
// says how to install them.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	bins, err := findBinaries(opts.BinDir, os.Getenv("PATH"), versionedRoot)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "tote-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	c := &Cluster{
		logger: logger,
		bins:   bins,
		cred:   cred,
		dir:    dir,
		name:   filepath.Base(dir),
		pass:   opts.Password,
		opts:   opts,
	}
	if err := c.start(ctx); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			logger.Warn("clean up after failed start", "dir", dir, "error", stopErr)
		}
		return nil, err
	}
	return c, nil
}

// URL returns the connection URL of the server's "postgres" database as the
// "postgres" superuser, e.g.
// postgres://postgres@127.0.0.1:54321/postgres?sslmode=disable.
func (c *Cluster) URL() string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", c.port),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	if c.pass != "" {
		u.User = url.UserPassword("postgres", c.pass)
	}
	return u.String()
}

// DatabaseURL is URL with the database db instead of "postgres".
func (c *Cluster) DatabaseURL(db string) string {
	u, _ := url.Parse(c.URL())
	u.Path = "/" + db
	return u.String()
}

// Stop shuts the server down ("fast" mode: open sessions are disconnected,
// then SIGKILL if that takes more than 10 seconds) and deletes its temporary
// directory. Calling it again does nothing and returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.stop()
	})
	return c.stopErr
}

func (c *Cluster) stop() error {
	var errs []error
	if c.proc != nil {
		if err := c.proc.shutdown(); err != nil {
			errs = append(errs, err)
		} else {
			c.logger.Info("postgres stopped", "port", c.port)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("pgcluster: remove %s: %w", c.dir, err))
	}
	return errors.Join(errs...)
}

// start prepares the temp dir, runs initdb and starts postgres, trying
// another port if the chosen one gets taken before postgres binds it.
func (c *Cluster) start(ctx context.Context) error {
	begin := time.Now()

	if err := os.Mkdir(c.sockDir(), 0o700); err != nil {
		return fmt.Errorf("pgcluster: create socket dir: %w", err)
	}
	if c.cred != nil {
		if err := chownTree(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return err
		}
	}

	if err := c.initdb(ctx); err != nil {
		return err
	}
	if c.opts.NextXID != 0 {
		if err := c.resetXID(ctx); err != nil {
			return err
		}
	}
	if err := c.run(ctx, begin); err != nil {
		return err
	}
	return nil
}

// run starts postgres on a free port, trying another if the chosen one
// gets taken before postgres binds it.
func (c *Cluster) run(ctx context.Context, begin time.Time) error {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port

		if err := c.launch(); err != nil {
			return err
		}
		err = c.waitReady(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == maxPortAttempts {
			return err
		}
		c.logger.Warn("postgres port taken, retrying with another", "port", port, "attempt", attempt)
	}

	c.logger.Info("postgres started",
		"url", c.URL(),
		"dir", c.dir,
		"pid", c.proc.cmd.Process.Pid,
		"elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// initdb creates the data directory.
func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{"-D", c.dataDir(), "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}
	if c.pass == "" {
		args = append(args, "--auth=trust")
	} else {
		pwfile := filepath.Join(c.dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(c.pass+"\n"), 0o600); err != nil {
			return fmt.Errorf("pgcluster: write password file: %w", err)
		}
		if c.cred != nil {
			if err := os.Chown(pwfile, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgcluster: chown password file: %w", err)
			}
		}
		defer os.Remove(pwfile)
		args = append(args, "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile)
	}
	cmd := exec.CommandContext(ctx, c.bins.initdb, args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out

	c.logger.Debug("running initdb", "path", c.bins.initdb, "dir", c.dataDir())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w; output:\n%s", err, tail(out.Bytes()))
	}
	return nil
}

// launch starts postgres on c.port in its own process group, logging to
// postgres.log, and sets c.proc.
func (c *Cluster) launch() error {
	logFile, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgcluster: create log file: %w", err)
	}
	// The child has its own copy of the descriptor once started.
	defer logFile.Close()

	args := []string{
		"-D", c.dataDir(),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + quoteDir(c.sockDir()),
		"-c", "cluster_name=" + c.name,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	}
	for _, k := range slices.Sorted(maps.Keys(c.opts.Settings)) {
		args = append(args, "-c", k+"="+c.opts.Settings[k])
	}
	cmd := exec.Command(c.bins.postgres, args...)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A process group of its own keeps a terminal's Ctrl-C from reaching the
	// server directly: this process gets it and decides how to stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	setParentDeathSignal(cmd.SysProcAttr)

	c.logger.Debug("starting postgres", "path", c.bins.postgres, "port", c.port)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	c.proc = p
	return nil
}

// waitReady waits until the server accepts connections, it exits, ctx ends
// or readyTimeout passes. If postgres exited because its port was taken, the
// error wraps errPortInUse.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, readyTimeout,
		fmt.Errorf("postgres did not accept connections within %s", readyTimeout))
	defer cancel()

	for {
		err := c.ping(ctx)
		if err == nil {
			return nil
		}

		select {
		case <-c.proc.exited:
			return c.exitError()
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: wait for postgres: %w (last attempt: %v); log:\n%s",
				context.Cause(ctx), err, c.logTail())
		case <-time.After(pollInterval):
		}
	}
}

// ping connects to the server once and checks it is ours, not another
// server that took the port before postgres could bind it.
func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()

	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var name string
	if err := conn.QueryRow(ctx, "SHOW cluster_name").Scan(&name); err != nil {
		return err
	}
	if name != c.name {
		return fmt.Errorf("server on port %d is %q, not ours (%q)", c.port, name, c.name)
	}
	return nil
}

// exitError describes why postgres exited during startup.
func (c *Cluster) exitError() error {
	log := c.logTail()
	if strings.Contains(log, "could not bind") || strings.Contains(log, "could not create any TCP/IP sockets") {
		return fmt.Errorf("%w: %d; log:\n%s", errPortInUse, c.port, log)
	}
	return fmt.Errorf("pgcluster: postgres exited during startup (%v); log:\n%s", c.proc.err, log)
}

// shutdown asks postgres for a fast shutdown (SIGINT), waits up to
// stopTimeout, then kills its process group.
func (p *process) shutdown() error {
	select {
	case <-p.exited:
		return nil
	default:
	}

	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgcluster: signal postgres: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
	}

	// Backends are in process groups of their own and exit by themselves
	// once they notice the postmaster is gone.
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgcluster: kill postgres: %w", err)
	}
	<-p.exited
	return fmt.Errorf("pgcluster: postgres did not shut down within %s and was killed", stopTimeout)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) sockDir() string { return filepath.Join(c.dir, "sock") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "postgres.log") }

// logTail returns the end of the server log.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", c.logPath(), err)
	}
	return tail(b)
}

// serverCredential returns the OS user to run initdb and postgres as: nil
// (this process's own user) unless running as root, which PostgreSQL
// refuses; then "postgres", or "nobody" if there is no such user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: user %s: uid %q: %w", name, u.Uid, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: user %s: gid %q: %w", name, u.Gid, err)
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgcluster: running as root, which PostgreSQL refuses, " +
		"and neither a postgres nor a nobody OS user exists to run it as")
}

// chownTree gives dir and everything under it to uid:gid.
func chownTree(dir string, uid, gid int) error {
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("pgcluster: chown %s: %w", dir, err)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// quoteDir quotes a directory for a list setting such as
// unix_socket_directories, so that spaces and commas in it are kept.
func quoteDir(dir string) string {
	return `"` + strings.ReplaceAll(dir, `"`, `""`) + `"`
}

// tail returns about the last logTailBytes of b, starting at a line.
func tail(b []byte) string {
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

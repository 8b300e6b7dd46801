package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// exec runs one of the installation's programs as the server's user.
func (c *Cluster) exec(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, c.bins.tool(name), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgcluster: %s: %w; output:\n%s", name, err, tail(out.Bytes()))
	}
	return nil
}

// resetXID moves the new cluster's next transaction id to opts.NextXID:
// it freezes what initdb made (rows from before the reset would otherwise
// look as if they came from the future), stops the server, runs
// pg_resetwal, and creates the commit log segment the new id falls in.
func (c *Cluster) resetXID(ctx context.Context) error {
	if err := c.run(ctx, time.Now()); err != nil {
		return err
	}
	for _, db := range []string{"postgres", "template1"} {
		conn, err := pgx.Connect(ctx, c.DatabaseURL(db))
		if err != nil {
			return fmt.Errorf("pgcluster: freeze %s: %w", db, err)
		}
		_, err = conn.Exec(ctx, "VACUUM FREEZE")
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("pgcluster: freeze %s: %w", db, err)
		}
	}
	if err := c.proc.shutdown(); err != nil {
		return err
	}
	c.proc = nil
	x := fmt.Sprint(c.opts.NextXID)
	if err := c.exec(ctx, "pg_resetwal", "-x", x, "-u", x, "-D", c.dataDir()); err != nil {
		return err
	}
	// One pg_xact segment covers 32 pages of 32768 transactions each.
	seg := filepath.Join(c.dataDir(), "pg_xact", fmt.Sprintf("%04X", c.opts.NextXID/(32*32768)))
	if err := os.WriteFile(seg, make([]byte, 32*8192), 0o600); err != nil {
		return fmt.Errorf("pgcluster: create commit log segment: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(seg, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: chown commit log segment: %w", err)
		}
	}
	return nil
}

// StartStandby starts a hot standby of c: a new private server made with
// pg_basebackup -R, streaming c's WAL and replaying it. The caller must
// Stop it (before or after c).
func (c *Cluster) StartStandby(ctx context.Context) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "tote-pg-standby-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	s := &Cluster{logger: c.logger, bins: c.bins, cred: c.cred, dir: dir, name: filepath.Base(dir), pass: c.pass,
		opts: Options{Settings: map[string]string{"hot_standby": "on"}}}
	begin := time.Now()
	fail := func(err error) (*Cluster, error) {
		return nil, errors.Join(err, s.Stop())
	}
	if err := os.Mkdir(s.sockDir(), 0o700); err != nil {
		return fail(fmt.Errorf("pgcluster: create socket dir: %w", err))
	}
	if c.cred != nil {
		if err := chownTree(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fail(err)
		}
	}
	if c.pass != "" {
		return fail(errors.New("pgcluster: a standby of a server with a password is not supported"))
	}
	if err := s.exec(ctx, "pg_basebackup", "-D", s.dataDir(), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
		"-h", "127.0.0.1", "-p", fmt.Sprint(c.port), "-U", "postgres"); err != nil {
		return fail(err)
	}
	if err := s.run(ctx, begin); err != nil {
		return fail(err)
	}
	return s, nil
}

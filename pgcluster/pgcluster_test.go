package pgcluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStart(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	c, err := Start(ctx, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	wantPrefix := "postgres://postgres@127.0.0.1:"
	if url := c.URL(); !strings.HasPrefix(url, wantPrefix) || !strings.HasSuffix(url, "/postgres?sslmode=disable") {
		t.Fatalf("URL() = %q", url)
	}

	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	} else if one != 1 {
		t.Fatalf("SELECT 1 = %d", one)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	} else if fsync != "off" {
		t.Fatalf("fsync = %q, want off", fsync)
	}
	// Leave the session open: a fast shutdown must disconnect it.

	if _, err := os.Stat(c.dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	_ = conn.Close(ctx)

	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir %s still there after Stop (stat: %v)", c.dir, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Fatalf("%s still accepts connections after Stop", addr)
	}
}

func TestStart_CanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	c, err := Start(ctx, Options{})
	if err == nil {
		_ = c.Stop()
		t.Fatal("Start with a canceled context succeeded")
	}
}

func TestStart_BinDirWithoutBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
}

func TestFindBinaries_None(t *testing.T) {
	root := filepath.Join(t.TempDir(), "no-such-root")

	_, err := findBinaries("", "", root)
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{
		"pgcluster: no PostgreSQL server binaries (initdb, postgres) on PATH or under " + root + "/*/bin",
		"apt-get install -y postgresql",
		"dnf install postgresql-server",
		"brew install postgresql",
		"or set a database URL instead",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestFindBinaries_HighestVersion(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "9.6", "16", "10", "latest"} {
		fakeBinaries(t, filepath.Join(root, v, "bin"))
	}
	// A newer version without postgres does not count.
	fakeProgram(t, filepath.Join(root, "17", "bin", "initdb"))

	b, err := findBinaries("", "", root)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "16", "bin", "initdb"); b.initdb != want {
		t.Errorf("initdb = %s, want %s", b.initdb, want)
	}
	if want := filepath.Join(root, "16", "bin", "postgres"); b.postgres != want {
		t.Errorf("postgres = %s, want %s", b.postgres, want)
	}
}

func TestFindBinaries_PATHFirst(t *testing.T) {
	root := t.TempDir()
	fakeBinaries(t, filepath.Join(root, "16", "bin"))
	onlyInitdb := t.TempDir()
	fakeProgram(t, filepath.Join(onlyInitdb, "initdb"))
	both := t.TempDir()
	fakeBinaries(t, both)

	pathList := strings.Join([]string{"relative", onlyInitdb, both}, string(os.PathListSeparator))
	b, err := findBinaries("", pathList, root)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(both, "initdb"); b.initdb != want {
		t.Errorf("initdb = %s, want %s", b.initdb, want)
	}
}

func TestFindBinaries_BinDir(t *testing.T) {
	root := t.TempDir()
	fakeBinaries(t, filepath.Join(root, "16", "bin"))
	dir := t.TempDir()
	fakeBinaries(t, dir)

	b, err := findBinaries(dir, "", root)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "postgres"); b.postgres != want {
		t.Errorf("postgres = %s, want %s", b.postgres, want)
	}

	// A BinDir without the programs is an error, not a reason to look elsewhere.
	if _, err := findBinaries(t.TempDir(), "", root); !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
}

// fakeBinaries creates executable initdb and postgres files in dir.
func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	fakeProgram(t, filepath.Join(dir, "initdb"))
	fakeProgram(t, filepath.Join(dir, "postgres"))
}

// fakeProgram creates an executable file at path.
func fakeProgram(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// A standby replays what the primary commits, and refuses writes.
func TestStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	p, err := pgx.Connect(ctx, primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if _, err := p.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	s, err := pgx.Connect(ctx, standby.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var inRecovery bool
	if err := s.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("standby in recovery: %v (%v)", inRecovery, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var x int
		err := s.QueryRow(ctx, "SELECT x FROM t").Scan(&x)
		if err == nil && x == 42 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not replay the primary's row: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Exec(ctx, "INSERT INTO t VALUES (1)"); err == nil {
		t.Error("the standby took a write")
	}
}

// NextXID sets the transaction ids a new cluster starts from, and the
// databases initdb made stay usable.
func TestNextXID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const next = 1<<32 - 1000
	c, err := Start(ctx, Options{NextXID: next})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var xid int64
	if err := conn.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	if xid < next || xid > next+100 {
		t.Errorf("txid_current() = %d, want just past %d", xid, next)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE after_reset"); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"archive/zip"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain makes this test binary lambdazip itself when LAMBDAZIP_TEST_BE=1,
// so that a test can see its exit status and standard error.
func TestMain(m *testing.M) {
	if os.Getenv("LAMBDAZIP_TEST_BE") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lambdazip runs the command line as a process of its own and returns its
// exit status and standard error.
func lambdazip(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LAMBDAZIP_TEST_BE=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// main, run in this process as `lambdazip -o OUT BOOTSTRAP`, writes the zip.
func TestMainWritesTheZip(t *testing.T) {
	dir := t.TempDir()
	bootstrap, out := filepath.Join(dir, "bootstrap"), filepath.Join(dir, "out.zip")
	if err := os.WriteFile(bootstrap, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	args, cl := os.Args, flag.CommandLine
	t.Cleanup(func() { os.Args, flag.CommandLine = args, cl })
	os.Args = []string{"lambdazip", "-o", out, bootstrap}
	flag.CommandLine = flag.NewFlagSet("lambdazip", flag.ExitOnError)
	main()

	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("zip holds %v", zr.File)
	}
	r, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("bootstrap in the zip: %q (%v)", b, err)
	}
}

// A command line without -o or the bootstrap exits 2 with the usage; a
// bootstrap that is not there exits 1 naming it, and writes no zip.
func TestMainBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.zip")
	for _, args := range [][]string{{}, {"-o", out}, {filepath.Join(dir, "bootstrap")}} {
		if code, errOut := lambdazip(t, args...); code != 2 || !strings.Contains(errOut, "usage: lambdazip -o OUT.zip BOOTSTRAP") {
			t.Errorf("lambdazip %q: exit %d, want 2: %s", args, code, errOut)
		}
	}
	missing := filepath.Join(dir, "missing")
	if code, errOut := lambdazip(t, "-o", out, missing); code != 1 || !strings.Contains(errOut, "lambdazip: open "+missing) {
		t.Errorf("lambdazip with a missing bootstrap: exit %d, want 1: %s", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a zip was written for a missing bootstrap: %v", err)
	}
}

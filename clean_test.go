package tote_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// make clean removes the build outputs and the default lake, and never a
// tracked file: it once removed the lake package's source, which shared its
// folder with the default lake. The test runs it in a copy of the tracked
// files.
func TestMakeCleanKeepsTrackedFiles(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git work tree: %v", err)
	}
	dir := t.TempDir()
	var tracked []string
	for _, name := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
		path := string(name)
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tracked = append(tracked, path)
	}
	// What a build and a demo leave behind.
	for _, f := range []string{"bin/tote", "data/lake/manifests/raw/000000000001.json", "data/lake/raw/staff/x.parquet"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("make", "clean")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make clean: %v\n%s", err, out)
	}
	for _, path := range tracked {
		if _, err := os.Stat(filepath.Join(dir, path)); err != nil {
			t.Errorf("make clean removed tracked file %s", path)
		}
	}
	for _, gone := range []string{"bin", "data"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("make clean left %s/ (%v)", gone, err)
		}
	}
}

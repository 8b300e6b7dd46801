// Package tooltest finds, for the tests that run one, the tools that
// `make tools` builds into bin/tools at the versions pinned in
// tools/go.mod (actionlint, the Lambda Runtime Interface Emulator): go test
// builds nothing and downloads nothing itself. Where a tool is not built,
// the test is skipped, saying to run make tools; in CI (CI set), which
// always builds them, it fails instead.
package tooltest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is where make tools puts the tools, relative to the repository.
const Dir = "bin/tools"

// Path returns the path of tool name in bin/tools.
func Path(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(Dir), name)
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0 {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not built in CI (%v): .ci/run runs make tools first", path, err)
	}
	t.Skipf("%s is not built: run make tools (it builds the tools pinned in tools/go.mod into %s)", name, Dir)
	return ""
}

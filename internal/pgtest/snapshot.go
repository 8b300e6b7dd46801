package pgtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvSnapshotDir overrides where SnapshotDir looks for the snapshot.
const EnvSnapshotDir = "TOTE_SNAPSHOT_DIR"

// SnapshotDir returns the folder holding the snapshot of the real totesys
// tables (one <table>.parquet each), which lives beside the repository in
// shared/data/totesys and is never copied into it. A test that needs it is
// skipped when it is absent, except in CI (CI=true), which always has it.
func SnapshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvSnapshotDir)
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir = filepath.Join(root, "..", "shared", "data", "totesys", "aidan-mooney-parquet-2024-11-15")
	}
	if _, err := os.Stat(filepath.Join(dir, "sales_order.parquet")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the totesys snapshot is missing in CI: %v (set %s)", err, EnvSnapshotDir)
		}
		t.Skipf("no totesys snapshot at %s (set %s to run this test)", dir, EnvSnapshotDir)
	}
	return dir
}

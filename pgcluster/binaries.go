package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned, wrapped with installation advice, by Start when
// the PostgreSQL server programs (initdb and postgres) cannot be found.
// Callers may test for it with errors.Is and fall back to asking for a
// database URL.
var ErrNoBinaries = errors.New("pgcluster: no PostgreSQL server binaries")

// installHint tells a person how to get the server programs, or how to do
// without them.
const installHint = "install them with `apt-get install -y postgresql` (Debian/Ubuntu), " +
	"`dnf install postgresql-server` (Fedora) or `brew install postgresql` (macOS), " +
	"or set a database URL instead"

// versionedRoot is where Debian and Ubuntu install the server programs, one
// directory per major version (e.g. /usr/lib/postgresql/15/bin). They are
// not put on PATH there.
const versionedRoot = "/usr/lib/postgresql"

// binaries holds the paths of the server programs a cluster runs.
type binaries struct {
	initdb   string
	postgres string
	dir      string // where they are, and the other server programs of their version
}

// tool is the path of another program of the same installation, such as
// pg_resetwal or pg_basebackup.
func (b binaries) tool(name string) string { return filepath.Join(b.dir, name) }

// findBinaries locates initdb and postgres. If binDir is set, only that
// directory is searched. Otherwise the directories of pathList (a PATH value)
// are searched in order, then root/*/bin from the highest major version down.
// Both programs must be in the same directory so that their versions match.
func findBinaries(binDir, pathList, root string) (binaries, error) {
	if binDir != "" {
		if b, ok := binariesIn(binDir); ok {
			return b, nil
		}
		return binaries{}, fmt.Errorf("%w (initdb, postgres) in %s; %s", ErrNoBinaries, binDir, installHint)
	}

	for _, dir := range filepath.SplitList(pathList) {
		// Like exec.LookPath, ignore relative PATH entries such as ".".
		if !filepath.IsAbs(dir) {
			continue
		}
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}

	for _, dir := range versionedDirs(root) {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}

	return binaries{}, fmt.Errorf("%w (initdb, postgres) on PATH or under %s; %s",
		ErrNoBinaries, filepath.Join(root, "*", "bin"), installHint)
}

// versionedDirs returns the root/VERSION/bin directories, highest version
// first, comparing versions numerically (16 sorts above 9, 9.6 above 9.5).
// Directories whose name is not a version are left out.
func versionedDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}

	type candidate struct {
		dir     string
		version []int
	}
	var candidates []candidate
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		candidates = append(candidates, candidate{dir: filepath.Join(root, e.Name(), "bin"), version: v})
	}
	slices.SortFunc(candidates, func(a, b candidate) int {
		return slices.Compare(b.version, a.version)
	})

	dirs := make([]string, len(candidates))
	for i, c := range candidates {
		dirs[i] = c.dir
	}
	return dirs
}

// parseVersion parses a dotted version such as "16" or "9.6".
func parseVersion(s string) ([]int, bool) {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

// binariesIn reports whether dir holds both initdb and postgres.
func binariesIn(dir string) (binaries, bool) {
	b := binaries{
		initdb:   filepath.Join(dir, "initdb"),
		postgres: filepath.Join(dir, "postgres"),
		dir:      dir,
	}
	// Links on PATH (/usr/local/bin/initdb) lead to the installation's
	// directory, where the other programs are.
	if real, err := filepath.EvalSymlinks(b.initdb); err == nil {
		b.dir = filepath.Dir(real)
	}
	return b, isExecutable(b.initdb) && isExecutable(b.postgres)
}

// isExecutable reports whether path, after following symlinks, is a regular
// file with an execute bit set.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two test binaries' profiles concatenated (as go test -coverpkg writes
// them): a.go's first block ran in one binary only, b.go's block in none.
const profile = `mode: atomic
example.com/m/a/a.go:3.10,5.2 3 0
example.com/m/a/a.go:6.10,8.2 1 4
example.com/m/b/b.go:3.10,5.2 4 0
example.com/m/c.go:1.1,2.2 2 1
example.com/m/a/a.go:3.10,5.2 3 2
example.com/m/a/a.go:6.10,8.2 1 0
example.com/m/b/b.go:3.10,5.2 4 0
`

func writeProfile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cover.out")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runFloor(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// rows returns the output's lines with runs of spaces made one.
func rows(out string) []string {
	var r []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		r = append(r, strings.Join(strings.Fields(l), " "))
	}
	return r
}

func TestTableMergesBlocksAcrossBinaries(t *testing.T) {
	p := writeProfile(t, profile)
	code, out, errOut := runFloor(t, "-profile", p, "-module", "example.com/m", "-floor", "50", "-target", "90")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// a: 4 of 4 (each block ran in one binary); b: 0 of 4; root: 2 of 2; total 6 of 10.
	got := rows(out)
	want := []string{
		"package statements covered cover",
		". 2 2 100.0%",
		"a 4 4 100.0%",
		"b 4 0 0.0% < target",
		"total 10 6 60.0% < target",
		"coverage 60.0% meets the floor of 50.0% (target 90.0%)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant (spacing aside):\n%s", out, strings.Join(want, "\n"))
	}
}

func TestUnderTheFloorFails(t *testing.T) {
	p := writeProfile(t, profile)
	code, out, errOut := runFloor(t, "-profile", p, "-module", "example.com/m", "-floor", "85")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "statement coverage 60.0% is under the floor of 85.0%") {
		t.Errorf("stderr: %q", errOut)
	}
	if !strings.Contains(out, "total") {
		t.Errorf("the table is printed even when failing:\n%s", out)
	}
}

func TestExcludeLeavesAPackageOut(t *testing.T) {
	p := writeProfile(t, profile)
	code, out, errOut := runFloor(t, "-profile", p, "-module", "example.com/m", "-exclude", "b", "-floor", "85")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := strings.Join(rows(out), "\n")
	if !strings.Contains(got, "\nb 4 0 0.0% (not counted)\n") || !strings.Contains(got, "\ntotal 6 6 100.0%\n") {
		t.Errorf("b not excluded:\n%s", out)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", "", "empty profile"},
		{"no statements", "mode: set\n", "holds no statements"},
		{"fields", "mode: set\nx.go:1.1,2.2 1\n", `line 2: want "file:pos stmts count"`},
		{"stmts", "mode: set\nx.go:1.1,2.2 one 1\n", `line 2: statement count "one"`},
		{"count", "mode: set\nx.go:1.1,2.2 1 -1\n", `line 2: run count "-1"`},
		{"file", "mode: set\n1.1,2.2 1 1\n", "line 2: no file"},
		{"mismatch", "mode: set\nm/x.go:1.1,2.2 1 1\nm/x.go:1.1,2.2 2 1\n", "has 2 statements here and 1 before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runFloor(t, "-profile", writeProfile(t, tc.text))
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.want)
			}
		})
	}
	code, _, errOut := runFloor(t, "-profile", filepath.Join(t.TempDir(), "missing.out"))
	if code != 1 || !strings.Contains(errOut, "run make cover") {
		t.Errorf("missing profile: exit %d, %q", code, errOut)
	}
	if code, _, _ := runFloor(t, "-floor", "x"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code, _, _ := runFloor(t, "extra"); code != 2 {
		t.Errorf("argument: exit %d, want 2", code)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
)

// seeded is a source seeded by `tote seed` with its defaults, made once;
// seededSource gives each test a copy.
var seeded = &pgtest.Template{Name: "source_tote_seed", Setup: func(ctx context.Context, url string) error {
	var stderr bytes.Buffer
	e := &env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := run(ctx, []string{"seed", "--source", url, "--log-level", "warn"}, e); code != 0 {
		return fmt.Errorf("tote seed: exit %d: %s", code, stderr.String())
	}
	return nil
}}

func seededSource(t *testing.T) string {
	t.Helper()
	return seeded.NewDB(t)
}

func TestExtractAndInspectTheLake(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	lakeURL := "file://" + t.TempDir()
	env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_LAKE_URL": lakeURL, "TOTE_LOG_LEVEL": "warn"}

	code, out, errOut := runTote(t, env, "extract", "--json")
	if code != 0 {
		t.Fatalf("extract: exit %d: %s", code, errOut)
	}
	var res extract.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Committed || res.Rows() < 50_000 {
		t.Fatalf("extract --json: %q (%v)", out, err)
	}

	code, out, _ = runTote(t, env, "extract")
	if code != 0 || !strings.Contains(out, "nothing new in the source, no batch committed") {
		t.Errorf("second extract: exit %d: %q", code, out)
	}

	code, out, _ = runTote(t, env, "lake", "ls")
	if code != 0 || !strings.Contains(out, res.Batch) || !strings.Contains(out, "1 committed raw batches") {
		t.Errorf("lake ls: exit %d:\n%s", code, out)
	}
	code, out, _ = runTote(t, env, "lake", "show", "1")
	var m lake.Manifest
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.ID != res.Batch || len(m.Files) != 11 {
		t.Errorf("lake show 1: exit %d:\n%s", code, out)
	}
	code, _, errOut = runTote(t, env, "lake", "show", "7")
	if code != 1 || !strings.Contains(errOut, "7") {
		t.Errorf("lake show 7: exit %d: %q", code, errOut)
	}
	code, out, _ = runTote(t, env, "lake", "clean", "--grace", "0s")
	if code != 0 || !strings.Contains(out, "removed 0 orphaned files") {
		t.Errorf("lake clean: exit %d: %q", code, out)
	}
}

func TestExtractBadInput(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	goodLake := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no source", []string{"extract", "--lake", "file://" + goodLake}, 2, []string{"no source database"}},
		{"unreachable source", []string{"extract", "--source", "postgres://postgres@" + closed + "/totesys", "--lake", "file://" + goodLake}, 1,
			[]string{"source database", closed, "server unreachable"}},
		{"unwritable lake", []string{"extract", "--source", source, "--lake", "file://" + file + "/lake"}, 1, []string{file}},
		{"unknown lake scheme", []string{"extract", "--source", source, "--lake", "ftp://example/lake"}, 1, []string{"ftp://example/lake"}},
		{"bad zone", []string{"lake", "ls", "--lake", "file://" + goodLake, "--zone", "cooked"}, 2, []string{`--zone "cooked"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runTote(t, map[string]string{"TOTE_LOG_LEVEL": "error"}, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d: %s", code, c.code, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(goodLake, "manifests", "raw"))
	if len(entries) != 0 {
		t.Errorf("a failed extraction committed %d manifests", len(entries))
	}
}

// Every command that takes a database URL reads it from NAME_FILE too.
func TestDatabaseURLFromFile(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	file := filepath.Join(t.TempDir(), "source-url")
	if err := os.WriteFile(file, []byte(source+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOTE_SOURCE_URL_FILE": file, "TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_LOG_LEVEL": "warn"}
	if code, out, errOut := runTote(t, env, "extract"); code != 0 || !strings.Contains(out, "row versions") {
		t.Fatalf("extract with TOTE_SOURCE_URL_FILE: exit %d: %s%s", code, out, errOut)
	}
	env["TOTE_SOURCE_URL_FILE"] = file + ".missing"
	code, _, errOut := runTote(t, env, "extract")
	if code != 1 || !strings.Contains(errOut, "TOTE_SOURCE_URL_FILE") || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing secret file: exit %d: %q", code, errOut)
	}
}

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
	"time"

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

// runEnv is the environment of a tote run over a seeded source of the
// test's own, a new warehouse and a new file lake, logging at level (unset
// when empty), with the source's and the warehouse's URLs.
func runEnv(t *testing.T, level string) (env map[string]string, source, wh string) {
	t.Helper()
	source, wh = seededSource(t), pgtest.NewDB(t)
	env = map[string]string{"TOTE_SOURCE_URL": source, "TOTE_WAREHOUSE_URL": wh, "TOTE_LAKE_URL": "file://" + t.TempDir()}
	if level != "" {
		env["TOTE_LOG_LEVEL"] = level
	}
	return env, source, wh
}

func TestExtractAndInspectTheLake(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	dir := t.TempDir()
	lakeURL := "file://" + dir
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
	if code != 0 || !strings.Contains(out, res.Batch) || !strings.Contains(out, "1 committed raw batch in") {
		t.Errorf("lake ls: exit %d:\n%s", code, out)
	}
	code, out, _ = runTote(t, env, "lake", "show", "1")
	var m lake.Manifest
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.ID != res.Batch || len(m.Files) != 12 { // eleven tables and their live ids
		t.Errorf("lake show 1: exit %d:\n%s", code, out)
	}
	code, _, errOut = runTote(t, env, "lake", "show", "7")
	if code != 1 || !strings.Contains(errOut, "7") {
		t.Errorf("lake show 7: exit %d: %q", code, errOut)
	}
	code, out, _ = runTote(t, env, "lake", "clean", "--grace", "0s")
	if code != 0 || out != "removed 0 orphaned or temporary files from "+lakeURL+"\n" {
		t.Errorf("lake clean: exit %d: %q", code, out)
	}
	// What a stage killed while writing a status object leaves.
	stray := "status/latest_raw.json.18f2a3b4c5d6e7f8.tmp"
	name := filepath.Join(dir, filepath.FromSlash(stray))
	if err := os.WriteFile(name, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runTote(t, env, "lake", "clean"); code != 0 || !strings.HasPrefix(out, "removed 0 ") {
		t.Errorf("lake clean within the grace period: exit %d: %q", code, out)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(name, old, old); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runTote(t, env, "lake", "clean")
	if want := "removed " + stray + "\nremoved 1 orphaned or temporary file from " + lakeURL + "\n"; code != 0 || out != want {
		t.Errorf("lake clean: exit %d: %q, want %q", code, out, want)
	}
	if code, _, errOut := runTote(t, env, "lake", "clean", "--zone", "rejects"); code != 2 || !strings.Contains(errOut, `--zone "rejects": want raw, processed or all`) {
		t.Errorf("lake clean --zone rejects: exit %d: %q", code, errOut)
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

// tote extract reports deletions; holds back a TRUNCATE with a message
// saying how to accept it, and accepts it; --full reads every row.
func TestExtractDeletions(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_LOG_LEVEL": "error"}
	if code, _, errOut := runTote(t, env, "extract"); code != 0 {
		t.Fatalf("extract: %s", errOut)
	}
	execSQL(t, source, `DELETE FROM payment WHERE payment_id <= 2`)
	code, out, errOut := runTote(t, env, "extract")
	if code != 0 || !strings.Contains(out, "extract: 2 rows deleted in the source: payment 2\n") {
		t.Errorf("extract after a deletion: exit %d:\n%s%s", code, out, errOut)
	}

	execSQL(t, source, `TRUNCATE payment`)
	code, out, errOut = runTote(t, env, "extract")
	want := ": held back the deletion of 16598 of the 16598 rows of payment (the table is empty in the source: a TRUNCATE, a restore, " +
		"the wrong database?): nothing was committed. If the deletions are meant, accept them: tote extract --accept-deletes payment\n"
	if code != 1 || !strings.HasPrefix(errOut, "tote: extract raw batch 000000000003-") || !strings.HasSuffix(errOut, want) {
		t.Errorf("extract after a TRUNCATE: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runTote(t, env, "extract", "--accept-deletes", "paymnet"); code != 2 || !strings.Contains(errOut, "paymnet") {
		t.Errorf("--accept-deletes paymnet: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runTote(t, env, "extract", "--max-delete-fraction", "1.5"); code != 2 || !strings.Contains(errOut, "--max-delete-fraction 1.5") {
		t.Errorf("--max-delete-fraction 1.5: exit %d: %s", code, errOut)
	}
	code, out, errOut = runTote(t, env, "extract", "--accept-deletes", "design,payment")
	if code != 0 || !strings.Contains(out, "extract: 16,598 rows deleted in the source: payment 16,598\n") {
		t.Errorf("extract --accept-deletes: exit %d:\n%s%s", code, out, errOut)
	}

	code, out, errOut = runTote(t, env, "extract", "--full")
	if code != 0 || !strings.Contains(out, "(full: every row): 33,685 row versions from 10 tables") { // payment is empty
		t.Errorf("extract --full: exit %d:\n%s%s", code, out, errOut)
	}
}

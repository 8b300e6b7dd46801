package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReproducible runs `make lambda` twice, into two directories, and
// checks that the zips are the same bytes, and what they hold: one
// executable bootstrap, a static linux/amd64 binary built without cgo,
// with the lambda.norpc tag and no paths or VCS stamp.
func TestReproducible(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	var zips [][]byte
	for range 2 {
		dir := t.TempDir()
		cmd := exec.Command("make", "-s", "-C", root, "lambda", "ARCH=amd64", "LAMBDA_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make lambda: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "tote-lambda-amd64.zip"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums, zips = append(sums, hex.EncodeToString(sum[:])), append(zips, b)
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds gave different zips: %s and %s", sums[0], sums[1])
	}
	t.Logf("tote-lambda-amd64.zip: %d bytes, SHA-256 %s", len(zips[0]), sums[0])

	zr, err := zip.NewReader(bytes.NewReader(zips[0]), int64(len(zips[0])))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		t.Fatalf("the zip holds %v, want bootstrap alone", zr.File)
	}
	f := zr.File[0]
	if f.Mode() != 0o755 || f.CreatorVersion>>8 != 3 || !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("bootstrap: mode %v, creator %d, time %v; want 0755, Unix, 1980-01-01", f.Mode(), f.CreatorVersion>>8, f.Modified)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Machine != elf.EM_X86_64 || slices.ContainsFunc(e.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Errorf("bootstrap is for %v, interpreter %v; want a static x86-64 binary", e.Machine,
			slices.ContainsFunc(e.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }))
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"-tags": "lambda.norpc", "-trimpath": "true", "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64"} {
		if settings[k] != v {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
		}
	}
	for k := range settings {
		if strings.HasPrefix(k, "vcs") {
			t.Errorf("the binary is stamped with %s", k)
		}
	}
	if info.Path != "github.com/terrifictotes/tote/cmd/tote-lambda" {
		t.Errorf("the binary is %s", info.Path)
	}
}

// TestWrite: the same file zips to the same bytes, whatever its own time
// and mode.
func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(in, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	if err := write(a, in); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(in, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(in, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := write(b, in); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if !bytes.Equal(x, y) || len(x) == 0 {
		t.Error("the same bootstrap gave two different zips")
	}
}

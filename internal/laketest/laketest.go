// Package laketest holds the test helpers for the lake: an empty lake in
// memory or in a folder, reading a committed file back row by row, and
// rewriting a file lake's manifest as an earlier release wrote it. Tests of every
// stage that writes the lake use it; nothing outside tests does.
package laketest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lake"
)

// Mem opens an empty mem:// lake, closed when the test ends. Each call is a
// new lake: share the one it returns between the stages under test.
func Mem(t testing.TB) *lake.Lake {
	t.Helper()
	lk, err := lake.Open(context.Background(), "mem://", lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk
}

// File opens an empty file:// lake in a folder of the test's own, closed
// when the test ends, and returns it with the folder: for the tests that
// look at or alter the lake's files themselves.
func File(t testing.TB) (*lake.Lake, string) {
	t.Helper()
	dir := t.TempDir()
	lk, err := lake.Open(context.Background(), "file://"+dir, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk, dir
}

// EditManifest rewrites the manifest file at path (in a file:// lake)
// through edit, which changes the decoded JSON in place: how a test makes
// a batch what an earlier release wrote, whose fields Go's types no longer
// spell.
func EditManifest(t testing.TB, path string, edit func(manifest map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]any
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(manifest)
	if raw, err = json.Marshal(manifest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Record is one row of a lake file: its values by column name.
type Record map[string]parquet.Value

// ReadFile fetches a committed file (checked against its manifest) and
// returns its rows and schema. It fails the test if the file's row count
// differs from the manifest's.
func ReadFile(t testing.TB, lk *lake.Lake, m lake.Manifest, f lake.File) ([]Record, *parquet.Schema) {
	t.Helper()
	file, err := lk.Fetch(context.Background(), m, f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { file.Close(); os.Remove(file.Name()) }()
	st, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(file, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	fields := pf.Schema().Fields()
	r := parquet.NewReader(pf)
	defer r.Close()
	var out []Record
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			rec := Record{}
			for i, field := range fields {
				rec[field.Name()] = row[i].Clone() // the reader reuses its buffers
			}
			out = append(out, rec)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
	}
	if int64(len(out)) != f.Rows {
		t.Errorf("%s: manifest says %d rows, file has %d", f.Path, f.Rows, len(out))
	}
	return out, pf.Schema()
}

// Money formats hundredths as PostgreSQL prints a numeric(10,2): 1234.50.
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

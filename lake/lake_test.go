package lake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/s3test"
)

// testLake is a lake on one backend, with a way to change its objects
// behind its back.
type testLake struct {
	*Lake
	// put writes an object directly into the backend.
	put func(t *testing.T, key string, data []byte)
}

// backends opens an empty lake of each kind.
var backends = []struct {
	name string
	open func(t *testing.T) testLake
}{
	{"file", func(t *testing.T) testLake {
		dir := t.TempDir()
		l := mustOpen(t, "file://"+dir)
		return testLake{l, func(t *testing.T, key string, data []byte) {
			t.Helper()
			name := filepath.Join(dir, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, data, 0o666); err != nil {
				t.Fatal(err)
			}
		}}
	}},
	{"mem", func(t *testing.T) testLake {
		l := mustOpen(t, "mem://")
		return testLake{l, func(t *testing.T, key string, data []byte) {
			t.Helper()
			if err := l.bucket.WriteAll(context.Background(), key, data, nil); err != nil {
				t.Fatal(err)
			}
		}}
	}},
	{"s3", func(t *testing.T) testLake {
		srv := s3test.Start(t)
		l := mustOpen(t, srv.URL("lakes/test"))
		return testLake{l, func(t *testing.T, key string, data []byte) {
			srv.Put(t, "lakes/test/"+key, data)
		}}
	}},
}

func mustOpen(t *testing.T, url string) *Lake {
	t.Helper()
	l, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// start is the start time of test batch seq.
func start(seq uint64) time.Time {
	return time.Date(2026, 11, 23, 20, 45, 12, 123_000_000, time.UTC).Add(time.Duration(seq) * time.Minute)
}

// writeBatch writes a batch with one file per table, the file holding
// data[table], without committing it.
func writeBatch(t *testing.T, l *Lake, zone Zone, seq uint64, data map[string][]byte) *BatchWriter {
	t.Helper()
	ctx := t.Context()
	b := l.NewBatch(zone, seq, start(seq))
	for _, table := range slices.Sorted(maps.Keys(data)) {
		f, err := b.Create(ctx, table)
		if err != nil {
			t.Fatalf("Create(%s): %v", table, err)
		}
		// Write in pieces, as a Parquet writer would.
		for chunk := range slices.Chunk(data[table], 100_000) {
			if _, err := f.Write(chunk); err != nil {
				t.Fatalf("Write(%s): %v", table, err)
			}
		}
		f.SetRows(int64(len(data[table]) / 10))
		if err := f.Close(); err != nil {
			t.Fatalf("Close(%s): %v", table, err)
		}
	}
	return b
}

// commitBatch writes and commits a batch.
func commitBatch(t *testing.T, l *Lake, zone Zone, seq uint64, data map[string][]byte) Manifest {
	t.Helper()
	m, err := writeBatch(t, l, zone, seq, data).Commit(t.Context(), "v-test", nil)
	if err != nil {
		t.Fatalf("Commit(%d): %v", seq, err)
	}
	return m
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type testState struct {
	Watermark string           `json:"watermark"`
	Tables    map[string]int64 `json:"tables"`
}

func TestRoundTrip(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			if m, err := l.Latest(ctx, Raw); err != nil || m != nil {
				t.Fatalf("Latest of an empty zone = %v, %v; want nil, nil", m, err)
			}
			if ms, err := l.Batches(ctx, Raw); err != nil || len(ms) != 0 {
				t.Fatalf("Batches of an empty zone = %v, %v; want none", ms, err)
			}

			data := map[string][]byte{
				// Over the S3 uploader's 8 MiB part size: a multipart upload.
				"sales_order": randomBytes(9<<20 + 12345),
				"staff":       []byte("staff rows"),
			}
			state := testState{Watermark: "2026-11-23 20:45:12.123", Tables: map[string]int64{"staff": 3}}
			b := writeBatch(t, l.Lake, Raw, 1, data)
			if want := "000000000001-20261123T204612.123Z"; b.ID() != want {
				t.Errorf("ID() = %q, want %q", b.ID(), want)
			}
			m1, err := b.Commit(ctx, "v1.2.3", state)
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if err := b.Abort(ctx); err != nil {
				t.Errorf("Abort after Commit: %v", err)
			}

			if m1.Format != FormatVersion || m1.Zone != Raw || m1.Seq != 1 || m1.ID != b.ID() || m1.Tool != "v1.2.3" || m1.CreatedAt.IsZero() {
				t.Errorf("manifest header = %+v", m1)
			}
			wantFiles := []File{
				{Table: "sales_order", Path: "raw/sales_order/" + b.ID() + ".parquet", Rows: int64(len(data["sales_order"]) / 10), Bytes: int64(len(data["sales_order"])), SHA256: sha(data["sales_order"])},
				{Table: "staff", Path: "raw/staff/" + b.ID() + ".parquet", Rows: 1, Bytes: 10, SHA256: sha(data["staff"])},
			}
			if !slices.Equal(m1.Files, wantFiles) {
				t.Errorf("Files = %+v\nwant %+v", m1.Files, wantFiles)
			}
			var gotState testState
			if err := json.Unmarshal(m1.State, &gotState); err != nil || gotState.Watermark != state.Watermark || gotState.Tables["staff"] != 3 {
				t.Errorf("State = %s (%v), want %+v", m1.State, err, state)
			}

			m2 := commitBatch(t, l.Lake, Raw, 2, map[string][]byte{"staff": []byte("more")})
			empty := commitBatch(t, l.Lake, Processed, 7, nil)
			if len(empty.Files) != 0 || empty.State != nil {
				t.Errorf("empty batch = %+v", empty)
			}

			ms, err := l.Batches(ctx, Raw)
			if err != nil {
				t.Fatalf("Batches: %v", err)
			}
			if len(ms) != 2 || !equalManifest(ms[0], m1) || !equalManifest(ms[1], m2) {
				t.Errorf("Batches = %+v\nwant [%+v %+v]", ms, m1, m2)
			}
			latest, err := l.Latest(ctx, Raw)
			if err != nil || latest == nil || !equalManifest(*latest, m2) {
				t.Errorf("Latest = %+v, %v; want %+v", latest, err, m2)
			}
			if ms, err := l.Batches(ctx, Processed); err != nil || len(ms) != 1 || !equalManifest(ms[0], empty) {
				t.Errorf("Batches(processed) = %+v, %v", ms, err)
			}
			for _, id := range []string{m1.ID, "1", "000000000001"} {
				m, err := l.Batch(ctx, Raw, id)
				if err != nil || !equalManifest(m, m1) {
					t.Errorf("Batch(%q) = %+v, %v; want %+v", id, m, err, m1)
				}
			}
			for _, id := range []string{"3", "000000000001-20990101T000000.000Z", "000000000009-20261123T204512.123Z"} {
				_, err := l.Batch(ctx, Raw, id)
				if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), id) {
					t.Errorf("Batch(%q) error = %v; want not found, naming it", id, err)
				}
			}
			if _, err := l.Batch(ctx, Raw, "latest"); err == nil || !strings.Contains(err.Error(), `"latest"`) {
				t.Errorf(`Batch("latest") error = %v`, err)
			}

			for _, f := range m1.Files {
				want := data[f.Table]
				tmp, err := l.Fetch(ctx, m1, f)
				if err != nil {
					t.Fatalf("Fetch(%s): %v", f.Path, err)
				}
				got, err := io.ReadAll(tmp)
				tmp.Close()
				os.Remove(tmp.Name())
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("Fetch(%s): %d bytes, %v; want %d bytes", f.Path, len(got), err, len(want))
				}

				r, err := l.Open(ctx, m1, f)
				if err != nil {
					t.Fatalf("Open(%s): %v", f.Path, err)
				}
				got, err = io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("Open(%s): %d bytes, %v; want %d bytes", f.Path, len(got), err, len(want))
				}
			}

			objects, size, err := l.Size(ctx)
			if err != nil {
				t.Fatalf("Size: %v", err)
			}
			// The files, the manifests and each zone's hint of its newest batch.
			if objects != 8 || size < int64(len(data["sales_order"])) {
				t.Errorf("Size = %d objects, %d bytes; want 8 objects", objects, size)
			}
		})
	}
}

// equalManifest compares manifests, ignoring the representation of times.
func equalManifest(a, b Manifest) bool {
	return a.CreatedAt.Equal(b.CreatedAt) && a.Format == b.Format && a.Zone == b.Zone && a.Seq == b.Seq &&
		a.ID == b.ID && a.Tool == b.Tool && slices.Equal(a.Files, b.Files) && bytes.Equal(a.State, b.State)
}

func TestUncommittedAndClean(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			committed := commitBatch(t, l.Lake, Raw, 1, map[string][]byte{"staff": []byte("one"), "design": []byte("two")})
			orphan := writeBatch(t, l.Lake, Raw, 2, map[string][]byte{"staff": []byte("three"), "currency": []byte("four")})
			// Another zone's orphan is not Clean(Raw)'s business.
			writeBatch(t, l.Lake, Processed, 1, map[string][]byte{"dim_staff": []byte("five")})

			ms, err := l.Batches(ctx, Raw)
			if err != nil || len(ms) != 1 || ms[0].ID != committed.ID {
				t.Fatalf("Batches = %+v, %v; want only batch 1", ms, err)
			}
			if m, err := l.Latest(ctx, Raw); err != nil || m.ID != committed.ID {
				t.Fatalf("Latest = %+v, %v; want batch 1", m, err)
			}
			if _, err := l.Batch(ctx, Raw, "2"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Batch(2) error = %v; want not found", err)
			}

			removed, err := l.Clean(ctx, Raw, time.Hour)
			if err != nil || len(removed) != 0 {
				t.Fatalf("Clean(grace 1h) = %v, %v; want nothing removed", removed, err)
			}
			removed, err = l.Clean(ctx, Raw, 0)
			if err != nil {
				t.Fatalf("Clean: %v", err)
			}
			want := []string{"raw/currency/" + orphan.ID() + ".parquet", "raw/staff/" + orphan.ID() + ".parquet"}
			slices.Sort(removed)
			if !slices.Equal(removed, want) {
				t.Errorf("Clean removed %q, want %q", removed, want)
			}
			for _, f := range committed.Files {
				r, err := l.Open(ctx, committed, f)
				if err != nil {
					t.Fatalf("committed file %s after Clean: %v", f.Path, err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					t.Errorf("committed file %s after Clean: %v", f.Path, err)
				}
				r.Close()
			}
			if removed, err := l.Clean(ctx, Processed, 0); err != nil || len(removed) != 1 {
				t.Errorf("Clean(processed) = %v, %v; want the one orphan", removed, err)
			}
		})
	}
}

// Clean removes the temporary files of every kind a crashed write leaves
// in a directory, once older than the grace period: fileblob's beside a
// data file and a status object, the lake's own beside a manifest.
func TestCleanTemporaryFiles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	l := mustOpen(t, "file://"+dir)
	m := commitBatch(t, l, Raw, 1, map[string][]byte{"staff": []byte("one")}) // writes status/latest_raw.json
	old := time.Now().Add(-2 * time.Hour)
	put := func(key string, mtime time.Time) {
		t.Helper()
		name := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	stale := []string{
		"manifests/raw/.000000000002.json.ABCDEFGHIJKL.tmp",
		"raw/staff/000000000002-20261123T204712.123Z.parquet.18f2a3b4c5d6e7f8.tmp",
		"status/latest_raw.json.18f2a3b4c5d6e7f8.tmp",
	}
	for _, key := range stale {
		put(key, old)
	}
	young := "status/latest_raw.json.18f2a3b4c5d6e7f9.tmp"
	put(young, time.Now())

	removed, err := l.Clean(ctx, Raw, time.Hour)
	slices.Sort(removed)
	if err != nil || !slices.Equal(removed, stale) {
		t.Errorf("Clean = %q, %v; want %q", removed, err, stale)
	}
	var left []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	})
	want := []string{"manifests/raw/000000000001.json", m.Files[0].Path, "status/latest_raw.json", young}
	slices.Sort(want)
	if slices.Sort(left); !slices.Equal(left, want) {
		t.Errorf("after Clean the lake holds %q, want %q", left, want)
	}
}

func TestAbort(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			b := writeBatch(t, l.Lake, Raw, 1, map[string][]byte{"staff": []byte("one")})
			open, err := b.Create(ctx, "design")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := open.Write([]byte("half a file")); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Commit(ctx, "v", nil); err == nil || !strings.Contains(err.Error(), "design") {
				t.Errorf("Commit with an open file: %v; want an error naming it", err)
			}
			if err := b.Abort(ctx); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if err := open.Close(); err == nil {
				t.Error("Close of a file of an aborted batch succeeded")
			}
			if n, _, err := l.Size(ctx); err != nil || n != 0 {
				t.Errorf("after Abort the lake holds %d objects (%v); want none", n, err)
			}
			if _, err := b.Commit(ctx, "v", nil); err == nil {
				t.Error("Commit after Abort succeeded")
			}

			// A file aborted on its own leaves the batch committable.
			b = l.NewBatch(Raw, 1, start(1))
			f, err := b.Create(ctx, "staff")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("doomed")); err != nil {
				t.Fatal(err)
			}
			f.Abort()
			m, err := b.Commit(ctx, "v", nil)
			if err != nil || len(m.Files) != 0 {
				t.Errorf("Commit after FileWriter.Abort = %+v, %v; want a batch with no files", m, err)
			}
		})
	}
}

func TestConcurrentCommit(t *testing.T) {
	// Several rounds, because a check-then-write commit (fileblob's own
	// IfNotExist) lets two writers win only now and then.
	const writers, rounds = 16, 20
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			for seq := uint64(1); seq <= rounds; seq++ {
				batches := make([]*BatchWriter, writers)
				for i := range batches {
					b := l.NewBatch(Raw, seq, start(seq).Add(time.Duration(i)*time.Millisecond))
					f, err := b.Create(ctx, "staff")
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(f, "writer %d", i)
					if err := f.Close(); err != nil {
						t.Fatal(err)
					}
					batches[i] = b
				}
				errs := make([]error, writers)
				ready := make(chan struct{})
				var wg sync.WaitGroup
				for i, b := range batches {
					wg.Go(func() {
						<-ready
						_, errs[i] = b.Commit(ctx, "v", map[string]int{"writer": i})
					})
				}
				close(ready)
				wg.Wait()

				winner := -1
				key := fmt.Sprintf("manifests/raw/%012d.json", seq)
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Errorf("batch %d: writers %d and %d both committed", seq, winner, i)
					case err == nil:
						winner = i
					case !errors.Is(err, ErrConflict):
						t.Errorf("batch %d: writer %d: %v; want ErrConflict", seq, i, err)
					case err.Error() != fmt.Sprintf("lake %s: %s exists: another writer committed raw batch %d first; this one is not committed", l.name, key, seq):
						t.Errorf("batch %d: writer %d: %v; want the manifest and the batch named, once", seq, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("batch %d: no writer committed", seq)
				}
				for i, b := range batches {
					if err := b.Abort(ctx); err != nil {
						t.Errorf("batch %d: Abort(writer %d): %v", seq, i, err)
					}
				}

				m, err := l.Latest(ctx, Raw)
				if err != nil || m.ID != batches[winner].ID() {
					t.Fatalf("Latest = %+v, %v; want the winner's batch %s", m, err, batches[winner].ID())
				}
				r, err := l.Open(ctx, *m, m.Files[0])
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if want := fmt.Sprintf("writer %d", winner); err != nil || string(got) != want {
					t.Errorf("batch %d: winner's file = %q, %v; want %q", seq, got, err, want)
				}
			}
			if objects, _, err := l.Size(ctx); err != nil || objects != 2*rounds+1 {
				t.Errorf("Size = %d objects, %v; want %d (the losers' files aborted, and the hint)", objects, err, 2*rounds+1)
			}
		})
	}
}

func TestSameBatchID(t *testing.T) {
	// Two writers of the same batch number starting in the same
	// millisecond have the same file keys: the second must not replace
	// the first's file, and its Abort must not delete it.
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			a := writeBatch(t, l.Lake, Raw, 1, map[string][]byte{"staff": []byte("a")})
			b := l.NewBatch(Raw, 1, start(1))
			f, err := b.Create(ctx, "staff")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err == nil {
				t.Error("second file with the same key was written")
			}
			m, err := a.Commit(ctx, "v", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			r, err := l.Open(ctx, m, m.Files[0])
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, err := io.ReadAll(r); err != nil || string(got) != "a" {
				t.Errorf("file = %q, %v; want %q", got, err, "a")
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	tampered := bytes.Clone(content)
	tampered[20] ^= 1
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", content[:17], "17 bytes, manifest says 36 (truncated?)"},
		{"longer", append(bytes.Clone(content), '!'), "37 bytes, manifest says 36"},
		{"changed", tampered, "sha256 " + sha(tampered) + ", manifest says " + sha(content)},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			m := commitBatch(t, l.Lake, Raw, 3, map[string][]byte{"sales_order": content})
			f := m.Files[0]
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					l.put(t, f.Path, c.data)
					check := func(op string, err error) {
						t.Helper()
						if !errors.Is(err, ErrCorrupt) {
							t.Fatalf("%s: %v; want ErrCorrupt", op, err)
						}
						// The lake, the file, what is wrong; the batch once,
						// in the file's name: the stage says which batch.
						if want := "lake " + l.name + ": " + f.Path + ": " + c.want; !strings.HasPrefix(err.Error(), want) {
							t.Errorf("%s: %q, want %q", op, err, want)
						}
						if n := strings.Count(err.Error(), m.ID); n != 1 {
							t.Errorf("%s: %q names the batch %d times", op, err, n)
						}
					}
					tmp, err := l.Fetch(ctx, m, f)
					if err == nil {
						tmp.Close()
						os.Remove(tmp.Name())
					}
					check("Fetch", err)

					r, err := l.Open(ctx, m, f)
					if err == nil {
						_, err = io.Copy(io.Discard, r)
						r.Close()
					}
					check("Open", err)
				})
			}
			t.Run("missing", func(t *testing.T) {
				if err := l.bucket.Delete(ctx, f.Path); err != nil {
					t.Fatal(err)
				}
				_, err := l.Fetch(ctx, m, f)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f.Path) || !strings.Contains(err.Error(), "missing") {
					t.Errorf("Fetch of a missing file: %v; want ErrCorrupt naming it", err)
				}
			})
		})
	}
}

func TestBadManifest(t *testing.T) {
	cases := []struct {
		name, data, want string
	}{
		{"not JSON", "{\"format\": 1, \"zone\": \"raw\", ", "not valid manifest JSON"},
		{"newer format", `{"format": 99, "zone": "raw", "seq": 2, "id": "000000000002-20261123T204512.123Z", "files": []}`, "format 99 is newer"},
		{"no format", `{}`, "no format version"},
		{"wrong seq", `{"format": 1, "zone": "raw", "seq": 3, "id": "000000000003-20261123T204512.123Z", "files": []}`, "says batch number 3"},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			l := be.open(t)
			commitBatch(t, l.Lake, Raw, 1, map[string][]byte{"staff": []byte("x")})
			key := "manifests/raw/000000000002.json"
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					l.put(t, key, []byte(c.data))
					_, err := l.Batches(ctx, Raw)
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), c.want) {
						t.Errorf("Batches: %v; want ErrCorrupt naming %s and saying %q", err, key, c.want)
					}
					if _, err := l.Latest(ctx, Raw); !errors.Is(err, ErrCorrupt) {
						t.Errorf("Latest: %v; want ErrCorrupt", err)
					}
					if _, err := l.Clean(ctx, Raw, 0); !errors.Is(err, ErrCorrupt) {
						t.Errorf("Clean: %v; want ErrCorrupt", err)
					}
				})
			}
			t.Run("stray object", func(t *testing.T) {
				l.put(t, key, nil)
				l.put(t, "manifests/raw/notes.txt", []byte("hello"))
				_, err := l.Batches(ctx, Raw)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "manifests/raw/notes.txt") {
					t.Errorf("Batches: %v; want ErrCorrupt naming the stray object", err)
				}
			})
		})
	}
}

func TestS3PathStyleOption(t *testing.T) {
	// The endpoint can come from the environment (the SDK reads it) and
	// path-style addressing from the options instead of the URL.
	srv := s3test.Start(t)
	// The SDK picks path-style addressing by itself for an IP address.
	t.Setenv("AWS_ENDPOINT_URL", strings.Replace(srv.Endpoint, "127.0.0.1", "localhost", 1))
	l, err := Open(t.Context(), "s3://"+srv.Bucket+"/env", Options{S3PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	m := commitBatch(t, l, Raw, 1, map[string][]byte{"staff": []byte("x")})
	if got := srv.Get(t, "env/"+m.Files[0].Path); string(got) != "x" {
		t.Errorf("object = %q, want %q", got, "x")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	file := filepath.Join(t.TempDir(), "regular")
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, want string }{
		{"ftp://x", `"ftp://x": unsupported scheme "ftp"`},
		{"/var/lib/tote", "has no scheme"},
		{"file://" + file + "/lake", file},
		{"file://", "no directory"},
		{"file:///tmp/x?metadata=skip", "no query parameters"},
		{"s3:///prefix", "no bucket"},
	} {
		l, err := Open(ctx, c.url, Options{})
		if err == nil {
			l.Close()
			t.Errorf("Open(%q) succeeded", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v; want it to say %q", c.url, err, c.want)
		}
	}
}

// A lake opened to be read only is not created where it is missing.
func TestOpenMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	_, err := Open(t.Context(), "file://"+dir, Options{MustExist: true})
	if err == nil || err.Error() != "lake file://"+dir+": no lake at "+dir+": the directory does not exist (is the URL right? extraction creates a lake)" {
		t.Errorf("Open of a missing directory: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Open created %s: %v", dir, err)
	}
	mustOpen(t, "file://"+dir) // creates it
	l, err := Open(t.Context(), "file://"+dir, Options{MustExist: true})
	if err != nil {
		t.Fatalf("Open of a lake that exists: %v", err)
	}
	l.Close()
}

func TestFileUnwritable(t *testing.T) {
	// Tests may run as root, which ignores permissions: break the lake
	// by putting regular files where its directories go.
	ctx := t.Context()
	dir := t.TempDir()
	url := "file://" + dir
	l := mustOpen(t, url)
	for _, name := range []string{"raw", "manifests"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	b := l.NewBatch(Raw, 1, start(1))
	_, err := b.Create(ctx, "staff")
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), filepath.Join(dir, "raw")) {
		t.Errorf("Create: %v; want an error naming the lake and the path", err)
	}
	if n := strings.Count(err.Error(), b.ID()); n != 1 {
		t.Errorf("Create: %v names the batch %d times; want once, in the file's name", err, n)
	}
	_, err = b.Commit(ctx, "v", nil)
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), filepath.Join(dir, "manifests")) {
		t.Errorf("Commit: %v; want an error naming the lake and the path", err)
	}
	if errors.Is(err, ErrConflict) {
		t.Errorf("Commit: %v is not a conflict", err)
	}
}

func TestFileLayout(t *testing.T) {
	// A file:// lake holds the lake's objects and nothing else: no
	// sidecar attributes, no temporary files.
	dir := t.TempDir()
	t.Chdir(dir)
	l := mustOpen(t, "file://./lake")
	m := commitBatch(t, l, Raw, 1, map[string][]byte{"staff": []byte("x"), "design": []byte("y")})
	var got []string
	err := filepath.WalkDir(filepath.Join(dir, "lake"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(dir, "lake"), path)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"manifests/raw/000000000001.json", m.Files[0].Path, m.Files[1].Path, "status/latest_raw.json"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("lake directory holds %q, want %q", got, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lake", "manifests", "raw", "000000000001.json"))
	if err != nil || !bytes.HasPrefix(data, []byte("{\n  \"format\": 1,")) {
		t.Errorf("manifest is not indented JSON: %s (%v)", data, err)
	}

	// Temporary files of writes in progress are not manifests, and Clean
	// removes them once old.
	tmp := filepath.Join(dir, "lake", "manifests", "raw", ".000000000002.json.ABC.tmp")
	stray := filepath.Join(dir, "lake", "raw", "staff", "000000000002-x.parquet.18f3a.tmp")
	for _, name := range []string{tmp, stray} {
		if err := os.WriteFile(name, []byte("{"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if ms, err := l.Batches(t.Context(), Raw); err != nil || len(ms) != 1 {
		t.Errorf("Batches = %v, %v; want one batch", ms, err)
	}
	removed, err := l.Clean(t.Context(), Raw, 0)
	slices.Sort(removed)
	if want := []string{"manifests/raw/.000000000002.json.ABC.tmp", "raw/staff/000000000002-x.parquet.18f3a.tmp"}; err != nil || !slices.Equal(removed, want) {
		t.Errorf("Clean = %q, %v; want %q", removed, err, want)
	}
}

func TestRelativeFileURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{"file://./a/lake", "file://b/lake", "file:c"} {
		l := mustOpen(t, u)
		commitBatch(t, l, Raw, 1, nil)
	}
	for _, d := range []string{"a/lake", "b/lake", "c"} {
		if _, err := os.Stat(filepath.Join(dir, d, "manifests", "raw", "000000000001.json")); err != nil {
			t.Errorf("lake not in %s: %v", d, err)
		}
	}
}

func TestInvalidBatch(t *testing.T) {
	ctx := t.Context()
	l := mustOpen(t, "mem://")
	if _, err := l.NewBatch("cooked", 1, start(1)).Create(ctx, "staff"); err == nil || !strings.Contains(err.Error(), `"cooked"`) {
		t.Errorf("Create in an unknown zone: %v", err)
	}
	if _, err := l.NewBatch(Raw, 1e12, start(1)).Commit(ctx, "v", nil); err == nil {
		t.Error("Commit of a 13-digit batch number succeeded")
	}
	b := l.NewBatch(Raw, 1, start(1))
	for _, table := range []string{"", "../etc", "a/b", ".hidden"} {
		if _, err := b.Create(ctx, table); err == nil {
			t.Errorf("Create(%q) succeeded", table)
		}
	}
	f, err := b.Create(ctx, "staff")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "staff"); err == nil {
		t.Error("second Create of a table succeeded")
	}
	if _, err := l.Batches(ctx, "cooked"); err == nil {
		t.Error("Batches of an unknown zone succeeded")
	}
	if _, err := b.Commit(ctx, "v", func() {}); err == nil || !strings.Contains(err.Error(), "encode state") {
		t.Errorf("Commit of a state that is not JSON: %v", err)
	}
	if err := b.Abort(ctx); err != nil {
		t.Error(err)
	}
}

// Latest and BatchesAfter find the newest batches from the zone's hint of
// its newest number, whatever the hint says: missing, behind, ahead of the
// manifests, or not JSON.
func TestLatestAndBatchesAfter(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tl := b.open(t)
			l, ctx := tl.Lake, t.Context()
			for seq := uint64(1); seq <= 5; seq++ {
				commitBatch(t, l, Raw, seq, map[string][]byte{"staff": randomBytes(10)})
			}
			seqs := func(ms []Manifest) []uint64 {
				var out []uint64
				for _, m := range ms {
					out = append(out, m.Seq)
				}
				return out
			}
			after, err := l.BatchesAfter(ctx, Raw, 2)
			if err != nil || !slices.Equal(seqs(after), []uint64{3, 4, 5}) {
				t.Errorf("BatchesAfter(2) = %v, %v", seqs(after), err)
			}
			if after, err := l.BatchesAfter(ctx, Raw, 5); err != nil || len(after) != 0 {
				t.Errorf("BatchesAfter(5) = %v, %v", seqs(after), err)
			}
			for _, hint := range []string{`{"seq": 5}`, `{"seq": 2}`, `{"seq": 9}`, `{"seq": 0}`, `not json`, ``} {
				if hint == "" {
					if err := l.bucket.Delete(ctx, statusKey(hintName(Raw))); err != nil {
						t.Fatal(err)
					}
				} else {
					tl.put(t, statusKey(hintName(Raw)), []byte(hint))
				}
				m, err := l.Latest(ctx, Raw)
				if err != nil || m == nil || m.Seq != 5 {
					t.Errorf("hint %q: Latest = %v, %v", hint, m, err)
				}
			}
			// The hint follows commits.
			commitBatch(t, l, Raw, 6, map[string][]byte{"staff": randomBytes(10)})
			var h latestHint
			if ok, err := l.Status(ctx, hintName(Raw), &h); !ok || err != nil || h.Seq != 6 {
				t.Errorf("hint after commit 6: %+v %v %v", h, ok, err)
			}
			if b.name == "s3" {
				// On S3 the listing starts after the batch asked for: a key
				// before it that is not a manifest is never read.
				tl.put(t, "manifests/raw/000000000002.json.junk", []byte("x"))
				if after, err := l.BatchesAfter(ctx, Raw, 4); err != nil || !slices.Equal(seqs(after), []uint64{5, 6}) {
					t.Errorf("S3 BatchesAfter(4) with junk before = %v, %v", seqs(after), err)
				}
			}
		})
	}
}

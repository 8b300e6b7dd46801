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
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// BatchWriter writes the files of one batch and then commits it. Create
// may be called from several goroutines at once; Commit and Abort must not
// run while any of the batch's files is being written.
type BatchWriter struct {
	lake *Lake
	zone Zone
	seq  uint64
	id   string
	err  error // set by NewBatch for an invalid zone or seq

	mu      sync.Mutex
	tables  map[string]bool
	open    map[*FileWriter]bool
	files   []File // closed files, the only objects Abort may delete
	failed  error  // first file that failed to write
	done    bool   // committed or aborted
	commit  bool   // committed
	unknown bool   // a commit failed and may nonetheless have landed

	corrective bool
	full       bool
}

// SetCorrective marks the batch corrective (see Manifest.Corrective).
func (b *BatchWriter) SetCorrective() {
	b.mu.Lock()
	b.corrective = true
	b.mu.Unlock()
}

// SetFull marks the batch as a full extraction (see Manifest.Full).
func (b *BatchWriter) SetFull() {
	b.mu.Lock()
	b.full = true
	b.mu.Unlock()
}

// NewBatch starts batch number seq of zone, begun at start. Nothing is
// written until Create, and nothing is visible to readers until Commit. An
// invalid zone, or a seq over 12 digits, is reported by Create and Commit.
func (l *Lake) NewBatch(zone Zone, seq uint64, start time.Time) *BatchWriter {
	b := &BatchWriter{
		lake:   l,
		zone:   zone,
		seq:    seq,
		id:     batchID(seq, start),
		tables: make(map[string]bool),
		open:   make(map[*FileWriter]bool),
	}
	if err := zone.check(); err != nil {
		b.err = err
	} else if seq > maxSeq {
		b.err = fmt.Errorf("lake: batch number %d has more than %d digits", seq, seqDigits)
	}
	return b
}

// ID returns the batch id, "000000000042-20261123T204512.123Z".
func (b *BatchWriter) ID() string { return b.id }

// Create starts the data file of table in the batch, at
// ZONE/TABLE/ID.parquet. The upload streams: it runs until the FileWriter
// is closed, under ctx, and never holds the whole file in memory (except in
// a mem:// lake). Each table may be created once per batch.
func (b *BatchWriter) Create(ctx context.Context, table string) (*FileWriter, error) {
	if b.err != nil {
		return nil, b.err
	}
	if !validTable(table) {
		return nil, fmt.Errorf("lake: invalid table name %q", table)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil, fmt.Errorf("lake: create %s: the batch is already committed or aborted", table)
	}
	if b.tables[table] {
		return nil, fmt.Errorf("lake: table %s created twice in one batch", table)
	}
	key := fileKey(b.zone, table, b.id)
	ctx, cancel := context.WithCancel(ctx)
	f := &FileWriter{batch: b, table: table, key: key, hash: sha256.New(), cancel: cancel}
	w, err := b.lake.bucket.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/vnd.apache.parquet",
		// Batch ids are unique unless two writers start the same batch
		// number in the same millisecond; never overwrite the other's file.
		IfNotExist: true,
		// fileblob hands over its temporary file, so that Close can fsync
		// it before it is renamed into place.
		BeforeWrite: func(as func(any) bool) error {
			var osf *os.File
			if as(&osf) {
				f.file = osf
			}
			return nil
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("lake %s: create %s: %w", b.lake.name, key, brief(err))
	}
	f.w = w
	b.tables[table] = true
	b.open[f] = true
	return f, nil
}

// FileWriter writes one data file of a batch. It counts the bytes and
// computes their SHA-256 as they go by, for the manifest. It is not safe
// for concurrent use.
type FileWriter struct {
	batch  *BatchWriter
	table  string
	key    string
	w      *blob.Writer
	file   *os.File // the temporary file, in a file:// lake
	cancel context.CancelFunc
	hash   hash.Hash
	bytes  int64
	rows   int64
	sorted bool  // KeyOrdered, for the manifest
	err    error // first write error
	closed bool
	cerr   error // Close's result
}

// Write writes p to the file.
func (f *FileWriter) Write(p []byte) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("lake: write %s: file is closed", f.key)
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.w.Write(p)
	f.hash.Write(p[:n])
	f.bytes += int64(n)
	if err != nil {
		f.err = fmt.Errorf("lake %s: write %s: %w", f.batch.lake.name, f.key, asConflict(brief(err)))
		return n, f.err
	}
	return n, nil
}

// SetRows records the number of rows in the file, for the manifest.
func (f *FileWriter) SetRows(n int64) { f.rows = n }

// SetKeyOrdered records, for the manifest, whether the rows are in
// strictly increasing order of their table's key (File.KeyOrdered).
func (f *FileWriter) SetKeyOrdered(ordered bool) { f.sorted = ordered }

// Bytes returns the number of bytes written so far.
func (f *FileWriter) Bytes() int64 { return f.bytes }

// Abort abandons the file: the upload stops, nothing is stored and the
// batch goes on without it (the table may be created again). It does
// nothing after Close.
func (f *FileWriter) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.cerr = fmt.Errorf("lake: %s: file aborted", f.key)
	f.abandon()
	b := f.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.open, f)
	delete(b.tables, f.table)
}

// Close finishes the upload and records the file in the batch. If a Write
// failed, Close abandons the upload and returns that error. Calling Close
// again returns the same result.
func (f *FileWriter) Close() error {
	if f.closed {
		return f.cerr
	}
	f.closed = true
	f.cerr = f.finish()
	b := f.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.open, f)
	if f.cerr != nil {
		if b.failed == nil {
			b.failed = f.cerr
		}
		return f.cerr
	}
	b.files = append(b.files, File{
		Table:  f.table,
		Path:   f.key,
		Rows:   f.rows,
		Bytes:  f.bytes,
		SHA256: hex.EncodeToString(f.hash.Sum(nil)),

		KeyOrdered: f.sorted,
	})
	b.lake.logger.Debug("wrote file", "batch", b.id, "key", f.key, "rows", f.rows, "bytes", f.bytes)
	return nil
}

func (f *FileWriter) finish() error {
	defer f.cancel()
	if f.err != nil {
		f.abandon()
		return f.err
	}
	l := f.batch.lake
	if f.file != nil {
		if err := f.file.Sync(); err != nil {
			f.abandon()
			return fmt.Errorf("lake %s: write %s: %w", l.name, f.key, err)
		}
	}
	if err := f.w.Close(); err != nil {
		return fmt.Errorf("lake %s: write %s: %w", l.name, f.key, asConflict(brief(err)))
	}
	if l.dir != "" {
		if err := syncDirs(l.dir, f.key); err != nil {
			return fmt.Errorf("lake %s: write %s: %w", l.name, f.key, err)
		}
	}
	return nil
}

// abandon ends the upload without creating the object: gocloud aborts a
// write whose context is cancelled before Close.
func (f *FileWriter) abandon() {
	f.cancel()
	_ = f.w.Close()
}

// Commit makes the batch visible by writing its manifest, with the files
// closed so far, tool as the tool version and state encoded as JSON. A
// batch with no files may be committed. If another writer has committed a
// batch with the same number, Commit returns an error wrapping ErrConflict;
// the caller should then Abort.
func (b *BatchWriter) Commit(ctx context.Context, tool string, state any) (Manifest, error) {
	if b.err != nil {
		return Manifest{}, b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.done:
		return Manifest{}, fmt.Errorf("lake: commit: the batch is already committed or aborted")
	case len(b.open) > 0:
		var tables []string
		for f := range b.open {
			tables = append(tables, f.table)
		}
		sort.Strings(tables)
		return Manifest{}, fmt.Errorf("lake: commit: files still open: %s", strings.Join(tables, ", "))
	case b.failed != nil:
		return Manifest{}, fmt.Errorf("a file of the batch failed: %w", b.failed)
	}

	m := Manifest{
		Format:     FormatVersion,
		Zone:       b.zone,
		Seq:        b.seq,
		ID:         b.id,
		CreatedAt:  time.Now().UTC(),
		Tool:       tool,
		Files:      slices.Clone(b.files),
		Corrective: b.corrective,
		Full:       b.full,
	}
	if m.Files == nil {
		m.Files = []File{}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Table < m.Files[j].Table })
	if state != nil {
		raw, err := json.Marshal(state)
		if err != nil {
			return Manifest{}, fmt.Errorf("lake: commit: encode state: %w", err)
		}
		if string(raw) != "null" {
			m.State = raw
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("lake: commit: encode manifest: %w", err)
	}
	data = append(data, '\n')
	// Give back exactly what readers will decode.
	var out Manifest
	if err := json.Unmarshal(data, &out); err != nil {
		return Manifest{}, fmt.Errorf("lake: commit: decode manifest: %w", err)
	}

	key := manifestKey(b.zone, b.seq)
	l := b.lake
	err = l.createExclusive(ctx, key, data)
	if err != nil {
		// The manifest may exist and be ours although the write failed,
		// e.g. when a retried request finds the object its first attempt
		// created. Look, so that the caller never aborts (and deletes the
		// files of) a batch that is in fact committed.
		exists := errors.Is(err, errExists)
		// Look even if ctx is done: the answer decides what Abort may delete.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		got, rerr := l.bucket.ReadAll(lctx, key)
		cancel()
		switch {
		case rerr == nil && bytes.Equal(got, data):
			err = nil
		case rerr == nil:
			exists = true
		case gcerrors.Code(rerr) == gcerrors.NotFound:
			exists = false
		default:
			b.unknown = true
		}
		if err != nil && exists {
			return Manifest{}, conflictf("lake %s: %s exists: another writer committed %s batch %d first; this one is not committed",
				l.name, key, b.zone, b.seq)
		}
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("lake %s: commit %s: %w", l.name, key, brief(err))
	}
	b.done, b.commit = true, true
	l.setHint(ctx, b.zone, b.seq)
	l.logger.Info("committed batch", "zone", b.zone, "seq", b.seq, "batch", b.id,
		"files", len(out.Files), "rows", out.Rows(), "bytes", out.Bytes())
	return out, nil
}

// Abort ends an uncommitted batch: it abandons the files still open and
// deletes those written, best effort, returning the first error. Files
// whose upload failed are left for Clean, as are all of them if a failed
// Commit might have landed. Abort after a successful Commit does nothing,
// so it may be deferred.
func (b *BatchWriter) Abort(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.commit {
		return nil
	}
	b.done = true
	for f := range b.open {
		f.closed = true
		f.cerr = fmt.Errorf("lake: %s: batch aborted", f.key)
		f.abandon()
		delete(b.open, f)
	}
	if b.unknown {
		return fmt.Errorf("lake %s: abort: could not tell whether the commit landed; leaving the files for Clean", b.lake.name)
	}
	var first error
	for _, f := range b.files {
		key := f.Path
		err := b.lake.bucket.Delete(ctx, key)
		if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			if first == nil {
				first = fmt.Errorf("lake %s: abort: delete %s: %w", b.lake.name, key, brief(err))
			}
			continue
		}
		b.lake.logger.Debug("deleted file of aborted batch", "batch", b.id, "key", key)
	}
	b.files = nil
	return first
}

// createExclusive writes data at key, failing with errExists if the key
// exists, atomically against other writers.
//
// fileblob's WriterOptions.IfNotExist checks with os.Stat and then renames
// its temporary file into place, and its lock is per writer, so two writers
// can both pass the check and the second silently replaces the first. For
// a directory we therefore write a temporary file and hard-link it to the
// final name, which fails with EEXIST atomically. memblob checks and stores
// under the bucket's lock; s3blob sends If-None-Match: * and the server
// answers 412 Precondition Failed (or 409 for a concurrent conditional
// write).
func (l *Lake) createExclusive(ctx context.Context, key string, data []byte) error {
	if l.dir != "" {
		if err := ctx.Err(); err != nil {
			return err
		}
		return l.linkExclusive(key, data)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := l.bucket.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition || isConditionalConflict(err) {
			return fmt.Errorf("%w: %w", errExists, err)
		}
		return err
	}
	return nil
}

// asConflict marks a data file that already exists (another writer of the
// same batch id got there first) as ErrConflict.
func asConflict(err error) error {
	if gcerrors.Code(err) == gcerrors.FailedPrecondition || isConditionalConflict(err) {
		return fmt.Errorf("%w (%w)", ErrConflict, err)
	}
	return err
}

// isConditionalConflict reports whether err is S3's 409 for conditional
// writes racing on one key, which s3blob does not map to FailedPrecondition.
func isConditionalConflict(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict"
}

func (l *Lake) linkExclusive(key string, data []byte) error {
	name := filepath.Join(l.dir, filepath.FromSlash(key))
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	tmp, err := createTemp(dir, filepath.Base(name))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %w", errExists, err)
		}
		return err
	}
	return syncDirs(l.dir, key)
}

// createTemp creates ".BASE.HEX.tmp" in dir; unlike os.CreateTemp it
// leaves the permissions to the umask, like every other lake file.
func createTemp(dir, base string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, "."+base+"."+rand.Text()[:12]+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temporary file for %s in %s", base, dir)
}

// syncDirs fsyncs the directories from key's up to root, so that the
// entries just made in them survive a crash.
func syncDirs(root, key string) error {
	dir := filepath.Dir(filepath.Join(root, filepath.FromSlash(key)))
	for {
		if err := syncDir(dir); err != nil {
			return err
		}
		if dir == root || len(dir) <= len(root) {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"
)

// readConcurrency bounds the manifests read at once by Batches.
const readConcurrency = 16

// manifestRef is a manifest's key and the sequence number it names.
type manifestRef struct {
	seq uint64
	key string
}

// Batches returns the committed batches of zone in sequence order. A
// manifest that cannot be decoded is an error wrapping ErrCorrupt.
func (l *Lake) Batches(ctx context.Context, zone Zone) ([]Manifest, error) {
	return l.BatchesAfter(ctx, zone, 0)
}

// BatchesAfter returns the committed batches of zone numbered after seq,
// in sequence order. On S3 it lists only their manifests, so that what a
// run reads does not grow with the lake's history.
func (l *Lake) BatchesAfter(ctx context.Context, zone Zone, seq uint64) ([]Manifest, error) {
	refs, err := l.manifestsAfter(ctx, zone, seq)
	if err != nil {
		return nil, err
	}
	ms := make([]Manifest, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, ref := range refs {
		g.Go(func() (err error) {
			ms[i], err = l.readManifest(gctx, zone, ref)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return ms, nil
}

// Latest returns the committed batch of zone with the highest sequence
// number, or nil if the zone has none. It lists the manifests from the
// number the zone's hint remembers (see setHint), if that manifest is
// there, else all of them.
func (l *Lake) Latest(ctx context.Context, zone Zone) (*Manifest, error) {
	var refs []manifestRef
	if h := l.hint(ctx, zone); h > 0 {
		from, err := l.manifestsAfter(ctx, zone, h-1)
		if err != nil {
			return nil, err
		}
		if len(from) > 0 && from[0].seq == h {
			refs = from
		}
	}
	if refs == nil {
		var err error
		if refs, err = l.manifests(ctx, zone); err != nil || len(refs) == 0 {
			return nil, err
		}
	}
	m, err := l.readManifest(ctx, zone, refs[len(refs)-1])
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// latestHint is what a zone's hint status object holds: the number of its
// newest committed batch, as the last commit left it.
type latestHint struct {
	Seq uint64 `json:"seq"`
}

// hintName is the status object (see PutStatus) that remembers zone's
// newest batch number.
func hintName(zone Zone) string { return "latest_" + string(zone) }

// hint returns the newest batch number of zone that its hint remembers, or
// 0 if there is none or it cannot be read: it is only a shortcut.
func (l *Lake) hint(ctx context.Context, zone Zone) uint64 {
	var h latestHint
	if ok, err := l.Status(ctx, hintName(zone), &h); !ok || err != nil {
		if err != nil {
			l.logger.Debug("no usable hint of the newest batch: listing every manifest", "zone", zone, "error", err)
		}
		return 0
	}
	return h.Seq
}

// setHint remembers seq as zone's newest batch number, best effort: a
// hint that lags only makes Latest list a little more, and one that
// names a missing manifest is ignored.
func (l *Lake) setHint(ctx context.Context, zone Zone, seq uint64) {
	if err := l.PutStatus(ctx, hintName(zone), latestHint{Seq: seq}); err != nil {
		l.logger.Warn("could not record the newest batch number; listing the lake's manifests will take longer", "zone", zone, "error", err)
	}
}

// Batch returns the committed batch of zone with the given id, or with the
// given sequence number if id is a plain number ("42"). A batch that does
// not exist is an error wrapping fs.ErrNotExist.
func (l *Lake) Batch(ctx context.Context, zone Zone, id string) (Manifest, error) {
	if err := zone.check(); err != nil {
		return Manifest{}, err
	}
	byNumber := allDigits(id)
	digits := id
	if !byNumber {
		digits, _, _ = strings.Cut(id, "-")
		if len(digits) != seqDigits || !allDigits(digits) {
			return Manifest{}, fmt.Errorf("lake: %q is neither a batch id (000000000042-20261123T204512.123Z) nor a batch number", id)
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || seq > maxSeq {
		return Manifest{}, fmt.Errorf("lake: batch number %q is out of range", digits)
	}
	ref := manifestRef{seq: seq, key: manifestKey(zone, seq)}
	m, err := l.readManifest(ctx, zone, ref)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return Manifest{}, notFoundf("lake %s: no %s batch %s", l.name, zone, id)
	}
	if err != nil {
		return Manifest{}, err
	}
	if !byNumber && m.ID != id {
		return Manifest{}, notFoundf("lake %s: no %s batch %s (batch %d is %s)", l.name, zone, id, seq, m.ID)
	}
	return m, nil
}

// manifests lists the manifests of zone in sequence order. Temporary
// files of commits in progress are skipped; anything else that is not a
// manifest is an error wrapping ErrCorrupt.
func (l *Lake) manifests(ctx context.Context, zone Zone) ([]manifestRef, error) {
	return l.manifestsAfter(ctx, zone, 0)
}

// manifestsAfter lists the manifests of zone numbered after seq, as
// manifests does. On S3 the listing starts after seq's key (StartAfter):
// keys are zero-padded numbers, so they list in number order.
func (l *Lake) manifestsAfter(ctx context.Context, zone Zone, seq uint64) ([]manifestRef, error) {
	if err := zone.check(); err != nil {
		return nil, err
	}
	prefix := manifestDir(zone)
	opts := &blob.ListOptions{Prefix: prefix}
	if seq > 0 {
		start := l.prefix + manifestKey(zone, seq)
		opts.BeforeList = func(as func(any) bool) error {
			var in *s3.ListObjectsV2Input
			if as(&in) {
				in.StartAfter = aws.String(start)
			}
			return nil
		}
	}
	var refs []manifestRef
	it := l.bucket.List(opts)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lake %s: list %s: %w", l.name, prefix, brief(err))
		}
		name := strings.TrimPrefix(obj.Key, prefix)
		if obj.IsDir || isTemp(path.Base(name)) {
			continue
		}
		n, ok := parseManifestName(name)
		if !ok {
			return nil, corruptf("lake %s: %s: not a manifest (want %s%012d.json)", l.name, obj.Key, prefix, 42)
		}
		if n > seq {
			refs = append(refs, manifestRef{seq: n, key: obj.Key})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].seq < refs[j].seq })
	return refs, nil
}

// readManifest reads and checks the manifest at ref. The error for a
// missing object has gcerrors.Code NotFound.
func (l *Lake) readManifest(ctx context.Context, zone Zone, ref manifestRef) (Manifest, error) {
	data, err := l.bucket.ReadAll(ctx, ref.key)
	if err != nil {
		return Manifest{}, fmt.Errorf("lake %s: read manifest %s: %w", l.name, ref.key, brief(err))
	}
	m, err := decodeManifest(data, zone, ref.seq)
	if err != nil {
		return Manifest{}, corruptf("lake %s: manifest %s: %v", l.name, ref.key, err)
	}
	return m, nil
}

// decodeManifest decodes the manifest of zone's batch seq and checks that
// it is one this package can read and that it is what its key says.
func decodeManifest(data []byte, zone Zone, seq uint64) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("not valid manifest JSON: %v", err)
	}
	switch {
	case m.Format <= 0:
		return Manifest{}, fmt.Errorf("no format version")
	case m.Format > FormatVersion:
		return Manifest{}, fmt.Errorf("format %d is newer than this tote reads (%d); upgrade tote", m.Format, FormatVersion)
	case m.Zone != zone:
		return Manifest{}, fmt.Errorf("says zone %q", m.Zone)
	case m.Seq != seq:
		return Manifest{}, fmt.Errorf("says batch number %d", m.Seq)
	case !strings.HasPrefix(m.ID, fmt.Sprintf("%012d-", seq)):
		return Manifest{}, fmt.Errorf("batch id %q does not start with the batch number", m.ID)
	}
	for _, f := range m.Files {
		switch {
		case f.Path != fileKey(zone, f.Table, m.ID) || strings.Contains(f.Path, ".."):
			return Manifest{}, fmt.Errorf("file %q is outside zone %s", f.Path, zone)
		case f.Bytes < 0 || f.Rows < 0:
			return Manifest{}, fmt.Errorf("file %s: negative size or row count", f.Path)
		case len(f.SHA256) != 2*sha256.Size || !isHex(f.SHA256):
			return Manifest{}, fmt.Errorf("file %s: invalid sha256 %q", f.Path, f.SHA256)
		}
	}
	return m, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// Fetch downloads file f of batch m to a new temporary file, checking its
// size and SHA-256 against the manifest on the way; a mismatch, or a
// missing object, is an error wrapping ErrCorrupt that names the batch and
// the file. The returned file is positioned at its start. The caller must
// close it and remove it (os.Remove(f.Name())).
func (l *Lake) Fetch(ctx context.Context, m Manifest, f File) (*os.File, error) {
	r, err := l.open(ctx, m, f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp("", "tote-*-"+path.Base(f.Path))
	if err != nil {
		return nil, fmt.Errorf("lake %s: fetch %s: %w", l.name, f.Path, err)
	}
	fail := func(err error) (*os.File, error) {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		if r.err != nil {
			return fail(r.err) // from the lake, already described
		}
		return fail(fmt.Errorf("lake %s: fetch %s: %w", l.name, f.Path, err))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("lake %s: fetch %s: %w", l.name, f.Path, err))
	}
	return tmp, nil
}

// Open opens file f of batch m for streaming. Reads check the size and
// SHA-256 against the manifest: the Read that reaches the end of a file
// that does not match returns an error wrapping ErrCorrupt, as does Open
// itself when the object is missing or its size is wrong. Reading runs
// under ctx. The caller must close the reader.
func (l *Lake) Open(ctx context.Context, m Manifest, f File) (io.ReadCloser, error) {
	r, err := l.open(ctx, m, f)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (l *Lake) open(ctx context.Context, m Manifest, f File) (*verifier, error) {
	listed := false
	for _, mf := range m.Files {
		listed = listed || mf == f
	}
	if !listed {
		return nil, fmt.Errorf("lake %s: %s is not in the manifest of its batch", l.name, f.Path)
	}
	r, err := l.bucket.NewReader(ctx, f.Path, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, corruptf("lake %s: %s: missing from the lake (deleted?)", l.name, f.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("lake %s: open %s: %w", l.name, f.Path, brief(err))
	}
	v := &verifier{r: r, url: l.name, want: f, hash: sha256.New()}
	if size := r.Size(); size != f.Bytes {
		_ = r.Close()
		return nil, v.sizeError(size)
	}
	return v, nil
}

// verifier reads a lake file and checks it against its manifest entry.
type verifier struct {
	r    io.ReadCloser
	url  string
	want File
	hash hash.Hash
	n    int64
	err  error // sticky: the first error or io.EOF
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.hash.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.want.Bytes:
		v.err = v.sizeError(v.n)
	case errors.Is(err, io.EOF):
		v.err = v.check()
	case err != nil:
		v.err = fmt.Errorf("lake %s: read %s: %w", v.url, v.want.Path, brief(err))
	}
	return n, v.err
}

func (v *verifier) Close() error { return v.r.Close() }

// check is called at EOF: it returns io.EOF if the file matches its
// manifest entry, an error wrapping ErrCorrupt if not.
func (v *verifier) check() error {
	if v.n != v.want.Bytes {
		return v.sizeError(v.n)
	}
	if got := hex.EncodeToString(v.hash.Sum(nil)); got != v.want.SHA256 {
		return corruptf("lake %s: %s: sha256 %s, manifest says %s (content changed)",
			v.url, v.want.Path, got, v.want.SHA256)
	}
	return io.EOF
}

func (v *verifier) sizeError(size int64) error {
	why := "truncated?"
	if size > v.want.Bytes {
		why = "overwritten?"
	}
	return corruptf("lake %s: %s: %d bytes, manifest says %d (%s)",
		v.url, v.want.Path, size, v.want.Bytes, why)
}

package lake

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/terrifictotes/tote/internal/stall"
)

const wantURL = "file://DIR, s3://BUCKET/PREFIX or mem://"

// Options configures a Lake.
type Options struct {
	// Logger receives the lake's logs. Nil discards them.
	Logger *slog.Logger
	// S3PathStyle makes s3:// lakes use path-style addressing
	// (http://host/bucket/key) when the URL does not say, as most
	// S3-compatible servers other than AWS need. Default false.
	S3PathStyle bool
	// ConnectTimeout bounds connecting to an S3 endpoint, TLS handshake
	// included. Default 10s.
	ConnectTimeout time.Duration
	// StallTimeout fails an S3 request when no byte has moved for this
	// long: waiting for the response's headers, reading its body or
	// sending the request's. A transfer that moves is never cut. Default
	// 2m; negative for no bound.
	StallTimeout time.Duration
	// Waits, if set, records the S3 requests in progress (see
	// stall.Waits).
	Waits *stall.Waits
	// Lazy skips Open's check that an s3:// bucket answers: a lake that
	// does not fails its first use instead (tote serve starts so).
	Lazy bool
	// MustExist makes Open fail on a file:// directory that does not
	// exist instead of creating it: a command that only reads the lake
	// must not leave an empty lake where a mistyped URL pointed.
	MustExist bool
}

func (o Options) connect() time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (o Options) stall() time.Duration { return stall.Limit(o.StallTimeout, DefaultStallTimeout) }

// Lake is a data lake in one object store location. It is safe for
// concurrent use.
type Lake struct {
	url    string
	name   string // url without its query, for messages
	bucket *blob.Bucket
	logger *slog.Logger

	// dir is the absolute directory of a file:// lake and "" otherwise.
	// fileblob's conditional create is not atomic and it never fsyncs, so
	// for a directory the lake creates manifests itself and syncs what it
	// writes (see createExclusive).
	dir string
	// prefix is an S3 lake's key prefix in its bucket ("lake/"), which the
	// bucket adds to every key but an S3 request option must name itself.
	prefix string

	// BeforeStatusReplace, if set, is called with a status object's name
	// when its new content is written but has not yet replaced the old
	// (see PutStatus). Tests set it to crash a stage there. Nil does
	// nothing.
	BeforeStatusReplace func(name string)
}

// Open opens the lake at rawURL:
//
//   - file://DIR: a local directory, created if missing (unless
//     Options.MustExist). file:///abs/path
//     is absolute; file://./rel and file://rel/path are relative to the
//     working directory.
//   - s3://BUCKET/PREFIX: an S3 bucket, or any S3-compatible server. The
//     query may set region, endpoint, use_path_style, disable_https and the
//     other parameters of gocloud.dev/blob/s3blob; the standard AWS
//     environment (AWS_REGION, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)
//     applies otherwise (the SDK reads it), and Options.S3PathStyle turns
//     on path-style addressing. Every request is bounded (see Options).
//     Open lists the bucket once so that a wrong bucket, endpoint or
//     credentials fail here, unless Options.Lazy.
//   - mem://: an empty lake in memory, gone on Close; every Open makes a
//     new one.
func Open(ctx context.Context, rawURL string, opts Options) (*Lake, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("lake: invalid URL %q (want %s): %w", rawURL, wantURL, err)
	}
	name := *u
	name.RawQuery = ""
	l := &Lake{url: rawURL, name: name.String(), logger: logger.With("lake", name.String())}
	switch u.Scheme {
	case "file":
		err = l.openDir(u, opts.MustExist)
	case "s3":
		err = l.openS3(ctx, u, opts)
	case "mem":
		l.bucket = memblob.OpenBucket(nil)
	case "":
		return nil, fmt.Errorf("lake: URL %q has no scheme; want %s", rawURL, wantURL)
	default:
		return nil, fmt.Errorf("lake: URL %q: unsupported scheme %q; want %s", rawURL, u.Scheme, wantURL)
	}
	if err != nil {
		return nil, fmt.Errorf("lake %s: %w", l.name, err)
	}
	return l, nil
}

func (l *Lake) openDir(u *url.URL, mustExist bool) error {
	if u.RawQuery != "" {
		return fmt.Errorf("file:// lake URLs take no query parameters")
	}
	var dir string
	switch {
	case u.Opaque != "": // file:rel/path
		dir = u.Opaque
	case u.Host == "" || u.Host == "localhost":
		dir = u.Path
	default: // file://./rel, file://rel/path
		dir = u.Host + u.Path
	}
	if dir == "" {
		return fmt.Errorf("no directory in URL")
	}
	dir, err := filepath.Abs(filepath.FromSlash(dir))
	if err != nil {
		return fmt.Errorf("cannot resolve directory: %w", err)
	}
	if mustExist {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("no lake at %s: the directory does not exist (is the URL right? extraction creates a lake)", dir)
		}
	} else if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("cannot create directory: %w", err)
	}
	// Temporary files go next to their final name, not to os.TempDir, which
	// may be on another file system (rename would fail); lists skip them.
	// No ".attrs" sidecars: the directory holds only the lake's objects.
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{
		NoTempDir: true,
		Metadata:  fileblob.MetadataDontWrite,
	})
	if err != nil {
		return err
	}
	l.bucket, l.dir = b, dir
	return nil
}

func (l *Lake) openS3(ctx context.Context, u *url.URL, opts Options) error {
	if u.Host == "" {
		return fmt.Errorf("no bucket in URL")
	}
	q := u.Query()
	if q.Get("use_path_style") == "" && q.Get("s3ForcePathStyle") == "" && opts.S3PathStyle {
		q.Set("use_path_style", "true")
	}
	// The lake checks every object's SHA-256 itself. The SDK's own
	// response checksums would only add a second, differently worded error
	// for the same corruption, and a warning on every read of an object
	// stored without one (multipart uploads, most S3-compatible servers).
	if q.Get("response_checksum_validation") == "" {
		q.Set("response_checksum_validation", "when_required")
	}
	b, err := openS3Bucket(ctx, &url.URL{Scheme: "s3", Host: u.Host, RawQuery: q.Encode()}, opts)
	if err != nil {
		return err
	}
	if prefix := strings.Trim(u.Path, "/"); prefix != "" {
		l.prefix = prefix + "/"
		b = blob.PrefixedBucket(b, l.prefix)
	}
	if !opts.Lazy {
		if _, _, err := b.ListPage(ctx, blob.FirstPageToken, 1, nil); err != nil {
			_ = b.Close()
			return fmt.Errorf("cannot list bucket %s: %w", u.Host, brief(err))
		}
	}
	l.bucket = b
	return nil
}

// URL returns the URL the lake was opened with.
func (l *Lake) URL() string { return l.url }

// Name is the lake's URL without its query, as its messages name it.
func (l *Lake) Name() string { return l.name }

// Close releases the lake's resources. A mem:// lake's contents are lost.
func (l *Lake) Close() error {
	if err := l.bucket.Close(); err != nil {
		return fmt.Errorf("lake %s: close: %w", l.name, err)
	}
	return nil
}

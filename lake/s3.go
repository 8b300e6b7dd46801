package lake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/terrifictotes/tote/internal/stall"
)

// The bounds on waiting for an S3 endpoint, by default (see Options).
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultStallTimeout   = 2 * time.Minute
)

// openS3Bucket opens bucket u.Host as gocloud's s3blob.URLOpener would,
// with the same query parameters, but over an HTTP client whose every
// wait is bounded: connecting and the TLS handshake by the connect
// timeout, the response's headers and every read and write of a request
// by the stall timeout (no byte moving for that long; a long transfer
// that moves is never cut). The SDK does not retry a request that hit a
// bound: the stage fails with one line, and is retried as a whole later
// (serve's backoff, the state machine's retries).
func openS3Bucket(ctx context.Context, u *url.URL, opts Options) (*blob.Bucket, error) {
	q := u.Query()
	var bopts s3blob.Options
	var s3opts []func(*s3.Options)
	boolParam := func(key string) (value, set bool, err error) {
		v := q.Get(key)
		if v == "" {
			return false, false, nil
		}
		q.Del(key)
		value, err = strconv.ParseBool(v)
		if err != nil {
			return false, false, fmt.Errorf("invalid value for %q: %w", key, err)
		}
		return value, true, nil
	}
	if v := q.Get("ssetype"); v != "" {
		q.Del("ssetype")
		bopts.EncryptionType = types.ServerSideEncryption(v)
		if !slices.Contains(bopts.EncryptionType.Values(), bopts.EncryptionType) {
			return nil, fmt.Errorf("invalid value for %q: %q", "ssetype", v)
		}
	}
	if v := q.Get("kmskeyid"); v != "" {
		q.Del("kmskeyid")
		bopts.KMSEncryptionID = v
	}
	accelerate, _, err := boolParam("accelerate")
	if err != nil {
		return nil, err
	}
	s3opts = append(s3opts, func(o *s3.Options) { o.UseAccelerate = accelerate })
	if v, set, err := boolParam("disable_https"); err != nil {
		return nil, err
	} else if set {
		s3opts = append(s3opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = v })
	}
	for _, key := range []string{"use_path_style", "s3ForcePathStyle"} {
		if v, set, err := boolParam(key); err != nil {
			return nil, err
		} else if set {
			s3opts = append(s3opts, func(o *s3.Options) { o.UsePathStyle = v })
		}
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set AWS_REGION, or add ?region=REGION to the lake URL")
	}
	if anonymous, _ := strconv.ParseBool(q.Get("anonymous")); !opts.Lazy && !anonymous && q.Get("role") == "" {
		if err := checkCredentials(ctx, q.Get("profile")); err != nil {
			return nil, err
		}
	}
	cfg.HTTPClient = httpClient(opts)
	if base := cfg.Retryer; base != nil {
		cfg.Retryer = func() aws.Retryer { return stallRetryer{base()} }
	}
	client := s3.NewFromConfig(cfg, s3opts...)
	bopts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, client, u.Host, &bopts)
}

// checkCredentials fails, in one line that says what to set, when the
// AWS SDK finds no credentials. The SDK would fail the first request with
// every provider it tried in a chain, after a warning of its own on
// standard error (an instance metadata fallback), which the check's quiet
// configuration does not print.
func checkCredentials(ctx context.Context, profile string) error {
	lopts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if profile != "" {
		lopts = append(lopts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return fmt.Errorf("AWS config: %w", err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return errors.New("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, " +
			"or run where a role provides them (add ?anonymous=true to the lake URL for a public bucket)")
	}
	return nil
}

// httpClient is the S3 client's HTTP client: the SDK's defaults, with
// the lake's bounds.
func httpClient(opts Options) *http.Client {
	connect, limit := opts.connect(), opts.stall()
	tr := awshttp.NewBuildableClient().GetTransport()
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		stalled := func(time.Duration) error { return &TimeoutError{Endpoint: addr, Bound: limit, stalled: true} }
		return stall.Wrap(c, limit, stalled, nil), nil
	}
	tr.TLSHandshakeTimeout = connect
	tr.ResponseHeaderTimeout = limit
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: &boundedTransport{base: tr, connect: connect, stall: limit, waits: opts.Waits}}
}

// TimeoutError is an S3 endpoint that did not answer within a bound. It
// is a net.Error and a Timeout.
type TimeoutError struct {
	Endpoint string        // host:port
	Bound    time.Duration // the bound reached
	stalled  bool          // the stall timeout, else the connect timeout
}

func (e *TimeoutError) Error() string {
	if e.stalled {
		return fmt.Sprintf("the S3 endpoint %s sent nothing for %s (stall timeout): is it the right endpoint, and up?", e.Endpoint, e.Bound)
	}
	return fmt.Sprintf("the S3 endpoint %s did not connect within %s (connect timeout): is it the right endpoint, and reachable from here?", e.Endpoint, e.Bound)
}

// Timeout reports true.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary reports true: the endpoint may answer again.
func (e *TimeoutError) Temporary() bool { return true }

// boundedTransport turns the transport's timeouts into TimeoutErrors,
// and records the requests in progress in waits.
type boundedTransport struct {
	base           http.RoundTripper
	connect, stall time.Duration
	waits          *stall.Waits
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	end := t.waits.Begin()
	resp, err := t.base.RoundTrip(req)
	end()
	if err != nil {
		return nil, t.explain(req, err)
	}
	if t.waits != nil {
		resp.Body = &waitingBody{ReadCloser: resp.Body, waits: t.waits}
	}
	return resp, nil
}

// explain returns err as a TimeoutError if a bound caused it.
func (t *boundedTransport) explain(req *http.Request, err error) error {
	var te *TimeoutError
	var ne net.Error
	switch {
	case errors.As(err, &te) || req.Context().Err() != nil:
		return err
	case !errors.As(err, &ne) || !ne.Timeout():
		return err
	}
	var op *net.OpError
	connecting := errors.As(err, &op) && op.Op == "dial" || isTLSHandshakeTimeout(err)
	if connecting {
		return &TimeoutError{Endpoint: req.URL.Host, Bound: t.connect}
	}
	return &TimeoutError{Endpoint: req.URL.Host, Bound: t.stall, stalled: true}
}

func isTLSHandshakeTimeout(err error) bool {
	return err != nil && err.Error() == "net/http: TLS handshake timeout"
}

// waitingBody records its reads in progress.
type waitingBody struct {
	io.ReadCloser
	waits *stall.Waits
}

func (b *waitingBody) Read(p []byte) (int, error) {
	end := b.waits.Begin()
	defer end()
	return b.ReadCloser.Read(p)
}

// stallRetryer does not retry a request that reached a bound: an endpoint
// that said nothing for the stall timeout is not worth as long again, at
// once.
type stallRetryer struct{ aws.Retryer }

func (r stallRetryer) IsErrorRetryable(err error) bool {
	var te *TimeoutError
	if errors.As(err, &te) {
		return false
	}
	return r.Retryer.IsErrorRetryable(err)
}

// brief returns err in fewer words, still unwrapping to err: by the
// TimeoutError it carries, if any (the SDK's and gocloud's wrapping of it,
// with the operation, the attempts and the request's URL, says nothing
// more and spans a paragraph), or else without gocloud's `blob (key
// "...") (code=...)` prefix, which repeats the key that the lake's own
// words name.
func brief(err error) error {
	var te *TimeoutError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return &briefError{msg: te.Error(), err: err}
	case strings.HasPrefix(err.Error(), "blob ("):
		// gocloud's error unwraps to the driver's, then to its code.
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			if inner := multi.Unwrap(); len(inner) > 0 && inner[0] != nil {
				return &briefError{msg: inner[0].Error(), err: err}
			}
		}
	}
	return err
}

type briefError struct {
	msg string
	err error
}

func (e *briefError) Error() string { return e.msg }
func (e *briefError) Unwrap() error { return e.err }

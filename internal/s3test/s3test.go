// Package s3test runs a throwaway S3-compatible server inside a test, so
// that code talking to S3 is tested through the real AWS SDK and real HTTP
// rather than a stub.
//
// The server is gofakes3 with its in-memory backend. It honours
// "If-None-Match: *" on PutObject atomically (the check and the write happen
// under one lock), which is what the lake's commit relies on, so no
// middleware is needed. It does not check request signatures.
package s3test

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Region is the region the server claims to be in.
const Region = "us-east-1"

// Server is an S3-compatible server listening on 127.0.0.1.
type Server struct {
	// Endpoint is the server's base URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Bucket is the name of a bucket created for the test.
	Bucket string

	backend *s3mem.Backend
}

// Start starts a server with one empty bucket and stops it when the test
// ends. It points the AWS SDK at dummy credentials and away from any shared
// config or instance metadata through t.Setenv, so it cannot be used in
// parallel tests.
func Start(t testing.TB) *Server {
	t.Helper()

	// Keep the SDK away from the developer's real AWS setup.
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "s3test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")

	backend := s3mem.New()
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)

	s := &Server{Endpoint: srv.URL, Bucket: "tote-test", backend: backend}
	if err := backend.CreateBucket(s.Bucket); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// URL returns an s3:// URL for prefix in the server's bucket, with the
// query parameters gocloud.dev's s3blob needs to reach it: the endpoint,
// path-style addressing and the region.
func (s *Server) URL(prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("use_path_style", "true")
	q.Set("region", Region)
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + strings.Trim(prefix, "/"), RawQuery: q.Encode()}
	return u.String()
}

// Put writes an object straight into the server's storage, bypassing HTTP;
// tests use it to tamper with objects behind the back of the code under
// test.
func (s *Server) Put(t testing.TB, key string, data []byte) {
	t.Helper()
	if _, err := s.backend.PutObject(s.Bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("s3test: put %s: %v", key, err)
	}
}

// Get reads an object straight from the server's storage.
func (s *Server) Get(t testing.TB, key string) []byte {
	t.Helper()
	obj, err := s.backend.GetObject(s.Bucket, key, nil)
	if err != nil {
		t.Fatalf("s3test: get %s: %v", key, err)
	}
	defer obj.Contents.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(obj.Contents); err != nil {
		t.Fatalf("s3test: get %s: %v", key, err)
	}
	return buf.Bytes()
}

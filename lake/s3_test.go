package lake

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/s3test"
	"github.com/terrifictotes/tote/internal/stall"
)

// An S3 endpoint that accepts connections and never answers fails Open
// within the stall timeout, once (the SDK does not retry it), in one line
// that names the endpoint and the bound; Lazy opens it all the same, and
// the first use fails alike.
func TestS3EndpointThatNeverAnswers(t *testing.T) {
	srv := s3test.Start(t) // the AWS environment: credentials, region
	addr := hangtest.BlackHole(t)
	q := url.Values{"endpoint": {"http://" + addr}, "use_path_style": {"true"}, "region": {s3test.Region}}
	lakeURL := "s3://" + srv.Bucket + "/lake?" + q.Encode()
	opts := Options{StallTimeout: time.Second}

	start := time.Now()
	_, err := Open(t.Context(), lakeURL, opts)
	took := time.Since(start)
	want := "lake s3://" + srv.Bucket + "/lake: cannot list bucket " + srv.Bucket + ": the S3 endpoint " + addr +
		" sent nothing for 1s (stall timeout): is it the right endpoint, and up?"
	if err == nil || err.Error() != want {
		t.Fatalf("Open: %v\nwant %s", err, want)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout", err)
	}
	t.Logf("Open gave up after %s", took.Round(time.Millisecond))

	var waits stall.Waits
	opts.Lazy, opts.Waits = true, &waits
	l, err := Open(t.Context(), lakeURL, opts)
	if err != nil {
		t.Fatalf("Lazy Open: %v", err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		_, err := l.Latest(t.Context(), Raw)
		done <- err
	}()
	for waits.Longest() == 0 {
		select {
		case err := <-done:
			t.Fatalf("Latest ended before a wait was seen: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := <-done; err == nil || !strings.HasSuffix(err.Error(), "sent nothing for 1s (stall timeout): is it the right endpoint, and up?") {
		t.Errorf("Latest: %v", err)
	}
	if got := waits.Longest(); got != 0 {
		t.Errorf("a wait of %s is still recorded", got)
	}
}

// An endpoint that stops answering between requests fails the next one
// the same way.
func TestS3EndpointThatHangs(t *testing.T) {
	srv := s3test.Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := hangtest.Start(t, u.Host)
	q := url.Values{"endpoint": {"http://" + proxy.Addr()}, "use_path_style": {"true"}, "region": {s3test.Region}}
	l, err := Open(t.Context(), "s3://"+srv.Bucket+"/lake?"+q.Encode(), Options{StallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := commitBatch(t, l, Raw, 1, map[string][]byte{"staff": randomBytes(4 << 20)})
	proxy.Hang()
	_, err = l.Fetch(t.Context(), m, m.Files[0])
	want := "lake s3://" + srv.Bucket + "/lake: open " + m.Files[0].Path + ": the S3 endpoint " + proxy.Addr() +
		" sent nothing for 1s (stall timeout): is it the right endpoint, and up?"
	if err == nil || err.Error() != want {
		t.Errorf("Fetch: %v\nwant %s", err, want)
	}
}

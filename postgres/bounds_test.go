package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/postgres"
)

// A server that accepts connections and never answers fails Open within
// the connect timeout, with one line that says so, whatever the URL's
// sslmode (with TLS first, pgconn tries twice), and the URL's
// connect_timeout wins over the option.
func TestOpenBlackHole(t *testing.T) {
	t.Parallel()
	addr := hangtest.BlackHole(t)
	for _, c := range []struct{ query, within string }{
		{"", "within 1s"},
		{"?sslmode=disable", "within 1s"},
		{"?connect_timeout=2", "within 2s"},
	} {
		url := "postgres://tote:s3cret@" + addr + "/totesys" + c.query
		_, err := postgres.OpenWith(t.Context(), "source", url, postgres.Options{ConnectTimeout: time.Second})
		if err == nil {
			t.Fatalf("%s: Open succeeded", url)
		}
		msg := err.Error()
		want := "source database postgres://tote:xxxxx@" + addr + "/totesys" + c.query +
			": the server did not answer as PostgreSQL " + c.within + " (connect timeout): is this the right port?"
		if msg != want {
			t.Errorf("got  %s\nwant %s", msg, want)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v is not a net.Error timeout: retrying may help", err)
		}
	}
}

// A statement on a server that stops answering fails once nothing has
// moved for the stall timeout, naming the database and the bound; one
// that keeps sending rows runs as long as it takes; a LISTEN waits as
// long as it takes.
func TestStallTimeout(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	const stallAfter = time.Second
	opts := postgres.Options{StallTimeout: stallAfter}
	pool, err := postgres.OpenWith(t.Context(), "warehouse", url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// Rows of 64 KiB, one every 100ms: 1.5s in all, never 1s silent.
	copied, err := copyOut(t, pool, `COPY (SELECT pg_sleep(0.1), repeat('x', 65536) FROM generate_series(1, 15)) TO STDOUT`)
	if err != nil || copied < 15*65536 {
		t.Errorf("a COPY that sends a row every 100ms for 1.5s: %d bytes, %v", copied, err)
	}

	_, err = pool.Exec(t.Context(), `SELECT pg_sleep(3)`)
	var stalled *postgres.StallError
	if !errors.As(err, &stalled) {
		t.Fatalf("a statement silent for 3s: %v, want a StallError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "the warehouse database at ") ||
		!strings.Contains(msg, "sent nothing for 1s (stall timeout): is the server stuck, overloaded or cut off?") || strings.Contains(msg, "\n") {
		t.Errorf("message: %s", msg)
	}
	if err := pool.Ping(t.Context()); err != nil {
		t.Errorf("the pool after a stalled statement: %v", err)
	}

	// LISTEN waits for as long as it takes.
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `LISTEN tote_test`); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(3 * stallAfter)
		_, _ = pool.Exec(context.Background(), `NOTIFY tote_test, 'late'`)
	}()
	n, err := postgres.WaitForNotification(t.Context(), conn.Conn())
	if err != nil || n.Payload != "late" {
		t.Errorf("a notification 3s late: %v, %v", n, err)
	}

	// A server that stops answering mid-way.
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := hangtest.Start(t, u.Host)
	u.Host = proxy.Addr()
	frozen, err := postgres.OpenWith(t.Context(), "warehouse", u.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	proxy.Hang()
	start := time.Now()
	_, err = frozen.Exec(t.Context(), `SELECT 1`)
	if !errors.As(err, &stalled) {
		t.Fatalf("a statement on a frozen server: %v, want a StallError", err)
	}
	t.Logf("a frozen server failed a statement in %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// copyOut runs a COPY TO STDOUT and returns the bytes it sent.
func copyOut(t *testing.T, pool *pgxpool.Pool, sql string) (int64, error) {
	t.Helper()
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var n countWriter
	_, err = conn.Conn().PgConn().CopyTo(t.Context(), &n, sql)
	return int64(n), err
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// tote's sessions end a transaction left idle (the server's
// idle_in_transaction_session_timeout), unless the URL says otherwise.
func TestIdleInTransactionTimeout(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	for _, c := range []struct {
		url  string
		opts postgres.Options
		want string
	}{
		{url, postgres.Options{}, "10min"},
		{url, postgres.Options{IdleInTransactionTimeout: time.Second}, "1s"},
		{url + "&idle_in_transaction_session_timeout=3000", postgres.Options{IdleInTransactionTimeout: time.Second}, "3s"},
	} {
		pool, err := postgres.OpenWith(t.Context(), "source", c.url, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = pool.QueryRow(t.Context(), `SHOW idle_in_transaction_session_timeout`).Scan(&got)
		pool.Close()
		if err != nil || got != c.want {
			t.Errorf("%s %+v: %q (%v), want %q", c.url, c.opts, got, err, c.want)
		}
	}
}

// A connection that a pool fails to make in the middle of a run, which
// pgconn words over two lines (TLS first, then without), is reworded into
// the one line Open gives.
func TestReword(t *testing.T) {
	t.Parallel()
	u, err := neturl.Parse(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := hangtest.Start(t, u.Host)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Del("sslmode") // prefer: TLS first, then plain
	u.RawQuery = q.Encode()
	pool, err := postgres.OpenWith(t.Context(), "source", u.String(), postgres.Options{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	proxy.Hang()
	pool.Reset() // the next statement connects
	_, err = pool.Exec(t.Context(), `SELECT 1`)
	if err == nil {
		t.Fatal("a statement through a hung proxy succeeded")
	}
	wrapped := fmt.Errorf("extract: %w", err)
	got := postgres.Reword(wrapped)
	want := "extract: database postgres://postgres@" + proxy.Addr() + u.Path +
		": the server did not answer as PostgreSQL within 1s (connect timeout): is this the right port?"
	if got.Error() != want {
		t.Errorf("reworded:\n%s\nwant\n%s\n(from %q)", got, want, wrapped)
	}
	var ce *pgconn.ConnectError
	if !errors.As(got, &ce) {
		t.Error("the reworded error does not unwrap to the ConnectError")
	}
	if other := errors.New("no connection in this"); postgres.Reword(other) != other {
		t.Error("Reword changed an error without a ConnectError")
	}
}

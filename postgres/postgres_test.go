package postgres_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	// A port that nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = postgres.Open(context.Background(), "source", "postgres://tote:s3cret@"+addr+"/totesys?connect_timeout=5")
	openFailed(t, err, "s3cret", "source database", addr, "server unreachable", "connection refused")
}

// openFailed checks Open's error: there is one, its message says each of
// wants, and it does not give the password away.
func openFailed(t *testing.T, err error, password string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Open succeeded, want an error that says %q", wants)
	}
	msg := err.Error()
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, password) {
		t.Errorf("message leaks the password: %q", msg)
	}
}

func TestOpenWrongPassword(t *testing.T) {
	t.Parallel()
	c := pgtest.Cluster(t, pgcluster.Options{Password: "right-horse"})
	pool, err := postgres.Open(context.Background(), "warehouse", c.URL())
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	pool.Close()

	u, _ := url.Parse(c.URL())
	u.User = url.UserPassword("postgres", "wrong-staple")
	_, err = postgres.Open(context.Background(), "warehouse", u.String())
	openFailed(t, err, "wrong-staple", "warehouse database", "authentication failed", "check the user and password")
}

func TestOpenMissingDatabase(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse(pgtest.AdminURL(t))
	u.Path = "/no_such_database_here"
	_, err := postgres.Open(context.Background(), "source", u.String())
	if err == nil || !strings.Contains(err.Error(), `database "no_such_database_here" does not exist`) {
		t.Fatalf("err = %v", err)
	}
	// The sentence still unwraps to the server's error and its SQLSTATE.
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		t.Errorf("%v does not unwrap to SQLSTATE 3D000", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "postgres://u:pw@host:notaport/db"} {
		_, err := postgres.Open(context.Background(), "source", raw)
		if err == nil || !strings.Contains(err.Error(), "source database") {
			t.Errorf("Open(%q) = %v", raw, err)
		}
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("message leaks the password: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                             "postgres://u@h/db",
		"postgres://h/db?password=secret":               "postgres://h/db?password=xxxxx",
	} {
		if got := postgres.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// Package pgtest is the one shared test helper for PostgreSQL: every test
// that needs a database gets a fresh, empty one of its own from NewDB, which
// is dropped when the test ends.
//
// The databases live on one server per test binary. If the environment
// variable TOTE_TEST_DATABASE_URL is set, it is the admin URL of that server
// (a superuser, or a role that may create databases), for example
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Otherwise a
// private server is started with pgcluster the first time a test asks for
// one, and stopped when the tests finish. For that, every package that uses
// pgtest must have:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// A fixture that many tests of a package start from (a migrated warehouse,
// a seeded source) is made once per test binary as a Template, and each
// test gets a copy of it: a CREATE DATABASE … TEMPLATE, not the migrations
// or the seed again.
//
// The package does not own schemas, migrations or fixtures (tests apply
// their own, or give a Template the function that does), nor connection
// pools beyond Pool: tests connect to the returned URL themselves.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDatabaseURL names the environment variable holding the admin URL of the
// server to create test databases on. When it is empty, a private server is
// started instead.
const EnvDatabaseURL = "TOTE_TEST_DATABASE_URL"

const (
	startTimeout = 2 * time.Minute  // limit for starting the private server
	opTimeout    = 30 * time.Second // limit for creating or dropping one database

	namePrefix  = "tote_test_"
	maxNameLen  = 63 // PostgreSQL's identifier limit (NAMEDATALEN-1)
	randomBytes = 6  // random suffix: 12 hex digits
)

// server is the one PostgreSQL server of this test binary. It is decided,
// and the private cluster started, on first use.
type server struct {
	adminURL string
	source   string // where adminURL came from, for error messages
}

var (
	// mainCalled records that Main runs the tests, so that a private
	// cluster is stopped afterwards.
	mainCalled atomic.Bool

	// cluster is the private server, if one was started; Main stops it.
	cluster atomic.Pointer[pgcluster.Cluster]

	// getServer decides on the server once per test binary.
	getServer = sync.OnceValues(startServer)
)

// Main runs the tests of a package and exits with their result, stopping the
// private PostgreSQL server afterwards if one was started. Call it from the
// package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if madeTemplates() { // then the server was decided on
		srv, _ := getServer()
		if err := dropTemplates(srv.adminURL); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: drop template databases: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if c := cluster.Load(); c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop private PostgreSQL server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// AdminURL returns the admin URL of the server test databases are created
// on, for tests that need more than a database of their own, such as roles.
// Anything such a test creates on the server must be removed by the test.
// It fails the test if the server cannot be started.
func AdminURL(t testing.TB) string {
	t.Helper()
	return mustServer(t).adminURL
}

// NewDB creates an empty database for the test, drops it (disconnecting any
// sessions left in it) when the test and its subtests end, and returns its
// URL: the admin URL with the database name replaced. The database commits
// asynchronously (see createDatabase). It fails the test if the server
// cannot be reached or started.
func NewDB(t testing.TB) string {
	t.Helper()
	srv := mustServer(t)

	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	u, err := createDatabase(ctx, srv.adminURL, name, "")
	if err != nil {
		t.Fatalf("pgtest: %v (server %s)", err, srv.source)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := postgres.DropDatabase(ctx, srv.adminURL, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return u
}

// Pool opens a pool on the database at url, closed when the test ends
// (before NewDB drops the database).
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Texts returns the one column of text that sql selects, row by row.
func Texts(t testing.TB, db *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// Cluster starts a private PostgreSQL server of its own for a test that
// needs server settings (wal_level = logical, a password, a standby) that
// the shared server does not have, and stops it when the test ends. It
// skips the test under -short.
func Cluster(t testing.TB, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	c, err := pgcluster.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

// mustServer returns the server, failing the test if there is none.
func mustServer(t testing.TB) server {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the test package must run its tests through pgtest.Main: " +
			"add func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	srv, err := getServer()
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// startServer decides on the server: the one named by EnvDatabaseURL, or a
// newly started private cluster.
func startServer() (server, error) {
	if s := os.Getenv(EnvDatabaseURL); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return server{}, fmt.Errorf("pgtest: %s is not a postgres:// URL: %q", EnvDatabaseURL, postgres.Redact(s))
		}
		return server{adminURL: s, source: "from " + EnvDatabaseURL}, nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		var hint string
		if errors.Is(err, pgcluster.ErrNoBinaries) {
			hint = fmt.Sprintf("; to use an existing server instead, set %s to its admin URL, "+
				"e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", EnvDatabaseURL)
		}
		return server{}, fmt.Errorf("pgtest: %s is not set and a private PostgreSQL server could not be started: %w%s",
			EnvDatabaseURL, err, hint)
	}
	cluster.Store(c)
	return server{adminURL: c.URL(), source: "private pgcluster server"}, nil
}

// databaseName returns a new database name for a test: "tote_test_", the
// test name lowercased with each run of characters other than a-z and 0-9
// turned into "_" and shortened to fit, then "_" and random hex digits; at
// most 63 bytes in all.
func databaseName(testName string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(testName) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			sep = false
			b.WriteRune(r)
		} else {
			sep = true
		}
	}
	part := b.String()
	if limit := maxNameLen - len(namePrefix) - 1 - 2*randomBytes; len(part) > limit {
		part = strings.TrimSuffix(part[:limit], "_")
	}
	if part != "" {
		part += "_"
	}

	random := make([]byte, randomBytes)
	_, _ = rand.Read(random) // Never fails: it crashes the program instead.
	return namePrefix + part + hex.EncodeToString(random)
}

package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/postgres"
)

// Template is a database that tests get copies of: made once per test
// binary, the first time a test asks for a copy, by Setup, then copied for
// each test with CREATE DATABASE … TEMPLATE, which costs a file copy where
// Setup costs migrations or a seed. Declare one per fixture, at package
// level, as River's test schemas are:
//
//	var migrated = &pgtest.Template{Name: "warehouse", Setup: func(ctx context.Context, url string) error {
//		wh, err := warehouse.Open(ctx, url, nil)
//		if err != nil {
//			return err
//		}
//		defer wh.Close()
//		return wh.Migrate(ctx)
//	}}
//
//	u := migrated.NewDB(t)
//
// The template is dropped when the test binary ends (in Main). Its name
// holds random digits, so test binaries running at once (go test runs
// packages in parallel, and other developers share the server) each have
// their own. pgtest does not know what a template holds: the package that
// uses it passes Setup in, so pgtest imports none of tote's schemas.
type Template struct {
	// Name says what the template holds; it is part of the database's
	// name, so a-z, 0-9 and _ only, at most 20 characters.
	Name string
	// Setup fills the new, empty database at url. It must close every
	// connection it opens before it returns: PostgreSQL copies a database
	// only while no one is connected to it.
	Setup func(ctx context.Context, url string) error
	// Timeout bounds Setup; zero means 5 minutes.
	Timeout time.Duration

	once sync.Once
	db   string // the template database's name
	err  error
}

// templateName is what Template.Name may be.
var templateName = regexp.MustCompile(`^[a-z0-9_]{1,20}$`)

// templates are the template databases this test binary made, which Main
// drops when the tests end.
var templates struct {
	mu    sync.Mutex
	names []string
}

// NewDB returns the URL of a new database for the test, a copy of the
// template, dropped (disconnecting any sessions left in it) when the test
// and its subtests end. The first call makes the template; a test that
// calls it while another makes it waits. It fails the test if the template
// cannot be made: every test that asks for it then fails with the same
// error.
func (tp *Template) NewDB(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		mustServer(t) // fails the test, saying what to add
	}
	u, drop, err := tp.copy(context.Background(), databaseName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return u
}

// Copy makes a copy of the template outside a test, for the Setup of
// another template that starts from this one's content (a warehouse loaded
// from a seeded source), and returns its URL and the function that drops
// it.
func (tp *Template) Copy(ctx context.Context) (url string, drop func() error, err error) {
	return tp.copy(ctx, databaseName(tp.Name+"_copy"))
}

// copy makes the template if it is not made yet, then copies it into a new
// database called name.
func (tp *Template) copy(ctx context.Context, name string) (string, func() error, error) {
	srv, err := getServer()
	if err != nil {
		return "", nil, err
	}
	tp.once.Do(func() { tp.db, tp.err = tp.make(srv) })
	if tp.err != nil {
		return "", nil, tp.err
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	u, err := createDatabase(cctx, srv.adminURL, name, tp.db)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w (server %s)", err, srv.source)
	}
	return u, func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		return postgres.DropDatabase(ctx, srv.adminURL, name)
	}, nil
}

// make creates the template database and runs Setup in it. The database
// is Main's to drop, whether Setup succeeds or not.
func (tp *Template) make(srv server) (string, error) {
	if !templateName.MatchString(tp.Name) || tp.Setup == nil {
		return "", fmt.Errorf("pgtest: template %q: want a name of a-z, 0-9 and _, at most 20 characters, and a Setup", tp.Name)
	}
	random := make([]byte, randomBytes)
	_, _ = rand.Read(random)
	name := templatePrefix + tp.Name + "_" + hex.EncodeToString(random)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	u, err := createDatabase(ctx, srv.adminURL, name, "")
	if err != nil {
		return "", fmt.Errorf("pgtest: template %s: %w (server %s)", tp.Name, err, srv.source)
	}
	templates.mu.Lock()
	templates.names = append(templates.names, name)
	templates.mu.Unlock()

	timeout := tp.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tp.Setup(sctx, u); err != nil {
		return "", fmt.Errorf("pgtest: template %s: setup: %w", tp.Name, err)
	}
	// No test may connect to the template by mistake: a session left in it
	// would stop every copy.
	if err := exec(ctx, srv.adminURL, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("pgtest: template %s: %w", tp.Name, err)
	}
	return name, nil
}

// templatePrefix starts the name of every template database, as
// namePrefix does test databases'.
const templatePrefix = "tote_tmpl_"

// createDatabase creates database name on the server at adminURL, as a
// copy of database template (or an empty one if template is ""), that
// commits asynchronously, and returns its URL.
//
// synchronous_commit is off in every test database: a commit then returns
// without waiting for the disk, which is most of what a small transaction
// costs (8 ms a commit on a busy machine). Only a crash of the server
// could lose such a commit, and a test's server does not crash under it
// (the private servers of pgcluster commit asynchronously too).
func createDatabase(ctx context.Context, adminURL, name, template string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("create database %s: invalid server URL %s", name, postgres.Redact(adminURL))
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", postgres.Explain("server", adminURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	create := "CREATE DATABASE " + ident
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, postgres.Redact(adminURL), err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" SET synchronous_commit TO off"); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, postgres.Redact(adminURL), err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

// madeTemplates reports whether this binary made a template database.
func madeTemplates() bool {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	return len(templates.names) > 0
}

// dropTemplates drops the template databases this binary made.
func dropTemplates(adminURL string) error {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	for _, name := range templates.names {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := postgres.DropDatabase(ctx, adminURL, name)
		cancel()
		if err != nil {
			return err
		}
	}
	templates.names = nil
	return nil
}

// exec runs one statement on the server at adminURL.
func exec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return postgres.Explain("server", adminURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

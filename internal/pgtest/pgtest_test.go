package pgtest

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDB(t *testing.T) {
	ctx := context.Background()
	var names []string
	var leftOpen *pgx.Conn

	t.Run("sub", func(t *testing.T) {
		a, b := NewDB(t), NewDB(t)
		if a == b {
			t.Fatalf("NewDB returned %s twice", a)
		}
		for _, dbURL := range []string{a, b} {
			u, err := url.Parse(dbURL)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(u.Path, "/")
			if got := currentDatabase(t, dbURL); got != name {
				t.Fatalf("connected to %s via %s, want %s", got, dbURL, name)
			}
			if admin, err := url.Parse(AdminURL(t)); err != nil {
				t.Fatal(err)
			} else if u.RawQuery != admin.RawQuery || u.Host != admin.Host || u.User.String() != admin.User.String() {
				t.Fatalf("database URL %s does not match admin URL %s", u.Redacted(), admin.Redacted())
			}
			names = append(names, name)
			if got := show(t, dbURL, "synchronous_commit"); got != "off" {
				t.Errorf("%s: synchronous_commit %s, want off", name, got)
			}
		}

		// The databases are separate.
		connA := connect(t, a)
		if _, err := connA.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := connect(t, b).QueryRow(ctx,
			"SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
			t.Fatal(err)
		} else if n != 0 {
			t.Fatal("table created in one test database is visible in the other")
		}

		// A session still open when the test ends does not stop the drop.
		var err error
		if leftOpen, err = pgx.Connect(ctx, a); err != nil {
			t.Fatal(err)
		}
	})
	if leftOpen != nil {
		_ = leftOpen.Close(ctx)
	}
	if t.Failed() {
		return
	}

	admin := connect(t, AdminURL(t))
	for _, name := range names {
		var exists bool
		if err := admin.QueryRow(ctx,
			"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		} else if exists {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^tote_test_([a-z0-9]+_)*[0-9a-f]{12}$`)
	for _, testName := range []string{
		"TestX",
		"TestNewDB/sub#01",
		"Test__Weird--Name/with spaces/and ÜNICODE",
		"",
		"///",
		strings.Repeat("TestAVeryLongName/", 10),
		strings.Repeat("a", 39) + "/b",
	} {
		name := databaseName(testName)
		if len(name) > 63 {
			t.Errorf("databaseName(%q) = %q: %d bytes, more than 63", testName, name, len(name))
		}
		if !valid.MatchString(name) {
			t.Errorf("databaseName(%q) = %q: not of the expected form", testName, name)
		}
		if other := databaseName(testName); other == name {
			t.Errorf("databaseName(%q) returned %q twice", testName, name)
		}
	}
	if got := databaseName("TestNewDB/Sub_Case#01"); !strings.HasPrefix(got, "tote_test_testnewdb_sub_case_01_") {
		t.Errorf("databaseName = %q", got)
	}
}

// connect opens a connection for the rest of the test.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// currentDatabase returns the name of the database dbURL connects to.
func currentDatabase(t *testing.T, dbURL string) string {
	t.Helper()
	var name string
	if err := connect(t, dbURL).QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// A template is made once, however many tests ask for copies at once; each
// copy holds what Setup made and is a database of its own; no one can
// connect to the template itself.
func TestTemplate(t *testing.T) {
	ctx := context.Background()
	var setups atomic.Int32
	tmpl := &Template{Name: "test_fixture", Setup: func(ctx context.Context, url string) error {
		setups.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE fixture (id int); INSERT INTO fixture VALUES (1), (2), (3)`)
		return err
	}}
	var names []string
	var mu sync.Mutex
	t.Run("copies", func(t *testing.T) {
		for i := range 4 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				u := tmpl.NewDB(t)
				conn := connect(t, u)
				if _, err := conn.Exec(ctx, `INSERT INTO fixture VALUES ($1)`, 10+i); err != nil {
					t.Fatal(err)
				}
				var n, sum int
				if err := conn.QueryRow(ctx, `SELECT count(*), sum(id) FROM fixture`).Scan(&n, &sum); err != nil {
					t.Fatal(err)
				}
				if n != 4 || sum != 6+10+i {
					t.Errorf("copy %d holds %d rows summing to %d; want the template's 3 and its own", i, n, sum)
				}
				if got := show(t, u, "synchronous_commit"); got != "off" {
					t.Errorf("copy %d: synchronous_commit %s, want off", i, got)
				}
				mu.Lock()
				names = append(names, currentDatabase(t, u))
				mu.Unlock()
			})
		}
	})
	if n := setups.Load(); n != 1 {
		t.Errorf("Setup ran %d times, want once", n)
	}
	admin := connect(t, AdminURL(t))
	var allow bool
	if err := admin.QueryRow(ctx, `SELECT datallowconn FROM pg_database WHERE datname = $1`, tmpl.db).Scan(&allow); err != nil || allow {
		t.Errorf("template %s: allows connections %v (%v); want it closed to them", tmpl.db, allow, err)
	}
	for _, name := range names {
		var exists bool
		if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || exists {
			t.Errorf("copy %s still exists after its test ended (%v)", name, err)
		}
	}

	// A Setup that fails fails every test that asks, with its error, and
	// leaves its database for Main to drop.
	bad := &Template{Name: "test_broken", Setup: func(ctx context.Context, url string) error {
		return errors.New("no fixture today")
	}}
	if _, err := bad.make(mustServer(t)); err == nil || !strings.Contains(err.Error(), "template test_broken: setup: no fixture today") {
		t.Errorf("a failed setup: %v", err)
	}
	if _, err := (&Template{Name: "Not A Name", Setup: bad.Setup}).make(mustServer(t)); err == nil {
		t.Error("a template named with spaces and capitals was made")
	}
}

// show returns a setting of the database at dbURL, as a new session sees it.
func show(t *testing.T, dbURL, setting string) string {
	t.Helper()
	var v string
	if err := connect(t, dbURL).QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

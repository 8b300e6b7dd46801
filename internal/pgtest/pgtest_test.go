package pgtest

import (
	"context"
	"net/url"
	"regexp"
	"strings"
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

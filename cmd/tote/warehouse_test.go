package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// newRole creates a login role of a unique name (roles are cluster-wide)
// and drops it when the test ends, after the test's databases: call it
// before pgtest.NewDB.
func newRole(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "tote_test_bi_" + hex.EncodeToString(b)
	admin := pgtest.AdminURL(t)
	execSQL(t, admin, "CREATE ROLE "+name+" LOGIN")
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE "+name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	return name
}

// connectAs connects to the database at url as role (as url says if
// empty).
func connectAs(t *testing.T, url, role string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if role != "" {
		cfg.User, cfg.Password = role, ""
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var sqlBlock = regexp.MustCompile("(?ms)^```sql\n(.*?)^```")

// The queries of docs/bi.md answer the business questions on a warehouse
// that tote run loaded, as the role that grant-reader made a reader.
func TestBIQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	doc, err := os.ReadFile("../../docs/bi.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(queries) < 10 {
		t.Fatalf("docs/bi.md has %d sql blocks; the business questions need more", len(queries))
	}

	role := newRole(t)
	env, _, wh := runEnv(t, "warn")
	if code, _, errOut := runTote(t, env, "run"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	// Until the deletions' migration makes the facts' views of current
	// versions, the newest version of each source id stands in for them.
	for _, table := range star.Tables {
		if table.Kind != star.Fact {
			continue
		}
		execSQL(t, wh, `DO $$ BEGIN
			IF to_regclass('`+table.Name+`_current') IS NULL THEN
				CREATE VIEW `+table.Name+`_current AS SELECT DISTINCT ON (`+table.ID()+`) * FROM `+table.Name+`
				ORDER BY `+table.ID()+`, `+table.Surrogate+` DESC;
			END IF; END $$`)
	}

	var owner string
	if err := connectAs(t, wh, "").QueryRow(ctx, `SELECT current_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTote(t, env, "warehouse", "grant-reader", role)
	if code != 0 {
		t.Fatalf("grant-reader: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"granted " + role + " read access to the star schema (database ",
		"SELECT on the 11 star tables, the views fact_payment_current, fact_purchase_order_current, fact_sales_order_current, " +
			"and on the tables and views that " + owner + " creates in schema public later",
		"nothing on schema tote",
		"docs/bi.md",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("grant-reader printed\n%s\nwithout %q", out, want)
		}
	}

	reader := connectAs(t, wh, role)
	for i, q := range queries {
		rows, err := reader.Query(ctx, q[1])
		if err != nil {
			t.Errorf("docs/bi.md query %d: %v\n%s", i+1, err, q[1])
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		t.Logf("query %d: %d rows", i+1, n)
		if err := rows.Err(); err != nil || n == 0 {
			t.Errorf("docs/bi.md query %d: %d rows, %v\n%s", i+1, n, err, q[1])
		}
	}
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM tote.runs`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the reader reads tote.runs: %v", err)
	}

	code, out, _ = runTote(t, env, "warehouse", "grant-reader", "--json", role)
	var r warehouse.Reader
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Role != role || len(r.Views) != 3 {
		t.Errorf("grant-reader --json, again: exit %d, %v: %s", code, err, out)
	}
}

func TestGrantReaderBadInput(t *testing.T) {
	t.Parallel()
	empty := pgtest.NewDB(t)
	for _, c := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string
		stdout string
	}{
		{"no subcommand", []string{"warehouse"}, nil, 2, "", "Usage: tote warehouse grant-reader ROLE"},
		{"unknown subcommand", []string{"warehouse", "grant"}, nil, 2, `tote warehouse: unknown subcommand "grant" (want grant-reader)`, ""},
		{"no role", []string{"warehouse", "grant-reader", "--warehouse", empty}, nil, 2, "tote warehouse grant-reader: ", ""},
		{"no warehouse", []string{"warehouse", "grant-reader", "bi"}, nil, 2,
			"no warehouse database: give --warehouse URL or set TOTE_WAREHOUSE_URL", ""},
		{"not migrated", []string{"warehouse", "grant-reader", "bi"}, map[string]string{"TOTE_WAREHOUSE_URL": empty}, 1,
			"tote: grant reader bi: the warehouse is not migrated (schema version 0; this tote's is ", ""},
		{"help", []string{"warehouse", "grant-reader", "--help"}, nil, 0, "",
			"Usage: tote warehouse grant-reader [flags] ROLE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runTote(t, c.env, c.args...)
			if code != c.code || !strings.Contains(errOut, c.stderr) || !strings.Contains(out, c.stdout) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, c.code, out, c.stdout, errOut, c.stderr)
			}
		})
	}

	// A migrated warehouse, and a role that does not exist.
	wh := pgtest.NewDB(t)
	if code, _, errOut := runTote(t, map[string]string{"TOTE_LAKE_URL": "mem://", "TOTE_LOG_LEVEL": "warn"}, "load", "--warehouse", wh); code != 0 {
		t.Fatalf("load: %s", errOut)
	}
	code, out, errOut := runTote(t, nil, "warehouse", "grant-reader", "--warehouse", wh, "tote_no_such_reader")
	want := "tote: grant reader tote_no_such_reader: role tote_no_such_reader does not exist; create it " +
		"(as a superuser or a role with CREATEROLE), e.g. CREATE ROLE tote_no_such_reader LOGIN PASSWORD '…'; then grant again\n"
	if code != 1 || errOut != want || out != "" {
		t.Errorf("an unknown role: exit %d, stdout %q\nstderr %q\nwant   %q", code, out, errOut, want)
	}
}

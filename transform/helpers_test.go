package transform_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// record is one row read back from a Parquet file, by column name.
type record = laketest.Record

// seeded returns a source of the test's own, seeded at scale 1 with seed
// 21: a copy of one template, seeded once for every test.
func seeded(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.Pool(t, fixture.Source(1, 21).NewDB(t))
}

func extractRun(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake) extract.Result {
	t.Helper()
	res, err := extract.Run(context.Background(), pool, lk, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed {
		t.Fatal("extraction committed no raw batch")
	}
	return res
}

func transformRun(t *testing.T, lk *lake.Lake) transform.Result {
	t.Helper()
	res, err := transform.Run(context.Background(), lk, transform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func batches(t *testing.T, lk *lake.Lake, zone lake.Zone) []lake.Manifest {
	t.Helper()
	ms, err := lk.Batches(context.Background(), zone)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func latest(t *testing.T, lk *lake.Lake, zone lake.Zone) lake.Manifest {
	t.Helper()
	m, err := lk.Latest(context.Background(), zone)
	if err != nil || m == nil {
		t.Fatalf("latest %s batch: %v, %v", zone, m, err)
	}
	return *m
}

// tables returns the tables that have a file in m.
func tables(m lake.Manifest) []string {
	var out []string
	for _, f := range m.Files {
		out = append(out, f.Table)
	}
	return out
}

// fileRows is the number of rows m's file of table holds, per its manifest.
func fileRows(m lake.Manifest, table string) int64 {
	for _, f := range m.Files {
		if f.Table == table {
			return f.Rows
		}
	}
	return 0
}

// readTable reads m's file of table, if it has one, checking that the
// row count matches the manifest.
func readTable(t *testing.T, lk *lake.Lake, m lake.Manifest, table string) []record {
	t.Helper()
	for _, f := range m.Files {
		if f.Table != table {
			continue
		}
		return readFile(t, lk, m, f)
	}
	return nil
}

func readFile(t *testing.T, lk *lake.Lake, m lake.Manifest, f lake.File) []record {
	t.Helper()
	rows, schema := laketest.ReadFile(t, lk, m, f)
	if m.Zone == lake.Processed {
		// The schema is exactly the model's.
		want, _ := star.Lookup(f.Table)
		if got, exp := fmt.Sprint(schema), fmt.Sprint(want.Schema()); got != exp {
			t.Errorf("%s: schema\n%s\nwant\n%s", f.Path, got, exp)
		}
	}
	return rows
}

// render formats a processed value of column c as the tests' SQL renders
// the source's: dates YYYY-MM-DD, times HH:MM:SS.ffffff, money with two
// decimals.
func render(c star.Column, v parquet.Value) string {
	if v.IsNull() {
		return "NULL"
	}
	switch c.Type {
	case star.Integer:
		return fmt.Sprint(v.Int32())
	case star.BigInt:
		return fmt.Sprint(v.Int64())
	case star.Money:
		return laketest.Money(v.Int64())
	case star.Boolean:
		return fmt.Sprint(v.Boolean())
	case star.Date:
		return day(v.Int32())
	case star.Time:
		return time.UnixMicro(v.Int64()).UTC().Format("15:04:05.000000")
	}
	return string(v.ByteArray())
}

// day formats days since 1970-01-01.
func day(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// renderRow renders the columns of table in rec, joined with |.
// renderRow renders a processed row as the source queries do, less a
// fact's batch_id, which the source cannot know.
func renderRow(table star.Table, rec record) string {
	var parts []string
	for _, c := range table.Columns {
		if c.Name != star.BatchID {
			parts = append(parts, render(c, rec[c.Name]))
		}
	}
	return strings.Join(parts, "|")
}

// sourceRows runs a query whose first column is an id and second a row
// rendered as renderRow does, and returns the rows by id.
func sourceRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, row string
		if err := rows.Scan(&id, &row); err != nil {
			t.Fatal(err)
		}
		out[id] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compare checks that the processed rows of table are exactly want, by key.
func compare(t *testing.T, table star.Table, got []record, want map[string]string) {
	t.Helper()
	key := table.Columns[0]
	seen := map[string]bool{}
	bad := 0
	for _, rec := range got {
		id := render(key, rec[key.Name])
		if seen[id] {
			t.Errorf("%s: %s %s twice", table.Name, key.Name, id)
		}
		seen[id] = true
		if g := renderRow(table, rec); g != want[id] {
			if bad++; bad <= 5 {
				t.Errorf("%s %s:\n lake   %s\n source %s", table.Name, id, g, want[id])
			}
		}
	}
	for id := range want {
		if !seen[id] {
			if bad++; bad <= 5 {
				t.Errorf("%s: %s %s missing", table.Name, key.Name, id)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d rows differ from the source (%d in the lake, %d in the source)", table.Name, bad, len(got), len(want))
	}
}

// factSQL renders a fact table's rows from its source table, as the
// transform should make them.
func factSQL(table star.Table, source totesys.Table) string {
	renames := map[string]string{"sales_staff_id": "staff_id"}
	var exprs []string
	for _, c := range table.Columns {
		switch c.Name {
		case "created_date":
			exprs = append(exprs, `to_char(created_at, 'YYYY-MM-DD')`)
		case "created_time":
			exprs = append(exprs, `to_char(created_at, 'HH24:MI:SS.US')`)
		case "last_updated_date":
			exprs = append(exprs, `to_char(last_updated, 'YYYY-MM-DD')`)
		case "last_updated_time":
			exprs = append(exprs, `to_char(last_updated, 'HH24:MI:SS.US')`)
		case star.SourceXmin:
			exprs = append(exprs, `xmin::text`)
		case star.BatchID:
			// renderRow leaves it out: the source cannot know it.
		default:
			name := c.Name
			if r, ok := renames[name]; ok {
				name = r
			}
			exprs = append(exprs, fmt.Sprintf(`coalesce(%s::text, 'NULL')`, name))
		}
	}
	return fmt.Sprintf(`SELECT %s::text, concat_ws('|', %s) FROM %s`, source.Key(), strings.Join(exprs, ", "), source.Name)
}

// Joined dimensions rendered from the source.
const (
	staffSQL = `SELECT s.staff_id::text, concat_ws('|', s.staff_id, s.first_name, s.last_name, d.department_name,
		coalesce(d.location, 'NULL'), s.email_address)
		FROM staff s JOIN department d USING (department_id)`
	counterpartySQL = `SELECT c.counterparty_id::text, concat_ws('|', c.counterparty_id, c.counterparty_legal_name,
		a.address_line_1, coalesce(a.address_line_2, 'NULL'), coalesce(a.district, 'NULL'), a.city, a.postal_code,
		a.country, a.phone)
		FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id`
	locationSQL = `SELECT address_id::text, concat_ws('|', address_id, address_line_1, coalesce(address_line_2, 'NULL'),
		coalesce(district, 'NULL'), city, postal_code, country, phone) FROM address`
)

func mustTable(name string) star.Table {
	t, err := star.Lookup(name)
	if err != nil {
		panic(err)
	}
	return t
}

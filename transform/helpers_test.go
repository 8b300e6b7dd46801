package transform_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
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

// extracted returns a seeded source (seeded) and a new lake in memory
// holding its first extraction: where most tests start.
func extracted(t *testing.T) (*pgxpool.Pool, *lake.Lake) {
	t.Helper()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	return pool, lk
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

// compare checks that the processed rows of table are exactly want, by
// key, as the oracle renders them (see startest).
func compare(t *testing.T, table star.Table, got []record, want map[string]string) {
	t.Helper()
	key := table.Columns[0]
	seen := map[string]bool{}
	bad := 0
	for _, rec := range got {
		id := startest.Value(key, rec[key.Name])
		if seen[id] {
			t.Errorf("%s: %s %s twice", table.Name, key.Name, id)
		}
		seen[id] = true
		if g := startest.Lake(table, rec); g != want[id] {
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

// facts are the fact tables of the model.
func facts() []star.Table {
	var out []star.Table
	for _, t := range star.Tables {
		if t.Kind == star.Fact {
			out = append(out, t)
		}
	}
	return out
}

func mustTable(name string) star.Table {
	t, err := star.Lookup(name)
	if err != nil {
		panic(err)
	}
	return t
}

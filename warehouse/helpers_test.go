package warehouse_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// The crash test runs a Load in a child process (this test binary again)
// that kills itself right before committing.
const (
	childDBEnv   = "TOTE_WAREHOUSE_CHILD_DB"
	childLakeEnv = "TOTE_WAREHOUSE_CHILD_LAKE"
	crashMarker  = "about to commit batch "
)

func TestMain(m *testing.M) {
	if db := os.Getenv(childDBEnv); db != "" {
		os.Exit(child(db, os.Getenv(childLakeEnv)))
	}
	pgtest.Main(m)
}

// child loads the lake into the warehouse and kills itself right before
// the first batch commits.
func child(db, lakeURL string) int {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer pool.Close()
	lk, err := lake.Open(ctx, lakeURL, lake.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer lk.Close()
	wh := warehouse.New(pool, nil)
	wh.BeforeCommit = func(batch string) {
		fmt.Fprintf(os.Stderr, "%s%s\n", crashMarker, batch)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught: this never returns
	}
	if _, err := wh.Load(ctx, lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// newWarehouse returns a pool on a new, empty database, and its URL.
func newWarehouse(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := pgtest.NewDB(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, url
}

// migratedWarehouse returns a pool on a new warehouse with every migration
// applied, as a first load leaves it before it loads a batch (a copy of
// one template), and its URL.
func migratedWarehouse(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := fixture.Warehouse().NewDB(t)
	return pgtest.Pool(t, url), url
}

func memLake(t *testing.T) *lake.Lake {
	t.Helper()
	return openLake(t, "mem://")
}

// fileLake returns a lake in a new directory, and the directory.
func fileLake(t *testing.T) (*lake.Lake, string) {
	t.Helper()
	dir := t.TempDir()
	return openLake(t, "file://"+dir), dir
}

func openLake(t *testing.T, url string) *lake.Lake {
	t.Helper()
	lk, err := lake.Open(context.Background(), url, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk
}

// row is one row of a star table, by column name. Values: int, bool, nil
// (NULL) and strings: text, dates "2006-01-02", times "15:04:05.999999",
// money "12.34". Strings are written as PostgreSQL prints the value, so
// that the warehouse's rows can be compared with them.
type row map[string]any

// batch is a processed batch's rows, by star table.
type batch map[string][]row

// loadedBatch1 is a new warehouse that has loaded batch1 from a new
// memory lake.
func loadedBatch1(t *testing.T) (*pgxpool.Pool, *lake.Lake) {
	t.Helper()
	db, _ := newWarehouse(t)
	lk := memLake(t)
	commit(t, lk, 1, batch1())
	loadOK(t, db, lk)
	return db, lk
}

// commit writes b to lk as processed batch seq, with each table's Parquet
// file as star.Table.Schema says.
func commit(t *testing.T, lk *lake.Lake, seq uint64, b batch) lake.Manifest {
	t.Helper()
	return commitClaiming(t, lk, seq, b, false)
}

// commitClaiming is commit with every file's manifest entry saying that
// its rows are in key order (lake.File.KeyOrdered) if ordered, true or not.
func commitClaiming(t *testing.T, lk *lake.Lake, seq uint64, b batch, ordered bool) lake.Manifest {
	t.Helper()
	return commitWriter(t, writeBatch(t, lk, seq, b, ordered))
}

// writeBatch starts processed batch seq in lk and writes b's files to it
// (see commitClaiming for ordered), for the caller to add to and commit.
func writeBatch(t *testing.T, lk *lake.Lake, seq uint64, b batch, ordered bool) *lake.BatchWriter {
	t.Helper()
	w := lk.NewBatch(lake.Processed, seq, time.Now())
	for name, rows := range b {
		table, err := star.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		writeFileClaiming(t, w, name, table.Schema(), rows, ordered)
	}
	return w
}

func commitWriter(t *testing.T, w *lake.BatchWriter) lake.Manifest {
	t.Helper()
	m, err := w.Commit(context.Background(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeFile writes rows as the file of table in batch w, with schema.
func writeFile(t *testing.T, w *lake.BatchWriter, table string, schema *parquet.Schema, rows []row, opts ...parquet.WriterOption) {
	t.Helper()
	writeFileClaiming(t, w, table, schema, rows, false, opts...)
}

func writeFileClaiming(t *testing.T, w *lake.BatchWriter, table string, schema *parquet.Schema, rows []row, ordered bool, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := w.Create(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewGenericWriter[any](f, append([]parquet.WriterOption{schema, parquet.Compression(&parquet.Zstd)}, opts...)...)
	out := make([]parquet.Row, 0, len(rows))
	for _, r := range rows {
		pr := make(parquet.Row, len(schema.Columns()))
		for _, path := range schema.Columns() {
			leaf, _ := schema.Lookup(path...)
			x, ok := r[path[0]]
			if d, isDefault := provenance[path[0]]; !ok && isDefault {
				x, ok = d, true
			}
			// A nullable column the row leaves out is NULL, as render
			// shows it: a column added to the model needs no edit here.
			if !ok && leaf.Node.Optional() {
				x, ok = nil, true
			}
			if !ok {
				t.Fatalf("%s: test row %v has no column %s", table, r, path[0])
			}
			v := value(t, leaf.Node, x)
			if v.IsNull() {
				pr[leaf.ColumnIndex] = v.Level(0, 0, leaf.ColumnIndex)
			} else {
				pr[leaf.ColumnIndex] = v.Level(0, leaf.MaxDefinitionLevel, leaf.ColumnIndex)
			}
		}
		out = append(out, pr)
	}
	if _, err := pw.WriteRows(out); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	f.SetRows(int64(len(out)))
	f.SetKeyOrdered(ordered)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// provenance holds what a test fact row has in the columns that say where
// a version came from, unless it says otherwise.
// (is_deleted, false unless it says otherwise, is a dimension's too.)
var provenance = map[string]any{star.SourceXmin: 0, star.BatchID: "test", star.IsDeleted: false}

// value converts a test value to a Parquet value of leaf n's type.
func value(t *testing.T, n parquet.Node, x any) parquet.Value {
	t.Helper()
	var lt string
	if l := n.Type().LogicalType(); l != nil {
		lt = l.String()
	}
	switch x := x.(type) {
	case nil:
		return parquet.NullValue()
	case bool:
		return parquet.BooleanValue(x)
	case int:
		if n.Type().Kind() == parquet.Int64 {
			return parquet.Int64Value(int64(x))
		}
		return parquet.Int32Value(int32(x))
	case string:
		switch {
		case lt == "DATE":
			d, err := time.Parse("2006-01-02", x)
			if err != nil {
				t.Fatal(err)
			}
			return parquet.Int32Value(int32(d.Unix() / 86400))
		case strings.HasPrefix(lt, "TIME("):
			d, err := time.Parse("15:04:05.999999", x)
			if err != nil {
				t.Fatal(err)
			}
			return parquet.Int64Value(d.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds())
		case strings.HasPrefix(lt, "DECIMAL("):
			return parquet.Int64Value(cents(t, x))
		}
		return parquet.ByteArrayValue([]byte(x))
	}
	t.Fatalf("test value %v of type %T", x, x)
	return parquet.Value{}
}

// cents parses "-12.34" exactly.
func cents(t *testing.T, s string) int64 {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	units, frac, ok := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	u, err1 := strconv.ParseInt(units, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 2 || err1 != nil || err2 != nil {
		t.Fatalf("money %q: want two decimals", s)
	}
	c := u*100 + f
	if neg {
		c = -c
	}
	return c
}

// columns are a star table's columns in the warehouse, surrogate first.
func columns(table star.Table) []string {
	names := table.ColumnNames()
	if table.Kind == star.Fact {
		names = append([]string{table.Surrogate}, names...)
	}
	return names
}

// render is a row as dump shows it. id is a fact's surrogate key.
func render(table string, id int, r row) string {
	tbl, _ := star.Lookup(table)
	var parts []string
	for _, c := range columns(tbl) {
		x, ok := r[c]
		if c == tbl.Surrogate {
			x, ok = id, true
		}
		if d, isDefault := provenance[c]; !ok && isDefault && (tbl.Kind == star.Fact || c == star.IsDeleted) {
			x, ok = d, true
		}
		switch {
		case !ok || x == nil:
			parts = append(parts, c+"=NULL")
		default:
			parts = append(parts, fmt.Sprintf("%s=%q", c, fmt.Sprint(x)))
		}
	}
	return strings.Join(parts, " ")
}

// dump returns every row of a star table as text, facts in surrogate key
// order, dimensions in key order.
func dump(t *testing.T, db *pgxpool.Pool, table string) []string {
	t.Helper()
	tbl, err := star.Lookup(table)
	if err != nil {
		t.Fatal(err)
	}
	cols := columns(tbl)
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = pgx.Identifier{c}.Sanitize() + "::text"
	}
	order := tbl.Key
	if tbl.Kind == star.Fact {
		order = []string{tbl.Surrogate}
	}
	// By the table's columns, not the text the SELECT list makes of them.
	rows, err := db.Query(context.Background(), fmt.Sprintf("SELECT %s FROM %s t ORDER BY t.%s",
		strings.Join(exprs, ", "), pgx.Identifier{table}.Sanitize(), strings.Join(order, ", t.")))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		vals := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return "", err
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			if v == nil {
				parts[i] = cols[i] + "=NULL"
			} else {
				parts[i] = fmt.Sprintf("%s=%q", cols[i], *v)
			}
		}
		return strings.Join(parts, " "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpAll dumps every star table.
func dumpAll(t *testing.T, db *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range star.Tables {
		out[table.Name] = dump(t, db, table.Name)
	}
	return out
}

// sameTables reports every table whose rows differ.
func sameTables(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for _, table := range star.Tables {
		g, w := got[table.Name], want[table.Name]
		if !slices.Equal(g, w) {
			t.Errorf("%s: %s:\n got %s\nwant %s", what, table.Name, strings.Join(g, "\n     "), strings.Join(w, "\n     "))
		}
	}
}

func loadOK(t *testing.T, db *pgxpool.Pool, lk *lake.Lake) warehouse.Result {
	t.Helper()
	res, err := warehouse.New(db, nil).Load(context.Background(), lk)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// ledger returns the ids of the batches in the load ledger.
func ledger(t *testing.T, db *pgxpool.Pool) []string {
	t.Helper()
	entries, err := warehouse.New(db, nil).Loaded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Batch)
	}
	return ids
}

func testNow() time.Time { return time.Now() }

// mustSchema is the Parquet schema of a star table's processed files.
func mustSchema(t *testing.T, table string) *parquet.Schema {
	t.Helper()
	tbl, err := star.Lookup(table)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.Schema()
}

package iceberg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/s3test"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bundle is what a test runs against: a source, a warehouse, a lake, and
// a publisher of the warehouse into the lake.
type bundle struct {
	src, wh *pgxpool.Pool
	lake    *lake.Lake
	pub     *Publisher
}

func setup(t testing.TB, lakeURL string) *bundle { return setupScale(t, lakeURL, 1) }

// setupScale is setup with a source seeded at scale.
func setupScale(t testing.TB, lakeURL string, scale int) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{src: pgtest.Pool(t, fixture.Source(scale, 23).NewDB(t)), wh: pgtest.Pool(t, fixture.Warehouse().NewDB(t))}
	lk, err := lake.Open(ctx, lakeURL, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	b.lake = lk
	b.pub = b.open(t)
	return b
}

// open opens another publisher of the bundle's warehouse and lake, as a
// new process would.
func (b *bundle) open(t testing.TB) *Publisher {
	t.Helper()
	p, err := Open(context.Background(), b.wh, b.lake, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// load runs extract, transform and load once, without publishing.
func (b *bundle) load(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if _, err := extract.Run(ctx, b.src, b.lake, extract.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Run(ctx, b.lake, transform.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := warehouse.New(b.wh, nil).Load(ctx, b.lake); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) publish(t testing.TB) Result {
	t.Helper()
	res, err := b.pub.Publish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (b *bundle) exec(t testing.TB, pool *pgxpool.Pool, sqls ...string) {
	t.Helper()
	for _, s := range sqls {
		if _, err := pool.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (b *bundle) simulate(t testing.TB, seed uint64, deletions float64) {
	b.simulateN(t, seed, deletions, 200)
}

func (b *bundle) simulateN(t testing.TB, seed uint64, deletions float64, events int) {
	t.Helper()
	if _, err := simulate.Run(context.Background(), b.src, simulate.Options{Rate: 100_000, Events: events, Seed: seed, Deletions: deletions}); err != nil {
		t.Fatal(err)
	}
}

// warehouseRows renders every row of a warehouse table as PostgreSQL
// prints its values, one column after another.
func warehouseRows(t *testing.T, pool *pgxpool.Pool, st star.Table) []string {
	t.Helper()
	var exprs []string
	for _, c := range columns(st) {
		exprs = append(exprs, fmt.Sprintf("coalesce(%s::text, 'NULL')", pgx.Identifier{c.name}.Sanitize()))
	}
	rows, err := pool.Query(context.Background(), "SELECT concat_ws('|', "+strings.Join(exprs, ", ")+") FROM "+st.Name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// icebergRows reads the Iceberg table back with iceberg-go's own scanner
// (the current snapshot, or snapshot id if not 0) and renders its rows as
// PostgreSQL would print the values.
func icebergRows(t *testing.T, p *Publisher, st star.Table, snapshot int64) []string {
	t.Helper()
	ctx := context.Background()
	tbl, err := p.Table(ctx, st.Name)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	scan := tbl.Scan()
	if snapshot != 0 {
		scan = tbl.Scan(table.WithSnapshotID(snapshot))
	}
	at, err := scan.ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan %s: %v", st.Name, err)
	}
	defer at.Release()
	cols := columns(st)
	if int(at.NumCols()) != len(cols) {
		t.Fatalf("%s: Iceberg has %d columns, the model %d", st.Name, at.NumCols(), len(cols))
	}
	var out []string
	rdr := array.NewTableReader(at, 1<<16)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			vals := make([]string, len(cols))
			for j, c := range cols {
				if at.Schema().Field(j).Name != c.name {
					t.Fatalf("%s: column %d is %s in Iceberg, %s in the model", st.Name, j, at.Schema().Field(j).Name, c.name)
				}
				vals[j] = pgText(rec.Column(j), i)
			}
			out = append(out, strings.Join(vals, "|"))
		}
	}
	return out
}

// pgText renders value i of an Arrow array as PostgreSQL prints the
// value of the warehouse's type.
func pgText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Int32:
		return fmt.Sprint(a.Value(i))
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		if a.Value(i) {
			return "true"
		}
		return "false"
	case *array.Decimal128:
		cents := a.Value(i).LowBits()
		sign := ""
		v := int64(cents)
		if v < 0 {
			sign, v = "-", -v
		}
		return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	case *array.Time64:
		us := int64(a.Value(i))
		s := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(us) * time.Microsecond).Format("15:04:05.000000")
		return strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return fmt.Sprintf("unexpected %T", a)
}

// same fails unless the Iceberg tables equal the warehouse's row for row.
func same(t *testing.T, b *bundle, what string) {
	t.Helper()
	for _, st := range star.Tables {
		got, want := icebergRows(t, b.pub, st, 0), warehouseRows(t, b.wh, st)
		if len(want) == 0 {
			t.Fatalf("%s: the warehouse's %s is empty: the comparison proves nothing", what, st.Name)
		}
		sameRows(t, what+": "+st.Name, got, want)
	}
}

func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if slices.Equal(got, want) {
		return
	}
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		count[w]--
	}
	shown := 0
	for row, n := range count {
		if n != 0 && shown < 6 {
			t.Errorf("%s: Iceberg has %+d of %s", what, n, row)
			shown++
		}
	}
	t.Errorf("%s: Iceberg has %d rows, the warehouse %d", what, len(got), len(want))
}

func one(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// The whole life of the tables, in a directory lake and on S3: a full
// load, changes with deletions, a publish missed after a load, a crash
// between the Iceberg commit and tote's record, a rebuild of the
// warehouse, then compaction and expiry: after each, every Iceberg table
// read back with iceberg-go's scanner is the warehouse table, row for row.
func TestPublish(t *testing.T) {
	for _, kind := range []string{"dir", "s3"} {
		t.Run(kind, func(t *testing.T) {
			var url string
			if kind == "dir" {
				t.Parallel()
				url = "file://" + t.TempDir()
			} else {
				url = s3test.Start(t).URL("lake")
			}
			testPublish(t, url)
		})
	}
}

func testPublish(t *testing.T, url string) {
	ctx := context.Background()
	b := setup(t, url)

	// Nothing loaded: nothing to publish, and no error.
	if res := b.publish(t); len(res.Batches) != 0 {
		t.Fatalf("published %v before any load", res.Batches)
	}

	// The full load.
	b.load(t)
	res := b.publish(t)
	if len(res.Batches) != 1 {
		t.Fatalf("published %v, want the first batch", res.Batches)
	}
	same(t, b, "after the full load")

	// Updates and deletions, of facts and dimensions.
	b.simulate(t, 51, 0.2)
	b.exec(t, b.src,
		`UPDATE department SET department_name = 'Logistics', last_updated = now() WHERE department_id = 4`,
		`DELETE FROM payment WHERE payment_id = 40`,
		`DELETE FROM design WHERE design_id = 5`)
	b.load(t)
	res = b.publish(t)
	if len(res.Batches) != 1 {
		t.Fatalf("published %v, want one batch", res.Batches)
	}
	same(t, b, "after updates and deletions")
	if n := one(t, b.wh, `SELECT count(*) FROM fact_payment WHERE is_deleted`); n == 0 {
		t.Fatal("no deletion version in fact_payment: the test proves nothing")
	}
	if n := one(t, b.wh, `SELECT count(*) FROM dim_design WHERE is_deleted`); n == 0 {
		t.Fatal("no flagged dim_design row: the test proves nothing")
	}
	// The current view, written out on the Iceberg table as the README's
	// Athena and Spark query does (the newest version of each id by
	// surrogate key, deleted ids left out), is the warehouse's view.
	sameRows(t, "fact_sales_order_current", currentOf(t, b.pub, "fact_sales_order"),
		pgtest.Texts(t, b.wh, `SELECT sales_record_id::text FROM fact_sales_order_current`))

	// Each table's snapshot says which batch it holds, and tote says the same.
	tbl, err := b.pub.Table(ctx, "fact_payment")
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.CurrentSnapshot().Summary.Properties[SummaryBatch]; got != res.Batches[0] {
		t.Errorf("fact_payment's snapshot holds batch %q, want %q", got, res.Batches[0])
	}
	if n := one(t, b.wh, `SELECT count(*) FROM tote.iceberg_snapshots WHERE batch_id = $1 AND table_name = 'fact_payment' AND snapshot_id = $2`,
		res.Batches[0], tbl.CurrentSnapshot().SnapshotID); n != 1 {
		t.Errorf("tote.iceberg_snapshots does not say that snapshot %d holds batch %s", tbl.CurrentSnapshot().SnapshotID, res.Batches[0])
	}

	// A load whose publish never came (a crash after the load), then
	// another: the next publish brings both, once.
	b.simulate(t, 52, 0.1)
	b.load(t)
	b.simulate(t, 53, 0.1)
	b.load(t)
	if res = b.publish(t); len(res.Batches) != 2 {
		t.Fatalf("published %v, want the two batches loaded since", res.Batches)
	}
	same(t, b, "after two loads published at once")

	// A crash right after an Iceberg commit, before tote records it.
	b.simulate(t, 54, 0.1)
	b.load(t)
	crashed := errors.New("crash")
	b.pub.BeforeRecord = func(batch, table string) error {
		if table == "fact_sales_order" {
			return crashed
		}
		return nil
	}
	if _, err := b.pub.Publish(ctx); !errors.Is(err, crashed) {
		t.Fatalf("publish: %v, want the crash", err)
	}
	b.pub = b.open(t) // a new process
	res = b.publish(t)
	var healed bool
	for _, tr := range res.Tables {
		if tr.Table == "fact_sales_order" {
			healed = tr.Healed && tr.Rows == 0
		}
	}
	if !healed {
		t.Errorf("after the crash, fact_sales_order was not healed without writing: %+v", res.Tables)
	}
	same(t, b, "after a crash between the Iceberg commit and the record")
	if n := one(t, b.wh, `SELECT count(*) FROM tote.iceberg_snapshots WHERE batch_id = $1 AND table_name = 'fact_sales_order'`, res.Batches[0]); n != 1 {
		t.Errorf("the healed batch %s has %d records of fact_sales_order, want 1", res.Batches[0], n)
	}
	if res = b.publish(t); len(res.Batches) != 0 {
		t.Errorf("a publish with nothing loaded published %v", res.Batches)
	}

	// The warehouse rebuilt from the lake in place: the same rows, the same
	// surrogate keys, so the tables need nothing but tote's records.
	if _, err := warehouse.New(b.wh, nil).Rebuild(ctx, b.lake, true); err != nil {
		t.Fatal(err)
	}
	res = b.publish(t)
	if res.Rows() != 0 {
		t.Errorf("after a rebuild, the publish wrote %d rows, want none: %+v", res.Rows(), res.Tables)
	}
	same(t, b, "after a rebuild")
	if n := one(t, b.wh, `SELECT count(*) FROM tote.iceberg_batches`); n != one(t, b.wh, `SELECT count(*) FROM tote.load_ledger`) {
		t.Errorf("after a rebuild, %d batches recorded as published, want every loaded one", n)
	}

	// Compaction and expiry keep the rows; time travel to a batch
	// retention keeps still works.
	b.simulate(t, 55, 0.1)
	b.load(t)
	b.publish(t)
	before := snapshotsOf(t, b.pub, "fact_sales_order")
	filesBefore := dataFiles(t, b.pub, "fact_sales_order")
	mres, err := b.pub.Maintain(ctx, MaintainOptions{Retain: time.Nanosecond, RetainLast: 1, MinInputFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	same(t, b, "after compaction and expiry")
	if after := dataFiles(t, b.pub, "fact_sales_order"); after >= filesBefore {
		t.Errorf("compaction left fact_sales_order %d data files, had %d (%+v)", after, filesBefore, mres)
	}
	if after := snapshotsOf(t, b.pub, "fact_sales_order"); after >= before {
		t.Errorf("expiry left fact_sales_order %d snapshots, had %d", after, before)
	}
}

// currentOf returns the surrogate keys of the current versions of the
// Iceberg fact table: per source id the largest key, unless that version
// is a deletion.
func currentOf(t *testing.T, p *Publisher, name string) []string {
	t.Helper()
	st, err := star.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	newest := map[string][2]string{} // id → (key, is_deleted)
	for _, row := range icebergRows(t, p, st, 0) {
		f := strings.Split(row, "|")
		key, id, deleted := f[0], f[1], f[len(f)-1]
		if cur, ok := newest[id]; !ok || len(key) > len(cur[0]) || (len(key) == len(cur[0]) && key > cur[0]) {
			newest[id] = [2]string{key, deleted}
		}
	}
	var out []string
	for _, v := range newest {
		if v[1] == "false" {
			out = append(out, v[0])
		}
	}
	return out
}

func snapshotsOf(t *testing.T, p *Publisher, name string) int {
	t.Helper()
	tbl, err := p.Table(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return len(tbl.Metadata().Snapshots())
}

func dataFiles(t *testing.T, p *Publisher, name string) int {
	t.Helper()
	ctx := context.Background()
	tbl, err := p.Table(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// A table in the catalog that is not the model's (made by something else)
// is refused, naming the table and every difference, and nothing is
// published or recorded.
func TestPublishRefusesAnotherSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, "file://"+t.TempDir())
	cat, err := b.pub.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{Namespace}, nil); err != nil {
		t.Fatal(err)
	}
	other := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "payment_id", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "colour", Type: iceberg.PrimitiveTypes.String})
	if _, err := cat.CreateTable(ctx, table.Identifier{Namespace, "fact_payment"}, other, catalog.WithLocation(b.pub.Location()+"/other")); err != nil {
		t.Fatal(err)
	}
	b.load(t)
	_, err = b.pub.Publish(ctx)
	for _, want := range []string{"tote.fact_payment", "column payment_id is string, want int", "column colour is not in the model", "column payment_record_id is missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("publish: %v; want it to say %q", err, want)
		}
	}
	if n := one(t, b.wh, `SELECT count(*) FROM tote.iceberg_snapshots`) + one(t, b.wh, `SELECT count(*) FROM tote.iceberg_batches`); n != 0 {
		t.Errorf("a refused publish recorded %d rows", n)
	}
}

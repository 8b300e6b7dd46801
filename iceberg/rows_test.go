package iceberg

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/star"
)

// allTypes is a table of every type tote publishes, the last two nullable.
var allTypes = star.Table{Name: "dim_all", Kind: star.Dimension, Key: []string{"i"}, Columns: []star.Column{
	{Name: "i", Type: star.Integer}, {Name: "b", Type: star.BigInt}, {Name: "t", Type: star.Text},
	{Name: "m", Type: star.Money}, {Name: "f", Type: star.Boolean}, {Name: "d", Type: star.Date},
	{Name: "tm", Type: star.Time}, {Name: "ts", Type: star.Timestamp},
	{Name: "null_t", Type: star.Text, Nullable: true}, {Name: "null_d", Type: star.Date, Nullable: true},
}}

// allTypesRows is a relation of allTypes' columns, with values before
// 1970, between 1970 and 2000 and after, over more rows than a record.
const allTypesRows = `SELECT g::int AS i, g::bigint * 3000000000 AS b, 'row ' || g AS t,
    ((g - 10000)::numeric / 7)::numeric(10,2) AS m, g % 2 = 0 AS f,
    DATE '1960-02-29' + g * 3 AS d, TIME '00:00:00' + g * INTERVAL '4.000001 second' AS tm,
    TIMESTAMP '1969-12-31 23:59:59.5' + g * INTERVAL '1 day 0.25 seconds' AS ts,
    NULLIF('n' || g, 'n2') AS null_t, CASE WHEN g % 3 = 0 THEN NULL ELSE DATE '2000-01-01' + g END AS null_d
FROM generate_series(1, 40000) g`

// streamRows runs sql (allTypes' columns) through a rowReader and
// renders each row's Arrow values as integers where the type has one
// (days, microseconds, cents) and text otherwise.
func streamRows(t *testing.T, pool *pgxpool.Pool, sql string) ([]string, error) {
	t.Helper()
	sc, err := Schema(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(context.Background(), sql, resultFormats(allTypes))
	if err != nil {
		t.Fatal(err)
	}
	r := newRowReader(rows, allTypes, as)
	defer r.Release()
	var out []string
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			var vals []string
			for _, col := range rec.Columns() {
				if col.IsNull(i) {
					vals = append(vals, "NULL")
					continue
				}
				switch a := col.(type) {
				case *array.Decimal128:
					vals = append(vals, strconv.FormatInt(int64(a.Value(i).LowBits()), 10))
				case *array.Date32:
					vals = append(vals, strconv.Itoa(int(a.Value(i))))
				case *array.Time64:
					vals = append(vals, strconv.FormatInt(int64(a.Value(i)), 10))
				case *array.Timestamp:
					vals = append(vals, strconv.FormatInt(int64(a.Value(i)), 10))
				default:
					vals = append(vals, a.ValueStr(i))
				}
			}
			out = append(out, strings.Join(vals, "|"))
		}
	}
	if r.Err() == nil && r.Rows() != int64(len(out)) {
		t.Errorf("the reader counted %d rows, it gave %d", r.Rows(), len(out))
	}
	return out, r.Err()
}

// TestRowReaderDecodes checks the binary decoding of every type against
// PostgreSQL's own arithmetic on the same values (days and microseconds
// since 1970, cents).
func TestRowReaderDecodes(t *testing.T) {
	pool := pgtest.Pool(t, fixture.Warehouse().NewDB(t))
	got, err := streamRows(t, pool, `SELECT `+selectList(allTypes)+` FROM (`+allTypesRows+`) x ORDER BY i`)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(context.Background(), `SELECT concat_ws('|', i, b, t, (m * 100)::bigint, f, d - DATE '1970-01-01',
    (extract(epoch FROM tm) * 1000000)::bigint, (extract(epoch FROM ts) * 1000000)::bigint,
    coalesce(null_t, 'NULL'), coalesce((null_d - DATE '1970-01-01')::text, 'NULL'))
FROM (`+allTypesRows+`) x ORDER BY i`)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w := strings.ReplaceAll(strings.ReplaceAll(want[i], "|t|", "|true|"), "|f|", "|false|")
		if got[i] != w {
			t.Fatalf("row %d:\n got %s\nwant %s", i+1, got[i], w)
		}
	}
}

// TestRowReaderRefuses checks that a value Iceberg cannot hold stops the
// read with an error naming the table, the row, the column and the value.
func TestRowReaderRefuses(t *testing.T) {
	pool := pgtest.Pool(t, fixture.Warehouse().NewDB(t))
	for _, c := range []struct{ name, replace, want string }{
		{"infinite date", "DATE '1960-02-29' + g * 3 AS d", "dim_all: row 5: column d: an infinite date"},
		{"infinite timestamp", "TIMESTAMP '1969-12-31 23:59:59.5' + g * INTERVAL '1 day 0.25 seconds' AS ts", "dim_all: row 5: column ts: an infinite timestamp"},
		{"null in a required column", "'row ' || g AS t", "dim_all: row 5: column t is NULL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := c.replace[strings.LastIndex(c.replace, " ")+1:]
			bad := map[string]string{"d": "'infinity'::date", "ts": "'-infinity'::timestamp", "t": "NULL::text"}[col]
			expr := fmt.Sprintf("CASE WHEN g = 5 THEN %s ELSE %s END AS %s", bad, strings.TrimSuffix(c.replace, " AS "+col), col)
			sql := strings.Replace(allTypesRows, c.replace, expr, 1)
			if sql == allTypesRows {
				t.Fatalf("%q is not in the query", c.replace)
			}
			got, err := streamRows(t, pool, `SELECT `+selectList(allTypes)+` FROM (`+sql+`) x ORDER BY i`)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if len(got) != 0 {
				t.Errorf("got %d rows before the error, want none (the record with it is not given)", len(got))
			}
		})
	}
}

// TestPublishRefusesABadValue checks that a warehouse value Iceberg cannot
// hold (an infinite date) fails the publish naming the table, the batch
// and the value, and commits and records nothing of that table: in a
// dimension (which is overwritten) and in a fact (which is appended,
// month by month).
func TestPublishRefusesABadValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		table, column string
		bad           []string
	}{
		{"dim_date", "date_id", []string{`CREATE TEMP TABLE bad AS SELECT * FROM dim_date ORDER BY date_id LIMIT 1`,
			`UPDATE bad SET date_id = 'infinity'`, `INSERT INTO dim_date SELECT * FROM bad`}},
		// The row with the largest key, so that the rows before it are
		// written (and their months' files closed) when it is read.
		{"fact_payment", "created_date", []string{`ALTER TABLE fact_payment DISABLE TRIGGER ALL`,
			`UPDATE fact_payment SET created_date = 'infinity' WHERE payment_record_id = (SELECT max(payment_record_id) FROM fact_payment)`}},
	} {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, "file://"+t.TempDir())
			b.load(t)
			b.exec(t, b.wh, tc.bad...)
			batch := pgtest.Texts(t, b.wh, `SELECT batch_id FROM tote.load_ledger`)[0]
			_, err := b.pub.Publish(ctx)
			for _, want := range []string{"publish " + tc.table + " to iceberg, batches " + batch, "column " + tc.column + ": an infinite date", "7fffffff"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("publish: %v; want it to say %q", err, want)
				}
			}
			tbl, err := b.pub.Table(ctx, tc.table)
			if err != nil {
				t.Fatal(err)
			}
			if s := tbl.CurrentSnapshot(); s != nil {
				t.Errorf("%s has snapshot %d after a refused publish", tc.table, s.SnapshotID)
			}
			if n := one(t, b.wh, `SELECT count(*) FROM tote.iceberg_snapshots WHERE table_name = '`+tc.table+`'`) + one(t, b.wh, `SELECT count(*) FROM tote.iceberg_batches`); n != 0 {
				t.Errorf("a refused publish recorded %d rows", n)
			}
		})
	}
}

// TestPublishSetsWriteProperties checks that a table without tote's
// write properties (made by an older tote) gets them on the next publish.
func TestPublishSetsWriteProperties(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, "file://"+t.TempDir())
	b.load(t)
	b.publish(t)
	tbl, err := b.pub.Table(ctx, "fact_payment")
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.Properties()[table.ParquetCompressionLevelKey]; got != "1" {
		t.Fatalf("a new table's compression level is %q, want 1", got)
	}
	txn := tbl.NewTransaction()
	if err := txn.RemoveProperties([]string{table.ParquetCompressionLevelKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.simulate(t, 61, 0.1)
	b.load(t)
	b.publish(t)
	if tbl, err = b.pub.Table(ctx, "fact_payment"); err != nil {
		t.Fatal(err)
	}
	if got := tbl.Properties()[table.ParquetCompressionLevelKey]; got != "1" {
		t.Errorf("after a publish, the compression level is %q, want 1", got)
	}
	same(t, b, "after the write properties were set")
}

package warehouse

import (
	"bytes"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/star"
)

const benchRows = 100_000

// factRows makes n fact_sales_order rows shaped as the transform writes them.
func factRows(b *testing.B, n int) (star.Table, []parquet.Row) {
	t, err := star.Lookup("fact_sales_order")
	if err != nil {
		b.Fatal(err)
	}
	schema := t.Schema()
	rows := make([]parquet.Row, n)
	for i := range rows {
		row := make(parquet.Row, len(t.Columns))
		for _, c := range t.Columns {
			leaf, _ := schema.Lookup(c.Name)
			var v parquet.Value
			switch c.Type {
			case star.Integer:
				v = parquet.Int32Value(int32(i*7919) % 100_000)
			case star.Money:
				v = parquet.Int64Value(int64(i*31) % 100_000)
			case star.Date:
				v = parquet.Int32Value(19_000 + int32(i%700))
			case star.Time:
				v = parquet.Int64Value(int64(i) * 1_000_003 % 86_400_000_000)
			case star.Boolean:
				v = parquet.BooleanValue(i%2 == 0)
			default:
				v = parquet.ByteArrayValue([]byte("text"))
			}
			row[leaf.ColumnIndex] = v.Level(0, leaf.MaxDefinitionLevel, leaf.ColumnIndex)
		}
		rows[i] = row
	}
	return t, rows
}

func encode(b *testing.B, t star.Table, rows []parquet.Row, w *bytes.Buffer) {
	pw := parquet.NewGenericWriter[any](w, t.Schema(), parquet.Compression(&parquet.Zstd))
	for i := 0; i < len(rows); i += 64 * 1024 {
		if _, err := pw.WriteRows(rows[i:min(i+64*1024, len(rows))]); err != nil {
			b.Fatal(err)
		}
		if err := pw.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFactParquetEncode writes a processed fact_sales_order file, as
// the transform does.
func BenchmarkFactParquetEncode(b *testing.B) {
	t, rows := factRows(b, benchRows)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		encode(b, t, rows, &buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
}

// BenchmarkFactDecodeToCopy reads a processed fact_sales_order file back
// from a lake and encodes its rows as COPY text, as the load does before the
// server sees them.
func BenchmarkFactDecodeToCopy(b *testing.B) {
	t, rows := factRows(b, benchRows)
	ctx := b.Context()
	lk := laketest.Mem(b)
	batch := lk.NewBatch(lake.Processed, 1, time.Now())
	w := lakefile.NewWriter(batch, t.Name, t.Schema())
	for i := 0; i < len(rows); i += 1024 {
		if err := w.Write(ctx, rows[i:min(i+1024, len(rows))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	m, err := batch.Commit(ctx, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(m.Files[0].Bytes)
	b.ReportAllocs()
	for b.Loop() {
		p, err := openProcessed(ctx, lk, m, m.Files[0], t)
		if err != nil {
			b.Fatal(err)
		}
		var w postgres.BinaryRowWriter
		for {
			w.Reset()
			ok, err := p.next(&w)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
		p.close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
}

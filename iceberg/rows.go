package iceberg

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/star"
)

// selectList is the SELECT list that reads t's columns from the warehouse
// in the order of columns(t): each column as it is, but money as cents
// (bigint), which the Arrow decimal takes as is. Rows are read in
// PostgreSQL's binary format (resultFormats), which is already what the
// Arrow arrays hold, give or take an epoch: no text is parsed and no Go
// value is made per field.
func selectList(t star.Table) string {
	cols := columns(t)
	parts := make([]string, len(cols))
	for i, c := range cols {
		id := pgx.Identifier{c.name}.Sanitize()
		if c.typ == star.Money {
			parts[i] = "(" + id + " * 100)::bigint"
		} else {
			parts[i] = id
		}
	}
	return strings.Join(parts, ", ")
}

// resultFormats asks for every column of selectList(t) in binary.
func resultFormats(t star.Table) pgx.QueryResultFormats {
	f := make(pgx.QueryResultFormats, len(columns(t)))
	for i := range f {
		f[i] = pgx.BinaryFormatCode
	}
	return f
}

// orderBy is the order tote writes a table's rows in: a fact's surrogate
// key, a dimension's key.
func orderBy(t star.Table) string {
	if t.Surrogate != "" {
		return pgx.Identifier{t.Surrogate}.Sanitize()
	}
	keys := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = pgx.Identifier{k}.Sanitize()
	}
	return strings.Join(keys, ", ")
}

// appendOrder is the order tote appends a table's rows in: a fact's by
// PartitionColumn, then as orderBy, so that the rows of one partition
// (a month of it) come together and one Parquet writer is open at a time
// (appendRows); a dimension's as orderBy. The column itself, not its
// month: the month's order is the day's, and the server sorts a date
// column without computing date_trunc of a timestamp for every row (the
// sort of a full publish's facts took about half the time; decision
// 0017).
func appendOrder(t star.Table) string {
	if t.Kind != star.Fact {
		return orderBy(t)
	}
	return pgx.Identifier{PartitionColumn}.Sanitize() + `, ` + orderBy(t)
}

// batchRows is how many rows go into one Arrow record: the most a
// publish holds in memory per table, besides what the Parquet writer
// buffers.
const batchRows = 16 * 1024

// rowReader is an array.RecordReader over a warehouse query's rows (a
// SELECT of selectList(t) with resultFormats(t)): each Next reads the
// next batchRows rows straight from the connection into Arrow builders,
// so a publish holds one record per table, not the table. It closes the
// rows when they end, on an error, or on Release.
type rowReader struct {
	refs   atomic.Int64
	rows   pgx.Rows
	t      star.Table
	cols   []column
	schema *arrow.Schema
	b      *array.RecordBuilder
	cur    arrow.RecordBatch
	err    error
	done   bool
	n      int64 // rows read so far
	// textBytes is, for each column, how many bytes of text the last
	// record held (zero for other types): what reserve gives the next.
	textBytes []int
}

func newRowReader(rows pgx.Rows, t star.Table, schema *arrow.Schema) *rowReader {
	r := &rowReader{rows: rows, t: t, cols: columns(t), schema: schema,
		b: array.NewRecordBuilder(memory.DefaultAllocator, schema)}
	r.textBytes = make([]int, len(r.cols))
	r.refs.Store(1)
	return r
}

func (r *rowReader) Retain() { r.refs.Add(1) }

func (r *rowReader) Release() {
	if r.refs.Add(-1) == 0 {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		r.rows.Close()
		r.b.Release()
	}
}

func (r *rowReader) Schema() *arrow.Schema { return r.schema }

func (r *rowReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch (array.RecordReader still requires it).
func (r *rowReader) Record() arrow.RecordBatch { return r.cur }

func (r *rowReader) Err() error { return r.err }

// Rows is the number of rows read so far.
func (r *rowReader) Rows() int64 { return r.n }

func (r *rowReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done {
		return false
	}
	var inRecord int
	for inRecord < batchRows && r.rows.Next() {
		if inRecord == 0 && r.n > 0 {
			r.reserve()
		}
		if err := r.append(r.rows.RawValues()); err != nil {
			r.fail(err)
			return false
		}
		r.n++
		inRecord++
	}
	if inRecord < batchRows {
		r.done = true
		r.rows.Close()
		if err := r.rows.Err(); err != nil {
			r.fail(fmt.Errorf("%s: read rows: %w", r.t.Name, err))
			return false
		}
	}
	if inRecord == 0 {
		return false
	}
	for i, c := range r.cols {
		if c.typ == star.Text {
			r.textBytes[i] = r.b.Field(i).(*array.StringBuilder).DataLen()
		}
	}
	r.cur = r.b.NewRecordBatch()
	return true
}

// reserve sizes the builders, empty after each record, for a record of
// batchRows rows, and each text column for as many bytes as it had in the
// last record: grown by doubling from nothing, as appending does, every
// buffer was allocated, copied and cleared several times per record. Only
// after a full record: the first grows as it goes, so that a small table
// (most dimensions, a batch's new versions) is not given buffers for
// batchRows rows.
func (r *rowReader) reserve() {
	r.b.Reserve(batchRows)
	for i, n := range r.textBytes {
		if n > 0 {
			r.b.Field(i).(*array.StringBuilder).ReserveData(n + n/8)
		}
	}
}

func (r *rowReader) fail(err error) {
	r.err = err
	r.done = true
	r.rows.Close()
}

// append decodes one row's binary values into the builders.
func (r *rowReader) append(vals [][]byte) error {
	if len(vals) != len(r.cols) {
		return fmt.Errorf("%s: row %d has %d columns, want %d", r.t.Name, r.n+1, len(vals), len(r.cols))
	}
	for i, c := range r.cols {
		v := vals[i]
		fb := r.b.Field(i)
		if v == nil {
			if !c.nullable {
				return fmt.Errorf("%s: row %d: column %s is NULL, which its Iceberg column does not allow", r.t.Name, r.n+1, c.name)
			}
			fb.AppendNull()
			continue
		}
		bad := func(what string) error {
			return fmt.Errorf("%s: row %d: column %s: %s (binary value %x)", r.t.Name, r.n+1, c.name, what, v)
		}
		switch c.typ {
		case star.Integer:
			if len(v) != 4 {
				return bad("not a 4-byte integer")
			}
			fb.(*array.Int32Builder).Append(int32(binary.BigEndian.Uint32(v)))
		case star.Date:
			if len(v) != 4 {
				return bad("not a 4-byte date")
			}
			d := int32(binary.BigEndian.Uint32(v))
			if d == math.MaxInt32 || d == math.MinInt32 {
				return bad("an infinite date, which Iceberg cannot hold")
			}
			fb.(*array.Date32Builder).Append(arrow.Date32(d + postgres.EpochDays))
		case star.BigInt, star.Money, star.Time, star.Timestamp:
			if len(v) != 8 {
				return bad("not an 8-byte value")
			}
			x := int64(binary.BigEndian.Uint64(v))
			switch c.typ {
			case star.BigInt:
				fb.(*array.Int64Builder).Append(x)
			case star.Money:
				fb.(*array.Decimal128Builder).Append(decimal128.FromI64(x))
			case star.Time:
				fb.(*array.Time64Builder).Append(arrow.Time64(x))
			case star.Timestamp:
				if x == math.MaxInt64 || x == math.MinInt64 {
					return bad("an infinite timestamp, which Iceberg cannot hold")
				}
				fb.(*array.TimestampBuilder).Append(arrow.Timestamp(x + postgres.EpochMicros))
			}
		case star.Text:
			fb.(*array.StringBuilder).BinaryBuilder.Append(v)
		case star.Boolean:
			if len(v) != 1 {
				return bad("not a 1-byte boolean")
			}
			fb.(*array.BooleanBuilder).Append(v[0] != 0)
		default:
			return bad("a type tote does not publish")
		}
	}
	return nil
}

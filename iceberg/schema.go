package iceberg

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/star"
)

// column is one column of a star table as Iceberg and the warehouse both
// hold it: the fact's surrogate key first, then the model's Columns.
type column struct {
	name     string
	typ      star.Type
	nullable bool
	comment  string
}

// columns returns t's columns in the Iceberg table's order.
func columns(t star.Table) []column {
	var out []column
	if t.Surrogate != "" {
		out = append(out, column{name: t.Surrogate, typ: star.Integer,
			comment: "The warehouse's surrogate key of this version: the versions of a batch are numbered after the largest."})
	}
	for _, c := range t.Columns {
		out = append(out, column{name: c.Name, typ: c.Type, nullable: c.Nullable, comment: c.Comment})
	}
	return out
}

// icebergType is the Iceberg type of each star type.
func icebergType(t star.Type) (iceberg.Type, error) {
	switch t {
	case star.Integer:
		return iceberg.PrimitiveTypes.Int32, nil
	case star.BigInt:
		return iceberg.PrimitiveTypes.Int64, nil
	case star.Text:
		return iceberg.PrimitiveTypes.String, nil
	case star.Money:
		return iceberg.DecimalTypeOf(10, 2), nil
	case star.Boolean:
		return iceberg.PrimitiveTypes.Bool, nil
	case star.Date:
		return iceberg.PrimitiveTypes.Date, nil
	case star.Time:
		return iceberg.PrimitiveTypes.Time, nil
	case star.Timestamp:
		return iceberg.PrimitiveTypes.Timestamp, nil
	}
	return nil, fmt.Errorf("no Iceberg type for %q", t)
}

// Schema is the Iceberg schema of star table t: field ids from 1 in
// column order, a column required where the warehouse's is NOT NULL, the
// model's comments as docs.
func Schema(t star.Table) (*iceberg.Schema, error) {
	cols := columns(t)
	fields := make([]iceberg.NestedField, len(cols))
	for i, c := range cols {
		typ, err := icebergType(c.typ)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name, c.name, err)
		}
		fields[i] = iceberg.NestedField{ID: i + 1, Name: c.name, Type: typ, Required: !c.nullable, Doc: c.comment}
	}
	return iceberg.NewSchema(0, fields...), nil
}

// PartitionColumn is the column a fact's Iceberg table is partitioned by,
// by month: the day its source row was created, which every version of a
// row shares, so that a reader's date range on created_date skips the
// other months' files and a row's versions stay together.
const PartitionColumn = "created_date"

// partitionSpec is a fact's month(created_date) spec, or no partitions for
// a dimension.
func partitionSpec(t star.Table, sc *iceberg.Schema) (*iceberg.PartitionSpec, error) {
	if t.Kind != star.Fact {
		return iceberg.UnpartitionedSpec, nil
	}
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(PartitionColumn, PartitionColumn+"_month", iceberg.MonthTransform{}, sc, nil))
	if err != nil {
		return nil, fmt.Errorf("%s: partition spec: %w", t.Name, err)
	}
	return &spec, nil
}

// selectList is the SELECT list that reads t's columns from the warehouse
// as the Go values the Arrow builders take: money as cents, a date as days
// since 1970-01-01, a time as microseconds since midnight.
func selectList(t star.Table) string {
	cols := columns(t)
	parts := make([]string, len(cols))
	for i, c := range cols {
		id := pgx.Identifier{c.name}.Sanitize()
		switch c.typ {
		case star.Money:
			parts[i] = "(" + id + " * 100)::bigint"
		case star.Date:
			parts[i] = "(" + id + " - DATE '1970-01-01')"
		case star.Time:
			parts[i] = "(extract(epoch FROM " + id + ") * 1000000)::bigint"
		case star.Timestamp:
			parts[i] = "(extract(epoch FROM " + id + ") * 1000000)::bigint"
		default:
			parts[i] = id
		}
	}
	return strings.Join(parts, ", ")
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

// batchRows is how many rows go into one Arrow record.
const batchRows = 64 * 1024

// readRecords runs query (whose SELECT list is selectList(t)) and returns
// its rows as Arrow records of the Iceberg table's Arrow schema, the
// number of rows, and the largest surrogate key of a fact's rows. The
// caller releases the records.
func readRecords(rows pgx.Rows, t star.Table, sc *iceberg.Schema) (_ *arrow.Schema, _ []arrow.RecordBatch, n, maxKey int64, err error) {
	defer rows.Close()
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s: arrow schema: %w", t.Name, err)
	}
	cols := columns(t)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	var recs []arrow.RecordBatch
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i, c := range cols {
		switch c.typ {
		case star.Integer, star.Date:
			ptrs[i] = new(*int32)
		case star.BigInt, star.Money, star.Time, star.Timestamp:
			ptrs[i] = new(*int64)
		case star.Text:
			ptrs[i] = new(*string)
		case star.Boolean:
			ptrs[i] = new(*bool)
		}
	}
	copy(vals, ptrs)
	var inRecord int64
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			release()
			return nil, nil, 0, 0, fmt.Errorf("%s: read row %d: %w", t.Name, n+1, err)
		}
		for i, c := range cols {
			fb := b.Field(i)
			switch p := ptrs[i].(type) {
			case **int32:
				if *p == nil {
					fb.AppendNull()
				} else if c.typ == star.Date {
					fb.(*array.Date32Builder).Append(arrow.Date32(**p))
				} else {
					fb.(*array.Int32Builder).Append(**p)
				}
			case **int64:
				switch {
				case *p == nil:
					fb.AppendNull()
				case c.typ == star.Money:
					fb.(*array.Decimal128Builder).Append(decimal128.FromI64(**p))
				case c.typ == star.Time:
					fb.(*array.Time64Builder).Append(arrow.Time64(**p))
				case c.typ == star.Timestamp:
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(**p))
				default:
					fb.(*array.Int64Builder).Append(**p)
				}
			case **string:
				if *p == nil {
					fb.AppendNull()
				} else {
					fb.(*array.StringBuilder).Append(**p)
				}
			case **bool:
				if *p == nil {
					fb.AppendNull()
				} else {
					fb.(*array.BooleanBuilder).Append(**p)
				}
			}
		}
		if t.Surrogate != "" {
			if k := int64(**ptrs[0].(**int32)); k > maxKey {
				maxKey = k
			}
		}
		n++
		inRecord++
		if inRecord == batchRows {
			recs = append(recs, b.NewRecordBatch())
			inRecord = 0
		}
	}
	if err := rows.Err(); err != nil {
		release()
		return nil, nil, 0, 0, fmt.Errorf("%s: read rows: %w", t.Name, err)
	}
	if inRecord > 0 {
		recs = append(recs, b.NewRecordBatch())
	}
	return as, recs, n, maxKey, nil
}

package iceberg

import (
	"fmt"

	"github.com/apache/iceberg-go"

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

// partitionSpec is a fact's month(created_date) spec, a dimension's key
// ranges (truncate[rangeWidth] of its key, see dimension.go), or no
// partitions for the calendar.
func partitionSpec(t star.Table, sc *iceberg.Schema) (*iceberg.PartitionSpec, error) {
	if ranged(t) {
		spec, err := iceberg.NewPartitionSpecOpts(
			iceberg.AddPartitionFieldByName(t.Key[0], rangeField(t), iceberg.TruncateTransform{Width: rangeWidth}, sc, nil))
		if err != nil {
			return nil, fmt.Errorf("%s: partition spec: %w", t.Name, err)
		}
		return &spec, nil
	}
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

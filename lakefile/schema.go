package lakefile

import "github.com/parquet-go/parquet-go"

// Kind is how a column's values are kept in a lake file. The models map
// their PostgreSQL types to kinds; this package alone knows Parquet.
type Kind int

// The kinds of value the lake keeps.
const (
	Int32     Kind = iota // INT32
	Int64                 // INT64
	Cents                 // DECIMAL(10,2) on INT64: hundredths, exactly
	Bool                  // BOOLEAN
	Text                  // UTF-8 string: text, text dates, enums
	Date                  // DATE: days since 1970-01-01
	TimeOfDay             // TIME(µs): microseconds since midnight
	Timestamp             // TIMESTAMP(µs) without time zone
	Bytes                 // BYTE_ARRAY: opaque binary
)

// Column is one column of a lake file.
type Column struct {
	Name     string
	Kind     Kind
	Nullable bool
}

// Schema is the Parquet schema of a lake file of table name with columns
// cols.
func Schema(name string, cols []Column) *parquet.Schema {
	group := parquet.Group{}
	for _, c := range cols {
		var n parquet.Node
		switch c.Kind {
		case Int32:
			n = parquet.Int(32)
		case Int64:
			n = parquet.Int(64)
		case Cents:
			n = parquet.Decimal(2, 10, parquet.Int64Type)
		case Bool:
			n = parquet.Leaf(parquet.BooleanType)
		case Date:
			n = parquet.Date()
		case TimeOfDay:
			n = parquet.TimeAdjusted(parquet.Microsecond, false)
		case Timestamp:
			n = parquet.TimestampAdjusted(parquet.Microsecond, false)
		case Bytes:
			n = parquet.Leaf(parquet.ByteArrayType)
		default:
			n = parquet.String()
		}
		if c.Nullable {
			n = parquet.Optional(n)
		}
		group[c.Name] = n
	}
	return parquet.NewSchema(name, group)
}

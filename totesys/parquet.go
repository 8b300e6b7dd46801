package totesys

import (
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lakefile"
)

// XidColumn is the column raw files add to the model's: the 64-bit id of
// the source transaction that wrote the row version (its xmin, widened with
// its epoch). Raw files of tote's first releases lack it.
const XidColumn = "tote_xid"

// lakeKinds is how each type's values are kept in the raw zone: exactly.
var lakeKinds = map[Type]lakefile.Kind{
	Integer:         lakefile.Int32,
	Text:            lakefile.Text,
	Money:           lakefile.Cents,
	Boolean:         lakefile.Bool,
	Timestamp:       lakefile.Timestamp,
	PaymentTypeName: lakefile.Text,
	TransactionType: lakefile.Text,
}

// Schema is the Parquet schema of the table's raw files in the lake: the
// model's columns with their types kept exactly (see lakefile.Kind), then
// XidColumn.
func (t Table) Schema() *parquet.Schema { return t.SchemaCarrying(nil) }

// SchemaCarrying is Schema with more columns, each a nullable UTF-8
// string: the columns a source table has beyond the model, which
// extraction carries as their text form.
func (t Table) SchemaCarrying(extra []string) *parquet.Schema {
	cols := make([]lakefile.Column, 0, len(t.Columns)+1)
	for _, c := range t.Columns {
		cols = append(cols, lakefile.Column{Name: c.Name, Kind: lakeKinds[c.Type], Nullable: c.Nullable})
	}
	for _, name := range extra {
		cols = append(cols, lakefile.Column{Name: name, Kind: lakefile.Text, Nullable: true})
	}
	return lakefile.Schema(t.Name, append(cols, lakefile.Column{Name: XidColumn, Kind: lakefile.Int64}))
}

package totesys

import (
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lakefile"
)

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
// model's columns with their types kept exactly (see lakefile.Kind).
func (t Table) Schema() *parquet.Schema { return lakefile.Schema(t.Name, t.Columns, Column.lake) }

func (c Column) lake() lakefile.Column {
	return lakefile.Column{Name: c.Name, Kind: lakeKinds[c.Type], Nullable: c.Nullable}
}

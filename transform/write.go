package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
)

// outColumn says where a star column goes in a processed file's rows.
type outColumn struct {
	star.Column
	leaf int
	def  int // definition level of a present value: 1 if optional, else 0
}

// output makes the rows of one star table and writes them to its file in
// the processed batch.
type output struct {
	*lakefile.Writer
	table star.Table
	cols  map[string]outColumn

	// Whether the rows so far are in strictly increasing key order, which
	// the file's manifest entry records (lake.File.KeyOrdered): a first
	// load copies such a file straight into its table.
	key     []keyColumn
	last    []parquet.Value // the previous row's key
	ordered bool
}

// keyColumn is where a key column is in a row and how its values compare.
type keyColumn struct {
	leaf int
	typ  parquet.Type
}

func newOutput(batch *lake.BatchWriter, t star.Table) *output {
	schema := t.Schema()
	o := &output{Writer: lakefile.NewWriter(batch, t.Name, schema), table: t, cols: map[string]outColumn{}, ordered: true}
	for _, c := range t.Columns {
		leaf, _ := schema.Lookup(c.Name)
		o.cols[c.Name] = outColumn{Column: c, leaf: leaf.ColumnIndex, def: leaf.MaxDefinitionLevel}
	}
	for _, k := range t.Key {
		leaf, _ := schema.Lookup(k)
		o.key = append(o.key, keyColumn{leaf: leaf.ColumnIndex, typ: leaf.Node.Type()})
	}
	return o
}

// newRow returns an empty row of the table.
func (o *output) newRow() parquet.Row { return make(parquet.Row, len(o.table.Columns)) }

// set puts v in column name of row; a NULL v in a NOT NULL column is an error.
func (o *output) set(row parquet.Row, name string, v parquet.Value) error {
	c, ok := o.cols[name]
	if !ok {
		panic(fmt.Sprintf("transform: %s has no column %s", o.table.Name, name))
	}
	return c.put(row, v)
}

func (c outColumn) put(row parquet.Row, v parquet.Value) error {
	if v.IsNull() {
		if !c.Nullable {
			return tote.At(errors.New("NULL, which the star schema does not allow"), tote.Where{Column: c.Name})
		}
		row[c.leaf] = v.Level(0, 0, c.leaf)
		return nil
	}
	row[c.leaf] = v.Level(0, c.def, c.leaf)
	return nil
}

// write appends rows to the file. The values are copied: rows may be
// reused once write returns.
func (o *output) write(ctx context.Context, rows []parquet.Row) error {
	if o.ordered {
		o.checkOrder(rows)
	}
	if err := o.Write(ctx, rows); err != nil {
		return tote.At(err, tote.Where{Table: o.table.Name})
	}
	return nil
}

// checkOrder clears o.ordered at the first row whose key is not greater
// than the row's before it.
func (o *output) checkOrder(rows []parquet.Row) {
	for _, row := range rows {
		if o.last != nil && compareKey(o.key, o.last, row) >= 0 {
			o.ordered = false
			return
		}
		if o.last == nil {
			o.last = make([]parquet.Value, len(o.key))
		}
		for i, k := range o.key {
			o.last[i] = row[k.leaf].Clone()
		}
	}
}

// compareKey compares key values last (one per key column) with row's.
func compareKey(key []keyColumn, last []parquet.Value, row parquet.Row) int {
	for i, k := range key {
		if c := k.typ.Compare(last[i], row[k.leaf]); c != 0 {
			return c
		}
	}
	return 0
}

// Close records whether the rows were in key order and closes the file.
func (o *output) Close() error {
	o.SetKeyOrdered(o.ordered)
	return o.Writer.Close()
}

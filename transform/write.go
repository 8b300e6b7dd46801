package transform

import (
	"context"
	"fmt"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
)

// rowGroupRows bounds the rows buffered before a row group is written out.
const rowGroupRows = 64 * 1024

// outColumn says where a star column goes in a processed file's rows.
type outColumn struct {
	star.Column
	leaf int
	def  int // definition level of a present value: 1 if optional, else 0
}

// output writes one star table's rows to a Parquet file of the processed
// batch, created when the first row arrives: a table with no rows gets no
// file.
type output struct {
	batch  *lake.BatchWriter
	table  star.Table
	schema *parquet.Schema
	cols   map[string]outColumn
	file   *lake.FileWriter
	pw     *parquet.GenericWriter[any]
	rows   int64
	inRG   int64
}

func newOutput(batch *lake.BatchWriter, name string) *output {
	t, err := star.Lookup(name)
	if err != nil {
		panic(err) // the tables named in this package are the model's
	}
	o := &output{batch: batch, table: t, schema: t.Schema(), cols: map[string]outColumn{}}
	for _, c := range t.Columns {
		leaf, _ := o.schema.Lookup(c.Name)
		o.cols[c.Name] = outColumn{Column: c, leaf: leaf.ColumnIndex, def: leaf.MaxDefinitionLevel}
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
			return fmt.Errorf("%s is NULL", c.Name)
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
	if len(rows) == 0 {
		return nil
	}
	if o.file == nil {
		f, err := o.batch.Create(ctx, o.table.Name)
		if err != nil {
			return err
		}
		o.file = f
		o.pw = parquet.NewGenericWriter[any](f, o.schema,
			parquet.Compression(&parquet.Zstd),
			parquet.CreatedBy("tote", tote.Version(), ""),
		)
	}
	if _, err := o.pw.WriteRows(rows); err != nil {
		return fmt.Errorf("%s: write parquet: %w", o.table.Name, err)
	}
	o.rows += int64(len(rows))
	o.inRG += int64(len(rows))
	if o.inRG >= rowGroupRows {
		if err := o.pw.Flush(); err != nil {
			return fmt.Errorf("%s: write parquet: %w", o.table.Name, err)
		}
		o.inRG = 0
	}
	return nil
}

// close finishes the file, if there is one.
func (o *output) close() error {
	if o.file == nil {
		return nil
	}
	if err := o.pw.Close(); err != nil {
		return fmt.Errorf("%s: write parquet: %w", o.table.Name, err)
	}
	o.file.SetRows(o.rows)
	f := o.file
	o.file = nil
	return f.Close()
}

// abandon discards a file that was not closed (after an error).
func (o *output) abandon() {
	if o.file != nil {
		o.file.Abort()
		o.file = nil
	}
}

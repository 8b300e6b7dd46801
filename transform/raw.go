package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/totesys"
)

// readRows is how many raw rows are decoded at a time: the unit in which
// facts stream from a raw file to a processed one.
const readRows = 1024

// rawFile is one fetched raw file of a batch, checked against the source
// model.
type rawFile struct {
	table totesys.Table
	path  string
	file  *os.File
	pf    *parquet.File
	leaf  map[string]int // model column name → index in a row
	width int            // values per row
	buf   []parquet.Row
}

// openRaw fetches file f of raw batch m (checking it against the manifest)
// and checks that it holds the columns of table with the types extraction
// writes.
func openRaw(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, table totesys.Table) (*rawFile, error) {
	file, err := lk.Fetch(ctx, m, f)
	if err != nil {
		return nil, err
	}
	r := &rawFile{table: table, path: f.Path, file: file}
	if err := r.check(f); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *rawFile) check(f lake.File) error {
	pf, err := parquet.OpenFile(r.file, f.Bytes, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("%s: not a readable Parquet file: %w", f.Path, err)
	}
	if pf.NumRows() != f.Rows {
		return fmt.Errorf("%s: %w: the file has %d rows, the manifest says %d", f.Path, lake.ErrCorrupt, pf.NumRows(), f.Rows)
	}
	want := extract.RawSchema(r.table)
	schema := pf.Schema()
	r.pf, r.width, r.leaf = pf, len(schema.Columns()), map[string]int{}
	for _, c := range r.table.Columns {
		leaf, ok := schema.Lookup(c.Name)
		if !ok {
			return fmt.Errorf("%s: column %s is missing", f.Path, c.Name)
		}
		expected, _ := want.Lookup(c.Name)
		if got, wanted := leaf.Node.Type().Kind(), expected.Node.Type().Kind(); got != wanted || leaf.Node.Repeated() {
			return fmt.Errorf("%s: column %s is %s, extraction writes %s", f.Path, c.Name, got, wanted)
		}
		r.leaf[c.Name] = leaf.ColumnIndex
	}
	return nil
}

func (r *rawFile) close() {
	_ = r.file.Close()
	_ = os.Remove(r.file.Name())
}

// each calls fn with the file's rows, readRows at a time, in file order.
// The rows and their values are valid only during the call.
func (r *rawFile) each(ctx context.Context, fn func(rows []parquet.Row) error) error {
	if r.buf == nil {
		r.buf = make([]parquet.Row, readRows)
	}
	for _, rg := range r.pf.RowGroups() {
		if err := r.eachInGroup(ctx, rg, fn); err != nil {
			return err
		}
	}
	return nil
}

func (r *rawFile) eachInGroup(ctx context.Context, rg parquet.RowGroup, fn func(rows []parquet.Row) error) error {
	rows := rg.Rows()
	defer rows.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := rows.ReadRows(r.buf)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: read Parquet: %w", r.path, err)
		}
		for _, row := range r.buf[:n] {
			if len(row) != r.width {
				return fmt.Errorf("%s: %w: a row has %d values, the schema %d columns", r.path, lake.ErrCorrupt, len(row), r.width)
			}
		}
		if n > 0 {
			if ferr := fn(r.buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// rawRow reads the values of one raw row by column name.
type rawRow struct {
	f   *rawFile
	row parquet.Row
}

func (r *rawFile) at(row parquet.Row) rawRow { return rawRow{r, row} }

func (r rawRow) value(name string) parquet.Value { return r.row[r.f.leaf[name]] }

func (r rawRow) id() int32 { return r.value(r.f.table.Key()).Int32() }

func (r rawRow) int32(name string) int32 { return r.value(name).Int32() }

func (r rawRow) lastUpdated() time.Time {
	return time.UnixMicro(r.value(totesys.LastUpdated).Int64()).UTC()
}

// text copies a text value, so that it outlives the row.
func (r rawRow) text(name string) string { return string(r.value(name).ByteArray()) }

// optText copies a nullable text value.
func (r rawRow) optText(name string) *string {
	v := r.value(name)
	if v.IsNull() {
		return nil
	}
	s := string(v.ByteArray())
	return &s
}

// required checks that the row has no NULL in a column the model declares
// NOT NULL.
func (r rawRow) required() error {
	for _, c := range r.f.table.Columns {
		if !c.Nullable && r.value(c.Name).IsNull() {
			return fmt.Errorf("%s %d: %s is NULL, which the source does not allow", r.f.table.Name, r.id(), c.Name)
		}
	}
	return nil
}

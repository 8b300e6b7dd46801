package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/totesys"
)

// readRows is how many raw rows are decoded at a time: the unit in which
// facts stream from a raw file to a processed one.
const readRows = 1024

// rawFile is one fetched raw file of a batch, checked against the source
// model.
type rawFile struct {
	table totesys.Table
	r     *lakefile.Reader
	leaf  map[string]int // model column name → index in a row
	xid   int            // index of totesys.XidColumn in a row; -1 if the file has none
	id    int            // index of the key column
	// notNull are the indexes of the NOT NULL columns, with their names.
	notNull []indexedColumn
	buf     []parquet.Row
}

// indexedColumn is a column's name and index in a row.
type indexedColumn struct {
	name string
	leaf int
}

// openRaw fetches file f of raw batch m (checking it against the manifest)
// and checks that it holds the columns of table with the types extraction
// writes.
func openRaw(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, table totesys.Table) (_ *rawFile, err error) {
	defer func() { err = tote.At(err, tote.Where{Table: table.Name}) }()
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return nil, err
	}
	rf := &rawFile{table: table, r: r, leaf: map[string]int{}, xid: -1}
	want, schema := table.Schema(), r.Schema()
	// Raw files of tote's first releases lack the transaction id.
	if leaf, ok := schema.Lookup(totesys.XidColumn); ok {
		if leaf.Node.Type().Kind() != parquet.Int64 || leaf.Node.Repeated() || leaf.Node.Optional() {
			r.Close()
			return nil, fmt.Errorf("%s: column %s is %s, extraction writes a required INT64", f.Path, totesys.XidColumn, leaf.Node.Type())
		}
		rf.xid = leaf.ColumnIndex
	}
	for _, c := range table.Columns {
		leaf, ok := schema.Lookup(c.Name)
		if !ok {
			r.Close()
			return nil, fmt.Errorf("%s: column %s is missing", f.Path, c.Name)
		}
		expected, _ := want.Lookup(c.Name)
		if got, wanted := leaf.Node.Type().Kind(), expected.Node.Type().Kind(); got != wanted || leaf.Node.Repeated() {
			r.Close()
			return nil, fmt.Errorf("%s: column %s is %s, extraction writes %s", f.Path, c.Name, got, wanted)
		}
		rf.leaf[c.Name] = leaf.ColumnIndex
		if !c.Nullable {
			rf.notNull = append(rf.notNull, indexedColumn{c.Name, leaf.ColumnIndex})
		}
	}
	rf.id = rf.leaf[table.Key()]
	return rf, nil
}

func (r *rawFile) close() { r.r.Close() }

// each calls fn with the file's rows, readRows at a time, in file order,
// from the first row however often it is called. The rows and their values
// are valid only during the call.
func (r *rawFile) each(ctx context.Context, fn func(rows []parquet.Row) error) error {
	if r.buf == nil {
		r.buf = make([]parquet.Row, readRows)
	}
	r.r.Rewind()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.r.Read(r.buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r.r.Path(), err)
		}
		if err := fn(r.buf[:n]); err != nil {
			return err
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

func (r rawRow) id() int32 { return r.row[r.f.id].Int32() }

// xid is the 64-bit id of the transaction that wrote the row version; 0 if
// the file does not say (tote's first releases) or the row is frozen.
func (r rawRow) xid() int64 {
	if r.f.xid < 0 {
		return 0
	}
	return r.row[r.f.xid].Int64()
}

func (r rawRow) lastUpdated() time.Time {
	return time.UnixMicro(r.value(totesys.LastUpdated).Int64()).UTC()
}

// where is the row's table, id and version, for errors.
func (r rawRow) where() tote.Where {
	return tote.Where{Table: r.f.table.Name, ID: int64(r.id()), Version: r.lastUpdated()}
}

// required checks that the row has no NULL in a column the model declares
// NOT NULL.
func (r rawRow) required() error {
	for _, c := range r.f.notNull {
		if r.row[c.leaf].IsNull() {
			return tote.At(errors.New("NULL, which the source does not allow"), tote.Where{Column: c.name})
		}
	}
	return nil
}

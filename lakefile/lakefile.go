// Package lakefile owns the Parquet files of the lake's zones: writing one
// table's rows into a batch (zstd, in bounded row groups, the file created
// only when rows arrive) and reading a committed file back, checked against
// its batch's manifest.
//
// It knows what a Parquet file of the lake is, not what it holds: the
// schemas are the models' (totesys.Table.Schema for the raw zone,
// star.Table.Schema for the processed zone), the rows are the stages', and
// where a file goes and how its bytes are checked is the lake's.
package lakefile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
)

// RowGroupRows bounds the rows a Writer buffers before it writes a row
// group out: it is what keeps memory flat however large a table is.
const RowGroupRows = 64 * 1024

// Writer writes one table's rows to a Parquet file of a lake batch. The
// file is created when the first rows arrive, so a table with no rows gets
// no file. A Writer is not safe for concurrent use.
type Writer struct {
	batch  *lake.BatchWriter
	table  string
	schema *parquet.Schema
	file   *lake.FileWriter
	pw     *parquet.GenericWriter[any]
	rows   int64
	inRG   int64 // rows in the current row group
	bytes  int64
	sorted bool
}

// NewWriter returns a writer of table's file in batch, with schema.
func NewWriter(batch *lake.BatchWriter, table string, schema *parquet.Schema) *Writer {
	return &Writer{batch: batch, table: table, schema: schema}
}

// Write appends rows to the file. The values are copied: rows may be
// reused once Write returns.
func (w *Writer) Write(ctx context.Context, rows []parquet.Row) error {
	if len(rows) == 0 {
		return nil
	}
	if w.file == nil {
		f, err := w.batch.Create(ctx, w.table)
		if err != nil {
			return err
		}
		w.file = f
		w.pw = parquet.NewGenericWriter[any](f, w.schema,
			parquet.Compression(&parquet.Zstd),
			parquet.CreatedBy("tote", tote.Version(), ""),
		)
	}
	if _, err := w.pw.WriteRows(rows); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	w.rows += int64(len(rows))
	w.inRG += int64(len(rows))
	if w.inRG >= RowGroupRows {
		if err := w.pw.Flush(); err != nil {
			return fmt.Errorf("write parquet: %w", err)
		}
		w.inRG = 0
	}
	return nil
}

// Rows is the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Bytes is the size of the file, once closed; 0 if it has no rows.
func (w *Writer) Bytes() int64 { return w.bytes }

// SetKeyOrdered records that the rows written are in strictly increasing
// order of the table's key (lake.File.KeyOrdered); call it before Close.
func (w *Writer) SetKeyOrdered(ordered bool) { w.sorted = ordered }

// Close finishes the file, if there is one, so that the batch may commit
// it.
func (w *Writer) Close() error {
	if w.file == nil {
		return nil
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	w.file.SetRows(w.rows)
	w.file.SetKeyOrdered(w.sorted)
	f := w.file
	w.file = nil
	if err := f.Close(); err != nil {
		return err
	}
	w.bytes = f.Bytes()
	return nil
}

// Abandon discards a file that was not closed, after an error; it does
// nothing after Close. Deferring it right after NewWriter is safe.
func (w *Writer) Abandon() {
	if w.file != nil {
		w.file.Abort()
		w.file = nil
	}
}

// Reader reads a committed file back, row group after row group. The lake
// checks its bytes against the manifest as it is fetched; the Reader
// checks that it is Parquet, that every row has a value for each column,
// and that it holds as many rows as the manifest says. A Reader is not
// safe for concurrent use.
type Reader struct {
	path   string
	tmp    *os.File
	file   *parquet.File
	want   int64 // rows, as the manifest says
	width  int   // values per row
	groups []parquet.RowGroup
	group  int          // next row group
	rows   parquet.Rows // of the current row group
	read   int64
}

// Open fetches file f of batch m from the lake and opens it. The caller
// must Close the reader.
func Open(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File) (*Reader, error) {
	tmp, err := lk.Fetch(ctx, m, f)
	if err != nil {
		return nil, err
	}
	r := &Reader{path: f.Path, tmp: tmp, want: f.Rows}
	pf, err := parquet.OpenFile(tmp, f.Bytes, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: not a readable Parquet file: %w", f.Path, err)
	}
	if pf.NumRows() != f.Rows {
		r.Close()
		return nil, fmt.Errorf("%s: %w: the file has %d rows, the manifest says %d", f.Path, lake.ErrCorrupt, pf.NumRows(), f.Rows)
	}
	r.file, r.groups, r.width = pf, pf.RowGroups(), len(pf.Schema().Columns())
	return r, nil
}

// Path is the file's key in the lake, for messages.
func (r *Reader) Path() string { return r.path }

// Schema is the file's Parquet schema.
func (r *Reader) Schema() *parquet.Schema { return r.file.Schema() }

// Read reads the next rows into buf and returns how many it read. At the
// end of the file it returns io.EOF, or an error wrapping lake.ErrCorrupt
// if the file did not hold the rows its manifest says. The rows' values
// are valid until the next call. Its errors name the row, not the file:
// the caller, which reads on behalf of something (a COPY, a transform),
// says which file.
func (r *Reader) Read(buf []parquet.Row) (int, error) {
	for {
		if r.rows == nil {
			if r.group == len(r.groups) {
				if r.read != r.want {
					return 0, fmt.Errorf("%w: read %d rows, the manifest says %d", lake.ErrCorrupt, r.read, r.want)
				}
				return 0, io.EOF
			}
			r.rows = r.groups[r.group].Rows()
			r.group++
		}
		n, err := r.rows.ReadRows(buf)
		if errors.Is(err, io.EOF) {
			_ = r.rows.Close()
			r.rows, err = nil, nil
		}
		if err != nil {
			return 0, fmt.Errorf("row %d: read Parquet: %w", r.read+1, err)
		}
		for _, row := range buf[:n] {
			if len(row) != r.width {
				return 0, fmt.Errorf("row %d: %w: it has %d values, the schema %d columns", r.read+1, lake.ErrCorrupt, len(row), r.width)
			}
		}
		r.read += int64(n)
		if n > 0 {
			return n, nil
		}
	}
}

// Rewind starts reading again from the first row.
func (r *Reader) Rewind() {
	if r.rows != nil {
		_ = r.rows.Close()
		r.rows = nil
	}
	r.group, r.read = 0, 0
}

// Close releases the file and removes its fetched copy.
func (r *Reader) Close() {
	if r.rows != nil {
		_ = r.rows.Close()
		r.rows = nil
	}
	_ = r.tmp.Close()
	_ = os.Remove(r.tmp.Name())
}

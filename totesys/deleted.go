package totesys

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
)

// A raw batch holds, beside a file of row versions per source table, the
// extraction's own files, under table names no totesys table has; the
// manifest lists and checksums them like the others.
const (
	// IDsFile holds the ids live in the source at the batch's snapshot, of
	// each table whose set changed: the extraction's own record (package
	// extract reads and writes it), which nothing else needs.
	IDsFile = "tote_ids"
	// DeletedFile holds the batch's tombstones (DeletedSchema): one row per
	// source row that was live at the last extraction and is no longer in
	// the source.
	DeletedFile = "tote_deleted"
)

// ExtractionFile reports whether a raw batch's file of table is one of the
// extraction's own (IDsFile, DeletedFile) rather than a source table's row
// versions.
func ExtractionFile(table string) bool { return table == IDsFile || table == DeletedFile }

// The columns of DeletedFile.
const (
	deletedTable  = "source_table"
	deletedID     = "id"
	deletedSeenAt = "seen_at"
)

// DeletedSchema is the Parquet schema of a raw batch's DeletedFile: the
// source table, the deleted row's id, and seen_at, the source's clock
// (localtimestamp) in the snapshot that no longer has the row.
var DeletedSchema = lakefile.Schema(DeletedFile, []lakefile.Column{
	{Name: deletedTable, Kind: lakefile.Text},
	{Name: deletedID, Kind: lakefile.Int32},
	{Name: deletedSeenAt, Kind: lakefile.Timestamp},
})

// Tombstone is a source row that an extraction found deleted: live at the
// extraction before, gone from the source in the snapshot of this one.
type Tombstone struct {
	Table string
	ID    int32
	// SeenAt is the source's clock (localtimestamp) in the snapshot that
	// no longer has the row.
	SeenAt time.Time
}

// Row is the tombstone as a row of DeletedSchema.
func (t Tombstone) Row() parquet.Row {
	values := map[string]parquet.Value{
		deletedTable:  parquet.ByteArrayValue([]byte(t.Table)),
		deletedID:     parquet.Int32Value(t.ID),
		deletedSeenAt: parquet.Int64Value(t.SeenAt.UnixMicro()),
	}
	row := make(parquet.Row, len(values))
	for name, v := range values {
		leaf, _ := DeletedSchema.Lookup(name)
		row[leaf.ColumnIndex] = v.Level(0, 0, leaf.ColumnIndex)
	}
	return row
}

// RowReader is a DeletedFile being read: a lakefile.Reader.
type RowReader interface {
	Schema() *parquet.Schema
	Read(buf []parquet.Row) (int, error)
}

// ReadTombstones reads every tombstone of a DeletedFile, in file order. A
// file of another schema, or a tombstone of a table the model does not
// have, is an error wrapping lake.ErrCorrupt (the caller names the file).
func ReadTombstones(r RowReader) ([]Tombstone, error) {
	if !parquet.SameNodes(r.Schema(), DeletedSchema) {
		return nil, fmt.Errorf("%w: its schema is not that of %s", lake.ErrCorrupt, DeletedFile)
	}
	leaf := func(name string) int {
		l, _ := r.Schema().Lookup(name)
		return l.ColumnIndex
	}
	table, id, seenAt := leaf(deletedTable), leaf(deletedID), leaf(deletedSeenAt)
	var out []Tombstone
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			t := Tombstone{Table: string(row[table].ByteArray()), ID: row[id].Int32(),
				SeenAt: time.UnixMicro(row[seenAt].Int64()).UTC()}
			if _, err := Lookup(t.Table); err != nil {
				return nil, fmt.Errorf("%w: tombstone %d: %w", lake.ErrCorrupt, len(out)+1, err)
			}
			out = append(out, t)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

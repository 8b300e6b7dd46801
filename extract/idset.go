package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/totesys"
)

// The extraction's own files in a raw batch, beside the source tables'
// rows (see totesys.ExtractionFile).
const (
	// IDsTable holds, for each source table whose set of live ids changed
	// in the batch, the ids live in the source at the batch's snapshot: one
	// row (source_table, ids) per table, ids a serialized 32-bit roaring
	// bitmap of the ids as uint32. A State says in which batch each table's
	// current set is (TableState.IDs).
	IDsTable = totesys.IDsFile
	// DeletedTable holds the batch's tombstones, in the raw zone's model
	// (totesys.DeletedSchema), which the transform reads too.
	DeletedTable = totesys.DeletedFile
)

// Column names of IDsTable.
const (
	colSourceTable = "source_table"
	colIDs         = "ids"
)

var idsSchema = lakefile.Schema(IDsTable, []lakefile.Column{
	{Name: colSourceTable, Kind: lakefile.Text},
	{Name: colIDs, Kind: lakefile.Bytes},
})

// Ids are totesys integers (int4); a set holds each as its two's
// complement uint32, so positive ids are themselves. A range of ids
// aligned on a power of two never straddles zero, so it is one interval
// of members too.

func member(id int32) uint32 { return uint32(id) }

func idOf(m uint32) int32 { return int32(m) }

// encodeIDs serializes a set in roaring's portable format, runs compressed.
func encodeIDs(s *roaring.Bitmap) ([]byte, error) {
	s.RunOptimize()
	return s.ToBytes()
}

// decodeIDs reads a set serialized by encodeIDs. Anything else, trailing
// bytes included, is an error; a decoded set is checked whole
// (Bitmap.Validate) before it is used.
func decodeIDs(data []byte) (*roaring.Bitmap, error) {
	s := roaring.New()
	r := bytes.NewReader(data)
	if _, err := s.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("not a set of ids: %w", err)
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("not a set of ids: %d bytes after its end", r.Len())
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("not a set of ids: %w", err)
	}
	return s, nil
}

// row builds a row of schema from values by column name.
func row(schema *parquet.Schema, values map[string]parquet.Value) parquet.Row {
	out := make(parquet.Row, len(values))
	for name, v := range values {
		leaf, _ := schema.Lookup(name)
		out[leaf.ColumnIndex] = v.Level(0, 0, leaf.ColumnIndex)
	}
	return out
}

// writeIDSets writes the sets (by source table) as the batch's IDsTable
// file, in the model's table order, and returns its size.
func writeIDSets(ctx context.Context, batch *lake.BatchWriter, sets map[string]*roaring.Bitmap) (int64, error) {
	if len(sets) == 0 {
		return 0, nil
	}
	w := lakefile.NewWriter(batch, IDsTable, idsSchema)
	defer w.Abandon()
	var rows []parquet.Row
	for _, t := range totesys.Tables {
		s, ok := sets[t.Name]
		if !ok {
			continue
		}
		data, err := encodeIDs(s)
		if err != nil {
			return 0, tote.At(fmt.Errorf("encode its live ids: %w", err), tote.Where{Table: t.Name})
		}
		rows = append(rows, row(idsSchema, map[string]parquet.Value{
			colSourceTable: parquet.ByteArrayValue([]byte(t.Name)),
			colIDs:         parquet.ByteArrayValue(data),
		}))
	}
	if err := w.Write(ctx, rows); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Bytes(), nil
}

// loadIDSets reads the sets of live ids that s records (TableState.IDs),
// by source table. A table whose state names none (a lake written before
// tote kept them) is absent from the result.
func loadIDSets(ctx context.Context, lk *lake.Lake, s *State) (map[string]*roaring.Bitmap, error) {
	out := map[string]*roaring.Bitmap{}
	if s == nil {
		return out, nil
	}
	bySeq := map[uint64][]string{}
	for _, t := range totesys.Tables {
		if seq := s.Tables[t.Name].IDs; seq != 0 {
			bySeq[seq] = append(bySeq[seq], t.Name)
		}
	}
	seqs := make([]uint64, 0, len(bySeq))
	for seq := range bySeq {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		m, err := lk.Batch(ctx, lake.Raw, fmt.Sprint(seq))
		if err != nil {
			return nil, fmt.Errorf("read the live ids of %v: %w", bySeq[seq], err)
		}
		sets, err := readIDSets(ctx, lk, m)
		if err != nil {
			return nil, tote.At(err, tote.Where{Batch: m.ID})
		}
		for _, table := range bySeq[seq] {
			set, ok := sets[table]
			if !ok {
				return nil, tote.At(fmt.Errorf("%w: the extraction state says the batch holds the table's live ids, and its %s file does not",
					lake.ErrCorrupt, IDsTable), tote.Where{Batch: m.ID, Table: table})
			}
			out[table] = set
		}
	}
	return out, nil
}

// readIDSets reads the sets of live ids in raw batch m, by source table;
// none if the batch has no IDsTable file.
func readIDSets(ctx context.Context, lk *lake.Lake, m lake.Manifest) (map[string]*roaring.Bitmap, error) {
	out := map[string]*roaring.Bitmap{}
	i := slices.IndexFunc(m.Files, func(f lake.File) bool { return f.Table == IDsTable })
	if i < 0 {
		return out, nil
	}
	f := m.Files[i]
	err := eachOwnRow(ctx, lk, m, f, idsSchema, func(v map[string]parquet.Value) error {
		table := string(v[colSourceTable].ByteArray())
		if _, err := totesys.Lookup(table); err != nil {
			return fmt.Errorf("%w: %s", lake.ErrCorrupt, err)
		}
		if _, dup := out[table]; dup {
			return fmt.Errorf("%w: a second set of ids of table %s", lake.ErrCorrupt, table)
		}
		set, err := decodeIDs(v[colIDs].ByteArray())
		if err != nil {
			return tote.At(fmt.Errorf("%w: %w", lake.ErrCorrupt, err), tote.Where{Table: table})
		}
		out[table] = set
		return nil
	})
	return out, err
}

// writeTombstones writes the batch's DeletedTable file: the ids of each
// source table, seen gone at seenAt. It returns the file's size.
func writeTombstones(ctx context.Context, batch *lake.BatchWriter, deleted map[string][]int32, seenAt time.Time) (int64, error) {
	w := lakefile.NewWriter(batch, DeletedTable, totesys.DeletedSchema)
	defer w.Abandon()
	for _, t := range totesys.Tables {
		ids := slices.Clone(deleted[t.Name])
		slices.Sort(ids)
		rows := make([]parquet.Row, 0, min(len(ids), chunkRows))
		for i, id := range ids {
			rows = append(rows, totesys.Tombstone{Table: t.Name, ID: id, SeenAt: seenAt}.Row())
			if len(rows) == chunkRows || i == len(ids)-1 {
				if err := w.Write(ctx, rows); err != nil {
					return 0, err
				}
				rows = rows[:0]
			}
		}
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Bytes(), nil
}

// ReadTombstones returns the tombstones of raw batch m, by source table in
// the model's order, then by id; none if the batch has no DeletedTable
// file.
func ReadTombstones(ctx context.Context, lk *lake.Lake, m lake.Manifest) ([]totesys.Tombstone, error) {
	i := slices.IndexFunc(m.Files, func(f lake.File) bool { return f.Table == DeletedTable })
	if i < 0 {
		return nil, nil
	}
	r, err := lakefile.Open(ctx, lk, m, m.Files[i])
	if err != nil {
		return nil, tote.At(err, tote.Where{Batch: m.ID})
	}
	defer r.Close()
	out, err := totesys.ReadTombstones(r)
	if err != nil {
		return nil, tote.At(fmt.Errorf("%s: %w", r.Path(), err), tote.Where{Batch: m.ID})
	}
	return out, nil
}

// LiveIDs returns the ids live in the source as of the extraction that
// recorded s, by source table, as the lake holds them (see IDsTable); a
// table whose set the lake does not hold yet (written before tote kept
// them, until the next extraction) is absent.
func LiveIDs(ctx context.Context, lk *lake.Lake, s State) (map[string]*roaring.Bitmap, error) {
	return loadIDSets(ctx, lk, &s)
}

// eachOwnRow calls fn with the values, by column name, of every row of f,
// one of the extraction's own files, after checking that its schema is
// want's.
func eachOwnRow(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, want *parquet.Schema,
	fn func(map[string]parquet.Value) error) error {
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return err
	}
	defer r.Close()
	fields := r.Schema().Fields()
	if !parquet.SameNodes(r.Schema(), want) {
		return fmt.Errorf("%s: %w: its schema is not that of %s", f.Path, lake.ErrCorrupt, want.Name())
	}
	buf := make([]parquet.Row, 256)
	values := map[string]parquet.Value{}
	for {
		n, err := r.Read(buf)
		for _, rw := range buf[:n] {
			for i, field := range fields {
				values[field.Name()] = rw[i]
			}
			if err := fn(values); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
}

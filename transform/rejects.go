package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
)

// Resolution says that a later version of a rejected row transformed.
type Resolution struct {
	Table    string `json:"table"`
	ID       int64  `json:"id"`
	RawBatch string `json:"raw_batch"` // the raw batch of the version that transformed
}

// rowKey names a source row.
type rowKey struct {
	Table string `json:"table"`
	ID    int64  `json:"id"`
}

// quarantine collects a batch's rejects and resolutions. In strict mode it
// takes none: a bad value fails the batch, as it did before quarantine.
type quarantine struct {
	mu       sync.Mutex // tables are transformed at once
	strict   bool
	rawBatch string
	open     map[rowKey]bool // rejected before this batch, not yet resolved
	found    []tote.Reject
	resolved []Resolution
}

func newQuarantine(strict bool, rawBatch string, open []rowKey) *quarantine {
	q := &quarantine{strict: strict, rawBatch: rawBatch, open: map[rowKey]bool{}}
	for _, k := range open {
		q.open[k] = true
	}
	return q
}

// take reports whether err is about one value of one row, and if so, and
// not in strict mode, records the row as rejected: the caller skips it and
// goes on. Any other error fails the batch.
func (q *quarantine) take(err error, xid int64) bool {
	var e *tote.Error
	if q.strict || !errors.As(err, &e) || e.Table == "" || e.ID == 0 || e.Column == "" {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	reason := e.Err.Error()
	if e.Value == nil {
		reason = strings.TrimPrefix(reason, "column "+e.Column+": ")
	}
	q.found = append(q.found, tote.Reject{Table: e.Table, SourceID: e.ID, Version: e.Version, SourceXmin: xid, Column: e.Column,
		Value: e.Value, Reason: reason, RawBatch: q.rawBatch})
	q.open[rowKey{e.Table, e.ID}] = true
	return true
}

// ok records that a version of table's row id transformed: an open reject
// of the row is resolved.
func (q *quarantine) ok(table string, id int64) {
	k := rowKey{table, int64(id)}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open[k] && !q.rejectedNow(k) {
		delete(q.open, k)
		q.resolved = append(q.resolved, Resolution{Table: table, ID: id, RawBatch: q.rawBatch})
	}
}

func (q *quarantine) rejectedNow(k rowKey) bool {
	return slices.ContainsFunc(q.found, func(r tote.Reject) bool { return r.Table == k.Table && r.SourceID == k.ID })
}

// openRows returns the rejects still open after the batch, for the state.
func (q *quarantine) openRows() []rowKey {
	out := make([]rowKey, 0, len(q.open))
	for k := range q.open {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b rowKey) int {
		if c := strings.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out
}

// write writes the batch's rejects file, if it has rejects or resolutions.
func (q *quarantine) write(ctx context.Context, out *lake.BatchWriter) error {
	if len(q.found) == 0 && len(q.resolved) == 0 {
		return nil
	}
	schema := star.Rejects.Schema()
	w := lakefile.NewWriter(out, lake.RejectsTable, schema)
	defer w.Abandon()
	var rows []parquet.Row
	add := func(values map[string]parquet.Value) {
		row := make(parquet.Row, len(schema.Columns()))
		for name, v := range values {
			leaf, _ := schema.Lookup(name)
			if v.IsNull() {
				row[leaf.ColumnIndex] = v.Level(0, 0, leaf.ColumnIndex)
			} else {
				row[leaf.ColumnIndex] = v.Level(0, leaf.MaxDefinitionLevel, leaf.ColumnIndex)
			}
		}
		rows = append(rows, row)
	}
	for _, r := range q.found {
		version := parquet.NullValue()
		if !r.Version.IsZero() {
			version = parquet.Int64Value(r.Version.UnixMicro())
		}
		add(map[string]parquet.Value{"kind": text(star.Rejected), "source_table": text(r.Table),
			"source_id": parquet.Int64Value(r.SourceID), "version": version, "source_xmin": parquet.Int64Value(r.SourceXmin & 0xFFFF_FFFF),
			"column_name": text(r.Column), "value": optText(r.Value), "reason": text(r.Reason), "raw_batch": text(r.RawBatch)})
	}
	for _, r := range q.resolved {
		add(map[string]parquet.Value{"kind": text(star.Resolved), "source_table": text(r.Table),
			"source_id": parquet.Int64Value(r.ID), "version": parquet.NullValue(), "source_xmin": parquet.Int64Value(0),
			"column_name": parquet.NullValue(), "value": parquet.NullValue(), "reason": parquet.NullValue(), "raw_batch": text(r.RawBatch)})
	}
	if err := w.Write(ctx, rows); err != nil {
		return fmt.Errorf("rejects: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("rejects: %w", err)
	}
	return nil
}

func text(s string) parquet.Value { return parquet.ByteArrayValue([]byte(s)) }

func optText(s *string) parquet.Value {
	if s == nil {
		return parquet.NullValue()
	}
	return text(*s)
}

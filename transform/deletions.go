package transform

import (
	"fmt"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
)

// Deletions. A raw batch's tombstones (totesys.DeletedFile) become, for
// each star table made from the tombstone's source table (facts and
// dimensions alike: star.Table.Source), a row of the processed batch's
// deletions file (star.Deletions): the table, the id, and when the
// deletion was seen, split into a date and a time as a fact's stamp is.
// The warehouse makes them into a fact's deletion version and a
// dimension's flag; the transform cannot make the deletion version itself,
// for it does not keep the last values of every fact row. A fact's
// deletion version refers to the day it was seen, so the calendar gets
// it. The tables State keeps mark the row deleted (see sourceRow), and a
// quarantined row that is deleted has nothing left to wait for: its reject
// is resolved.

// readTombstones reads the raw batch's tombstones, if it has any.
func (b *batch) readTombstones() error {
	if b.deleted == nil {
		return nil
	}
	r, err := lakefile.Open(b.ctx, b.lk, b.raw, *b.deleted)
	if err != nil {
		return err
	}
	defer r.Close()
	if b.tombstones, err = totesys.ReadTombstones(r); err != nil {
		return fmt.Errorf("%s: %w", r.Path(), err)
	}
	return nil
}

// writeDeletions writes the processed batch's deletions file: by star
// table in the model's order, then by id.
func (b *batch) writeDeletions() error {
	if len(b.tombstones) == 0 {
		return nil
	}
	schema := star.Deletions.Schema()
	leaf := func(name string) int {
		l, ok := schema.Lookup(name)
		if !ok {
			panic("transform: star.Deletions has no column " + name)
		}
		return l.ColumnIndex
	}
	table, id, date, clock := leaf("star_table"), leaf("id"), leaf("seen_date"), leaf("seen_time")
	w := lakefile.NewWriter(b.out, star.Deletions.Name, schema)
	defer w.Abandon()
	d := newDays()
	for _, t := range star.Tables {
		if t.Source == "" {
			continue
		}
		var rows []parquet.Row
		for _, tb := range b.tombstones {
			if tb.Table != t.Source {
				continue
			}
			day, us := splitMicros(tb.SeenAt.UnixMicro())
			row := make(parquet.Row, len(schema.Columns()))
			row[table] = parquet.ByteArrayValue([]byte(t.Name)).Level(0, 0, table)
			row[id] = parquet.Int32Value(tb.ID).Level(0, 0, id)
			row[date] = parquet.Int32Value(day).Level(0, 0, date)
			row[clock] = parquet.Int64Value(us).Level(0, 0, clock)
			rows = append(rows, row)
			if t.Kind == star.Fact {
				d.add(day)
				d.keep()
			}
		}
		slices.SortStableFunc(rows, func(x, y parquet.Row) int { return int(x[id].Int32()) - int(y[id].Int32()) })
		if err := w.Write(b.ctx, rows); err != nil {
			return tote.At(fmt.Errorf("deletions: %w", err), tote.Where{Table: t.Name})
		}
	}
	b.addDates(d)
	for _, tb := range b.tombstones {
		b.q.ok(tb.Table, int64(tb.ID))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("deletions: %w", err)
	}
	return nil
}

// deletedTables counts the rows of the deletions file by star table, for
// the batch's result.
func (b *batch) deletedTables() map[string]int64 {
	out := map[string]int64{}
	for _, tb := range b.tombstones {
		for _, t := range star.Tables {
			if t.Source == tb.Table {
				out[t.Name]++
			}
		}
	}
	return out
}

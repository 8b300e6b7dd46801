package transform

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
)

// batch is the transformation of one raw batch into one processed batch.
type batch struct {
	ctx   context.Context
	lk    *lake.Lake
	raw   lake.Manifest
	out   *lake.BatchWriter
	ref   *reference
	files map[string]lake.File // raw files by source table
	q     *quarantine
	// deleted is the raw batch's tombstones file, if it has one, and
	// tombstones what it holds, once read.
	deleted    *lake.File
	tombstones []totesys.Tombstone

	mu    sync.Mutex
	dates map[int32]bool // days the batch's rows refer to, for the calendar
}

func newBatch(ctx context.Context, lk *lake.Lake, raw lake.Manifest, out *lake.BatchWriter, prev State, strict bool) (*batch, error) {
	b := &batch{ctx: ctx, lk: lk, raw: raw, out: out, ref: newReference(prev),
		files: map[string]lake.File{}, dates: map[int32]bool{}, q: newQuarantine(strict, raw.ID, prev.OpenRejects)}
	for _, f := range raw.Files {
		if f.Table == totesys.DeletedFile {
			b.deleted = &f
			continue
		}
		if totesys.ExtractionFile(f.Table) {
			continue // the extraction's own record of the live ids
		}
		if _, err := totesys.Lookup(f.Table); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if _, dup := b.files[f.Table]; dup {
			return nil, fmt.Errorf("%s: %w: a second file of table %s", f.Path, lake.ErrCorrupt, f.Table)
		}
		b.files[f.Table] = f
	}
	return b, nil
}

// run writes the processed batch's files, one per star table with rows, as
// star.Tables says. The dimensions made from the current rows State keeps
// come first (cheap, and where the joins are checked), then the tables
// streamed from raw files, facts the largest, at once, then the deletions
// and the calendar of the days they all refer to.
func (b *batch) run() error {
	if err := b.readTombstones(); err != nil {
		return err
	}
	if err := b.readCurrent(); err != nil {
		return err
	}
	var streamed, calendars []star.Table
	for _, t := range star.Tables {
		switch {
		case t.Source == "":
			calendars = append(calendars, t)
		case t.Kind == star.Dimension && b.ref.tables[t.Source] != nil:
			if err := b.emit(t, b.fromCurrent); err != nil {
				return err
			}
		default:
			streamed = append(streamed, t)
		}
	}
	g, _ := errgroup.WithContext(b.ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, t := range streamed {
		fn := b.newest
		if t.Kind == star.Fact {
			fn = b.fact
		}
		g.Go(func() error { return b.emit(t, func(o *output) error { return b.stream(o, fn) }) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := b.writeDeletions(); err != nil {
		return err
	}
	for _, t := range calendars {
		if err := b.emit(t, b.calendar); err != nil {
			return err
		}
	}
	return b.q.write(b.ctx, b.out)
}

// emit writes star table t's file with fn.
func (b *batch) emit(t star.Table, fn func(o *output) error) error {
	o := newOutput(b.out, t)
	defer o.Abandon()
	if err := fn(o); err != nil {
		return err
	}
	return tote.At(o.Close(), tote.Where{Table: t.Name})
}

// eachRow calls fn with every row of table's raw file, if the batch has one.
func (b *batch) eachRow(table string, fn func(rawRow) error) error {
	f, ok := b.files[table]
	if !ok {
		return nil
	}
	t, err := totesys.Lookup(table)
	if err != nil {
		return err
	}
	r, err := openRaw(b.ctx, b.lk, b.raw, f, t)
	if err != nil {
		return err
	}
	defer r.close()
	return b.eachValid(r, fn)
}

// eachValid calls fn with every row of raw file r that has a value in each
// NOT NULL column; it rejects the others.
func (b *batch) eachValid(r *rawFile, fn func(rawRow) error) error {
	return r.each(b.ctx, func(rows []parquet.Row) error {
		for _, row := range rows {
			rr := r.at(row)
			if err := tote.At(rr.required(), rr.where()); err != nil {
				if b.q.take(err, rr.xid()) {
					continue
				}
				return err
			}
			if err := fn(rr); err != nil {
				return tote.At(err, rr.where())
			}
		}
		return nil
	})
}

// readCurrent applies the batch's versions and tombstones of the tables
// State keeps to the reference.
func (b *batch) readCurrent() error {
	for _, l := range kept {
		c := b.ref.tables[l.table.Name]
		if err := b.eachRow(l.table.Name, func(r rawRow) error { c.apply(l.row(r)); return nil }); err != nil {
			return err
		}
	}
	for _, t := range b.tombstones {
		if c := b.ref.tables[t.Table]; c != nil {
			c.delete(t.ID)
		}
	}
	return nil
}

// fromCurrent emits, from the current rows, the entities of the table's
// Source that the batch changed and those whose joined row it changed:
// renaming a department re-emits every member of its staff.
func (b *batch) fromCurrent(o *output) error {
	p, err := newPlan(o, b.out.ID())
	if err != nil {
		return err
	}
	src := b.ref.tables[p.source.Name]
	p.bind(src.index)
	ids := maps.Clone(src.changed)
	for _, j := range p.joins {
		changed := b.ref.tables[j.Table].changed
		if len(changed) == 0 {
			continue
		}
		for id, r := range src.rows {
			if on := r.values[j.at]; !on.IsNull() && changed[on.Int32()] && !r.deleted {
				ids[id] = true // a deleted row keeps the values it had
			}
		}
	}
	d := newDays()
	defer b.addDates(d)
	in := make([]parquet.Row, 1+len(p.joins))
	var rows []parquet.Row
	for _, id := range sortedIDs(ids) {
		r := src.rows[id]
		if r.deleted {
			continue
		}
		in[0] = r.values
		row := o.newRow()
		if made, err := b.settle(p.row(b.ref, in, 0, row, d.add), src.where(r), 0, d); !made {
			if err != nil {
				return err
			}
			continue
		}
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

// stream makes the plan of o's table, opens the raw file of its Source
// and binds the plan to it, and calls fn with them; if the batch has no
// such file, there is nothing to do.
func (b *batch) stream(o *output, fn func(*output, *plan, *rawFile) error) error {
	p, err := newPlan(o, b.out.ID())
	if err != nil {
		return err
	}
	f, ok := b.files[p.source.Name]
	if !ok {
		return nil
	}
	r, err := openRaw(b.ctx, b.lk, b.raw, f, p.source)
	if err != nil {
		return err
	}
	defer r.close()
	p.bind(r.leaf)
	return fn(o, p, r)
}

// newest emits one row per entity of the table's Source in the batch: its
// newest version. It reads the file twice, first for the newest
// last_updated of each id, so that it never holds the rows.
func (b *batch) newest(o *output, p *plan, r *rawFile) error {
	// Extraction never puts two versions of a row in one batch: a bitset of
	// the ids seen finds the few that repeat (in batches made otherwise),
	// and only those are kept with their newest stamp, so that memory does
	// not grow with the batch.
	var seen idSet
	newest := map[int32]int64{} // the repeated ids' newest last_updated
	err := b.eachValid(r, func(rr rawRow) error {
		id, lu := rr.id(), rr.value(totesys.LastUpdated).Int64()
		if !seen.add(id) {
			if old, ok := newest[id]; !ok || lu > old {
				newest[id] = lu
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A repeated id's newest stamp may be its first row's, which the pass
	// above did not keep: compare the first rows too.
	if len(newest) > 0 {
		err = r.each(b.ctx, func(rows []parquet.Row) error {
			for _, row := range rows {
				rr := r.at(row)
				id := rr.id()
				if old, ok := newest[id]; ok && rr.required() == nil {
					newest[id] = max(old, rr.value(totesys.LastUpdated).Int64())
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var emitted idSet
	d := newDays()
	defer b.addDates(d)
	in := make([]parquet.Row, 1+len(p.joins))
	out := make([]parquet.Row, 0, readRows)
	return r.each(b.ctx, func(rows []parquet.Row) error {
		out = out[:0]
		for _, row := range rows {
			rr := r.at(row)
			id := rr.id()
			if !seen.has(id) || rr.required() != nil {
				continue // quarantined in the first pass
			}
			if lu, ok := newest[id]; ok && lu != rr.value(totesys.LastUpdated).Int64() {
				continue // an older version of a repeated row
			}
			if !emitted.add(id) {
				continue // the newest already emitted
			}
			dst := o.newRow()
			in[0] = rr.row
			if made, err := b.settle(p.row(b.ref, in, rr.xid(), dst, d.add), rr.where(), rr.xid(), d); !made {
				if err != nil {
					return err
				}
				continue
			}
			out = append(out, dst)
		}
		return o.write(b.ctx, out)
	})
}

// idSet is a set of source ids, a bit each from 0 to the largest added;
// ids below 0, which totesys does not make, go to a map.
type idSet struct {
	bits     []uint64
	negative map[int32]bool
}

// add adds id and reports whether it was not there yet.
func (s *idSet) add(id int32) bool {
	if id < 0 {
		if s.negative == nil {
			s.negative = map[int32]bool{}
		}
		was := s.negative[id]
		s.negative[id] = true
		return !was
	}
	w, bit := int(id)/64, uint64(1)<<(uint(id)%64)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits)+len(s.bits)/4)...)
	}
	was := s.bits[w]&bit != 0
	s.bits[w] |= bit
	return !was
}

func (s *idSet) has(id int32) bool {
	if id < 0 {
		return s.negative[id]
	}
	w := int(id) / 64
	return w < len(s.bits) && s.bits[w]&(uint64(1)<<(uint(id)%64)) != 0
}

// fact streams the table's Source rows into fact rows, one for one.
func (b *batch) fact(o *output, p *plan, r *rawFile) error {
	out := make([]parquet.Row, readRows)
	for i := range out {
		out[i] = o.newRow()
	}
	d := newDays()
	defer b.addDates(d)
	date := d.add
	in := make([]parquet.Row, 1+len(p.joins))
	return r.each(b.ctx, func(rows []parquet.Row) error {
		n := 0
		for _, row := range rows {
			rr := r.at(row)
			err := rr.required()
			if err == nil {
				in[0] = rr.row
				err = p.row(b.ref, in, rr.xid(), out[n], date)
			}
			if made, err := b.settle(err, rr.where(), rr.xid(), d); !made {
				if err != nil {
					return err
				}
				continue
			}
			n++
		}
		return o.write(b.ctx, out[:n])
	})
}

// settle settles the making of a star row from the source row at where,
// the version written by transaction xid, which ended in err: if the row
// was made, the days it refers to are kept and an open reject of the
// source row is resolved. A bad value rejects the source row, which is
// skipped (made false, err nil); any other error fails the batch.
func (b *batch) settle(err error, where tote.Where, xid int64, d *days) (made bool, _ error) {
	if err := tote.At(err, where); err != nil {
		d.drop()
		if b.q.take(err, xid) {
			return false, nil
		}
		return false, err
	}
	d.keep()
	b.q.ok(where.Table, where.ID)
	return true, nil
}

// days collects the days one table's rows refer to: those of the row being
// made, kept once the row is.
type days struct {
	row []int32
	all map[int32]bool
}

func newDays() *days { return &days{all: map[int32]bool{}} }

func (d *days) add(day int32) { d.row = append(d.row, day) }

func (d *days) keep() {
	for _, day := range d.row {
		d.all[day] = true
	}
	d.row = d.row[:0]
}

func (d *days) drop() { d.row = d.row[:0] }

// addDates adds the days d kept to the batch's.
func (b *batch) addDates(d *days) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for day := range d.all {
		b.dates[day] = true
	}
}

// calendar emits a row for every day the batch's other tables refer to.
func (b *batch) calendar(o *output) error {
	var rows []parquet.Row
	for _, d := range slices.Sorted(maps.Keys(b.dates)) {
		day := dateRow(d)
		row := o.newRow()
		for _, c := range o.table.Columns {
			v, ok := day.part(c.Name)
			if !ok {
				return fmt.Errorf("%s.%s: not a part of a day", o.table.Name, c.Name)
			}
			if err := o.set(row, c.Name, v); err != nil {
				return err
			}
		}
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

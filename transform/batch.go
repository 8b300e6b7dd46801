package transform

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
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

	mu    sync.Mutex
	dates map[int32]bool // days referenced by the batch's fact rows
}

func newBatch(ctx context.Context, lk *lake.Lake, raw lake.Manifest, out *lake.BatchWriter, prev State, strict bool) (*batch, error) {
	b := &batch{ctx: ctx, lk: lk, raw: raw, out: out, ref: newReference(prev),
		files: map[string]lake.File{}, dates: map[int32]bool{}, q: newQuarantine(strict, raw.ID, prev.OpenRejects)}
	for _, f := range raw.Files {
		if extract.OwnFile(f.Table) {
			continue // the extraction's live ids and tombstones: deletions are not carried yet
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

// run writes the processed batch's files. The cheap checks (reference
// rows, currency codes) come before the facts.
func (b *batch) run() error {
	if err := b.readReference(); err != nil {
		return err
	}
	if err := b.emit("dim_location", b.dimLocation); err != nil {
		return err
	}
	if err := b.emit("dim_staff", b.dimStaff); err != nil {
		return err
	}
	if err := b.emit("dim_counterparty", b.dimCounterparty); err != nil {
		return err
	}
	// The tables of one source table each, facts the largest, at once.
	g, _ := errgroup.WithContext(b.ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, m := range factMappings {
		g.Go(func() error { return b.emit(m.target, func(o *output) error { return b.fact(m, o) }) })
	}
	for _, m := range dimMappings {
		g.Go(func() error { return b.emit(m.target, func(o *output) error { return b.dimension(m, o) }) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := b.emit("dim_date", b.dimDate); err != nil {
		return err
	}
	return b.q.write(b.ctx, b.out)
}

// emit writes star table name's file with fn.
func (b *batch) emit(name string, fn func(o *output) error) error {
	o := newOutput(b.out, name)
	defer o.Abandon()
	if err := fn(o); err != nil {
		return err
	}
	return tote.At(o.Close(), tote.Where{Table: name})
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

// readReference applies the batch's versions of the tables dimensions
// join to the reference state.
func (b *batch) readReference() error {
	r := b.ref
	steps := []struct {
		table string
		fn    func(rawRow)
	}{
		{"address", func(row rawRow) {
			apply(r.addresses, r.changedAddresses, row.id(), Address{
				ID: row.id(), AddressLine1: row.text("address_line_1"), AddressLine2: row.optText("address_line_2"),
				District: row.optText("district"), City: row.text("city"), PostalCode: row.text("postal_code"),
				Country: row.text("country"), Phone: row.text("phone"), LastUpdated: row.lastUpdated(),
			}, func(a Address) int64 { return a.LastUpdated.UnixMicro() })
		}},
		{"department", func(row rawRow) {
			apply(r.departments, r.changedDepartments, row.id(), Department{
				ID: row.id(), Name: row.text("department_name"), Location: row.optText("location"),
				LastUpdated: row.lastUpdated(),
			}, func(d Department) int64 { return d.LastUpdated.UnixMicro() })
		}},
		{"staff", func(row rawRow) {
			apply(r.staff, r.changedStaff, row.id(), Staff{
				ID: row.id(), FirstName: row.text("first_name"), LastName: row.text("last_name"),
				DepartmentID: row.int32("department_id"), EmailAddress: row.text("email_address"),
				LastUpdated: row.lastUpdated(),
			}, func(s Staff) int64 { return s.LastUpdated.UnixMicro() })
		}},
		{"counterparty", func(row rawRow) {
			apply(r.counterparties, r.changedCounterparties, row.id(), Counterparty{
				ID: row.id(), LegalName: row.text("counterparty_legal_name"),
				LegalAddressID: row.int32("legal_address_id"), LastUpdated: row.lastUpdated(),
			}, func(c Counterparty) int64 { return c.LastUpdated.UnixMicro() })
		}},
	}
	for _, s := range steps {
		if err := b.eachRow(s.table, func(row rawRow) error { s.fn(row); return nil }); err != nil {
			return err
		}
	}
	return nil
}

// dimLocation emits the addresses that changed.
func (b *batch) dimLocation(o *output) error {
	var rows []parquet.Row
	for _, id := range sortedIDs(b.ref.changedAddresses) {
		a := b.ref.addresses[id]
		row := o.newRow()
		err := setAll(o, row,
			cv{"location_id", parquet.Int32Value(a.ID)},
			cv{"address_line_1", text(a.AddressLine1)},
			cv{"address_line_2", optText(a.AddressLine2)},
			cv{"district", optText(a.District)},
			cv{"city", text(a.City)},
			cv{"postal_code", text(a.PostalCode)},
			cv{"country", text(a.Country)},
			cv{"phone", text(a.Phone)})
		if err := tote.At(err, tote.Where{Table: "address", ID: int64(id), Version: a.LastUpdated}); err != nil {
			if b.q.take(err, 0) {
				continue
			}
			return err
		}
		b.q.ok("address", int64(id))
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

// dimStaff emits the staff who changed and every member of a department
// that changed.
func (b *batch) dimStaff(o *output) error {
	r := b.ref
	ids := maps.Clone(r.changedStaff)
	for id, s := range r.staff {
		if r.changedDepartments[s.DepartmentID] {
			ids[id] = true
		}
	}
	var rows []parquet.Row
	for _, id := range sortedIDs(ids) {
		s := r.staff[id]
		d, ok := r.departments[s.DepartmentID]
		if !ok {
			err := tote.At(tote.ValueError("department_id", strconv.Itoa(int(s.DepartmentID)),
				"is not a known department (none in this raw batch or before it)"), s.where())
			if b.q.take(err, 0) {
				continue
			}
			return err
		}
		row := o.newRow()
		err := setAll(o, row,
			cv{"staff_id", parquet.Int32Value(s.ID)},
			cv{"first_name", text(s.FirstName)},
			cv{"last_name", text(s.LastName)},
			cv{"department_name", text(d.Name)},
			cv{"location", optText(d.Location)},
			cv{"email_address", text(s.EmailAddress)})
		if err := tote.At(err, s.where()); err != nil {
			if b.q.take(err, 0) {
				continue
			}
			return err
		}
		b.q.ok("staff", int64(id))
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

// dimCounterparty emits the counterparties that changed and every
// counterparty whose legal address changed.
func (b *batch) dimCounterparty(o *output) error {
	r := b.ref
	ids := maps.Clone(r.changedCounterparties)
	for id, c := range r.counterparties {
		if r.changedAddresses[c.LegalAddressID] {
			ids[id] = true
		}
	}
	var rows []parquet.Row
	for _, id := range sortedIDs(ids) {
		c := r.counterparties[id]
		a, ok := r.addresses[c.LegalAddressID]
		if !ok {
			err := tote.At(tote.ValueError("legal_address_id", strconv.Itoa(int(c.LegalAddressID)),
				"is not a known address (none in this raw batch or before it)"), c.where())
			if b.q.take(err, 0) {
				continue
			}
			return err
		}
		row := o.newRow()
		err := setAll(o, row,
			cv{"counterparty_id", parquet.Int32Value(c.ID)},
			cv{"counterparty_legal_name", text(c.LegalName)},
			cv{"counterparty_legal_address_line_1", text(a.AddressLine1)},
			cv{"counterparty_legal_address_line_2", optText(a.AddressLine2)},
			cv{"counterparty_legal_district", optText(a.District)},
			cv{"counterparty_legal_city", text(a.City)},
			cv{"counterparty_legal_postal_code", text(a.PostalCode)},
			cv{"counterparty_legal_country", text(a.Country)},
			cv{"counterparty_legal_phone_number", text(a.Phone)})
		if err := tote.At(err, c.where()); err != nil {
			if b.q.take(err, 0) {
				continue
			}
			return err
		}
		b.q.ok("counterparty", int64(id))
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

// dimension emits one row per entity of m's source table in the batch: its
// newest version. It reads the file twice, first for the newest
// last_updated of each id, so that it never holds the rows.
func (b *batch) dimension(m mapping, o *output) error {
	f, ok := b.files[m.source]
	if !ok {
		return nil
	}
	p, err := newPlan(m, o, b.out.ID())
	if err != nil {
		return err
	}
	r, err := openRaw(b.ctx, b.lk, b.raw, f, p.source)
	if err != nil {
		return err
	}
	defer r.close()
	p.bind(r)
	// Extraction never puts two versions of a row in one batch: a bitset of
	// the ids seen finds the few that repeat (in batches made otherwise),
	// and only those are kept with their newest stamp, so that memory does
	// not grow with the batch.
	var seen idSet
	newest := map[int32]int64{} // the repeated ids' newest last_updated
	err = r.each(b.ctx, func(rows []parquet.Row) error {
		for _, row := range rows {
			rr := r.at(row)
			if err := tote.At(rr.required(), rr.where()); err != nil {
				if b.q.take(err, rr.xid()) {
					continue
				}
				return err
			}
			id, lu := rr.id(), rr.value(totesys.LastUpdated).Int64()
			if !seen.add(id) {
				if old, ok := newest[id]; !ok || lu > old {
					newest[id] = lu
				}
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
			if err := tote.At(p.row(rr, dst, nil), rr.where()); err != nil {
				if b.q.take(err, rr.xid()) {
					continue
				}
				return err
			}
			b.q.ok(m.source, int64(id))
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

// fact streams m's source rows into fact rows, one for one, noting the
// dates they refer to.
func (b *batch) fact(m mapping, o *output) error {
	f, ok := b.files[m.source]
	if !ok {
		return nil
	}
	p, err := newPlan(m, o, b.out.ID())
	if err != nil {
		return err
	}
	r, err := openRaw(b.ctx, b.lk, b.raw, f, p.source)
	if err != nil {
		return err
	}
	defer r.close()
	p.bind(r)
	out := make([]parquet.Row, readRows)
	for i := range out {
		out[i] = o.newRow()
	}
	var days []int32 // the dates of the row being made, kept if it is
	date := func(d int32) { days = append(days, d) }
	local := map[int32]bool{} // this fact's dates, added to the batch's at the end
	defer func() {
		b.mu.Lock()
		for d := range local {
			b.dates[d] = true
		}
		b.mu.Unlock()
	}()
	return r.each(b.ctx, func(rows []parquet.Row) error {
		n := 0
		for _, row := range rows {
			rr := r.at(row)
			days = days[:0]
			err := rr.required()
			if err == nil {
				err = p.row(rr, out[n], date)
			}
			if err := tote.At(err, rr.where()); err != nil {
				if b.q.take(err, rr.xid()) {
					continue
				}
				return err
			}
			for _, d := range days {
				local[d] = true
			}
			b.q.ok(m.source, int64(rr.id()))
			n++
		}
		return o.write(b.ctx, out[:n])
	})
}

// dimDate emits a row for every date the batch's facts refer to.
func (b *batch) dimDate(o *output) error {
	var rows []parquet.Row
	for _, d := range slices.Sorted(maps.Keys(b.dates)) {
		day := dateRow(d)
		row := o.newRow()
		err := setAll(o, row,
			cv{"date_id", parquet.Int32Value(day.id)},
			cv{"year", parquet.Int32Value(int32(day.year))},
			cv{"month", parquet.Int32Value(int32(day.month))},
			cv{"day", parquet.Int32Value(int32(day.day))},
			cv{"day_of_week", parquet.Int32Value(int32(day.dayOfWeek))},
			cv{"day_name", text(day.dayName)},
			cv{"month_name", text(day.monthName)},
			cv{"quarter", parquet.Int32Value(int32(day.quarter))})
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	return o.write(b.ctx, rows)
}

// cv is a column's value.
type cv struct {
	name string
	v    parquet.Value
}

// setAll sets every column of row.
func setAll(o *output, row parquet.Row, values ...cv) error {
	if len(values) != len(o.table.Columns) {
		panic(fmt.Sprintf("transform: %d of %s's %d columns set", len(values), o.table.Name, len(o.table.Columns)))
	}
	for _, c := range values {
		if err := o.set(row, c.name, c.v); err != nil {
			return err
		}
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

package extract

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// chunkRows is how many rows are decoded before they are handed to the
// Parquet writer in one call.
const chunkRows = 1024

// column says where a model column goes in a raw file's rows.
type column struct {
	model totesys.Column
	leaf  int
	def   int // definition level of a present value: 1 if optional, else 0
}

func columns(t totesys.Table, schema *parquet.Schema) []column {
	cols := make([]column, len(t.Columns))
	for i, c := range t.Columns {
		leaf, _ := schema.Lookup(c.Name)
		cols[i] = column{model: c, leaf: leaf.ColumnIndex, def: leaf.MaxDefinitionLevel}
	}
	return cols
}

// lateSample is how many late ids a table's warning names.
const lateSample = 10

// tableReader streams one table's row versions into its file of the
// batch, and keeps what the table contributes to the result and the next
// state.
type tableReader struct {
	table  totesys.Table
	p      *tablePlan
	schema *parquet.Schema
	cols   []column
	// carry is the leaves of the columns beyond the model, in the order
	// selectSQL reads them.
	carry []column
	w     *lakefile.Writer
	tick  func(rows, bytes int64)
	res   TableResult
	state TableState
	raw   int64 // bytes of values read from the source
}

// readTable reads table's part of the extraction on q: the row versions p
// says are new, written to the table's file of batch, and the table's live
// ids and deletions (see the package comment).
func readTable(ctx context.Context, q pgx.Tx, batch *lake.BatchWriter, r *tableRead, prog *progress) error {
	start := time.Now()
	p := r.plan
	t := &tableReader{table: r.table, p: p, schema: r.table.Schema(), res: TableResult{Table: r.table.Name},
		state: TableState{Watermark: p.prev.Watermark, IDs: p.prev.IDs}}
	if len(r.carry) > 0 {
		names := make([]string, len(r.carry))
		for i, c := range r.carry {
			names[i] = c.Column
		}
		t.schema, t.state.Carried = r.table.SchemaCarrying(names), names
		for _, name := range names {
			leaf, _ := t.schema.Lookup(name)
			t.carry = append(t.carry, column{model: totesys.Column{Name: name, Type: totesys.Text, Nullable: true},
				leaf: leaf.ColumnIndex, def: leaf.MaxDefinitionLevel})
		}
	}
	if p.skip {
		t.state.Taken = p.prev.Taken
		r.result, r.state = t.res, t.state
		return nil
	}
	t.cols = columns(r.table, t.schema)
	t.w = lakefile.NewWriter(batch, r.table.Name, t.schema)
	defer t.w.Abandon()
	t.tick = prog.table(r.table.Name)

	var err error
	switch {
	case p.correct:
		err = t.correct(ctx, q, r)
	case p.first:
		// Everything: the first extraction, a full one, a move. The ids
		// read are the live ones; those the lake held live and the source
		// no longer has are deleted.
		seen := roaring.New()
		if err = t.stream(ctx, q, t.selectSQL(""), nil, seen); err == nil {
			r.next = seen
			if p.live != nil {
				r.deleted = setMembers(roaring.AndNot(p.live, seen))
			}
		}
	case p.live == nil:
		// The lake holds no live ids of the table yet (written by an
		// earlier release): what is new as before, and the live ids once,
		// in the same snapshot. No deletion can be told this time.
		filter, args := p.freshFilter(t.xmin(), 1)
		if err = t.stream(ctx, q, t.selectSQL(" WHERE "+filter), args, nil); err == nil {
			r.next, err = collectIDs(ctx, q, fmt.Sprintf(allIDsSQL, t.key(), t.name()))
		}
	default:
		err = t.capture(ctx, q, r)
	}
	if err != nil {
		return err
	}
	if err := t.w.Close(); err != nil {
		return err
	}
	t.tick(t.w.Rows(), t.raw)
	prog.tableDone(r.table.Name, t.w.Rows(), t.raw, time.Since(start))
	t.res.Rows, t.res.Bytes, t.res.SourceBytes = t.w.Rows(), t.w.Bytes(), t.raw
	t.res.Deleted, t.res.Elapsed = int64(len(r.deleted)), time.Since(start)
	r.result, r.state = t.res, t.state
	return nil
}

// SQL of a table's reads, with its name and key (identifiers of the model,
// quoted) and the filter on xmin that picks the versions new since the
// last extraction (our own numbers).
const (
	// countFreshSQL counts the rows, sums their ids and lists the ids of
	// the new versions, in one pass over a part of the table (%[4]s: a
	// condition on ctid). The sum of int4 is a bigint.
	countFreshSQL = `SELECT count(*), coalesce(sum(%[1]s), 0), array_agg(%[1]s) FILTER (WHERE %[3]s) FROM %[2]s WHERE %[4]s`
	// rangeRowsSQL counts the rows of each range, through the primary key.
	rangeRowsSQL = `SELECT r.lo >> %[3]d, (SELECT count(*) FROM %[2]s WHERE %[1]s >= r.lo AND %[1]s < r.hi)
FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)`
	// rangeCountsSQL counts the rows of every range, in a pass over the
	// table.
	rangeCountsSQL = `SELECT %[1]s >> %[3]d, count(*) FROM %[2]s GROUP BY 1`
	// inRangesSQL reads the ids in ranges, through the primary key.
	inRangesSQL = `SELECT %[1]s FROM %[2]s JOIN unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) ON %[1]s >= r.lo AND %[1]s < r.hi`
	// allIDsSQL reads every id (an index-only scan).
	allIDsSQL = `SELECT %[1]s FROM %[2]s`
	// idsInSQL reads which of the ids $1 the table holds.
	idsInSQL = `SELECT %[1]s FROM %[2]s WHERE %[1]s = ANY($1)`
)

func (t *tableReader) key() string  { return pgx.Identifier{t.table.Key()}.Sanitize() }
func (t *tableReader) name() string { return pgx.Identifier{t.table.Name}.Sanitize() }

// xmin is the table's xmin, qualified: a join leaves it unresolved otherwise.
func (t *tableReader) xmin() string { return t.name() + ".xmin" }

// selectSQL reads the table's model columns, xmin and the columns it
// carries beyond the model (as text), then from (a join or a WHERE clause).
func (t *tableReader) selectSQL(then string) string {
	names := make([]string, len(t.cols), len(t.cols)+1+len(t.carry))
	for i, c := range t.cols {
		names[i] = pgx.Identifier{c.model.Name}.Sanitize()
	}
	names = append(names, t.xmin())
	for _, c := range t.carry {
		names = append(names, t.name()+"."+pgx.Identifier{c.model.Name}.Sanitize()+"::text")
	}
	return fmt.Sprintf("SELECT %s FROM %s", strings.Join(names, ", "), t.name()) + then
}

// freshFilter returns the condition on xmin that passes the versions new
// since the last extraction, and its arguments, numbered from n.
func (p *tablePlan) freshFilter(xmin string, n int) (string, []any) {
	if p.xids != "" {
		return xmin + " = ANY(" + p.xids + ")", nil // our own numbers: a constant, which the server hashes
	}
	return fmt.Sprintf("age(%s) <= $%d", xmin, n), []any{p.maxAge}
}

// capture reads an incremental extraction's part of the table. One pass
// over it counts its rows, sums their ids and lists the ids of the new
// versions, which are then read through the primary key (or in a second
// pass, filtered on xmin, when they are many). If the rows are as many as
// the last live ids and the new versions' together, nothing was deleted.
// If one is missing, the sums name it (see oneGone). Otherwise the rows of
// each range of ids are counted through the primary key, and the ids read
// of the ranges whose count is off, to name the deleted ones.
func (t *tableReader) capture(ctx context.Context, q pgx.Tx, r *tableRead) error {
	p := t.p
	filter, args := p.freshFilter(t.xmin(), 1)
	rows, sum, fresh, err := t.countFresh(ctx, q, filter, args)
	if err != nil {
		return err
	}
	seen := roaring.New()
	switch {
	case len(fresh) == 0:
	case len(fresh) > maxFetchByID:
		if err := t.stream(ctx, q, t.selectSQL(" WHERE "+filter), args, seen); err != nil {
			return err
		}
	default:
		filter, args := p.freshFilter(t.xmin(), 2)
		where := fmt.Sprintf(" WHERE %s = ANY($1) AND %s", t.key(), filter)
		if err := t.stream(ctx, q, t.selectSQL(where), append([]any{fresh}, args...), seen); err != nil {
			return err
		}
	}
	if got := seen.GetCardinality(); got != uint64(len(fresh)) {
		return fmt.Errorf("read %d new versions, and listed %d in the same snapshot", got, len(fresh))
	}

	known := roaring.Or(p.live, seen)
	switch {
	case uint64(rows) == known.GetCardinality():
		if !known.Equals(p.live) {
			r.next = known
		}
		return nil
	case uint64(rows)+1 == known.GetCardinality():
		id, ok, err := t.oneGone(ctx, q, known, seen, sum)
		if err != nil {
			return err
		}
		if ok {
			next := known.Clone()
			next.Remove(member(id))
			r.deleted, r.next = []int32{id}, next
			return nil
		}
	}
	// Deletions (or ids the last set lacked): find where.
	want := setCounts(known)
	src, err := t.rangeRows(ctx, q, want, rows)
	if err != nil {
		return err
	}
	v := compareRanges(src, want)
	present := roaring.New()
	if len(v.differ) > 0 {
		lo, hi := bounds(v.differ)
		if present, err = collectIDs(ctx, q, fmt.Sprintf(inRangesSQL, t.key(), t.name()), lo, hi); err != nil {
			return err
		}
	}
	next, deleted, missed := settle(p.live, known, v, present)
	r.deleted, t.res.Reappeared = deleted, int64(missed)
	if !next.Equals(p.live) {
		r.next = next
	}
	return nil
}

// countFresh counts the table's rows, sums their ids and lists the ids of
// its new versions, in one pass. array_agg has no parallel form before PostgreSQL
// 16, so a large table is counted in parts (ranges of its pages, each
// counted whole by one process), which the server's parallel workers share
// as they share a filtered scan.
func (t *tableReader) countFresh(ctx context.Context, q pgx.Tx, filter string, args []any) (rows, sum int64, fresh []int32, err error) {
	n := max(t.p.parts, 1)
	parts := make([]string, n)
	for i := range n {
		lo, hi := t.p.weight*int64(i)/int64(n), t.p.weight*int64(i+1)/int64(n)
		var where string
		switch {
		case n == 1:
			where = "true"
		case i == 0:
			where = fmt.Sprintf("ctid < '(%d,0)'::tid", hi)
		case i == n-1: // and the pages added since the catalog counted them
			where = fmt.Sprintf("ctid >= '(%d,0)'::tid", lo)
		default:
			where = fmt.Sprintf("ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", lo, hi)
		}
		parts[i] = fmt.Sprintf(countFreshSQL, t.key(), t.name(), filter, where)
	}
	res, err := q.Query(ctx, strings.Join(parts, "\nUNION ALL\n"), args...)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("count rows: %w", err)
	}
	var count, partSum int64
	var ids []int32
	_, err = pgx.ForEachRow(res, []any{&count, &partSum, &ids}, func() error {
		rows, sum = rows+count, sum+partSum
		fresh = append(fresh, ids...)
		return nil
	})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("count rows: %w", err)
	}
	return rows, sum, fresh, nil
}

// oneGone names the row deleted when the table holds one row fewer than
// known, the last live ids and the new versions' (seen): if that one row
// is all that went, its id is the difference between known's sum and the
// source's (sum). It is taken only if it is an id of known that no new
// version has and that the source does not hold (one probe of the primary
// key); else (rows deleted and others back from a restore, whose counts
// offset) ok is false, and the ranges are counted.
func (t *tableReader) oneGone(ctx context.Context, q pgx.Tx, known, seen *roaring.Bitmap, sum int64) (id int32, ok bool, err error) {
	x, ok := missingID(known, sum)
	if !ok || seen.Contains(member(x)) {
		return 0, false, nil
	}
	held, err := collectIDs(ctx, q, fmt.Sprintf(idsInSQL, t.key(), t.name()), []int32{x})
	if err != nil {
		return 0, false, err
	}
	return x, held.IsEmpty(), nil
}

// rangeRows counts the rows of the table in each range: through the
// primary key, in the ranges of want (where the source's ids can be, if
// the last set of live ids is right); in a pass over the table if they do
// not hold all of its rows.
func (t *tableReader) rangeRows(ctx context.Context, q pgx.Tx, want map[int32]int64, rows int64) (map[int32]int64, error) {
	ranges := make([]int32, 0, len(want))
	for r := range want {
		ranges = append(ranges, r)
	}
	slices.Sort(ranges)
	lo, hi := bounds(ranges)
	src, err := rangeCounts(ctx, q, fmt.Sprintf(rangeRowsSQL, t.key(), t.name(), rangeBits), lo, hi)
	if err != nil {
		return nil, err
	}
	var in int64
	for _, n := range src {
		in += n
	}
	if in == rows {
		return src, nil
	}
	return rangeCounts(ctx, q, fmt.Sprintf(rangeCountsSQL, t.key(), t.name(), rangeBits))
}

// correct reads a corrective batch's part of the table: the versions of
// the rows asked for, and the rows asked to be tombstoned that are gone
// from the source. A row gone that the lake still holds live was deleted
// since the last extraction, which the next one finds: it is left to it,
// as are the versions written since.
func (t *tableReader) correct(ctx context.Context, q pgx.Tx, r *tableRead) error {
	p := t.p
	if len(p.ids) > 0 {
		if err := t.stream(ctx, q, t.selectSQL(fmt.Sprintf(" WHERE %s = ANY($1)", t.key())), []any{p.ids}, nil); err != nil {
			return err
		}
	}
	if len(p.gone) == 0 {
		return nil
	}
	present, err := collectIDs(ctx, q, fmt.Sprintf(idsInSQL, t.key(), t.name()), p.gone)
	if err != nil {
		return err
	}
	for _, id := range p.gone {
		if id < math.MinInt32 || id > math.MaxInt32 {
			return tote.At(errors.New("is not an id of the source (an integer)"), tote.Where{ID: id})
		}
		m := member(int32(id))
		if present.Contains(m) || (p.live != nil && p.live.Contains(m)) {
			continue
		}
		present.Add(m) // once, however often it is asked for
		r.deleted = append(r.deleted, int32(id))
	}
	return nil
}

// stream reads the row versions sql selects and writes those not taken
// before to the table's file; seen, if not nil, receives the id of every
// version read.
func (t *tableReader) stream(ctx context.Context, q pgx.Tx, sql string, args []any, seen *roaring.Bitmap) error {
	p, cols := t.p, t.cols
	keyCol, luCol, xminCol := 0, len(cols)-1, len(cols) // the model puts the key first and last_updated last
	xidLeaf, _ := t.schema.Lookup(totesys.XidColumn)
	rows, err := q.Query(ctx, sql, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}, args...)...)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer rows.Close()

	chunk := make([]parquet.Row, 0, chunkRows)
	var arena []byte
	for rows.Next() {
		raw := rows.RawValues()
		id, err := int4(raw[keyCol])
		if err != nil {
			return tote.At(err, tote.Where{Column: t.table.Key()})
		}
		if seen != nil {
			seen.Add(member(id))
		}
		lu, err := timestampMicros(raw[luCol])
		if err != nil {
			return tote.At(err, tote.Where{ID: int64(id), Column: totesys.LastUpdated})
		}
		xmin, err := int4(raw[xminCol])
		if err != nil {
			return tote.At(fmt.Errorf("xmin: %w", err), tote.Where{ID: int64(id)})
		}
		xid := widenBelow(uint32(xmin), p.xmax)
		v := [2]int64{int64(id), xid}
		if xid >= int64(p.next) {
			t.state.Taken = append(t.state.Taken, v) // taken now or before: the next read meets it again
		}
		if p.alreadyTaken(int64(id), xid, lu) || (p.correct && p.inFlight(int64(id), xid)) {
			continue
		}
		if !p.first && lu < p.late {
			t.res.Late++
			t.res.MaxLate = max(t.res.MaxLate, time.Duration(p.late-lu)*time.Microsecond+time.Second)
			if len(t.state.lateIDs) < lateSample {
				t.state.lateIDs = append(t.state.lateIDs, int64(id))
			}
		}
		if ts := time.UnixMicro(lu).UTC(); ts.After(t.state.Watermark) {
			t.state.Watermark = ts
		}
		if p.noRows {
			continue
		}
		row := make(parquet.Row, len(cols)+1+len(t.carry))
		for i, c := range cols {
			b := raw[i]
			t.raw += int64(len(b))
			val, err := decode(c.model, b, &arena)
			if err != nil {
				return tote.At(err, tote.Where{ID: int64(id), Column: c.model.Name})
			}
			if val.IsNull() {
				row[c.leaf] = val.Level(0, 0, c.leaf)
			} else {
				row[c.leaf] = val.Level(0, c.def, c.leaf)
			}
		}
		row[xidLeaf.ColumnIndex] = parquet.Int64Value(xid).Level(0, 0, xidLeaf.ColumnIndex)
		for i, c := range t.carry {
			b := raw[xminCol+1+i]
			t.raw += int64(len(b))
			val, _ := decode(c.model, b, &arena) // text, nullable: cannot fail
			if val.IsNull() {
				row[c.leaf] = val.Level(0, 0, c.leaf)
			} else {
				row[c.leaf] = val.Level(0, c.def, c.leaf)
			}
		}
		chunk = append(chunk, row)
		if len(chunk) == chunkRows {
			if err := t.w.Write(ctx, chunk); err != nil {
				return err
			}
			chunk, arena = chunk[:0], arena[:0]
			t.tick(t.w.Rows(), t.raw)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return t.w.Write(ctx, chunk)
}

// rangeCounts runs a query of (range, rows).
func rangeCounts(ctx context.Context, q pgx.Tx, sql string, args ...any) (map[int32]int64, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("count rows by range of ids: %w", err)
	}
	out := map[int32]int64{}
	var r, n int64
	if _, err := pgx.ForEachRow(rows, []any{&r, &n}, func() error { out[int32(r)] = n; return nil }); err != nil {
		return nil, fmt.Errorf("count rows by range of ids: %w", err)
	}
	return out, nil
}

// collectIDs returns the ids (integers) that sql selects.
func collectIDs(ctx context.Context, q pgx.Tx, sql string, args ...any) (*roaring.Bitmap, error) {
	rows, err := q.Query(ctx, sql, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read ids: %w", err)
	}
	defer rows.Close()
	s := roaring.New()
	buf := make([]uint32, 0, chunkRows)
	for rows.Next() {
		id, err := int4(rows.RawValues()[0])
		if err != nil {
			return nil, fmt.Errorf("read ids: %w", err)
		}
		if buf = append(buf, member(id)); len(buf) == cap(buf) {
			s.AddMany(buf)
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ids: %w", err)
	}
	s.AddMany(buf)
	return s, nil
}

// setMembers returns the ids in s, in order.
func setMembers(s *roaring.Bitmap) []int32 {
	out := make([]int32, 0, s.GetCardinality())
	s.Iterate(func(m uint32) bool {
		out = append(out, idOf(m))
		return true
	})
	slices.Sort(out)
	return out
}

// decode turns one binary-format value of a model column into a Parquet
// value. Text is copied into arena, which the caller resets once the
// values are written.
func decode(c totesys.Column, b []byte, arena *[]byte) (parquet.Value, error) {
	if b == nil {
		if !c.Nullable {
			return parquet.Value{}, fmt.Errorf("NULL in a NOT NULL column")
		}
		return parquet.NullValue(), nil
	}
	switch c.Type {
	case totesys.Integer:
		v, err := int4(b)
		return parquet.Int32Value(v), err
	case totesys.Money:
		v, err := numericCents(b)
		return parquet.Int64Value(v), err
	case totesys.Boolean:
		if len(b) != 1 {
			return parquet.Value{}, fmt.Errorf("boolean of %d bytes", len(b))
		}
		return parquet.BooleanValue(b[0] != 0), nil
	case totesys.Timestamp:
		v, err := timestampMicros(b)
		return parquet.Int64Value(v), err
	}
	start := len(*arena)
	*arena = append(*arena, b...)
	return parquet.ByteArrayValue((*arena)[start:len(*arena):len(*arena)]), nil
}

func int4(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("integer of %d bytes", len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// timestampMicros decodes a binary timestamp to Unix microseconds.
func timestampMicros(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("timestamp of %d bytes", len(b))
	}
	v := int64(binary.BigEndian.Uint64(b))
	if v == math.MaxInt64 || v == math.MinInt64 {
		return 0, fmt.Errorf("infinite timestamp")
	}
	return v + postgres.EpochMicros, nil
}

// numericCents decodes a binary numeric to hundredths, exactly. A value with
// more than two decimals, NaN or infinity, or beyond int64, is an error.
func numericCents(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("numeric of %d bytes", len(b))
	}
	ndigits := int(binary.BigEndian.Uint16(b[0:]))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	if len(b) != 8+2*ndigits {
		return 0, fmt.Errorf("numeric of %d bytes with %d digits", len(b), ndigits)
	}
	switch sign {
	case 0x0000, 0x4000:
	default:
		return 0, fmt.Errorf("numeric is NaN or infinite")
	}
	// Each base-10000 digit d at position i is worth d × 10000^(weight-i);
	// in hundredths that is d × 10000^(weight-i) × 100.
	var cents int64
	for i := range ndigits {
		d := int64(binary.BigEndian.Uint16(b[8+2*i:]))
		exp := weight - i
		var part int64
		switch {
		case exp >= 0:
			part = d * 100
			for range exp {
				if part > math.MaxInt64/10000 {
					return 0, fmt.Errorf("numeric too large")
				}
				part *= 10000
			}
		case exp == -1:
			if d%100 != 0 {
				return 0, fmt.Errorf("numeric has more than two decimals")
			}
			part = d / 100
		default:
			if d != 0 {
				return 0, fmt.Errorf("numeric has more than two decimals")
			}
		}
		if cents > math.MaxInt64-part {
			return 0, fmt.Errorf("numeric too large")
		}
		cents += part
	}
	if sign == 0x4000 {
		cents = -cents
	}
	return cents, nil
}

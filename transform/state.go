package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
)

// State is what a transform records in each processed manifest for the
// next one: which raw batch it consumed, the current rows of the source
// tables that dimensions join (star.JoinSources) after that batch, and the
// rejects still open.
//
// In JSON each of those source tables is a list of rows under its name,
// in id order, each row an object of the columns the star reads of it
// (star.ColumnsRead), its key and last_updated, by column name: the shape
// earlier releases wrote (see testdata/state-e6f8a86.json), so that a lake
// they wrote carries on. A column the model has come to read since a row
// was recorded is NULL in that row until the row changes.
type State struct {
	RawBatch string // id of the raw batch this processed batch was made from
	RawSeq   uint64 // its number: the next run starts after it

	// current holds the rows of each table of kept, by id.
	current map[string]map[int32]sourceRow

	// OpenRejects are the source rows rejected (quarantined) so far whose
	// later versions have not yet transformed.
	OpenRejects []rowKey
}

// sourceRow is a source row as State keeps it: its values in the order of
// its table's layout columns, and whether the source has deleted it. A
// deleted row is kept with the values it had: a row that joins it still
// finds them, and it is not made again when a row it joins changes.
type sourceRow struct {
	values  []parquet.Value
	deleted bool
}

// deletedKey marks a deleted row in State's JSON: true, or absent.
const deletedKey = "tote_deleted"

// layout is how State keeps the rows of one source table: the table's
// key, the columns the star reads of it and last_updated, in the source
// model's order.
type layout struct {
	table       totesys.Table
	columns     []totesys.Column
	index       map[string]int // column name → index in columns
	key         int
	lastUpdated int
}

// kept are the layouts of the tables whose current rows State keeps, in the
// source model's order.
var kept = keptLayouts()

func keptLayouts() []*layout {
	var out []*layout
	for _, t := range totesys.Tables {
		if !slices.Contains(star.JoinSources(), t.Name) {
			continue
		}
		read := star.ColumnsRead(t.Name)
		l := &layout{table: t, index: map[string]int{}}
		for _, c := range t.Columns {
			if c.Name == t.Key() || c.Name == totesys.LastUpdated || slices.Contains(read, c.Name) {
				l.index[c.Name] = len(l.columns)
				l.columns = append(l.columns, c)
			}
		}
		l.key, l.lastUpdated = l.index[t.Key()], l.index[totesys.LastUpdated]
		out = append(out, l)
	}
	return out
}

// keptLayout returns the layout of source table name, if State keeps it.
func keptLayout(name string) (*layout, bool) {
	i := slices.IndexFunc(kept, func(l *layout) bool { return l.table.Name == name })
	if i < 0 {
		return nil, false
	}
	return kept[i], true
}

// row makes the State row of raw row r, whose file is of l's table. The
// values are copied: they outlive the raw file's buffers.
func (l *layout) row(r rawRow) sourceRow {
	values := make([]parquet.Value, len(l.columns))
	for i, c := range l.columns {
		values[i] = r.value(c.Name).Clone()
	}
	return sourceRow{values: values}
}

func (l *layout) id(r sourceRow) int32            { return r.values[l.key].Int32() }
func (l *layout) stamp(r sourceRow) int64         { return r.values[l.lastUpdated].Int64() }
func (l *layout) stampTime(r sourceRow) time.Time { return time.UnixMicro(l.stamp(r)).UTC() }

// where is the row's table, id and version, for errors.
func (l *layout) where(r sourceRow) tote.Where {
	return tote.Where{Table: l.table.Name, ID: int64(l.id(r)), Version: l.stampTime(r)}
}

// Row is a source row as State keeps it, by column: an int32 for an
// integer, a string for text and enums, a bool, money as its decimal text,
// a time.Time for a timestamp, nil for NULL.
type Row map[string]any

// Rows returns the current rows State keeps of source table name, in id
// order; none if it keeps no rows of that table. A row the source deleted
// has "tote_deleted": true besides its last values.
func (s State) Rows(name string) []Row {
	l, ok := keptLayout(name)
	if !ok {
		return nil
	}
	rows := s.current[name]
	out := make([]Row, 0, len(rows))
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		r := Row{}
		for i, c := range l.columns {
			r[c.Name] = goValue(c, rows[id].values[i])
		}
		if rows[id].deleted {
			r[deletedKey] = true
		}
		out = append(out, r)
	}
	return out
}

func goValue(c totesys.Column, v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	switch jsonKind(c.Type) {
	case kindInt32:
		return v.Int32()
	case kindBool:
		return v.Boolean()
	case kindCents:
		return formatCents(v.Int64())
	case kindTimestamp:
		return time.UnixMicro(v.Int64()).UTC()
	}
	return string(v.ByteArray())
}

// The JSON encodings of source values.
type valueKind int

const (
	kindText      valueKind = iota // a string
	kindInt32                      // a number
	kindBool                       // true or false
	kindCents                      // money as decimal text, exactly: "-12.34"
	kindTimestamp                  // RFC 3339 in UTC, as time.Time encodes itself
)

func jsonKind(t totesys.Type) valueKind {
	switch t {
	case totesys.Integer:
		return kindInt32
	case totesys.Boolean:
		return kindBool
	case totesys.Money:
		return kindCents
	case totesys.Timestamp:
		return kindTimestamp
	}
	return kindText
}

// MarshalJSON writes the state in the shape LoadState reads.
func (s State) MarshalJSON() ([]byte, error) {
	// Room for every row at once: thousands of them, at a batch's end.
	size := 256
	for _, l := range kept {
		row := 2
		for _, c := range l.columns {
			row += len(c.Name) + 16 // quoted, and a value of a common size
		}
		size += row * len(s.current[l.table.Name])
	}
	b := append(make([]byte, 0, size), `{"raw_batch":`...)
	b = appendString(b, s.RawBatch)
	b = append(b, `,"raw_seq":`...)
	b = strconv.AppendUint(b, s.RawSeq, 10)
	for _, l := range kept {
		b = append(b, ',')
		b = appendString(b, l.table.Name)
		b = append(b, ":["...)
		rows := s.current[l.table.Name]
		for i, id := range slices.Sorted(maps.Keys(rows)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			for j, c := range l.columns {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, c.Name)
				b = append(b, ':')
				b = appendValue(b, c, rows[id].values[j])
			}
			if rows[id].deleted {
				b = append(b, `,"`+deletedKey+`":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(s.OpenRejects) > 0 {
		rejects, err := json.Marshal(s.OpenRejects)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"open_rejects":`...)
		b = append(b, rejects...)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string. (encoding/json would allocate
// for each of the state's thousands of values.)
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendValue(b []byte, c totesys.Column, v parquet.Value) []byte {
	if v.IsNull() {
		return append(b, "null"...)
	}
	switch jsonKind(c.Type) {
	case kindInt32:
		return strconv.AppendInt(b, int64(v.Int32()), 10)
	case kindBool:
		return strconv.AppendBool(b, v.Boolean())
	case kindCents:
		return appendString(b, formatCents(v.Int64()))
	case kindTimestamp:
		b = append(b, '"')
		b = time.UnixMicro(v.Int64()).UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	return appendString(b, string(v.ByteArray()))
}

// UnmarshalJSON reads a state in the shape MarshalJSON writes, or that of
// an earlier release: rows of tables State no longer keeps, and columns it
// no longer reads, are left out.
func (s *State) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	*s = State{current: map[string]map[int32]sourceRow{}}
	for name, dst := range map[string]any{"raw_batch": &s.RawBatch, "raw_seq": &s.RawSeq, "open_rejects": &s.OpenRejects} {
		if raw, ok := fields[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	for _, l := range kept {
		var rows []map[string]json.RawMessage
		if raw, ok := fields[l.table.Name]; ok {
			if err := json.Unmarshal(raw, &rows); err != nil {
				return fmt.Errorf("%s: %w", l.table.Name, err)
			}
		}
		byID := make(map[int32]sourceRow, len(rows))
		for i, r := range rows {
			row, err := l.decode(r)
			if err != nil {
				return fmt.Errorf("%s row %d: %w", l.table.Name, i+1, err)
			}
			byID[l.id(row)] = row
		}
		s.current[l.table.Name] = byID
	}
	return nil
}

// decode makes a row of l's table from its JSON columns, and deletedKey.
// A column the row lacks is NULL, unless it is the key or last_updated.
func (l *layout) decode(r map[string]json.RawMessage) (sourceRow, error) {
	var deleted bool
	if raw, ok := r[deletedKey]; ok {
		if err := json.Unmarshal(raw, &deleted); err != nil {
			return sourceRow{}, fmt.Errorf("%s: %w", deletedKey, err)
		}
	}
	values := make([]parquet.Value, len(l.columns))
	for i, c := range l.columns {
		raw, ok := r[c.Name]
		if !ok || string(raw) == "null" {
			if i == l.key || i == l.lastUpdated {
				return sourceRow{}, fmt.Errorf("no %s", c.Name)
			}
			values[i] = parquet.NullValue()
			continue
		}
		v, err := decodeValue(c, raw)
		if err != nil {
			return sourceRow{}, fmt.Errorf("%s: %w", c.Name, err)
		}
		values[i] = v
	}
	return sourceRow{values: values, deleted: deleted}, nil
}

func decodeValue(c totesys.Column, raw json.RawMessage) (parquet.Value, error) {
	switch jsonKind(c.Type) {
	case kindInt32:
		var n int32
		err := json.Unmarshal(raw, &n)
		return parquet.Int32Value(n), err
	case kindBool:
		var b bool
		err := json.Unmarshal(raw, &b)
		return parquet.BooleanValue(b), err
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return parquet.Value{}, err
	}
	switch jsonKind(c.Type) {
	case kindCents:
		cents, err := parseCents(text)
		return parquet.Int64Value(cents), err
	case kindTimestamp:
		t, err := time.Parse(time.RFC3339Nano, text)
		return parquet.Int64Value(t.UnixMicro()), err
	}
	return parquet.ByteArrayValue([]byte(text)), nil
}

// formatCents writes hundredths as decimal text, "-12.34".
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// parseCents reads what formatCents writes.
func parseCents(s string) (int64, error) {
	units, frac, ok := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	u, err1 := strconv.ParseInt(units, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 2 || err1 != nil || err2 != nil || f < 0 {
		return 0, fmt.Errorf("%q is not money with two decimals", s)
	}
	c := u*100 + f
	if strings.HasPrefix(s, "-") {
		c = -c
	}
	return c, nil
}

// LoadState decodes the transform state recorded in a processed manifest.
func LoadState(m lake.Manifest) (State, error) {
	var s State
	if len(m.State) == 0 {
		return State{}, fmt.Errorf("processed batch %s: transform state: missing", m.ID)
	}
	if err := json.Unmarshal(m.State, &s); err != nil {
		return State{}, fmt.Errorf("processed batch %s: transform state: %w", m.ID, err)
	}
	if s.RawSeq == 0 {
		return State{}, fmt.Errorf("processed batch %s: transform state: %w", m.ID, errors.New("no raw batch number"))
	}
	return s, nil
}

// reference is the working copy of a State's rows with what the current
// raw batch changed, for each table State keeps.
type reference struct {
	tables map[string]*current
}

// current is one kept table's rows, by id, and the ids the batch changed.
type current struct {
	*layout
	rows    map[int32]sourceRow
	changed map[int32]bool
}

func newReference(s State) *reference {
	r := &reference{tables: map[string]*current{}}
	for _, l := range kept {
		rows := maps.Clone(s.current[l.table.Name])
		if rows == nil {
			rows = map[int32]sourceRow{}
		}
		r.tables[l.table.Name] = &current{layout: l, rows: rows, changed: map[int32]bool{}}
	}
	return r
}

// apply records row, of the batch being transformed, as the current
// version of its id, and marks the id changed. A later batch's version
// always wins, whatever its stamp: batches are in the order versions
// became visible in the source. Within one batch, which extraction never
// gives two versions of a row, the newer stamp wins.
func (c *current) apply(row sourceRow) {
	id := c.id(row)
	if old, ok := c.rows[id]; ok && c.changed[id] && c.stamp(old) > c.stamp(row) {
		return
	}
	c.rows[id] = row
	c.changed[id] = true
}

// delete records that the source deleted row id, if the table has it: it
// keeps its values (see sourceRow). A later version brings it back.
func (c *current) delete(id int32) {
	if r, ok := c.rows[id]; ok {
		r.deleted = true
		c.rows[id] = r
	}
}

// state returns the State after raw batch m.
func (r *reference) state(m lake.Manifest) State {
	s := State{RawBatch: m.ID, RawSeq: m.Seq, current: map[string]map[int32]sourceRow{}}
	for name, c := range r.tables {
		s.current[name] = c.rows
	}
	return s
}

func sortedIDs[T any](m map[int32]T) []int32 {
	return slices.Sorted(maps.Keys(m))
}

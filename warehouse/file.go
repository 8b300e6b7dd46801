package warehouse

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/star"
)

// readRows is how many rows are decoded from a row group at a time.
const readRows = 512

// The range of dates the COPY text written here stays valid for,
// 0001-01-01 to 9999-12-31, in days since 1970-01-01.
const (
	minDate = -719_162
	maxDate = 2_932_896
)

const microsPerDay = 86_400_000_000

// processedFile streams the rows of one star table's processed Parquet
// file, a row group at a time, as COPY rows for the table's staging table.
//
// pgconn reads COPY data in a goroutine that can outlive the COPY when the
// connection fails, so next and close take turns, and next stops after close.
type processedFile struct {
	mu     sync.Mutex
	closed bool
	r      *lakefile.Reader
	cols   []fileColumn
	buf    []parquet.Row
	n, i   int
	read   int64 // rows handed out so far, and the next row's ordinal
	byLeaf []parquet.Value

	// For a straight copy into an empty table (see straightInto): each row
	// goes out without its ordinal, a fact's after its surrogate key
	// (ordinal+1), and only while the keys increase.
	straight  bool
	surrogate bool
	key       []int   // positions in cols of the key's columns
	last      []int64 // the previous row's key

	// A fact's newest last_updated, as days and microseconds, for the
	// ledger; the leaves are -1 for a dimension.
	dateLeaf, timeLeaf int
	newestDay          int32
	newestTime         int64
}

// errNotInKeyOrder reports a file whose manifest says its rows are in key
// order when they are not: the load stages it instead.
var errNotInKeyOrder = errors.New("rows not in key order")

// fileColumn is a model column and where the file keeps it: leaf -1 for
// a column a file written before the model had it lacks, which reads as
// its value then (see matchSchema).
type fileColumn struct {
	star.Column
	leaf int
}

// notDeleted is the value of a Deleted column in a file written before
// deletions were carried: no row of it was a deletion.
var notDeleted = parquet.BooleanValue(false)

// openProcessed fetches file f of batch m, table t's, checks that its
// columns are the model's with the right types, and returns a reader for
// its rows.
func openProcessed(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, t star.Table) (*processedFile, error) {
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return nil, err
	}
	cols, err := matchSchema(t, r.Schema())
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	p := &processedFile{
		r:          r,
		cols:       cols,
		buf:        make([]parquet.Row, readRows),
		byLeaf:     make([]parquet.Value, len(r.Schema().Columns())),
		dateLeaf:   -1,
		timeLeaf:   -1,
		newestDay:  math.MinInt32,
		newestTime: -1,
	}
	if t.Kind == star.Fact {
		for _, c := range cols {
			switch c.Name {
			case "last_updated_date":
				p.dateLeaf = c.leaf
			case "last_updated_time":
				p.timeLeaf = c.leaf
			}
		}
	}
	return p, nil
}

// newest returns the newest last_updated of the fact rows read so far,
// and false if there is none.
func (p *processedFile) newest() (time.Time, bool) {
	if p.newestTime < 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(p.newestDay)*microsPerDay + p.newestTime).UTC(), true
}

// matchSchema finds the model's columns in a file's schema and checks their
// types: every column of the model, no other, each with the Parquet type
// star.Table.Schema gives it (integers may lack the INT(32) annotation, and
// a nullable column may be required). A file that tote wrote before
// deletions were carried lacks is_deleted (star.Deleted): its rows are not
// deletions.
func matchSchema(t star.Table, schema *parquet.Schema) ([]fileColumn, error) {
	want := t.Schema()
	var problems []string
	cols := make([]fileColumn, 0, len(t.Columns))
	for _, c := range t.Columns {
		leaf, ok := schema.Lookup(c.Name)
		if !ok && c.Conv == star.Deleted {
			cols = append(cols, fileColumn{Column: c, leaf: -1})
			continue
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s is missing", c.Name))
			continue
		}
		expected, _ := want.Lookup(c.Name)
		got, wanted := describe(leaf.Node), describe(expected.Node)
		switch {
		case leaf.Node.Repeated():
			problems = append(problems, fmt.Sprintf("column %s is repeated", c.Name))
		case leaf.Node.Optional() && !c.Nullable:
			problems = append(problems, fmt.Sprintf("column %s is optional, but the model says NOT NULL", c.Name))
		case got != wanted && !(c.Type == star.Integer && got == "INT32"):
			problems = append(problems, fmt.Sprintf("column %s is %s, the model wants %s", c.Name, got, wanted))
		}
		cols = append(cols, fileColumn{Column: c, leaf: leaf.ColumnIndex})
	}
	for _, path := range schema.Columns() {
		if _, ok := t.Column(path[0]); !ok || len(path) != 1 {
			problems = append(problems, fmt.Sprintf("column %s is not in the model", strings.Join(path, ".")))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("does not match the model: %s", strings.Join(problems, "; "))
	}
	return cols, nil
}

// describe names a leaf's Parquet type: "DECIMAL(10,2) on INT64", "DOUBLE".
func describe(n parquet.Node) string {
	typ := n.Type()
	kind := typ.Kind().String()
	if lt := typ.LogicalType(); lt != nil && lt.String() != "" {
		return lt.String() + " on " + kind
	}
	return kind
}

// straightInto switches p to rows for a straight copy into t's empty table:
// its surrogate key (for a fact) and columns, without the ordinal. It
// reports false if t's key is not made of integer-like columns, which are
// the ones it can check the order of.
func (p *processedFile) straightInto(t star.Table) bool {
	for _, k := range t.Key {
		i := slices.IndexFunc(p.cols, func(c fileColumn) bool { return c.Name == k })
		if i < 0 {
			return false
		}
		switch p.cols[i].Type {
		case star.Integer, star.BigInt, star.Date, star.Time:
		default:
			return false
		}
		p.key = append(p.key, i)
	}
	p.straight, p.surrogate = true, t.Kind == star.Fact
	p.last = make([]int64, len(p.key))
	return true
}

// increases reports whether the row in byLeaf has a key greater than the
// previous row's, and remembers it.
func (p *processedFile) increases() bool {
	c := 0
	for j, i := range p.key {
		v := p.byLeaf[p.cols[i].leaf]
		var k int64
		if !v.IsNull() {
			switch p.cols[i].Type {
			case star.Integer, star.Date:
				k = int64(v.Int32())
			default:
				k = v.Int64()
			}
		}
		if c == 0 && p.read > 0 {
			c = cmp.Compare(k, p.last[j])
		}
		p.last[j] = k
	}
	return p.read == 0 || c > 0
}

// next writes the file's next row, then its ordinal, to w, in COPY's
// binary format. It is a postgres.BinaryRowFunc.
func (p *processedFile) next(w *postgres.BinaryRowWriter) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, errors.New("read after the load gave up")
	}
	if p.i == p.n {
		n, err := p.r.Read(p.buf)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		p.n, p.i = n, 0
	}
	row := p.buf[p.i]
	p.i++
	for _, v := range row {
		if c := v.Column(); c >= 0 && c < len(p.byLeaf) {
			p.byLeaf[c] = v
		}
	}
	if p.dateLeaf >= 0 && p.timeLeaf >= 0 {
		if d, t := p.byLeaf[p.dateLeaf], p.byLeaf[p.timeLeaf]; !d.IsNull() && !t.IsNull() {
			if day, us := d.Int32(), t.Int64(); day > p.newestDay || day == p.newestDay && us > p.newestTime {
				p.newestDay, p.newestTime = day, us
			}
		}
	}
	if p.straight && !p.increases() {
		return false, fmt.Errorf("row %d: %w", p.read+1, errNotInKeyOrder)
	}
	if p.surrogate {
		if p.read >= math.MaxInt32 {
			return false, fmt.Errorf("row %d: more rows than an integer surrogate key numbers", p.read+1)
		}
		w.Int4(int32(p.read + 1))
	}
	for _, c := range p.cols {
		v := notDeleted
		if c.leaf >= 0 {
			v = p.byLeaf[c.leaf]
		}
		if err := writeValue(w, c.Column, v); err != nil {
			return false, fmt.Errorf("row %d: column %s: %w", p.read+1, c.Name, err)
		}
	}
	if !p.straight {
		w.Int8(p.read)
	}
	w.End()
	p.read++
	return true, nil
}

// close releases the file.
func (p *processedFile) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.r.Close()
	}
}

// writeValue writes one value of column c, checking that PostgreSQL will
// take it as it is.
func writeValue(w *postgres.BinaryRowWriter, c star.Column, v parquet.Value) error {
	if v.IsNull() {
		if !c.Nullable {
			return errors.New("NULL in a NOT NULL column")
		}
		w.Null()
		return nil
	}
	switch c.Type {
	case star.Integer:
		w.Int4(v.Int32())
	case star.BigInt:
		w.Int8(v.Int64())
	case star.Money:
		cents := v.Int64()
		if cents <= -1e10 || cents >= 1e10 {
			return fmt.Errorf("%d cents does not fit numeric(10,2)", cents)
		}
		w.Cents(cents)
	case star.Boolean:
		w.Bool(v.Boolean())
	case star.Date:
		days := v.Int32()
		if days < minDate || days > maxDate {
			return fmt.Errorf("date %d days from 1970-01-01 is outside years 1 to 9999", days)
		}
		w.Date(days)
	case star.Time:
		us := v.Int64()
		if us < 0 || us >= microsPerDay {
			return fmt.Errorf("time of day %d µs is not within a day", us)
		}
		w.TimeOfDay(us)
	default:
		b := v.ByteArray()
		switch {
		case !utf8.Valid(b):
			return fmt.Errorf("text %q is not valid UTF-8", b)
		case bytes.IndexByte(b, 0) >= 0:
			return fmt.Errorf("text %q holds a NUL byte, which PostgreSQL cannot store", b)
		}
		w.TextBytes(b)
	}
	return nil
}

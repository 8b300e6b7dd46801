package transform

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
)

// A plan makes the rows of one star table as the model says (star.Column's
// From and Conv): each from a row of the table's Source and, for each of
// its Joins, the row joined.
type plan struct {
	source totesys.Table
	out    *output
	fields []field
	joins  []joinPlan
	batch  parquet.Value // the processed batch's id, for batch_id
}

// field makes one star column.
type field struct {
	out   outColumn
	conv  star.Conversion
	input int            // the row it reads: 0 the Source's, i that of joins[i-1]
	in    totesys.Column // the column it reads; none for Xmin, Batch and Deleted
	at    int            // in's index in its input row
	date  bool           // its values are days a calendar table is made of
}

// joinPlan is one of a plan's joins: whose current rows it looks up, and
// where a Source row holds their key.
type joinPlan struct {
	star.Join
	on totesys.Column
	at int // On's index in a Source row, once the plan is bound
}

// notDeleted is the value of a Deleted column of a row made from a source row.
var notDeleted = parquet.BooleanValue(false)

// newPlan works out how to make the rows of out's table. A model that does
// not fit the source model is a bug, reported as an error (star's tests
// check it).
func newPlan(out *output, batch string) (*plan, error) {
	t := out.table
	src, err := totesys.Lookup(t.Source)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	p := &plan{source: src, out: out, batch: parquet.ByteArrayValue([]byte(batch))}
	for _, j := range t.Joins {
		on, ok := src.Column(j.On)
		if _, kept := keptLayout(j.Table); !ok || !kept {
			return nil, fmt.Errorf("%s: join %s on %s.%s: no such column, or a table not kept", t.Name, j.Table, src.Name, j.On)
		}
		p.joins = append(p.joins, joinPlan{Join: j, on: on})
	}
	for _, c := range t.Columns {
		f := field{out: out.cols[c.Name], conv: c.Conv, date: isCalendar(c.References)}
		switch c.Conv {
		case star.Xmin, star.Batch, star.Deleted:
			p.fields = append(p.fields, f)
			continue
		case star.Calendar:
			return nil, fmt.Errorf("%s.%s: a calendar column in a table made from %s", t.Name, c.Name, src.Name)
		}
		table, name := c.FromTable(t.Source)
		ok := false
		if table == t.Source {
			f.in, ok = src.Column(name)
		} else if i := slices.IndexFunc(p.joins, func(j joinPlan) bool { return j.Table == table }); i >= 0 {
			l, _ := keptLayout(table)
			f.input = i + 1
			f.at, ok = l.index[name]
			f.in = l.columns[f.at]
		}
		if !ok {
			return nil, fmt.Errorf("%s.%s: no source column %s.%s", t.Name, c.Name, table, name)
		}
		p.fields = append(p.fields, f)
	}
	return p, nil
}

// isCalendar reports whether star table name is made of the days other
// tables refer to (dim_date).
func isCalendar(name string) bool {
	t, err := star.Lookup(name)
	return err == nil && t.Source == ""
}

// bind finds the plan's Source columns in the rows it will read, given
// each column's index in them: a raw file's, or a kept table's.
func (p *plan) bind(index map[string]int) {
	for i := range p.fields {
		if f := &p.fields[i]; f.input == 0 && f.conv != star.Xmin && f.conv != star.Batch && f.conv != star.Deleted {
			f.at = index[f.in.Name]
		}
	}
	for i := range p.joins {
		p.joins[i].at = index[p.joins[i].On]
	}
}

// lookup sets in[1:] to the rows that Source row in[0] joins, from ref:
// nil where its key is NULL. A key ref does not hold is an error about the
// key's column.
func (p *plan) lookup(ref *reference, in []parquet.Row) error {
	for i, j := range p.joins {
		on := in[0][j.at]
		if on.IsNull() {
			in[i+1] = nil
			continue
		}
		r, ok := ref.tables[j.Table].rows[on.Int32()]
		if !ok {
			return tote.ValueError(j.On, strconv.Itoa(int(on.Int32())),
				"is not a known "+strings.ReplaceAll(j.Table, "_", " ")+" (none in this raw batch or before it)")
		}
		in[i+1] = r.values
	}
	return nil
}

// row makes dst from Source row in[0], the version written by transaction
// xid, and the rows it joins, which it looks up in ref and puts in in[1:].
// Every day it puts in a column that refers to a calendar table is passed
// to date. The plan must be bound to in[0]'s rows.
func (p *plan) row(ref *reference, in []parquet.Row, xid int64, dst parquet.Row, date func(int32)) error {
	if len(p.joins) > 0 {
		if err := p.lookup(ref, in); err != nil {
			return err
		}
	}
	for _, f := range p.fields {
		var v parquet.Value
		switch f.conv {
		case star.Xmin:
			v = parquet.Int64Value(xid & 0xFFFF_FFFF)
		case star.Batch:
			v = p.batch
		case star.Deleted:
			v = notDeleted // a row made from a source row; the warehouse makes deletions
		default:
			if r := in[f.input]; r != nil {
				v = r[f.at]
			} else {
				v = parquet.NullValue()
			}
		}
		if !v.IsNull() {
			switch f.conv {
			case star.DateOf:
				d, _ := splitMicros(v.Int64())
				v = parquet.Int32Value(d)
			case star.TimeOf:
				_, t := splitMicros(v.Int64())
				v = parquet.Int64Value(t)
			case star.ParseDate:
				d, ok := parseDate(string(v.ByteArray()))
				if !ok {
					return tote.ValueError(f.in.Name, string(v.ByteArray()), "is not a date (YYYY-MM-DD)")
				}
				v = parquet.Int32Value(d)
			case star.CurrencyName:
				name, ok := currencyName(string(v.ByteArray()))
				if !ok {
					return tote.ValueError(f.in.Name, string(v.ByteArray()), "is not an ISO 4217 currency code")
				}
				v = parquet.ByteArrayValue([]byte(name))
			}
			if f.date {
				date(v.Int32())
			}
		}
		if err := f.out.put(dst, v); err != nil {
			return err
		}
	}
	return nil
}

package transform

import (
	"fmt"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
)

// A mapping makes the rows of a star table from those of one source table,
// a row for a row. Each star column takes the source column of the same
// name unless renamed; how its value is made follows from the two columns'
// types (see conversion).
type mapping struct {
	source  string
	target  string
	renames map[string]string // star column → source column, where they differ
}

// The facts, one row per source row version.
var factMappings = []mapping{
	{source: "sales_order", target: "fact_sales_order", renames: map[string]string{"sales_staff_id": "staff_id"}},
	{source: "purchase_order", target: "fact_purchase_order"},
	{source: "payment", target: "fact_payment"},
}

// The dimensions that come from one source table alone, one row per entity.
var dimMappings = []mapping{
	{source: "design", target: "dim_design"},
	{source: "currency", target: "dim_currency", renames: map[string]string{"currency_name": "currency_code"}},
	{source: "payment_type", target: "dim_payment_type"},
	{source: "transaction", target: "dim_transaction"},
}

// versionSources are the stamp columns facts split into dates and times.
var versionSources = map[string]string{
	"created_date":      totesys.CreatedAt,
	"created_time":      totesys.CreatedAt,
	"last_updated_date": totesys.LastUpdated,
	"last_updated_time": totesys.LastUpdated,
}

// conversion is how a star value is made from a source value.
type conversion int

const (
	copyValue    conversion = iota // the same value: integer, money, boolean, text or enum
	dateOf                         // the date of a timestamp
	timeOf                         // the time of day of a timestamp
	textDate                       // a 'YYYY-MM-DD' text parsed to a date
	currencyText                   // the ISO 4217 name of a currency code
	xmin32                         // the raw row's transaction id, as its 32-bit xmin
	batchID                        // the processed batch's id
)

// field makes one star column.
type field struct {
	out  outColumn
	in   totesys.Column
	conv conversion
	leaf int // in's index in a raw row, once the plan is bound to a file
}

// plan is a mapping worked out against the models.
type plan struct {
	source totesys.Table
	out    *output
	fields []field
	batch  parquet.Value // the processed batch's id, for batch_id
}

// newPlan works out how m makes the rows of out. A mapping that does not
// fit the models is a bug in this package, reported as an error.
func newPlan(m mapping, out *output, batch string) (*plan, error) {
	src, err := totesys.Lookup(m.source)
	if err != nil {
		return nil, err
	}
	p := &plan{source: src, out: out, batch: parquet.ByteArrayValue([]byte(batch))}
	for _, c := range out.table.Columns {
		switch c.Name {
		case star.SourceXmin:
			p.fields = append(p.fields, field{out: out.cols[c.Name], conv: xmin32})
			continue
		case star.BatchID:
			p.fields = append(p.fields, field{out: out.cols[c.Name], conv: batchID})
			continue
		}
		name := c.Name
		if s, ok := m.renames[name]; ok {
			name = s
		} else if s, ok := versionSources[name]; ok {
			name = s
		}
		in, ok := src.Column(name)
		if !ok {
			return nil, fmt.Errorf("%s.%s: no source column %s.%s", out.table.Name, c.Name, src.Name, name)
		}
		conv, ok := convert(c, in)
		if !ok {
			return nil, fmt.Errorf("%s.%s (%s) cannot be made from %s.%s (%s)", out.table.Name, c.Name, c.Type, src.Name, in.Name, in.Type)
		}
		p.fields = append(p.fields, field{out: out.cols[c.Name], in: in, conv: conv})
	}
	return p, nil
}

func convert(out star.Column, in totesys.Column) (conversion, bool) {
	switch {
	case out.Name == "currency_name" && in.Name == "currency_code":
		return currencyText, true
	case out.Type == star.Date && in.Type == totesys.Timestamp:
		return dateOf, true
	case out.Type == star.Time && in.Type == totesys.Timestamp:
		return timeOf, true
	case out.Type == star.Date && in.Type == totesys.Text:
		return textDate, true
	case out.Type == star.Integer && in.Type == totesys.Integer,
		out.Type == star.Money && in.Type == totesys.Money,
		out.Type == star.Boolean && in.Type == totesys.Boolean,
		out.Type == star.Text && (in.Type == totesys.Text || in.Type == totesys.PaymentTypeName || in.Type == totesys.TransactionType):
		return copyValue, true
	}
	return 0, false
}

// row makes the star row of one source row into dst. Every date it puts in
// the row is passed to date, if date is not nil.
// bind finds the plan's source columns in raw file r's rows.
func (p *plan) bind(r *rawFile) {
	for i := range p.fields {
		if f := &p.fields[i]; f.conv != xmin32 && f.conv != batchID {
			f.leaf = r.leaf[f.in.Name]
		}
	}
}

// row makes dst from src. The plan must be bound to src's file.
func (p *plan) row(src rawRow, dst parquet.Row, date func(int32)) error {
	for _, f := range p.fields {
		var v parquet.Value
		switch f.conv {
		case xmin32:
			v = parquet.Int64Value(src.xid() & 0xFFFF_FFFF)
		case batchID:
			v = p.batch
		default:
			v = src.row[f.leaf]
		}
		if !v.IsNull() {
			switch f.conv {
			case dateOf:
				d, _ := splitMicros(v.Int64())
				v = parquet.Int32Value(d)
			case timeOf:
				_, t := splitMicros(v.Int64())
				v = parquet.Int64Value(t)
			case textDate:
				d, ok := parseDate(string(v.ByteArray()))
				if !ok {
					return tote.ValueError(f.in.Name, string(v.ByteArray()), "is not a date (YYYY-MM-DD)")
				}
				v = parquet.Int32Value(d)
			case currencyText:
				name, ok := currencyName(string(v.ByteArray()))
				if !ok {
					return tote.ValueError(f.in.Name, string(v.ByteArray()), "is not an ISO 4217 currency code")
				}
				v = parquet.ByteArrayValue([]byte(name))
			}
			if date != nil && f.out.Type == star.Date {
				date(v.Int32())
			}
		}
		if err := f.out.put(dst, v); err != nil {
			return err
		}
	}
	return nil
}

package extract

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
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

// Unix microseconds of PostgreSQL's epoch, 2000-01-01.
const pgEpochMicros = 946_684_800_000_000

// lateSample is how many late ids a table's warning names.
const lateSample = 10

// extractTable streams the table's row versions that p says are new into
// one file of the batch. It returns what it wrote and the table's state
// for the next extraction.
func extractTable(ctx context.Context, tx pgx.Tx, batch *lake.BatchWriter, table totesys.Table,
	p *tablePlan, prog *progress) (TableResult, TableState, error) {
	start := time.Now()
	schema := table.Schema()
	cols := columns(table, schema)
	keyCol, luCol, xminCol := 0, len(cols)-1, len(cols) // the model puts the key first and last_updated last
	xidLeaf, _ := schema.Lookup(totesys.XidColumn)
	state := TableState{Watermark: p.prev.Watermark}
	res := TableResult{Table: table.Name}
	if p.skip {
		state.Taken = p.prev.Taken
		return res, state, nil
	}

	names := make([]string, len(cols), len(cols)+1)
	for i, c := range cols {
		names[i] = pgx.Identifier{c.model.Name}.Sanitize()
	}
	sql := fmt.Sprintf("SELECT %s, xmin FROM %s", strings.Join(names, ", "), pgx.Identifier{table.Name}.Sanitize())
	args := []any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}
	switch {
	case p.ids != nil:
		sql += fmt.Sprintf(" WHERE %s = ANY($1)", pgx.Identifier{table.Key()}.Sanitize())
		args = append(args, p.ids)
	case !p.first && p.xids != "":
		sql += " WHERE xmin = ANY(" + p.xids + ")" // our own numbers: a constant, which the server hashes
	case !p.first:
		sql += " WHERE age(xmin) <= $1"
		args = append(args, p.maxAge)
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return TableResult{}, TableState{}, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()

	w := lakefile.NewWriter(batch, table.Name, schema)
	defer w.Abandon()
	var rawBytes int64
	chunk := make([]parquet.Row, 0, chunkRows)
	var arena []byte
	tick := prog.table(table.Name)
	for rows.Next() {
		raw := rows.RawValues()
		id, err := int4(raw[keyCol])
		if err != nil {
			return TableResult{}, TableState{}, tote.At(err, tote.Where{Column: table.Key()})
		}
		lu, err := timestampMicros(raw[luCol])
		if err != nil {
			return TableResult{}, TableState{}, tote.At(err, tote.Where{ID: int64(id), Column: totesys.LastUpdated})
		}
		xmin, err := int4(raw[xminCol])
		if err != nil {
			return TableResult{}, TableState{}, tote.At(fmt.Errorf("xmin: %w", err), tote.Where{ID: int64(id)})
		}
		xid := widenBelow(uint32(xmin), p.xmax)
		seen := [2]int64{int64(id), xid}
		if xid >= int64(p.next) {
			state.Taken = append(state.Taken, seen) // taken now or before: the next read meets it again
		}
		if p.alreadyTaken(int64(id), xid, lu) || (p.ids != nil && p.inFlight(int64(id), xid)) {
			continue
		}
		if !p.first && lu < p.late {
			res.Late++
			res.MaxLate = max(res.MaxLate, time.Duration(p.late-lu)*time.Microsecond+time.Second)
			if len(state.lateIDs) < lateSample {
				state.lateIDs = append(state.lateIDs, int64(id))
			}
		}
		if t := time.UnixMicro(lu).UTC(); t.After(state.Watermark) {
			state.Watermark = t
		}
		if p.noRows {
			continue
		}
		row := make(parquet.Row, len(cols)+1)
		for i, c := range cols {
			b := raw[i]
			rawBytes += int64(len(b))
			val, err := decode(c.model, b, &arena)
			if err != nil {
				return TableResult{}, TableState{}, tote.At(err, tote.Where{ID: int64(id), Column: c.model.Name})
			}
			if val.IsNull() {
				row[c.leaf] = val.Level(0, 0, c.leaf)
			} else {
				row[c.leaf] = val.Level(0, c.def, c.leaf)
			}
		}
		row[xidLeaf.ColumnIndex] = parquet.Int64Value(xid).Level(0, 0, xidLeaf.ColumnIndex)
		chunk = append(chunk, row)
		if len(chunk) == chunkRows {
			if err := w.Write(ctx, chunk); err != nil {
				return TableResult{}, TableState{}, err
			}
			chunk, arena = chunk[:0], arena[:0]
			tick(w.Rows(), rawBytes)
		}
	}
	if err := rows.Err(); err != nil {
		return TableResult{}, TableState{}, fmt.Errorf("read: %w", err)
	}
	if err := w.Write(ctx, chunk); err != nil {
		return TableResult{}, TableState{}, err
	}
	if err := w.Close(); err != nil {
		return TableResult{}, TableState{}, err
	}
	tick(w.Rows(), rawBytes)
	prog.tableDone(table.Name, w.Rows(), rawBytes, time.Since(start))
	res.Rows, res.Bytes, res.SourceBytes, res.Elapsed = w.Rows(), w.Bytes(), rawBytes, time.Since(start)
	return res, state, nil
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
	return v + pgEpochMicros, nil
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

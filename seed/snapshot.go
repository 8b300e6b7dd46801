package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// LoadSnapshot creates the totesys schema in pool's database and fills it
// from a snapshot of the real tables: one Parquet file per table, named
// <table>.parquet, in dir. Values are cast back to the source types
// (floating-point money to numeric(10,2), floating-point ids to integers,
// nanosecond timestamps to milliseconds); one that does not fit is an error
// naming the file, row and column.
func LoadSnapshot(ctx context.Context, pool *pgxpool.Pool, dir string, force bool, log *slog.Logger) (Result, error) {
	var sources []rowSource
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, t := range totesys.Tables {
		path := filepath.Join(dir, t.Name+".parquet")
		f, err := os.Open(path)
		if err != nil {
			return Result{}, fmt.Errorf("seed from snapshot: table %s: %w", t.Name, err)
		}
		files = append(files, f)
		src, err := snapshotTable(t, f)
		if err != nil {
			return Result{}, fmt.Errorf("seed from snapshot: %s: %w", path, err)
		}
		sources = append(sources, src)
	}
	return fill(ctx, pool, force, logger(log), sources)
}

// snapshotColumn is where a model column is found in a Parquet file and how
// to turn its values into the model's type.
type snapshotColumn struct {
	model totesys.Column
	index int           // leaf column index in the file
	unit  time.Duration // timestamp unit, for timestamp columns
}

func snapshotTable(t totesys.Table, f *os.File) (rowSource, error) {
	st, err := f.Stat()
	if err != nil {
		return rowSource{}, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return rowSource{}, fmt.Errorf("not a readable Parquet file: %w", err)
	}
	cols := make([]snapshotColumn, len(t.Columns))
	for i, c := range t.Columns {
		leaf, ok := pf.Schema().Lookup(c.Name)
		if !ok {
			return rowSource{}, fmt.Errorf("column %s is missing", c.Name)
		}
		cols[i] = snapshotColumn{model: c, index: leaf.ColumnIndex}
		if c.Type == totesys.Timestamp {
			unit, err := timestampUnit(leaf.Node)
			if err != nil {
				return rowSource{}, fmt.Errorf("column %s: %w", c.Name, err)
			}
			cols[i].unit = unit
		}
	}
	rows, err := readAll(pf)
	if err != nil {
		return rowSource{}, err
	}
	var rowNum int
	next := func(w *postgres.RowWriter) (bool, error) {
		if rowNum == len(rows) {
			return false, nil
		}
		row := rows[rowNum]
		rowNum++
		for _, c := range cols {
			if err := writeSnapshotValue(w, c, row[c.index]); err != nil {
				return false, fmt.Errorf("table %s row %d (%s %s): column %s: %w",
					t.Name, rowNum, t.Key(), row[cols[0].index], c.model.Name, err)
			}
		}
		w.End()
		return true, nil
	}
	return rowSource{table: t, next: next}, nil
}

func timestampUnit(n parquet.Node) (time.Duration, error) {
	if lt := n.Type().LogicalType(); lt != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok && ts.Unit.Value != nil {
			return ts.Unit.Value.Duration(), nil
		}
	}
	return 0, fmt.Errorf("is %s, not a timestamp", n.Type())
}

func writeSnapshotValue(w *postgres.RowWriter, c snapshotColumn, v parquet.Value) error {
	if v.IsNull() {
		if !c.model.Nullable {
			return errors.New("null in a NOT NULL column")
		}
		w.Null()
		return nil
	}
	switch c.model.Type {
	case totesys.Integer:
		n, err := integerValue(v)
		if err != nil {
			return err
		}
		w.Int(n)
	case totesys.Money:
		cents, err := centsValue(v)
		if err != nil {
			return err
		}
		w.Cents(cents)
	case totesys.Boolean:
		if v.Kind() != parquet.Boolean {
			return fmt.Errorf("%v is not a boolean", v)
		}
		w.Bool(v.Boolean())
	case totesys.Timestamp:
		if v.Kind() != parquet.Int64 {
			return fmt.Errorf("%v is not a timestamp", v)
		}
		ns := v.Int64() * int64(c.unit)
		w.Timestamp(time.Unix(0, ns).UTC().Truncate(time.Millisecond))
	default: // text and enums
		if v.Kind() != parquet.ByteArray {
			return fmt.Errorf("%v is not text", v)
		}
		w.Text(string(v.ByteArray()))
	}
	return nil
}

func integerValue(v parquet.Value) (int64, error) {
	switch v.Kind() {
	case parquet.Int32:
		return int64(v.Int32()), nil
	case parquet.Int64:
		n := v.Int64()
		if n < math.MinInt32 || n > math.MaxInt32 {
			return 0, fmt.Errorf("%d does not fit an integer column", n)
		}
		return n, nil
	case parquet.Double:
		d := v.Double()
		if d != math.Trunc(d) || d < math.MinInt32 || d > math.MaxInt32 {
			return 0, fmt.Errorf("%v is not a whole number that fits an integer column", d)
		}
		return int64(d), nil
	}
	return 0, fmt.Errorf("%v is not an integer", v)
}

// centsValue reads money. Floating-point values (how pandas wrote the
// snapshot) are rounded to the nearest cent through their shortest decimal
// form, which is what the database held before it was written out.
func centsValue(v parquet.Value) (int64, error) {
	switch v.Kind() {
	case parquet.Double, parquet.Float:
		d := v.Double()
		if v.Kind() == parquet.Float {
			d = float64(v.Float())
		}
		if math.IsNaN(d) || math.IsInf(d, 0) || math.Abs(d) >= 1e8 {
			return 0, fmt.Errorf("%v does not fit numeric(10,2)", d)
		}
		s := strconv.FormatFloat(d, 'f', 2, 64)
		cents, err := strconv.ParseInt(s[:len(s)-3]+s[len(s)-2:], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%v: %w", d, err)
		}
		return cents, nil
	case parquet.Int32, parquet.Int64:
		return 0, fmt.Errorf("%v: integer money without a decimal scale is ambiguous", v)
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

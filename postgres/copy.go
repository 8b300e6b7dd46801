package postgres

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RowWriter appends rows in PostgreSQL's COPY text format to a buffer.
// Values are written in column order and each row ends with End.
type RowWriter struct {
	buf   []byte
	first bool
}

func (w *RowWriter) sep() {
	if w.first {
		w.first = false
		return
	}
	w.buf = append(w.buf, '\t')
}

// Null writes SQL NULL.
func (w *RowWriter) Null() { w.sep(); w.buf = append(w.buf, `\N`...) }

// Int writes an integer.
func (w *RowWriter) Int(v int64) { w.sep(); w.buf = strconv.AppendInt(w.buf, v, 10) }

// Bool writes a boolean.
func (w *RowWriter) Bool(v bool) {
	w.sep()
	if v {
		w.buf = append(w.buf, 't')
	} else {
		w.buf = append(w.buf, 'f')
	}
}

// Cents writes an amount of hundredths as a numeric with two decimals, exactly.
func (w *RowWriter) Cents(v int64) {
	w.sep()
	if v < 0 {
		w.buf = append(w.buf, '-')
		v = -v
	}
	w.buf = strconv.AppendInt(w.buf, v/100, 10)
	w.buf = append(w.buf, '.', byte('0'+v%100/10), byte('0'+v%10))
}

// Timestamp writes a timestamp without time zone at microsecond precision.
func (w *RowWriter) Timestamp(t time.Time) {
	w.sep()
	w.buf = t.AppendFormat(w.buf, "2006-01-02 15:04:05.999999")
}

// Date writes a date given as days since 1970-01-01, of years 1 to 9999.
func (w *RowWriter) Date(days int32) {
	w.sep()
	y, m, d := civil(int64(days))
	if y < 1 || y > 9999 {
		w.buf = time.Unix(int64(days)*86400, 0).UTC().AppendFormat(w.buf, "2006-01-02")
		return
	}
	w.buf = append(w.buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		'-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian year,
// month and day (Howard Hinnant's days_from_civil, inverted). It is what
// time.Time.AppendFormat gives, without its cost per row.
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// TimeOfDay writes a time without time zone given as microseconds since
// midnight (0 to a day less a microsecond), as hh:mm:ss with the fraction's
// trailing zeros dropped.
func (w *RowWriter) TimeOfDay(micros int64) {
	w.sep()
	if micros < 0 || micros >= 86_400_000_000 {
		w.buf = time.UnixMicro(micros).UTC().AppendFormat(w.buf, "15:04:05.999999")
		return
	}
	s := micros / 1_000_000
	frac := micros % 1_000_000
	h, mi, se := s/3600, s/60%60, s%60
	w.buf = append(w.buf, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10),
		':', byte('0'+se/10), byte('0'+se%10))
	if frac == 0 {
		return
	}
	var digits [7]byte
	digits[0] = '.'
	for i := 6; i >= 1; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for digits[n-1] == '0' {
		n--
	}
	w.buf = append(w.buf, digits[:n]...)
}

// Text writes a string, escaped as COPY text requires.
func (w *RowWriter) Text(s string) {
	w.sep()
	if !strings.ContainsAny(s, "\\\t\n\r") {
		w.buf = append(w.buf, s...)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			w.buf = append(w.buf, `\\`...)
		case '\t':
			w.buf = append(w.buf, `\t`...)
		case '\n':
			w.buf = append(w.buf, `\n`...)
		case '\r':
			w.buf = append(w.buf, `\r`...)
		default:
			w.buf = append(w.buf, c)
		}
	}
}

// Len is the number of bytes written since the last Reset.
func (w *RowWriter) Len() int { return len(w.buf) }

// Append appends what was written since the last Reset to b.
func (w *RowWriter) Append(b []byte) []byte { return append(b, w.buf...) }

// Reset empties the writer, keeping its memory, ready for a new row.
func (w *RowWriter) Reset() { w.buf, w.first = w.buf[:0], true }

// End finishes the current row.
func (w *RowWriter) End() {
	w.buf = append(w.buf, '\n')
	w.first = true
}

// RowFunc writes the next row to w and reports whether it wrote one; it
// returns false when there are no more rows.
type RowFunc func(w *RowWriter) (bool, error)

// chunkReader adapts rows made on demand to the io.Reader that COPY FROM
// STDIN consumes, a chunk of about copyChunk bytes at a time, so that
// memory stays flat however many rows there are. The format is fill's:
// it appends the next rows to buf and returns it, how many rows it added,
// and whether they have ended.
type chunkReader struct {
	rows  rowCount
	fill  func(buf []byte) (chunk []byte, rows int64, end bool, err error)
	chunk []byte
	off   int
	done  bool
}

// rowCount is the rows a COPY reader has produced, and its RowFunc's error.
// pgconn reads in a goroutine of its own that can outlive CopyFrom when
// the server reports an error, so what CopyFrom reads back is guarded.
type rowCount struct {
	mu   sync.Mutex
	rows int64
	err  error // the RowFunc's error, which COPY reports less clearly
}

func (c *rowCount) add(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows += n
}

func (c *rowCount) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *rowCount) result() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rows, c.err
}

const copyChunk = 256 << 10

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.off == len(r.chunk) {
		if r.done {
			return 0, io.EOF
		}
		chunk, n, end, err := r.fill(r.chunk[:0])
		if err != nil {
			r.rows.fail(err)
			return 0, err
		}
		r.chunk, r.off, r.done = chunk, 0, end
		r.rows.add(n)
	}
	n := copy(p, r.chunk[r.off:])
	r.off += n
	return n, nil
}

// textRows is the fill of a text COPY: next's rows.
func textRows(next RowFunc) func([]byte) ([]byte, int64, bool, error) {
	var w RowWriter
	return func(buf []byte) ([]byte, int64, bool, error) {
		w.buf = buf
		var n int64
		for len(w.buf) < copyChunk {
			w.first = true
			ok, err := next(&w)
			if err != nil {
				return w.buf, n, false, err
			}
			if !ok {
				return w.buf, n, true, nil
			}
			n++
		}
		return w.buf, n, false, nil
	}
}

// CopyFrom streams the rows that next produces into table's columns with
// COPY FROM STDIN and returns how many it wrote.
func CopyFrom(ctx context.Context, pool *pgxpool.Pool, table string, columns []string, next RowFunc) (int64, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", table, err)
	}
	defer conn.Release()
	return CopyFromConn(ctx, conn.Conn(), table, columns, next)
}

// CopyFromConn is CopyFrom on one connection, possibly inside a transaction.
func CopyFromConn(ctx context.Context, conn *pgx.Conn, table string, columns []string, next RowFunc) (int64, error) {
	r := &chunkReader{fill: textRows(next)}
	return copyFrom(ctx, conn, table, columns, "", r, &r.rows)
}

// copyFrom runs COPY table (columns) FROM STDIN [options] with r's data,
// and returns the rows copied. A row function's error, in rows, is
// returned as it is: COPY reports it less clearly.
func copyFrom(ctx context.Context, conn *pgx.Conn, table string, columns []string, options string, r io.Reader, rows *rowCount) (int64, error) {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN%s", pgx.Identifier{table}.Sanitize(), strings.Join(cols, ", "), options)
	tag, err := conn.PgConn().CopyFrom(ctx, r, sql)
	n, rowErr := rows.result()
	if rowErr != nil {
		return n, rowErr
	}
	if err != nil {
		return n, fmt.Errorf("copy into %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

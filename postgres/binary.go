package postgres

import (
	"context"
	"encoding/binary"

	"github.com/jackc/pgx/v5"
)

// BinaryRowWriter appends rows in PostgreSQL's binary COPY format to a
// buffer. The server takes binary values without parsing text, which
// halves its work per row on a load; in exchange each value must be of
// its column's exact type (Int4 for integer, Int8 for bigint, …), or the
// COPY fails. Values are written in column order and each row ends with
// End.
type BinaryRowWriter struct {
	buf    []byte
	fields int // columns per row
	start  bool
}

// The binary format's epoch is 2000-01-01, 10,957 days after Unix's:
// EpochDays and EpochMicros are it in Unix days and microseconds, for
// every reader and writer of binary dates and timestamps.
const (
	EpochDays   = 10_957
	EpochMicros = EpochDays * 86_400_000_000
)

// field starts a value of n bytes (-1: NULL), and the row if it is its
// first.
func (w *BinaryRowWriter) field(n int) {
	if w.start {
		w.start = false
		w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(w.fields))
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n))
}

// Null writes SQL NULL.
func (w *BinaryRowWriter) Null() { w.field(-1) }

// Int4 writes an integer.
func (w *BinaryRowWriter) Int4(v int32) {
	w.field(4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(v))
}

// Int8 writes a bigint.
func (w *BinaryRowWriter) Int8(v int64) {
	w.field(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(v))
}

// Bool writes a boolean.
func (w *BinaryRowWriter) Bool(v bool) {
	w.field(1)
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Cents writes an amount of hundredths as a numeric with two decimals,
// exactly: base-10000 digits, the last after the point.
func (w *BinaryRowWriter) Cents(v int64) {
	var sign uint16
	u := uint64(v)
	if v < 0 {
		sign, u = 0x4000, uint64(-v) // -MinInt64 wraps to itself, read as unsigned: still exact
	}
	// Digits from the least significant: the fraction (hundredths as one
	// base-10000 digit), then the integer part's.
	var digits [6]uint16
	n := 0
	digits[n], n = uint16(u%100*100), n+1
	for whole := u / 100; whole > 0; whole /= 10_000 {
		digits[n], n = uint16(whole%10_000), n+1
	}
	weight := n - 2 // of the most significant digit
	lo := 0         // trailing zero digits are implied
	for lo < n && digits[lo] == 0 {
		lo++
	}
	if lo == n { // zero
		w.field(8)
		w.buf = append(w.buf, 0, 0, 0, 0, 0, 0, 0, 2)
		return
	}
	count := n - lo
	w.field(8 + 2*count)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(count))
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(int16(weight)))
	w.buf = binary.BigEndian.AppendUint16(w.buf, sign)
	w.buf = binary.BigEndian.AppendUint16(w.buf, 2) // dscale
	for i := n - 1; i >= lo; i-- {
		w.buf = binary.BigEndian.AppendUint16(w.buf, digits[i])
	}
}

// Date writes a date given as days since 1970-01-01.
func (w *BinaryRowWriter) Date(days int32) {
	w.field(4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(days-EpochDays))
}

// TimeOfDay writes a time without time zone given as microseconds since
// midnight.
func (w *BinaryRowWriter) TimeOfDay(micros int64) {
	w.field(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(micros))
}

// Timestamp writes a timestamp without time zone given as microseconds
// since 1970-01-01 00:00.
func (w *BinaryRowWriter) Timestamp(micros int64) {
	w.field(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(micros-EpochMicros))
}

// Text writes a string as it is (the server still checks its encoding).
func (w *BinaryRowWriter) Text(s string) {
	w.field(len(s))
	w.buf = append(w.buf, s...)
}

// TextBytes writes text given as bytes, which it copies.
func (w *BinaryRowWriter) TextBytes(b []byte) {
	w.field(len(b))
	w.buf = append(w.buf, b...)
}

// End finishes the current row.
func (w *BinaryRowWriter) End() { w.start = true }

// Reset empties the writer, keeping its memory, ready for a new row.
func (w *BinaryRowWriter) Reset() { w.buf, w.start = w.buf[:0], true }

// BinaryRowFunc writes the next row to w and reports whether it wrote one;
// it returns false when there are no more rows.
type BinaryRowFunc func(w *BinaryRowWriter) (bool, error)

// binaryHeader starts a binary COPY stream: the signature, no flags, no
// header extension.
var binaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// binaryRows is the fill of a binary COPY: the header, next's rows, the
// trailer.
func binaryRows(next BinaryRowFunc, fields int) func([]byte) ([]byte, int64, bool, error) {
	w := BinaryRowWriter{fields: fields}
	header := true
	return func(buf []byte) ([]byte, int64, bool, error) {
		w.buf = buf
		if header {
			header = false
			w.buf = append(w.buf, binaryHeader...)
		}
		var n int64
		for len(w.buf) < copyChunk {
			w.start = true
			ok, err := next(&w)
			if err != nil {
				return w.buf, n, false, err
			}
			if !ok {
				return binary.BigEndian.AppendUint16(w.buf, 0xFFFF), n, true, nil // the trailer
			}
			n++
		}
		return w.buf, n, false, nil
	}
}

// CopyFromBinary is CopyFromConn in the binary format: next writes each
// row's values in the exact types of columns.
func CopyFromBinary(ctx context.Context, conn *pgx.Conn, table string, columns []string, next BinaryRowFunc) (int64, error) {
	r := &chunkReader{fill: binaryRows(next, len(columns))}
	return copyFrom(ctx, conn, table, columns, " (FORMAT binary)", r, &r.rows)
}

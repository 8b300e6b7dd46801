package postgres_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/terrifictotes/tote/postgres"
)

// BenchmarkRowWriter encodes fact_sales_order-shaped rows as COPY text.
func BenchmarkRowWriter(b *testing.B) {
	var w postgres.RowWriter
	w.Reset()
	b.ReportAllocs()
	var bytes int64
	for i := 0; b.Loop(); i++ {
		n := int64(i)
		w.Int(n)                     // sales_order_id
		w.Date(19000 + int32(i%700)) // created_date
		w.TimeOfDay(n * 1_000_003 % 86_400_000_000)
		w.Date(19000 + int32(i%700))
		w.TimeOfDay(n * 7_000_001 % 86_400_000_000)
		w.Int(n % 20)
		w.Int(n % 20)
		w.Int(n % 100_000)
		w.Cents(n % 100_000)
		w.Int(n % 3)
		w.Int(n % 400)
		w.Date(19100 + int32(i%700))
		w.Date(19100 + int32(i%700))
		w.Int(n % 30)
		w.Text("a design name")
		w.End()
		if w.Len() > 256<<10 {
			bytes += int64(w.Len())
			w.Reset()
		}
	}
	b.SetBytes((bytes + int64(w.Len())) / int64(max(b.N, 1)))
}

// The fast date and time writers agree with time's formatting everywhere.
func TestDateAndTimeMatchTimeFormat(t *testing.T) {
	t.Parallel()
	for days := int32(-719_162); days <= 2_932_896; days += 7 {
		checkDate(t, days)
	}
	for _, days := range []int32{-719_162, -1, 0, 1, 59, 60, 11_016, 2_932_896} {
		checkDate(t, days)
	}
	for us := int64(0); us < 86_400_000_000; us += 9_999_991 {
		checkTime(t, us)
	}
	for _, us := range []int64{0, 1, 10, 1_000_000, 1_500_000, 86_399_999_999, 3_600_000_000, 43_200_123_400} {
		checkTime(t, us)
	}
}

func checkDate(t *testing.T, days int32) {
	t.Helper()
	var w postgres.RowWriter
	w.Reset()
	w.Date(days)
	want := time.Unix(int64(days)*86400, 0).UTC().Format("2006-01-02")
	if got := string(w.Append(nil)); got != want {
		t.Fatalf("Date(%d) = %q, want %q", days, got, want)
	}
}

func checkTime(t *testing.T, us int64) {
	t.Helper()
	var w postgres.RowWriter
	w.Reset()
	w.TimeOfDay(us)
	want := time.UnixMicro(us).UTC().Format("15:04:05.999999")
	if got := string(w.Append(nil)); got != want {
		t.Fatalf("TimeOfDay(%d) = %q, want %q", us, got, want)
	}
}

// BenchmarkBinaryRowWriter encodes the same rows in COPY's binary format.
func BenchmarkBinaryRowWriter(b *testing.B) {
	var w postgres.BinaryRowWriter
	w.Reset()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := int64(i)
		w.Int4(int32(n))
		w.Date(19000 + int32(i%700))
		w.TimeOfDay(n * 1_000_003 % 86_400_000_000)
		w.Date(19000 + int32(i%700))
		w.TimeOfDay(n * 7_000_001 % 86_400_000_000)
		w.Int4(int32(n % 20))
		w.Int4(int32(n % 20))
		w.Int4(int32(n % 100_000))
		w.Cents(n % 100_000)
		w.Int4(int32(n % 3))
		w.Int4(int32(n % 400))
		w.Date(19100 + int32(i%700))
		w.Date(19100 + int32(i%700))
		w.Int4(int32(n % 30))
		w.Text("a design name")
		w.End()
		if i%1000 == 999 {
			w.Reset()
		}
	}
}

// BenchmarkPgxBinaryEncode encodes the same rows as pgx's CopyFrom would:
// a []any per row, each value through pgtype's encode plans (numeric as
// pgtype.Numeric), for docs/decisions/0010.
func BenchmarkPgxBinaryEncode(b *testing.B) {
	m := pgtype.NewMap()
	oids := []uint32{pgtype.Int4OID, pgtype.DateOID, pgtype.TimeOID, pgtype.DateOID, pgtype.TimeOID, pgtype.Int4OID,
		pgtype.Int4OID, pgtype.Int4OID, pgtype.NumericOID, pgtype.Int4OID, pgtype.Int4OID, pgtype.DateOID, pgtype.DateOID,
		pgtype.Int4OID, pgtype.TextOID}
	buf := make([]byte, 0, 256<<10)
	day := func(d int) pgtype.Date {
		return pgtype.Date{Time: time.Unix(int64(d)*86400, 0).UTC(), Valid: true}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := int64(i)
		row := []any{int32(n), day(19000 + i%700), pgtype.Time{Microseconds: n * 1_000_003 % 86_400_000_000, Valid: true},
			day(19000 + i%700), pgtype.Time{Microseconds: n * 7_000_001 % 86_400_000_000, Valid: true},
			int32(n % 20), int32(n % 20), int32(n % 100_000),
			pgtype.Numeric{Int: big.NewInt(n % 100_000), Exp: -2, Valid: true},
			int32(n % 3), int32(n % 400), day(19100 + i%700), day(19100 + i%700), int32(n % 30), "a design name"}
		for j, v := range row {
			var err error
			if buf, err = m.Encode(oids[j], pgtype.BinaryFormatCode, v, buf); err != nil {
				b.Fatal(err)
			}
		}
		if i%1000 == 999 {
			buf = buf[:0]
		}
	}
}

package postgres_test

import (
	"testing"
	"time"

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

package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/terrifictotes/tote/postgres"
)

// Every value the RowWriter writes must come back from PostgreSQL as it went in.
func TestCopyFromRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := poolWith(t, `CREATE TABLE t (i int, s text, m numeric(10,2), b boolean, ts timestamp(6), n text)`)
	texts := []string{"plain", "tab\there", "new\nline", `back\slash`, "cr\rhere", "ünïcödé", ""}
	cents := []int64{0, 1, -1, 99, -99, 100, 12345, -12345, 99999999}
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)
	i := 0
	n, err := postgres.CopyFrom(ctx, pool, "t", []string{"i", "s", "m", "b", "ts", "n"}, func(w *postgres.RowWriter) (bool, error) {
		if i == len(cents) {
			return false, nil
		}
		w.Int(int64(i))
		w.Text(texts[i%len(texts)])
		w.Cents(cents[i])
		w.Bool(i%2 == 0)
		w.Timestamp(ts.Add(time.Duration(i) * time.Microsecond))
		w.Null()
		w.End()
		i++
		return true, nil
	})
	if err != nil || n != int64(len(cents)) {
		t.Fatalf("CopyFrom = %d, %v", n, err)
	}
	rows, err := pool.Query(ctx, `SELECT i, s, m::text, b, ts, n IS NULL FROM t ORDER BY i`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      int
			s, m    string
			b, null bool
			got     time.Time
		)
		if err := rows.Scan(&id, &s, &m, &b, &got, &null); err != nil {
			t.Fatal(err)
		}
		c := cents[id]
		sign := ""
		if c < 0 {
			sign, c = "-", -c
		}
		wantM := sign + itoa(c/100) + "." + pad2(c%100)
		if s != texts[id%len(texts)] || m != wantM || b != (id%2 == 0) || !got.Equal(ts.Add(time.Duration(id)*time.Microsecond)) || !null {
			t.Errorf("row %d = %q %s %v %v null=%v; want %q %s", id, s, m, b, got, null, texts[id%len(texts)], wantM)
		}
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func pad2(n int64) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func TestCopyFromRowError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := poolWith(t, `CREATE TABLE t (i int)`)
	bad := errors.New("row 3: value does not fit")
	i := 0
	_, err := postgres.CopyFrom(ctx, pool, "t", []string{"i"}, func(w *postgres.RowWriter) (bool, error) {
		i++
		if i == 3 {
			return false, bad
		}
		w.Int(int64(i))
		w.End()
		return true, nil
	})
	if !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the row function's own error", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a failed COPY left %d rows (%v)", n, err)
	}
}

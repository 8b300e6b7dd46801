package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/postgres"
)

// The binary writer gives PostgreSQL the same values as the text writer,
// edge cases and random amounts alike.
func TestCopyFromBinaryMatchesText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const columns = `(i int, b bigint, m numeric(10,2), ok boolean, d date, tm time(6), ts timestamp(6), s text)`
	pool := poolWith(t, `CREATE TABLE text_rows `+columns, `CREATE TABLE binary_rows `+columns)
	cents := []int64{0, 1, -1, 5, 10, 99, -99, 100, -100, 101, 9999, 10000, 10001, 999999, 1000000, 1000001,
		123456789, -123456789, 9999999999, -9999999999, 100000000, 1234500, 50}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		cents = append(cents, rng.Int64N(2*9999999999+1)-9999999999)
	}
	days := []int32{-719162, 2932896, -1, 0, 10957, 10956, 19691, 19782}
	micros := []int64{0, 1, 86_399_999_999, 43_200_000_000, 51_652_187_000}
	texts := []string{"", "plain", "tab\there", "new\nline", `back\slash`, "ünïcödé", "O'Reilly"}
	cols := []string{"i", "b", "m", "ok", "d", "tm", "ts", "s"}
	row := func(i int) (int32, int64, int64, bool, int32, int64, int64, string) {
		d := days[i%len(days)]
		return int32(i) - 1000, int64(i) << 33, cents[i], i%3 == 0, d, micros[i%len(micros)],
			int64(d)*86_400_000_000 + micros[i%len(micros)], texts[i%len(texts)]
	}
	i := 0
	if _, err := postgres.CopyFrom(ctx, pool, "text_rows", cols, func(w *postgres.RowWriter) (bool, error) {
		if i == len(cents) {
			return false, nil
		}
		a, b, m, ok, d, tm, ts, s := row(i)
		w.Int(int64(a))
		w.Int(b)
		w.Cents(m)
		w.Bool(ok)
		w.Date(d)
		w.TimeOfDay(tm)
		if i%5 == 0 {
			w.Null()
		} else {
			w.Timestamp(time.UnixMicro(ts).UTC())
		}
		w.Text(s)
		w.End()
		i++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	i = 0
	n, err := postgres.CopyFromBinary(ctx, conn.Conn(), "binary_rows", cols, func(w *postgres.BinaryRowWriter) (bool, error) {
		if i == len(cents) {
			return false, nil
		}
		a, b, m, ok, d, tm, ts, s := row(i)
		w.Int4(a)
		w.Int8(b)
		w.Cents(m)
		w.Bool(ok)
		w.Date(d)
		w.TimeOfDay(tm)
		if i%5 == 0 {
			w.Null()
		} else {
			w.Timestamp(ts)
		}
		w.Text(s)
		w.End()
		i++
		return true, nil
	})
	if err != nil || n != int64(len(cents)) {
		t.Fatalf("CopyFromBinary = %d, %v", n, err)
	}
	rows, err := pool.Query(ctx, `SELECT 'text only', * FROM (TABLE text_rows EXCEPT ALL TABLE binary_rows) a
		UNION ALL SELECT 'binary only', * FROM (TABLE binary_rows EXCEPT ALL TABLE text_rows) b LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		v, _ := rows.Values()
		t.Errorf("%v", v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Scale is kept: 1.50 stays 1.50, not 1.5.
	var scales int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM binary_rows WHERE scale(m) <> 2`).Scan(&scales); err != nil || scales != 0 {
		t.Errorf("%d amounts without two decimals (%v)", scales, err)
	}
}

// A row function's error ends the binary COPY with that error.
func TestCopyFromBinaryRowError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := poolWith(t, `CREATE TABLE t (i int)`)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	i := 0
	_, err = postgres.CopyFromBinary(ctx, conn.Conn(), "t", []string{"i"}, func(w *postgres.BinaryRowWriter) (bool, error) {
		if i == 100_000 {
			return false, errBadRow
		}
		w.Int4(int32(i))
		w.End()
		i++
		return true, nil
	})
	if !errors.Is(err, errBadRow) {
		t.Fatalf("got %v, want the row function's error", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows after a failed COPY (%v)", n, err)
	}
}

var errBadRow = errors.New("bad row")

// poolWith returns a pool on a new database in which the statements have run.
func poolWith(t *testing.T, statements ...string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, s := range statements {
		if _, err := pool.Exec(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

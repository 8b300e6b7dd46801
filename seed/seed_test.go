package seed_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/totesys"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// checksums returns an md5 of every table's rows in key order.
func checksums(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, table := range totesys.Tables {
		var sum string
		sql := fmt.Sprintf("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY %s), '')) FROM %s t", table.Key(), table.Name)
		if err := pool.QueryRow(context.Background(), sql).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		sums[table.Name] = sum
	}
	return sums
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, c := newPool(t), newPool(t), newPool(t)
	for _, run := range []struct {
		pool *pgxpool.Pool
		seed uint64
	}{{a, 7}, {b, 7}, {c, 8}} {
		if _, err := seed.Generate(ctx, run.pool, seed.Options{Scale: 1, Seed: run.seed}); err != nil {
			t.Fatal(err)
		}
	}
	sumA, sumB, sumC := checksums(t, a), checksums(t, b), checksums(t, c)
	for _, table := range totesys.TableNames() {
		if sumA[table] != sumB[table] {
			t.Errorf("%s: same seed, different rows", table)
		}
	}
	for _, table := range []string{"sales_order", "purchase_order", "payment", "design", "address"} {
		if sumA[table] == sumC[table] {
			t.Errorf("%s: seeds 7 and 8 gave the same rows", table)
		}
	}
}

func TestGenerateHasTheRealShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	res, err := seed.Generate(ctx, pool, seed.Options{Scale: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, tc := range res.Tables {
		got[tc.Table] = tc.Rows
		if n := count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{tc.Table}.Sanitize()); n != tc.Rows {
			t.Errorf("%s: result says %d rows, table has %d", tc.Table, tc.Rows, n)
		}
	}
	for table, want := range map[string]int64{
		"address": 30, "counterparty": 20, "currency": 3, "department": 8, "staff": 20, "payment_type": 4,
		"design": 800, "transaction": 33200, "payment": 33200,
	} {
		if got[table] != want {
			t.Errorf("%s: %d rows, want %d", table, got[table], want)
		}
	}
	if got["sales_order"]+got["purchase_order"] != 33200 || got["sales_order"] < 23000 || got["sales_order"] > 25000 {
		t.Errorf("sales %d + purchases %d: want about 24,000 + 9,200", got["sales_order"], got["purchase_order"])
	}

	checks := []struct{ what, sql string }{
		{"payments whose amount is not quantity × price of their order", `
			SELECT count(*) FROM payment p JOIN transaction t USING (transaction_id)
			LEFT JOIN sales_order s ON s.sales_order_id = t.sales_order_id
			LEFT JOIN purchase_order o ON o.purchase_order_id = t.purchase_order_id
			WHERE p.payment_amount <> coalesce(s.units_sold * s.unit_price, o.item_quantity * o.item_unit_price)`},
		{"transactions whose type does not match their order", `
			SELECT count(*) FROM transaction WHERE (transaction_type = 'SALE') <> (sales_order_id IS NOT NULL)
			OR (sales_order_id IS NULL) = (purchase_order_id IS NULL)`},
		{"paid payments not updated 13 to 144 hours after creation", `
			SELECT count(*) FROM payment WHERE paid AND NOT (last_updated - created_at BETWEEN interval '13 hours' AND interval '144 hours')`},
		{"unpaid payments with a last_updated of their own", `SELECT count(*) FROM payment WHERE NOT paid AND last_updated <> created_at`},
		{"orders updated after creation", `SELECT count(*) FROM sales_order WHERE last_updated <> created_at`},
		{"sales of designs not yet created", `
			SELECT count(*) FROM sales_order s JOIN design d USING (design_id) WHERE d.created_at > s.created_at`},
		{"agreed dates that do not parse or run over 620 days", `
			SELECT count(*) FROM sales_order WHERE agreed_delivery_date::date - created_at::date NOT BETWEEN 0 AND 620
			OR agreed_payment_date::date - created_at::date NOT BETWEEN 0 AND 7`},
		{"orders outside the real time span", `
			SELECT count(*) FROM transaction WHERE created_at < '2022-11-03' OR created_at > '2024-11-15 14:40:10.188'`},
		{"prices outside the real ranges", `
			SELECT (SELECT count(*) FROM sales_order WHERE unit_price NOT BETWEEN 2 AND 4 OR units_sold NOT BETWEEN 1000 AND 100000)
			     + (SELECT count(*) FROM purchase_order WHERE item_unit_price NOT BETWEEN 1 AND 999.99 OR item_quantity NOT BETWEEN 1 AND 999)`},
	}
	for _, c := range checks {
		if n := count(t, pool, c.sql); n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
	paid := float64(count(t, pool, "SELECT count(*) FROM payment WHERE paid")) / 33200
	if paid < 0.55 || paid > 0.68 {
		t.Errorf("%.2f of payments are paid, want about 0.62 as in the real data", paid)
	}
	if n := count(t, pool, "SELECT count(*) FROM department WHERE location = 'Leds'"); n != 1 {
		t.Errorf("the real data's misspelt location 'Leds' is missing")
	}
	if n := count(t, pool, "SELECT count(*) FROM address WHERE address_line_2 IS NULL"); n == 0 || n == 30 {
		t.Errorf("%d of 30 addresses lack a second line: want some, not all", n)
	}
	// The application inserts with default ids after seeding.
	if n := count(t, pool, `INSERT INTO currency (currency_code, last_updated) VALUES ('CHF', now()) RETURNING currency_id`); n != 4 {
		t.Errorf("next currency id %d, want 4", n)
	}
}

func TestGenerateRefusesADatabaseWithTotesys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	before := checksums(t, pool)
	_, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 2})
	if !errors.Is(err, seed.ErrNotEmpty) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "sales_order") {
		t.Fatalf("err = %v, want ErrNotEmpty naming the tables and --force", err)
	}
	after := checksums(t, pool)
	for table := range before {
		if before[table] != after[table] {
			t.Errorf("%s changed although seeding was refused", table)
		}
	}
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 2, Force: true}); err != nil {
		t.Fatalf("with Force: %v", err)
	}
	if checksums(t, pool)["sales_order"] == before["sales_order"] {
		t.Error("Force did not replace the rows")
	}
}

// A seeded database says so; the same tables created by anything else
// (the real system, a restore) do not.
func TestSeededMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	if ok, err := seed.Seeded(ctx, pool); ok || err != nil {
		t.Errorf("an empty database: seeded %v, %v", ok, err)
	}
	if err := totesys.CreateTables(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if ok, err := seed.Seeded(ctx, pool); ok || err != nil {
		t.Errorf("tables tote seed did not write: seeded %v, %v", ok, err)
	}
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 1, Force: true}); err != nil {
		t.Fatal(err)
	}
	if ok, err := seed.Seeded(ctx, pool); !ok || err != nil {
		t.Errorf("after seeding: seeded %v, %v", ok, err)
	}
}

func TestGenerateRejectsBadScale(t *testing.T) {
	t.Parallel()
	for _, scale := range []int{-3, 0, seed.MaxScale + 1} {
		_, err := seed.Generate(context.Background(), nil, seed.Options{Scale: scale})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("scale must be a whole number from 1 to %d, got %d", seed.MaxScale, scale)) {
			t.Errorf("scale %d: err = %v", scale, err)
		}
	}
}

func TestGenerateCancelledLeavesNothing(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err := seed.Generate(ctx, pool, seed.Options{Scale: 50, Seed: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left, _ := totesys.Existing(context.Background(), pool); len(left) > 0 {
		t.Errorf("a cancelled seed left tables behind: %v", left)
	}
}

func TestLoadSnapshot(t *testing.T) {
	t.Parallel()
	dir := pgtest.SnapshotDir(t)
	ctx := context.Background()
	pool := newPool(t)
	res, err := seed.LoadSnapshot(ctx, pool, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"address": 30, "counterparty": 20, "currency": 3, "department": 8, "design": 473, "payment": 15836,
		"payment_type": 4, "purchase_order": 4649, "sales_order": 11187, "staff": 20, "transaction": 15836,
	}
	for _, tc := range res.Tables {
		if want[tc.Table] != tc.Rows {
			t.Errorf("%s: %d rows, want %d", tc.Table, tc.Rows, want[tc.Table])
		}
	}
	var amount, created string
	var paid bool
	if err := pool.QueryRow(ctx, `SELECT payment_amount::text, created_at::text, paid FROM payment WHERE payment_id = 2`).Scan(&amount, &created, &paid); err != nil {
		t.Fatal(err)
	}
	if amount != "552548.62" || created != "2022-11-03 14:20:52.187" || paid {
		t.Errorf("payment 2 = %s, %s, paid %v; want 552548.62, 2022-11-03 14:20:52.187, false", amount, created, paid)
	}
	if n := count(t, pool, `SELECT count(*) FROM transaction WHERE sales_order_id IS NOT NULL`); n != 11187 {
		t.Errorf("%d transactions with a sales order, want 11187", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM department WHERE location = 'Leds'`); n != 1 {
		t.Error("department 4's location 'Leds' did not survive")
	}
}

// linkSnapshot makes a copy of the snapshot folder (as links) that a test may spoil.
func linkSnapshot(t *testing.T) string {
	src := pgtest.SnapshotDir(t)
	dir := t.TempDir()
	for _, name := range totesys.TableNames() {
		if err := os.Symlink(filepath.Join(src, name+".parquet"), filepath.Join(dir, name+".parquet")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadSnapshotTruncatedFile(t *testing.T) {
	t.Parallel()
	dir := linkSnapshot(t)
	data, err := os.ReadFile(filepath.Join(dir, "sales_order.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sales_order.parquet")
	os.Remove(path)
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	pool := newPool(t)
	_, err = seed.LoadSnapshot(context.Background(), pool, dir, false, nil)
	if err == nil || !strings.Contains(err.Error(), path+": not a readable Parquet file") {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
	if left, _ := totesys.Existing(context.Background(), pool); len(left) > 0 {
		t.Errorf("tables created despite the bad file: %v", left)
	}
}

func TestLoadSnapshotBadValueLeavesNothing(t *testing.T) {
	t.Parallel()
	type paymentType struct {
		ID          int64     `parquet:"payment_type_id"`
		Name        *string   `parquet:"payment_type_name,optional"`
		CreatedAt   time.Time `parquet:"created_at,timestamp(nanosecond)"`
		LastUpdated time.Time `parquet:"last_updated,timestamp(nanosecond)"`
	}
	dir := linkSnapshot(t)
	path := filepath.Join(dir, "payment_type.parquet")
	os.Remove(path)
	name := "SALES_RECEIPT"
	now := time.Date(2022, 11, 3, 14, 20, 49, 962_000_000, time.UTC)
	rows := []paymentType{{1, &name, now, now}, {2, nil, now, now}}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	pool := newPool(t)
	_, err := seed.LoadSnapshot(context.Background(), pool, dir, false, nil)
	want := "table payment_type row 2 (payment_type_id 2): column payment_type_name: null in a NOT NULL column"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to contain %q", err, want)
	}
	if left, _ := totesys.Existing(context.Background(), pool); len(left) > 0 {
		t.Errorf("a failed load left tables behind: %v", left)
	}
}

func TestLoadSnapshotMissingFile(t *testing.T) {
	t.Parallel()
	dir := linkSnapshot(t)
	os.Remove(filepath.Join(dir, "staff.parquet"))
	_, err := seed.LoadSnapshot(context.Background(), newPool(t), dir, false, nil)
	if err == nil || !strings.Contains(err.Error(), "table staff") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

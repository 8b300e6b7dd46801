package transform_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
)

// The three facts and the source table each comes from.
var factSources = map[string]string{
	"fact_sales_order":    "sales_order",
	"fact_purchase_order": "purchase_order",
	"fact_payment":        "payment",
}

// checkAgainstRaw checks what must hold between any processed batch and
// the raw batch it was made from: one fact row per raw row, and a dim_date
// row for exactly the dates the facts refer to, each right.
func checkAgainstRaw(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake, raw, processed lake.Manifest) {
	t.Helper()
	state, err := transform.LoadState(processed)
	if err != nil {
		t.Fatal(err)
	}
	if state.RawSeq != raw.Seq || state.RawBatch != raw.ID {
		t.Errorf("processed batch %d says it was made from raw batch %d %s, want %d %s",
			processed.Seq, state.RawSeq, state.RawBatch, raw.Seq, raw.ID)
	}
	referenced := map[int32]bool{}
	for fact, source := range factSources {
		if got, want := fileRows(processed, fact), fileRows(raw, source); got != want {
			t.Errorf("%s has %d rows, raw %s %d", fact, got, source, want)
		}
		table := mustTable(fact)
		for _, rec := range readTable(t, lk, processed, fact) {
			for _, c := range table.Columns {
				if c.Type == star.Date {
					referenced[rec[c.Name].Int32()] = true
				}
			}
		}
	}
	dates := readTable(t, lk, processed, "dim_date")
	got := map[int32]bool{}
	for _, rec := range dates {
		d := rec["date_id"].Int32()
		if got[d] {
			t.Errorf("dim_date has %s twice", day(d))
		}
		got[d] = true
		if !referenced[d] {
			t.Errorf("dim_date has %s, which no fact refers to", day(d))
		}
	}
	var missing []string
	for d := range referenced {
		if !got[d] {
			missing = append(missing, day(d))
		}
	}
	if len(missing) > 0 {
		t.Errorf("dim_date lacks %d dates facts refer to, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}

	// Every dim_date row as PostgreSQL computes it.
	var days []string
	for _, rec := range dates {
		days = append(days, day(rec["date_id"].Int32()))
	}
	want := sourceRows(t, pool, `SELECT d::text, concat_ws('|', d, extract(year FROM d), extract(month FROM d), extract(day FROM d),
		extract(isodow FROM d), trim(to_char(d, 'Day')), trim(to_char(d, 'Month')), extract(quarter FROM d))
		FROM unnest($1::date[]) d`, days)
	compare(t, mustTable("dim_date"), dates, want)
}

func TestFirstBatch(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	res := transformRun(t, lk)
	raw := latest(t, lk, lake.Raw)
	m := latest(t, lk, lake.Processed)
	if len(res.Batches) != 1 || res.Batches[0].Seq != 1 || res.Batches[0].Raw != raw.ID || res.Batches[0].Processed != m.ID {
		t.Fatalf("result %+v", res)
	}
	if res.Rows() != m.Rows() || res.Rows() == 0 {
		t.Errorf("result says %d rows, the manifest %d", res.Rows(), m.Rows())
	}
	if want := len(star.Tables); len(m.Files) != want {
		t.Errorf("processed batch has files for %v, want all %d tables", tables(m), want)
	}
	checkAgainstRaw(t, pool, lk, raw, m)

	// Every fact row, value for value.
	for fact, source := range factSources {
		src, _ := totesys.Lookup(source)
		table := mustTable(fact)
		compare(t, table, readTable(t, lk, m, fact), sourceRows(t, pool, factSQL(table, src)))
	}
	// The joined dimensions and the locations.
	compare(t, mustTable("dim_staff"), readTable(t, lk, m, "dim_staff"), sourceRows(t, pool, staffSQL))
	compare(t, mustTable("dim_counterparty"), readTable(t, lk, m, "dim_counterparty"), sourceRows(t, pool, counterpartySQL))
	compare(t, mustTable("dim_location"), readTable(t, lk, m, "dim_location"), sourceRows(t, pool, locationSQL))
	compare(t, mustTable("dim_transaction"), readTable(t, lk, m, "dim_transaction"), sourceRows(t, pool,
		`SELECT transaction_id::text, concat_ws('|', transaction_id, transaction_type, coalesce(sales_order_id::text, 'NULL'),
		coalesce(purchase_order_id::text, 'NULL')) FROM transaction`))
	compare(t, mustTable("dim_design"), readTable(t, lk, m, "dim_design"), sourceRows(t, pool,
		`SELECT design_id::text, concat_ws('|', design_id, design_name, file_location, file_name) FROM design`))
	compare(t, mustTable("dim_payment_type"), readTable(t, lk, m, "dim_payment_type"), sourceRows(t, pool,
		`SELECT payment_type_id::text, concat_ws('|', payment_type_id, payment_type_name) FROM payment_type`))

	names := map[string]string{}
	for _, rec := range readTable(t, lk, m, "dim_currency") {
		names[string(rec["currency_code"].ByteArray())] = string(rec["currency_name"].ByteArray())
	}
	want := map[string]string{"GBP": "Pound Sterling", "USD": "US Dollar", "EUR": "Euro"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("dim_currency names %v, want %v", names, want)
	}

	// The last seeded order is on Friday 2024-11-15, in Q4.
	found := false
	for _, rec := range readTable(t, lk, m, "dim_date") {
		if day(rec["date_id"].Int32()) == "2024-11-15" {
			found = true
			row := renderRow(mustTable("dim_date"), rec)
			if row != "2024-11-15|2024|11|15|5|Friday|November|4" {
				t.Errorf("dim_date 2024-11-15: %s", row)
			}
		}
	}
	if !found {
		t.Error("dim_date lacks 2024-11-15, the day of the last seeded order")
	}

	// A few rows, spelled out: the split and the exact cents.
	var so struct {
		id               int32
		created, updated time.Time
		price            string
		delivery         string
	}
	if err := pool.QueryRow(context.Background(), `SELECT sales_order_id, created_at, last_updated, unit_price::text, agreed_delivery_date
		FROM sales_order ORDER BY sales_order_id DESC LIMIT 1`).Scan(&so.id, &so.created, &so.updated, &so.price, &so.delivery); err != nil {
		t.Fatal(err)
	}
	for _, rec := range readTable(t, lk, m, "fact_sales_order") {
		if rec["sales_order_id"].Int32() != so.id {
			continue
		}
		if got := day(rec["created_date"].Int32()); got != so.created.Format(time.DateOnly) {
			t.Errorf("created_date %s, source created_at %v", got, so.created)
		}
		midnight := so.created.Truncate(24 * time.Hour)
		if got := rec["created_time"].Int64(); got != so.created.Sub(midnight).Microseconds() {
			t.Errorf("created_time %d µs, source created_at %v", got, so.created)
		}
		if got := render(star.Column{Type: star.Money}, rec["unit_price"]); got != so.price {
			t.Errorf("unit_price %s, source %s", got, so.price)
		}
		if got := day(rec["agreed_delivery_date"].Int32()); got != so.delivery {
			t.Errorf("agreed_delivery_date %s, source %s", got, so.delivery)
		}
	}

	state, err := transform.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Addresses) != 30 || len(state.Departments) != 8 || len(state.Staff) != 20 || len(state.Counterparties) != 20 {
		t.Errorf("state holds %d addresses, %d departments, %d staff, %d counterparties",
			len(state.Addresses), len(state.Departments), len(state.Staff), len(state.Counterparties))
	}

	// Nothing new: no batch.
	if res := transformRun(t, lk); len(res.Batches) != 0 {
		t.Errorf("a run with nothing new made %+v", res)
	}
	if n := len(batches(t, lk, lake.Processed)); n != 1 {
		t.Errorf("%d processed batches, want 1", n)
	}
}

// ids returns the values of column in rows, sorted, as text.
func ids(rows []record, column string) []string {
	var out []string
	for _, rec := range rows {
		out = append(out, fmt.Sprint(rec[column].Int32()))
	}
	slices.Sort(out)
	return out
}

func queryIDs(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	var out []string
	for id := range sourceRows(t, pool, sql, args...) {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func TestIncrementalFollowsJoinedTables(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	ctx := context.Background()
	extractRun(t, pool, lk)
	transformRun(t, lk)

	// The department with the most staff, and the address that is the
	// legal address of the most counterparties.
	var dept, addr int32
	if err := pool.QueryRow(ctx, `SELECT department_id FROM staff GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`).Scan(&dept); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT legal_address_id FROM counterparty GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`).Scan(&addr); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE department SET department_name = 'Tote Research', last_updated = now() WHERE department_id = $1`, dept)
	exec(t, pool, `UPDATE address SET city = 'Newtown', phone = '0113 496 0000', last_updated = now() WHERE address_id = $1`, addr)
	extractRun(t, pool, lk)
	res := transformRun(t, lk)
	if len(res.Batches) != 1 || res.Batches[0].Seq != 2 {
		t.Fatalf("result %+v", res)
	}
	m := latest(t, lk, lake.Processed)
	checkAgainstRaw(t, pool, lk, latest(t, lk, lake.Raw), m)
	if got := tables(m); !slices.Equal(got, []string{"dim_counterparty", "dim_location", "dim_staff"}) {
		t.Errorf("batch 2 has files for %v, want only dim_counterparty, dim_location and dim_staff", got)
	}

	staff := readTable(t, lk, m, "dim_staff")
	wantStaff := queryIDs(t, pool, `SELECT staff_id::text, '' FROM staff WHERE department_id = $1`, dept)
	if got := ids(staff, "staff_id"); !slices.Equal(got, wantStaff) || len(got) < 2 {
		t.Errorf("dim_staff holds staff %v, want the members of department %d: %v", got, dept, wantStaff)
	}
	compare(t, mustTable("dim_staff"), staff, sourceRows(t, pool, staffSQL+` WHERE department_id = $1`, dept))
	for _, rec := range staff {
		if name := string(rec["department_name"].ByteArray()); name != "Tote Research" {
			t.Errorf("staff %d: department_name %q", rec["staff_id"].Int32(), name)
		}
	}

	cps := readTable(t, lk, m, "dim_counterparty")
	wantCps := queryIDs(t, pool, `SELECT counterparty_id::text, '' FROM counterparty WHERE legal_address_id = $1`, addr)
	if got := ids(cps, "counterparty_id"); !slices.Equal(got, wantCps) || len(got) == 0 {
		t.Errorf("dim_counterparty holds %v, want the counterparties at address %d: %v", got, addr, wantCps)
	}
	compare(t, mustTable("dim_counterparty"), cps, sourceRows(t, pool, counterpartySQL+` WHERE a.address_id = $1`, addr))
	for _, rec := range cps {
		if city := string(rec["counterparty_legal_city"].ByteArray()); city != "Newtown" {
			t.Errorf("counterparty %d: city %q", rec["counterparty_id"].Int32(), city)
		}
	}
	if got := ids(readTable(t, lk, m, "dim_location"), "location_id"); !slices.Equal(got, []string{fmt.Sprint(addr)}) {
		t.Errorf("dim_location holds %v, want only address %d", got, addr)
	}

	// A counterparty elsewhere moves to that address: it alone is re-emitted, with the new address.
	var moved int32
	if err := pool.QueryRow(ctx, `SELECT min(counterparty_id) FROM counterparty WHERE legal_address_id <> $1`, addr).Scan(&moved); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE counterparty SET legal_address_id = $1, last_updated = now() WHERE counterparty_id = $2`, addr, moved)
	extractRun(t, pool, lk)
	transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	if got := tables(m); !slices.Equal(got, []string{"dim_counterparty"}) {
		t.Errorf("batch 3 has files for %v, want only dim_counterparty", got)
	}
	compare(t, mustTable("dim_counterparty"), readTable(t, lk, m, "dim_counterparty"),
		sourceRows(t, pool, counterpartySQL+` WHERE c.counterparty_id = $1`, moved))

	// A change with nothing to show still consumes its raw batch.
	exec(t, pool, `INSERT INTO department (department_name, location, manager, last_updated) VALUES ('Empty', NULL, NULL, now())`)
	extractRun(t, pool, lk)
	res = transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	if len(res.Batches) != 1 || len(m.Files) != 0 || m.Seq != 4 {
		t.Errorf("a raw batch with no star rows: result %+v, processed batch %d with %v", res, m.Seq, tables(m))
	}
	state, _ := transform.LoadState(m)
	if state.RawSeq != 4 || len(state.Departments) != 9 {
		t.Errorf("state after the new department: raw seq %d, %d departments", state.RawSeq, len(state.Departments))
	}

	// Business as usual: orders, payments, updates.
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 400, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	extractRun(t, pool, lk)
	transformRun(t, lk)
	checkAgainstRaw(t, pool, lk, latest(t, lk, lake.Raw), latest(t, lk, lake.Processed))

	// Nothing new: no batch.
	if res := transformRun(t, lk); len(res.Batches) != 0 {
		t.Errorf("a run with nothing new made %+v", res)
	}
	raws, processed := batches(t, lk, lake.Raw), batches(t, lk, lake.Processed)
	if len(processed) != len(raws) {
		t.Fatalf("%d processed batches for %d raw ones", len(processed), len(raws))
	}
	for i, p := range processed {
		s, err := transform.LoadState(p)
		if err != nil || s.RawSeq != raws[i].Seq || p.Seq != uint64(i+1) {
			t.Errorf("processed batch %d: raw seq %d (%v), want %d", p.Seq, s.RawSeq, err, raws[i].Seq)
		}
	}
	// The state follows the source.
	state, err := transform.LoadState(processed[len(processed)-1])
	if err != nil {
		t.Fatal(err)
	}
	var fromSource []string
	for id := range sourceRows(t, pool, staffSQL) {
		fromSource = append(fromSource, id)
	}
	if len(state.Staff) != len(fromSource) {
		t.Errorf("state holds %d staff, the source %d", len(state.Staff), len(fromSource))
	}
}

// Several raw batches, transformed by one run: each gets its own processed
// batch, in order.
func TestCatchesUpSeveralRawBatches(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	for i := range 3 {
		if _, err := simulate.Run(context.Background(), pool, simulate.Options{Rate: 100_000, Events: 100, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		extractRun(t, pool, lk)
	}
	res := transformRun(t, lk)
	raws, processed := batches(t, lk, lake.Raw), batches(t, lk, lake.Processed)
	if len(res.Batches) != 4 || len(processed) != 4 {
		t.Fatalf("%d batches in the result, %d committed, want 4", len(res.Batches), len(processed))
	}
	for i := range raws {
		if res.Batches[i].Raw != raws[i].ID || res.Batches[i].Processed != processed[i].ID {
			t.Errorf("batch %d: %+v", i+1, res.Batches[i])
		}
		checkAgainstRaw(t, pool, lk, raws[i], processed[i])
	}
}

// In strict mode a bad value fails its batch, which stays unconsumed.
func TestBadDateStopsTheBatchInStrictMode(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	transformRun(t, lk)
	exec(t, pool, `UPDATE sales_order SET agreed_delivery_date = 'not-a-date', last_updated = now() WHERE sales_order_id = 17`)
	extractRun(t, pool, lk)
	raw := latest(t, lk, lake.Raw)

	for range 2 { // and again: the raw batch stays unconsumed
		_, err := transform.Run(context.Background(), lk, transform.Options{Strict: true})
		want := fmt.Sprintf(`transform raw batch %s: sales_order 17: agreed_delivery_date "not-a-date" is not a date (YYYY-MM-DD)`, raw.ID)
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v\nwant %s", err, want)
		}
		if n := len(batches(t, lk, lake.Processed)); n != 1 {
			t.Fatalf("%d processed batches after a bad date, want 1", n)
		}
	}
	// The files written before the error were removed with the batch.
	removed, err := lk.Clean(context.Background(), lake.Processed, 0)
	if err != nil || len(removed) != 0 {
		t.Errorf("the failed batch left files %v (%v)", removed, err)
	}
}

func TestUnknownCurrencyStopsTheBatchInStrictMode(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	transformRun(t, lk)
	var id int32
	if err := pool.QueryRow(context.Background(),
		`INSERT INTO currency (currency_code, last_updated) VALUES ('XYZ', now()) RETURNING currency_id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	extractRun(t, pool, lk)
	raw := latest(t, lk, lake.Raw)
	_, err := transform.Run(context.Background(), lk, transform.Options{Strict: true})
	want := fmt.Sprintf(`transform raw batch %s: currency %d: currency_code "XYZ" is not an ISO 4217 currency code`, raw.ID, id)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if n := len(batches(t, lk, lake.Processed)); n != 1 {
		t.Errorf("%d processed batches after a bad currency, want 1", n)
	}
}

func TestCorruptRawFile(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	dir := t.TempDir()
	lk, err := lake.Open(context.Background(), "file://"+dir, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	extractRun(t, pool, lk)
	raw := latest(t, lk, lake.Raw)
	i := slices.IndexFunc(raw.Files, func(f lake.File) bool { return f.Table == "sales_order" })
	path := filepath.Join(dir, filepath.FromSlash(raw.Files[i].Path))
	if err := os.Truncate(path, raw.Files[i].Bytes/2); err != nil {
		t.Fatal(err)
	}
	_, err = transform.Run(context.Background(), lk, transform.Options{})
	if !errors.Is(err, lake.ErrCorrupt) || !strings.HasPrefix(err.Error(), "transform raw batch "+raw.ID+": ") ||
		!strings.Contains(err.Error(), raw.Files[i].Path) {
		t.Fatalf("err = %v, want ErrCorrupt naming the raw batch and the file", err)
	}
	t.Log(err)
	if _, err := os.Stat(filepath.Join(dir, "manifests", "processed", "000000000001.json")); !os.IsNotExist(err) {
		t.Errorf("a processed batch was committed from a corrupt raw batch (%v)", err)
	}
}

func TestConcurrentTransformsCommitEachBatchOnce(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk := laketest.Mem(t)
	extractRun(t, pool, lk)
	if _, err := simulate.Run(context.Background(), pool, simulate.Options{Rate: 100_000, Events: 100, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	extractRun(t, pool, lk)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = transform.Run(context.Background(), lk, transform.Options{})
		})
	}
	wg.Wait()
	conflicts := 0
	for _, err := range errs {
		if err != nil {
			conflicts++
			t.Log(err)
		}
		if err != nil && (!errors.Is(err, lake.ErrConflict) || !strings.Contains(err.Error(), "another transform committed processed batch")) {
			t.Errorf("loser's error: %v", err)
		}
	}
	t.Logf("%d of %d runs lost a race", conflicts, len(errs))
	transformRun(t, lk) // finishes whatever the losers left
	raws, processed := batches(t, lk, lake.Raw), batches(t, lk, lake.Processed)
	if len(processed) != len(raws) {
		t.Fatalf("%d processed batches for %d raw ones", len(processed), len(raws))
	}
	for i, p := range processed {
		checkAgainstRaw(t, pool, lk, raws[i], p)
	}
}

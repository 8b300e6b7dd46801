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

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/transform"
)

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
	for _, table := range facts() {
		if got, want := fileRows(processed, table.Name), fileRows(raw, table.Source); got != want {
			t.Errorf("%s has %d rows, raw %s %d", table.Name, got, table.Source, want)
		}
		for _, rec := range readTable(t, lk, processed, table.Name) {
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
			t.Errorf("dim_date has %s twice", startest.Day(d))
		}
		got[d] = true
		if !referenced[d] {
			t.Errorf("dim_date has %s, which no fact refers to", startest.Day(d))
		}
	}
	var missing []string
	for d := range referenced {
		if !got[d] {
			missing = append(missing, startest.Day(d))
		}
	}
	if len(missing) > 0 {
		t.Errorf("dim_date lacks %d dates facts refer to, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}

	// Every dim_date row as PostgreSQL computes it.
	var days []string
	for _, rec := range dates {
		days = append(days, startest.Day(rec["date_id"].Int32()))
	}
	compare(t, mustTable("dim_date"), dates, startest.Calendar(t, pool, days))
}

func TestFirstBatch(t *testing.T) {
	t.Parallel()
	pool, lk := extracted(t)
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

	// Every row of every table made from the source, value for value.
	for _, table := range star.Tables {
		if table.Source != "" {
			compare(t, table, readTable(t, lk, m, table.Name), startest.Expected(t, pool, table, ""))
		}
	}

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
		if startest.Day(rec["date_id"].Int32()) == "2024-11-15" {
			found = true
			row := startest.Lake(mustTable("dim_date"), rec)
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
		if got := startest.Day(rec["created_date"].Int32()); got != so.created.Format(time.DateOnly) {
			t.Errorf("created_date %s, source created_at %v", got, so.created)
		}
		midnight := so.created.Truncate(24 * time.Hour)
		if got := rec["created_time"].Int64(); got != so.created.Sub(midnight).Microseconds() {
			t.Errorf("created_time %d µs, source created_at %v", got, so.created)
		}
		if got := startest.Value(star.Column{Type: star.Money}, rec["unit_price"]); got != so.price {
			t.Errorf("unit_price %s, source %s", got, so.price)
		}
		if got := startest.Day(rec["agreed_delivery_date"].Int32()); got != so.delivery {
			t.Errorf("agreed_delivery_date %s, source %s", got, so.delivery)
		}
	}

	state, err := transform.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	addresses, departments, staff, counterparties := state.Rows("address"), state.Rows("department"), state.Rows("staff"), state.Rows("counterparty")
	if len(addresses) != 30 || len(departments) != 8 || len(staff) != 20 || len(counterparties) != 20 {
		t.Errorf("state holds %d addresses, %d departments, %d staff, %d counterparties",
			len(addresses), len(departments), len(staff), len(counterparties))
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
	compare(t, mustTable("dim_staff"), staff, startest.Expected(t, pool, mustTable("dim_staff"), "staff.department_id = $1", dept))
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
	compare(t, mustTable("dim_counterparty"), cps, startest.Expected(t, pool, mustTable("dim_counterparty"), "address.address_id = $1", addr))
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
		startest.Expected(t, pool, mustTable("dim_counterparty"), "counterparty.counterparty_id = $1", moved))

	// A change with nothing to show still consumes its raw batch.
	exec(t, pool, `INSERT INTO department (department_name, location, manager, last_updated) VALUES ('Empty', NULL, NULL, now())`)
	extractRun(t, pool, lk)
	res = transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	if len(res.Batches) != 1 || len(m.Files) != 0 || m.Seq != 4 {
		t.Errorf("a raw batch with no star rows: result %+v, processed batch %d with %v", res, m.Seq, tables(m))
	}
	state, _ := transform.LoadState(m)
	if state.RawSeq != 4 || len(state.Rows("department")) != 9 {
		t.Errorf("state after the new department: raw seq %d, %d departments", state.RawSeq, len(state.Rows("department")))
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
	fromSource := startest.Expected(t, pool, mustTable("dim_staff"), "")
	if len(state.Rows("staff")) != len(fromSource) {
		t.Errorf("state holds %d staff, the source %d", len(state.Rows("staff")), len(fromSource))
	}
}

// Several raw batches, transformed by one run: each gets its own processed
// batch, in order.
func TestCatchesUpSeveralRawBatches(t *testing.T) {
	t.Parallel()
	pool, lk := extracted(t)
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

// In strict mode a bad value fails its batch, which stays unconsumed,
// and the files written before the error are removed with the batch.
func TestBadValueStopsTheBatchInStrictMode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		bad  string // makes the bad value, returning the id of its row
		want string // the error, of the raw batch's id and the row's
	}{
		{"date", `UPDATE sales_order SET agreed_delivery_date = 'not-a-date', last_updated = now() WHERE sales_order_id = 17 RETURNING sales_order_id`,
			`transform raw batch %s: sales_order %d: agreed_delivery_date "not-a-date" is not a date (YYYY-MM-DD)`},
		{"currency", `INSERT INTO currency (currency_code, last_updated) VALUES ('XYZ', now()) RETURNING currency_id`,
			`transform raw batch %s: currency %d: currency_code "XYZ" is not an ISO 4217 currency code`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, lk := extracted(t)
			transformRun(t, lk)
			var id int32
			if err := pool.QueryRow(ctx, c.bad).Scan(&id); err != nil {
				t.Fatal(err)
			}
			extractRun(t, pool, lk)
			want := fmt.Sprintf(c.want, latest(t, lk, lake.Raw).ID, id)
			for range 2 { // and again: the raw batch stays unconsumed
				_, err := transform.Run(ctx, lk, transform.Options{Strict: true})
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v\nwant %s", err, want)
				}
				if n := len(batches(t, lk, lake.Processed)); n != 1 {
					t.Fatalf("%d processed batches after a bad %s, want 1", n, c.name)
				}
			}
			removed, err := lk.Clean(ctx, lake.Processed, 0)
			if err != nil || len(removed) != 0 {
				t.Errorf("the failed batch left files %v (%v)", removed, err)
			}
		})
	}
}

func TestCorruptRawFile(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	lk, dir := laketest.File(t)
	extractRun(t, pool, lk)
	raw := latest(t, lk, lake.Raw)
	i := slices.IndexFunc(raw.Files, func(f lake.File) bool { return f.Table == "sales_order" })
	path := filepath.Join(dir, filepath.FromSlash(raw.Files[i].Path))
	if err := os.Truncate(path, raw.Files[i].Bytes/2); err != nil {
		t.Fatal(err)
	}
	f := raw.Files[i]
	_, err := transform.Run(context.Background(), lk, transform.Options{})
	// One line, from the stage down to the cause, each thing once: the
	// batch (in the file's name too), the table, the file and what is wrong.
	want := fmt.Sprintf("transform raw batch %s: sales_order: lake file://%s: %s: %d bytes, manifest says %d (truncated?)",
		raw.ID, dir, f.Path, f.Bytes/2, f.Bytes)
	if !errors.Is(err, lake.ErrCorrupt) || err.Error() != want {
		t.Fatalf("err = %v\nwant ErrCorrupt: %s", err, want)
	}
	if w := tote.Locate(err); w.Batch != raw.ID || w.Table != "sales_order" || w.Stage != tote.Transform {
		t.Errorf("where: %+v", w)
	}

	// A file gone from the lake, likewise.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = transform.Run(context.Background(), lk, transform.Options{})
	want = fmt.Sprintf("transform raw batch %s: sales_order: lake file://%s: %s: missing from the lake (deleted?)", raw.ID, dir, f.Path)
	if !errors.Is(err, lake.ErrCorrupt) || err.Error() != want {
		t.Errorf("err = %v\nwant ErrCorrupt: %s", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifests", "processed", "000000000001.json")); !os.IsNotExist(err) {
		t.Errorf("a processed batch was committed from a corrupt raw batch (%v)", err)
	}
}

func TestConcurrentTransformsCommitEachBatchOnce(t *testing.T) {
	t.Parallel()
	pool, lk := extracted(t)
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

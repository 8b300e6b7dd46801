package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// Rows of the two test batches. Batch 2 updates staff 1, repeats staff 2
// and sales order 1's first version unchanged, adds staff 3 twice (the
// later row wins), and adds new versions of sales order 1 and payment 1.
var (
	staff1 = row{"staff_id": 1, "first_name": "Jeremie", "last_name": "Franey", "department_name": "Purchasing",
		"location": "Manchester", "email_address": "jeremie.franey@terrifictotes.com"}
	staff1Moved = row{"staff_id": 1, "first_name": "Jeremie", "last_name": "Franey", "department_name": "Purchasing & Supply",
		"location": "Leds", "email_address": "jeremie.franey@terrifictotes.com"}
	staff2 = row{"staff_id": 2, "first_name": "Deron", "last_name": "Beier", "department_name": "Facilities",
		"location": nil, "email_address": "deron.beier@terrifictotes.com"}
	staff3Old = row{"staff_id": 3, "first_name": "Jeanette", "last_name": "Erdman", "department_name": "Facilities",
		"location": nil, "email_address": "jeanette@example.com"}
	staff3 = row{"staff_id": 3, "first_name": "Jeanette", "last_name": "Erdman", "department_name": "Facilities",
		"location": nil, "email_address": "jeanette.erdman@terrifictotes.com"}

	date0 = row{"date_id": "1969-12-31", "year": 1969, "month": 12, "day": 31, "day_of_week": 3,
		"day_name": "Wednesday", "month_name": "December", "quarter": 4}
	date1 = row{"date_id": "2022-11-03", "year": 2022, "month": 11, "day": 3, "day_of_week": 4,
		"day_name": "Thursday", "month_name": "November", "quarter": 4}
	date2 = row{"date_id": "2022-11-04", "year": 2022, "month": 11, "day": 4, "day_of_week": 5,
		"day_name": "Friday", "month_name": "November", "quarter": 4}
	date3 = row{"date_id": "2024-02-29", "year": 2024, "month": 2, "day": 29, "day_of_week": 4,
		"day_name": "Thursday", "month_name": "February", "quarter": 1}
	// The days batch 1's facts agree on: every day a fact refers to is in
	// dim_date, as the transform makes it (else the load makes it up).
	agreedDays = []row{
		{"date_id": "2022-11-07", "year": 2022, "month": 11, "day": 7, "day_of_week": 1,
			"day_name": "Monday", "month_name": "November", "quarter": 4},
		{"date_id": "2022-11-08", "year": 2022, "month": 11, "day": 8, "day_of_week": 2,
			"day_name": "Tuesday", "month_name": "November", "quarter": 4},
		{"date_id": "2022-11-09", "year": 2022, "month": 11, "day": 9, "day_of_week": 3,
			"day_name": "Wednesday", "month_name": "November", "quarter": 4},
		{"date_id": "2022-11-10", "year": 2022, "month": 11, "day": 10, "day_of_week": 4,
			"day_name": "Thursday", "month_name": "November", "quarter": 4},
	}

	location1 = row{"location_id": 1, "address_line_1": "6826 Herzog Via", "address_line_2": nil, "district": "Avon",
		"city": "New Patienceburgh", "postal_code": "28441", "country": "Turkey", "phone": "1803 637401"}
	design8 = row{"design_id": 8, "design_name": "Wooden", "file_location": "/usr", "file_name": "wooden-20220717-npgz.json"}
	gbp     = row{"currency_id": 1, "currency_code": "GBP", "currency_name": "Pound Sterling"}
	usd     = row{"currency_id": 2, "currency_code": "USD", "currency_name": "US Dollar"}
	// Text that COPY must escape.
	counterparty1 = row{"counterparty_id": 1, "counterparty_legal_name": "O'Reilly\tand \\ Sons\nLtd",
		"counterparty_legal_address_line_1": "6826 Herzog Via", "counterparty_legal_address_line_2": nil,
		"counterparty_legal_district": nil, "counterparty_legal_city": "New Patienceburgh",
		"counterparty_legal_postal_code": "28441", "counterparty_legal_country": "Turkey",
		"counterparty_legal_phone_number": "1803 637401"}
	transaction1 = row{"transaction_id": 1, "transaction_type": "SALE", "sales_order_id": 1, "purchase_order_id": nil}
	transaction2 = row{"transaction_id": 2, "transaction_type": "PURCHASE", "sales_order_id": nil, "purchase_order_id": 1}
	receipt      = row{"payment_type_id": 1, "payment_type_name": "SALES_RECEIPT"}
	purchasePay  = row{"payment_type_id": 3, "payment_type_name": "PURCHASE_PAYMENT"}

	order1 = row{"sales_order_id": 1, "created_date": "2022-11-03", "created_time": "14:20:49.962",
		"last_updated_date": "2022-11-03", "last_updated_time": "14:20:49.962", "sales_staff_id": 1, "counterparty_id": 1,
		"units_sold": 84754, "unit_price": "2.43", "currency_id": 2, "design_id": 8,
		"agreed_payment_date": "2022-11-03", "agreed_delivery_date": "2022-11-10", "agreed_delivery_location_id": 1}
	order1Edited = row{"sales_order_id": 1, "created_date": "2022-11-03", "created_time": "14:20:49.962",
		"last_updated_date": "2022-11-04", "last_updated_time": "09:00:00", "sales_staff_id": 1, "counterparty_id": 1,
		"units_sold": 84755, "unit_price": "2.40", "currency_id": 2, "design_id": 8,
		"agreed_payment_date": "2022-11-03", "agreed_delivery_date": "2024-02-29", "agreed_delivery_location_id": 1}
	order2 = row{"sales_order_id": 2, "created_date": "2022-11-03", "created_time": "14:20:52.186",
		"last_updated_date": "2022-11-03", "last_updated_time": "14:20:52.186", "sales_staff_id": 2, "counterparty_id": 1,
		"units_sold": 42972, "unit_price": "3.94", "currency_id": 1, "design_id": 8,
		"agreed_payment_date": "2022-11-08", "agreed_delivery_date": "2022-11-07", "agreed_delivery_location_id": 1}
	order3 = row{"sales_order_id": 3, "created_date": "2022-11-04", "created_time": "23:59:59.999999",
		"last_updated_date": "2022-11-04", "last_updated_time": "23:59:59.999999", "sales_staff_id": 3, "counterparty_id": 1,
		"units_sold": 1, "unit_price": "99999999.99", "currency_id": 1, "design_id": 8,
		"agreed_payment_date": "2022-11-04", "agreed_delivery_date": "2022-11-04", "agreed_delivery_location_id": 1}

	purchase1 = row{"purchase_order_id": 1, "created_date": "2022-11-03", "created_time": "00:00:00",
		"last_updated_date": "2022-11-03", "last_updated_time": "00:00:00", "staff_id": 2, "counterparty_id": 1,
		"item_code": "ZDOI5EA", "item_quantity": 371, "item_unit_price": "361.39", "currency_id": 1,
		"agreed_delivery_date": "2022-11-09", "agreed_payment_date": "2022-11-07", "agreed_delivery_location_id": 1}

	payment1 = row{"payment_id": 1, "created_date": "2022-11-03", "created_time": "14:20:52.187",
		"last_updated_date": "2022-11-03", "last_updated_time": "14:20:52.187", "transaction_id": 1, "counterparty_id": 1,
		"payment_amount": "1234567.89", "currency_id": 1, "payment_type_id": 1, "paid": false, "payment_date": "2022-11-03"}
	payment1Paid = row{"payment_id": 1, "created_date": "2022-11-03", "created_time": "14:20:52.187",
		"last_updated_date": "2022-11-04", "last_updated_time": "13:20:00.5", "transaction_id": 1, "counterparty_id": 1,
		"payment_amount": "1234567.89", "currency_id": 1, "payment_type_id": 1, "paid": true, "payment_date": "2022-11-03"}
	payment2 = row{"payment_id": 2, "created_date": "2022-11-03", "created_time": "14:20:52.188",
		"last_updated_date": "2022-11-03", "last_updated_time": "14:20:52.188", "transaction_id": 2, "counterparty_id": 1,
		"payment_amount": "-0.05", "currency_id": 1, "payment_type_id": 3, "paid": true, "payment_date": "2022-11-04"}
)

func batch1() batch {
	return batch{
		"dim_date":         append([]row{date1, date0, date2}, agreedDays...),
		"dim_staff":        {staff1, staff2},
		"dim_location":     {location1},
		"dim_design":       {design8},
		"dim_currency":     {gbp, usd},
		"dim_counterparty": {counterparty1},
		"dim_transaction":  {transaction1, transaction2},
		"dim_payment_type": {receipt, purchasePay},
		// Out of key order: surrogate keys follow the key, not the file.
		"fact_sales_order":    {order2, order1},
		"fact_purchase_order": {purchase1},
		"fact_payment":        {payment2, payment1},
	}
}

func batch2() batch {
	return batch{
		"dim_date":         {date2, date3},
		"dim_staff":        {staff3Old, staff1Moved, staff2, staff3},
		"fact_sales_order": {order3, order1, order1Edited},
		"fact_payment":     {payment1Paid},
	}
}

// render each row of a dimension, or of a fact with surrogate keys from 1.
func rendered(table string, rows ...row) []string {
	var out []string
	for i, r := range rows {
		out = append(out, render(table, i+1, r))
	}
	return out
}

// after1 and after2 are the warehouse after batch 1, and after both.
func after1() map[string][]string {
	return map[string][]string{
		"dim_date":            rendered("dim_date", append([]row{date0, date1, date2}, agreedDays...)...),
		"dim_staff":           rendered("dim_staff", staff1, staff2),
		"dim_location":        rendered("dim_location", location1),
		"dim_design":          rendered("dim_design", design8),
		"dim_currency":        rendered("dim_currency", gbp, usd),
		"dim_counterparty":    rendered("dim_counterparty", counterparty1),
		"dim_transaction":     rendered("dim_transaction", transaction1, transaction2),
		"dim_payment_type":    rendered("dim_payment_type", receipt, purchasePay),
		"fact_sales_order":    rendered("fact_sales_order", order1, order2),
		"fact_purchase_order": rendered("fact_purchase_order", purchase1),
		"fact_payment":        rendered("fact_payment", payment1, payment2),
	}
}

func after2() map[string][]string {
	w := after1()
	w["dim_date"] = rendered("dim_date", append(append([]row{date0, date1, date2}, agreedDays...), date3)...)
	w["dim_staff"] = rendered("dim_staff", staff1Moved, staff2, staff3)
	w["fact_sales_order"] = rendered("fact_sales_order", order1, order2, order1Edited, order3)
	w["fact_payment"] = rendered("fact_payment", payment1, payment2, payment1Paid)
	return w
}

func TestLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := migratedWarehouse(t)
	lk := memLake(t)
	m1 := commit(t, lk, 1, batch1())
	res := loadOK(t, db, lk)
	if len(res.Batches) != 1 || res.Batches[0].Batch != m1.ID || res.Rows() != 23 || res.Inserted() != 23 {
		t.Errorf("first load: %+v", res)
	}
	sameTables(t, "after batch 1", dumpAll(t, db), after1())

	m2 := commit(t, lk, 2, batch2())
	res = loadOK(t, db, lk)
	if len(res.Batches) != 1 || res.Batches[0].Batch != m2.ID || res.Batches[0].Seq != 2 {
		t.Fatalf("second load: %+v", res)
	}
	var tables []string
	for _, tr := range res.Batches[0].Tables {
		tables = append(tables, fmt.Sprintf("%s %d+%d/%d", tr.Table, tr.Inserted, tr.Updated, tr.Rows))
	}
	// Dimensions first; inserted+updated/rows.
	want := []string{"dim_date 1+0/2", "dim_staff 1+1/4", "fact_sales_order 2+0/3", "fact_payment 1+0/1"}
	if !slices.Equal(tables, want) {
		t.Errorf("batch 2 per table: got %v, want %v", tables, want)
	}
	sameTables(t, "after batch 2", dumpAll(t, db), after2())

	// The newest change loaded, from the ledger, is the newest in the facts.
	newest, ok, err := warehouse.New(db, nil).NewestChange(ctx)
	var wantNewest time.Time
	if err := db.QueryRow(ctx, `SELECT max(t) FROM (
		SELECT max(last_updated_date + last_updated_time) t FROM fact_sales_order
		UNION ALL SELECT max(last_updated_date + last_updated_time) FROM fact_purchase_order
		UNION ALL SELECT max(last_updated_date + last_updated_time) FROM fact_payment) f`).Scan(&wantNewest); err != nil {
		t.Fatal(err)
	}
	if err != nil || !ok || !newest.Equal(wantNewest) {
		t.Errorf("NewestChange = %v, %v, %v; want %v", newest, ok, err, wantNewest)
	}

	entries, err := warehouse.New(db, nil).Loaded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Batch != m1.ID || entries[0].Seq != 1 || entries[0].Rows != 23 ||
		entries[1].Batch != m2.ID || entries[1].Seq != 2 || entries[1].Rows != 10 ||
		entries[1].Tables["dim_staff"] != 4 || len(entries[1].Tables) != 4 || entries[1].LoadedAt.IsZero() {
		t.Errorf("ledger: %+v", entries)
	}

	// Loading again loads nothing and changes nothing.
	before := dumpAll(t, db)
	if res := loadOK(t, db, lk); len(res.Batches) != 0 {
		t.Errorf("load with nothing new loaded %+v", res.Batches)
	}
	sameTables(t, "after loading again", dumpAll(t, db), before)
	if got := ledger(t, db); !slices.Equal(got, []string{m1.ID, m2.ID}) {
		t.Errorf("ledger after loading again: %v", got)
	}

	// A warehouse rebuilt from the lake is the same, surrogate keys included.
	rebuilt, _ := newWarehouse(t)
	res, err = warehouse.New(rebuilt, nil).Rebuild(ctx, lk, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) != 2 {
		t.Errorf("rebuild loaded %d batches", len(res.Batches))
	}
	sameTables(t, "rebuilt", dumpAll(t, rebuilt), before)
}

// Two loads at once load each batch once.
func TestConcurrentLoads(t *testing.T) {
	t.Parallel()
	db, url := newWarehouse(t)
	lk := memLake(t)
	commit(t, lk, 1, batch1())
	commit(t, lk, 2, batch2())
	var wg sync.WaitGroup
	results := make([]warehouse.Result, 3)
	errs := make([]error, 3)
	for i := range results {
		p := db
		if i > 0 {
			p = pgtest.Pool(t, url)
		}
		wg.Go(func() { results[i], errs[i] = warehouse.New(p, nil).Load(context.Background(), lk) })
	}
	wg.Wait()
	loaded := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("load %d: %v", i, err)
		}
		loaded += len(results[i].Batches)
	}
	if loaded != 2 {
		t.Errorf("the loads loaded %d batches between them, want 2", loaded)
	}
	sameTables(t, "after concurrent loads", dumpAll(t, db), after2())
	if got := ledger(t, db); len(got) != 2 {
		t.Errorf("ledger: %v", got)
	}
}

// A batch committed late, with a lower number than one already loaded, is
// still loaded.
func TestLoadsLateBatch(t *testing.T) {
	t.Parallel()
	db, _ := migratedWarehouse(t)
	lk := memLake(t)
	m1 := commit(t, lk, 1, batch1())
	m3 := commit(t, lk, 3, batch{"dim_currency": {row{"currency_id": 3, "currency_code": "EUR", "currency_name": "Euro"}}})
	loadOK(t, db, lk)
	m2 := commit(t, lk, 2, batch2())
	var logs strings.Builder
	res, err := warehouse.New(db, slog.New(slog.NewTextHandler(&logs, nil))).Load(context.Background(), lk)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) != 1 || res.Batches[0].Batch != m2.ID {
		t.Errorf("loaded %+v", res.Batches)
	}
	if !strings.Contains(logs.String(), "older than one already loaded") {
		t.Errorf("no warning about the late batch in the logs:\n%s", logs.String())
	}
	if got := ledger(t, db); !slices.Equal(got, []string{m1.ID, m2.ID, m3.ID}) {
		t.Errorf("ledger: %v", got)
	}
	if got := dump(t, db, "dim_staff"); !slices.Equal(got, after2()["dim_staff"]) {
		t.Errorf("dim_staff: %v", got)
	}
}

// Duplicate keys spread over several row groups: rows stream a group at a
// time, and the last row of each entity wins.
func TestLoadManyRowGroups(t *testing.T) {
	t.Parallel()
	db, _ := migratedWarehouse(t)
	lk := memLake(t)
	const n, ids = 5000, 700
	var rows []row
	for i := range n {
		rows = append(rows, row{"staff_id": i%ids + 1, "first_name": "F", "last_name": "L", "department_name": "D",
			"location": nil, "email_address": fmt.Sprintf("staff%d@example.com", i)})
	}
	w := lk.NewBatch(lake.Processed, 1, testNow())
	table, _ := star.Lookup("dim_staff")
	writeFile(t, w, "dim_staff", table.Schema(), rows, parquet.MaxRowsPerRowGroup(333), parquet.PageBufferSize(1024))
	commitWriter(t, w)
	res := loadOK(t, db, lk)
	if tr := res.Batches[0].Tables[0]; tr.Rows != n || tr.Inserted != ids {
		t.Errorf("dim_staff: %+v", tr)
	}
	got := dump(t, db, "dim_staff")
	if len(got) != ids {
		t.Fatalf("%d staff, want %d", len(got), ids)
	}
	for id := 1; id <= ids; id++ {
		last := (n-id)/ids*ids + id - 1 // the last i with i%ids+1 == id
		want := fmt.Sprintf(`email_address="staff%d@example.com"`, last)
		if !strings.Contains(got[id-1], " "+want) {
			t.Fatalf("staff %d: %s, want the last row's %s", id, got[id-1], want)
		}
	}
}

// A load killed right before it commits leaves nothing of its batch, and
// the next load loads the batch whole, once, with the surrogate keys a
// load that never crashed gives.
func TestCrashBeforeCommit(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills a load in a child process")
	}
	ctx := context.Background()
	db, url := migratedWarehouse(t)
	lk, dir := fileLake(t)
	m1 := commit(t, lk, 1, batch1())
	loadOK(t, db, lk)
	m2 := commit(t, lk, 2, batch2())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDBEnv+"="+url, childLakeEnv+"=file://"+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v (stderr: %s)", err, stderr.String())
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v (stderr: %s)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), crashMarker+m2.ID) {
		t.Fatalf("child did not reach the commit of batch 2: %s", stderr.String())
	}

	sameTables(t, "after the crash", dumpAll(t, db), after1())
	if got := ledger(t, db); !slices.Equal(got, []string{m1.ID}) {
		t.Errorf("ledger after the crash: %v", got)
	}

	res := loadOK(t, db, lk)
	if len(res.Batches) != 1 || res.Batches[0].Batch != m2.ID {
		t.Errorf("load after the crash: %+v", res.Batches)
	}
	sameTables(t, "after reloading", dumpAll(t, db), after2())
	if got := ledger(t, db); !slices.Equal(got, []string{m1.ID, m2.ID}) {
		t.Errorf("ledger after reloading: %v", got)
	}

	// The serial default still gives a fresh id after the loader's ids.
	var id int
	if err := db.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('fact_sales_order', 'sales_record_id'))`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 5 {
		t.Errorf("the sequence of fact_sales_order gives %d next, want 5", id)
	}
}

func TestCorruptBatchLoadsNothingOfIt(t *testing.T) {
	t.Parallel()
	db, _ := migratedWarehouse(t)
	lk, dir := fileLake(t)
	m1 := commit(t, lk, 1, batch1())
	m2 := commit(t, lk, 2, batch2())
	commit(t, lk, 3, batch{"dim_currency": {row{"currency_id": 3, "currency_code": "EUR", "currency_name": "Euro"}}})
	var staff lake.File
	for _, f := range m2.Files {
		if f.Table == "dim_staff" {
			staff = f
		}
	}
	if err := os.Truncate(filepath.Join(dir, filepath.FromSlash(staff.Path)), staff.Bytes/2); err != nil {
		t.Fatal(err)
	}

	res, err := warehouse.New(db, nil).Load(context.Background(), lk)
	if err == nil {
		t.Fatal("Load accepted a truncated file")
	}
	t.Log(err)
	if !errors.Is(err, lake.ErrCorrupt) {
		t.Errorf("error does not wrap lake.ErrCorrupt: %v", err)
	}
	// One line, each thing once: the batch, the table, the file, what is
	// wrong, and what stays loaded.
	want := fmt.Sprintf("load processed batch %s: dim_staff: lake file://%s: %s: %d bytes, manifest says %d (truncated?) (batch %s, loaded before it, stays loaded)",
		m2.ID, dir, staff.Path, staff.Bytes/2, staff.Bytes, m1.ID)
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant\n%s", err, want)
	}
	if len(res.Batches) != 1 || res.Batches[0].Batch != m1.ID {
		t.Errorf("result of the failed load: %+v", res.Batches)
	}
	// Batch 2's dim_date rows were staged and merged before dim_staff
	// failed: they must be gone with the rest. Batch 3 was not tried.
	sameTables(t, "after the failed load", dumpAll(t, db), after1())
	if got := ledger(t, db); !slices.Equal(got, []string{m1.ID}) {
		t.Errorf("ledger: %v", got)
	}
}

// A processed file that is not what the model says is refused with the
// batch, table, column and value, and nothing of its batch is loaded.
func TestBadProcessedFiles(t *testing.T) {
	t.Parallel()
	staff, _ := star.Lookup("dim_staff")
	fields := func(change func(parquet.Group)) *parquet.Schema {
		g := parquet.Group{}
		for _, f := range staff.Schema().Fields() {
			g[f.Name()] = f
		}
		change(g)
		return parquet.NewSchema("dim_staff", g)
	}
	withStaff := func(extra row) row {
		r := row{}
		for k, v := range staff1 {
			r[k] = v
		}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		schema *parquet.Schema
		row    row
		want   string
	}{
		{"missing column", fields(func(g parquet.Group) { delete(g, "location") }), staff1,
			"dim_staff: processed/dim_staff/%s.parquet: does not match the model: column location is missing"},
		{"wrong type", fields(func(g parquet.Group) { g["staff_id"] = parquet.Int(64) }), staff1,
			"column staff_id is INT(64,true) on INT64, the model wants INT(32,true) on INT32"},
		{"text as a float", fields(func(g parquet.Group) { g["first_name"] = parquet.Leaf(parquet.DoubleType) }), withStaff(row{"first_name": 1}),
			"column first_name is DOUBLE, the model wants STRING on BYTE_ARRAY"},
		{"optional NOT NULL column", fields(func(g parquet.Group) { g["last_name"] = parquet.Optional(parquet.String()) }), staff1,
			"column last_name is optional, but the model says NOT NULL"},
		{"extra column", fields(func(g parquet.Group) { g["nickname"] = parquet.String() }), withStaff(row{"nickname": "J"}),
			"column nickname is not in the model"},
		{"NUL in text", staff.Schema(), withStaff(row{"last_name": "Fra\x00ney"}),
			`dim_staff: processed/dim_staff/%s.parquet: row 1: column last_name: text "Fra\x00ney" holds a NUL byte`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := migratedWarehouse(t)
			lk := memLake(t)
			w := lk.NewBatch(lake.Processed, 1, testNow())
			writeFile(t, w, "dim_date", mustSchema(t, "dim_date"), []row{date1})
			writeFile(t, w, "dim_staff", tc.schema, []row{tc.row})
			m := commitWriter(t, w)
			_, err := warehouse.New(db, nil).Load(context.Background(), lk)
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			t.Log(err)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, m.ID)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "load processed batch "+m.ID+": dim_staff: ") || !strings.Contains(msg, want) {
				t.Errorf("error:\n%s\nwant it to name the batch and contain\n%s", msg, want)
			}
			if got := dumpAll(t, db); len(got["dim_date"]) != 0 || len(ledger(t, db)) != 0 {
				t.Errorf("something of the batch was loaded: %v", got["dim_date"])
			}
		})
	}
}

func TestUnknownTableInBatch(t *testing.T) {
	t.Parallel()
	db, _ := migratedWarehouse(t)
	lk := memLake(t)
	w := lk.NewBatch(lake.Processed, 1, testNow())
	writeFile(t, w, "dim_weather", mustSchema(t, "dim_design"), []row{design8})
	m := commitWriter(t, w)
	_, err := warehouse.New(db, nil).Load(context.Background(), lk)
	if err == nil || !strings.Contains(err.Error(), "load processed batch "+m.ID) || !strings.Contains(err.Error(), `no table "dim_weather"`) {
		t.Errorf("Load of a batch with an unknown table: %v", err)
	}
}

func TestRebuildRefusesNonEmptyWarehouse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lk := memLake(t)
	commit(t, lk, 1, batch1())

	loaded, _ := migratedWarehouse(t)
	loadOK(t, loaded, lk)
	_, err := warehouse.New(loaded, nil).Rebuild(ctx, lk, false)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "1 loaded batches") ||
		!strings.Contains(err.Error(), "star tables dim_date, dim_staff") {
		t.Errorf("Rebuild into a loaded warehouse: %v", err)
	}

	// A star table alone, made by hand, is enough to refuse, and nothing is created.
	db, _ := newWarehouse(t)
	execSQL(t, db, `CREATE TABLE dim_date (date_id date)`)
	_, err = warehouse.New(db, nil).Rebuild(ctx, lk, false)
	if err == nil || !strings.Contains(err.Error(), "it has star tables dim_date)") {
		t.Errorf("Rebuild into a warehouse with dim_date: %v", err)
	}
	if got := starTablesPresent(t, db); !slices.Equal(got, []string{"dim_date"}) {
		t.Errorf("tables after the refused rebuild: %v", got)
	}
}

func TestLoadedBeforeMigration(t *testing.T) {
	t.Parallel()
	db, _ := newWarehouse(t)
	entries, err := warehouse.New(db, nil).Loaded(context.Background())
	if err != nil || len(entries) != 0 {
		t.Errorf("Loaded on an empty database: %v, %v", entries, err)
	}
}

// A processed zone rewritten after loading (batch numbers reused with new
// ids) is refused: the warehouse must be rebuilt from it.
func TestRewrittenProcessedZone(t *testing.T) {
	t.Parallel()
	db, _ := migratedWarehouse(t)
	old := memLake(t)
	commit(t, old, 1, batch1())
	loadOK(t, db, old)
	time.Sleep(2 * time.Millisecond) // a new batch id
	rewritten := memLake(t)
	m := commit(t, rewritten, 1, batch1())
	_, err := warehouse.New(db, nil).Load(context.Background(), rewritten)
	if err == nil || !strings.Contains(err.Error(), "load processed batch "+m.ID) || !strings.Contains(err.Error(), "processed zone was rewritten") {
		t.Errorf("Load of a rewritten zone: %v", err)
	}
}

// Each batch's commit is announced on LoadedChannel, with its id, to
// listeners in other sessions.
func TestLoadNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := migratedWarehouse(t)
	lk := memLake(t)
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+warehouse.LoadedChannel); err != nil {
		t.Fatal(err)
	}
	m := commit(t, lk, 1, batch1())
	loadOK(t, db, lk)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Payload != m.ID {
		t.Fatalf("notification %+v (%v), want batch %s", n, err, m.ID)
	}
}

// A Premigrated warehouse's Load skips the migration its caller has just
// made: on a database nobody migrated it fails, creating nothing, where
// Load migrates first. Its Rebuild, which drops what it finds, migrates
// all the same.
func TestPremigratedLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lk := memLake(t)
	commit(t, lk, 1, batch1())

	db, _ := newWarehouse(t)
	_, err := warehouse.New(db, nil).Premigrated().Load(ctx, lk)
	if err == nil || !strings.Contains(err.Error(), "load ledger") {
		t.Errorf("Premigrated Load of an unmigrated warehouse: %v", err)
	}
	if got := starTablesPresent(t, db); len(got) != 0 {
		t.Errorf("tables after the Premigrated Load: %v", got)
	}
	if ok, err := warehouse.New(db, nil).Migrated(ctx); ok || err != nil {
		t.Errorf("Migrated after the Premigrated Load: %v, %v", ok, err)
	}

	res, err := warehouse.New(db, nil).Premigrated().Rebuild(ctx, lk, false)
	if err != nil || len(res.Batches) != 1 {
		t.Fatalf("Premigrated Rebuild: %+v, %v", res, err)
	}
	migrated, _ := migratedWarehouse(t)
	if res, err := warehouse.New(migrated, nil).Premigrated().Load(ctx, lk); err != nil || len(res.Batches) != 1 {
		t.Errorf("Premigrated Load of a migrated warehouse: %+v, %v", res, err)
	}
}

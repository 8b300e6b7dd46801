package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, p *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := p.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The star schema computed from the source, independently of the pipeline:
// each query yields one text row per expected warehouse row.
var expectedDims = map[string]struct{ source, warehouse string }{
	"dim_staff": {
		`SELECT ROW(s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address)::text
		 FROM staff s JOIN department d USING (department_id)`,
		`SELECT ROW(staff_id, first_name, last_name, department_name, location, email_address)::text FROM dim_staff`},
	"dim_location": {
		`SELECT ROW(address_id, address_line_1, address_line_2, district, city, postal_code, country, phone)::text FROM address`,
		`SELECT ROW(location_id, address_line_1, address_line_2, district, city, postal_code, country, phone)::text FROM dim_location`},
	"dim_design": {
		`SELECT ROW(design_id, design_name, file_location, file_name)::text FROM design`,
		`SELECT ROW(design_id, design_name, file_location, file_name)::text FROM dim_design`},
	"dim_counterparty": {
		`SELECT ROW(c.counterparty_id, c.counterparty_legal_name, a.address_line_1, a.address_line_2, a.district, a.city,
		        a.postal_code, a.country, a.phone)::text
		 FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id`,
		`SELECT ROW(counterparty_id, counterparty_legal_name, counterparty_legal_address_line_1, counterparty_legal_address_line_2,
		        counterparty_legal_district, counterparty_legal_city, counterparty_legal_postal_code, counterparty_legal_country,
		        counterparty_legal_phone_number)::text FROM dim_counterparty`},
	"dim_transaction": {
		`SELECT ROW(transaction_id, transaction_type::text, sales_order_id, purchase_order_id)::text FROM transaction`,
		`SELECT ROW(transaction_id, transaction_type, sales_order_id, purchase_order_id)::text FROM dim_transaction`},
	"dim_payment_type": {
		`SELECT ROW(payment_type_id, payment_type_name::text)::text FROM payment_type`,
		`SELECT ROW(payment_type_id, payment_type_name)::text FROM dim_payment_type`},
	"dim_currency": {
		`SELECT ROW(currency_id, currency_code, CASE currency_code
		    WHEN 'GBP' THEN 'Pound Sterling' WHEN 'USD' THEN 'US Dollar' WHEN 'EUR' THEN 'Euro'
		    WHEN 'CHF' THEN 'Swiss Franc' WHEN 'JPY' THEN 'Yen' WHEN 'AUD' THEN 'Australian Dollar'
		    WHEN 'CAD' THEN 'Canadian Dollar' WHEN 'SEK' THEN 'Swedish Krona' WHEN 'NOK' THEN 'Norwegian Krone'
		    WHEN 'DKK' THEN 'Danish Krone' WHEN 'PLN' THEN 'Zloty' WHEN 'CZK' THEN 'Czech Koruna'
		    WHEN 'NZD' THEN 'New Zealand Dollar' END)::text FROM currency`,
		`SELECT ROW(currency_id, currency_code, currency_name)::text FROM dim_currency`},
}

// Facts: one row per source row version; the test captures the versions
// the source shows before each pass.
var expectedFacts = map[string]struct{ source, warehouse string }{
	"fact_sales_order": {
		`SELECT ROW(sales_order_id, created_at::date, created_at::time, last_updated::date, last_updated::time, staff_id,
		        counterparty_id, units_sold, unit_price, currency_id, design_id, agreed_payment_date::date,
		        agreed_delivery_date::date, agreed_delivery_location_id)::text FROM sales_order`,
		`SELECT ROW(sales_order_id, created_date, created_time, last_updated_date, last_updated_time, sales_staff_id,
		        counterparty_id, units_sold, unit_price, currency_id, design_id, agreed_payment_date,
		        agreed_delivery_date, agreed_delivery_location_id)::text FROM fact_sales_order`},
	"fact_purchase_order": {
		`SELECT ROW(purchase_order_id, created_at::date, created_at::time, last_updated::date, last_updated::time, staff_id,
		        counterparty_id, item_code, item_quantity, item_unit_price, currency_id, agreed_delivery_date::date,
		        agreed_payment_date::date, agreed_delivery_location_id)::text FROM purchase_order`,
		`SELECT ROW(purchase_order_id, created_date, created_time, last_updated_date, last_updated_time, staff_id,
		        counterparty_id, item_code, item_quantity, item_unit_price, currency_id, agreed_delivery_date,
		        agreed_payment_date, agreed_delivery_location_id)::text FROM fact_purchase_order`},
	"fact_payment": {
		`SELECT ROW(payment_id, created_at::date, created_at::time, last_updated::date, last_updated::time, transaction_id,
		        counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date::date)::text FROM payment`,
		`SELECT ROW(payment_id, created_date, created_time, last_updated_date, last_updated_time, transaction_id,
		        counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date)::text FROM fact_payment`},
}

// Every date a fact references, with its attributes computed by PostgreSQL.
const expectedDates = `
WITH d(d) AS (
  SELECT created_date FROM fact_sales_order UNION SELECT last_updated_date FROM fact_sales_order
  UNION SELECT agreed_payment_date FROM fact_sales_order UNION SELECT agreed_delivery_date FROM fact_sales_order
  UNION SELECT created_date FROM fact_purchase_order UNION SELECT last_updated_date FROM fact_purchase_order
  UNION SELECT agreed_payment_date FROM fact_purchase_order UNION SELECT agreed_delivery_date FROM fact_purchase_order
  UNION SELECT created_date FROM fact_payment UNION SELECT last_updated_date FROM fact_payment
  UNION SELECT payment_date FROM fact_payment)
SELECT ROW(d, extract(year FROM d)::int, extract(month FROM d)::int, extract(day FROM d)::int, extract(isodow FROM d)::int,
       trim(to_char(d, 'Day')), trim(to_char(d, 'Month')), extract(quarter FROM d)::int)::text FROM d`

const warehouseDates = `SELECT ROW(date_id, year, month, day, day_of_week, day_name, month_name, quarter)::text FROM dim_date`

// sameRows fails unless got and want hold the same rows, each once.
func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if slices.Equal(got, want) {
		return
	}
	gotSet := map[string]int{}
	for _, g := range got {
		gotSet[g]++
	}
	wantSet := map[string]int{}
	for _, w := range want {
		wantSet[w]++
	}
	shown := 0
	for w := range wantSet {
		if gotSet[w] != wantSet[w] && shown < 5 {
			t.Errorf("%s: want %s ×%d, warehouse has ×%d", what, w, wantSet[w], gotSet[w])
			shown++
		}
	}
	for g := range gotSet {
		if wantSet[g] == 0 && shown < 10 {
			t.Errorf("%s: warehouse has unexpected %s", what, g)
			shown++
		}
	}
	t.Errorf("%s: warehouse has %d rows, want %d", what, len(got), len(want))
}

// capture records the fact versions the source shows now.
func capture(t *testing.T, src *pgxpool.Pool, versions map[string]map[string]bool) {
	for table, q := range expectedFacts {
		if versions[table] == nil {
			versions[table] = map[string]bool{}
		}
		for _, r := range query(t, src, q.source) {
			versions[table][r] = true
		}
	}
}

func compare(t *testing.T, src, wh *pgxpool.Pool, versions map[string]map[string]bool) {
	t.Helper()
	for table, q := range expectedDims {
		sameRows(t, table, query(t, wh, q.warehouse), query(t, src, q.source))
	}
	for table, q := range expectedFacts {
		var want []string
		for v := range versions[table] {
			want = append(want, v)
		}
		sameRows(t, table, query(t, wh, q.warehouse), want)
	}
	sameRows(t, "dim_date", query(t, wh, warehouseDates), query(t, wh, expectedDates))
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// From an empty warehouse: the first pass migrates it.
	srcURL, whURL := fixture.Source(1, 31).NewDB(t), pgtest.NewDB(t)
	src, wh := pgtest.Pool(t, srcURL), pgtest.Pool(t, whURL)
	lk, err := lake.Open(ctx, "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	parts := pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}
	versions := map[string]map[string]bool{}

	capture(t, src, versions)
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)

	// The business moves on: every kind of change, including the ones
	// dimensions must follow through their joins.
	for _, sql := range []string{
		`UPDATE department SET department_name = 'Logistics', last_updated = now() WHERE department_id = 4`,
		`UPDATE address SET phone = '0113 000000', city = 'Leeds', last_updated = now()
		 WHERE address_id = (SELECT legal_address_id FROM counterparty ORDER BY counterparty_id LIMIT 1)`,
		`UPDATE counterparty SET legal_address_id = 30, last_updated = now() WHERE counterparty_id = 5`,
		`UPDATE staff SET department_id = 4, last_updated = now() WHERE staff_id = 3`,
		`INSERT INTO currency (currency_code, last_updated) VALUES ('CHF', now())`,
	} {
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 800, Seed: 13}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)

	// More changes, then a pass with nothing new: nothing changes.
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 300, Seed: 14}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	for range 2 {
		if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	compare(t, src, wh, versions)

	// The business figures agree with the source.
	got, err := warehouse.New(wh, nil).SalesByMonth(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var gotRows []string
	for _, m := range got {
		gotRows = append(gotRows, fmt.Sprintf("(%s,%s,%d,%d,%s)", m.Month, m.Currency, m.Orders, m.Units, m.Value))
	}
	sameRows(t, "sales by month", gotRows, query(t, src, `
		WITH months AS (SELECT DISTINCT date_trunc('month', created_at) m FROM sales_order ORDER BY m DESC LIMIT 3)
		SELECT ROW(mon, code, n, units, value)::text FROM (
		  SELECT to_char(date_trunc('month', s.created_at), 'YYYY-MM') AS mon, c.currency_code AS code, count(*) AS n,
		         sum(s.units_sold) AS units, sum(s.units_sold * s.unit_price) AS value
		  FROM sales_order s JOIN currency c USING (currency_id)
		  WHERE date_trunc('month', s.created_at) IN (SELECT m FROM months) GROUP BY 1, 2) x`))

	// A warehouse rebuilt from the lake alone matches row for row, surrogate keys too.
	rebuilt := pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := warehouse.New(rebuilt, nil).Rebuild(ctx, lk, false); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"fact_sales_order", "fact_purchase_order", "fact_payment", "dim_date", "dim_staff",
		"dim_location", "dim_design", "dim_currency", "dim_counterparty", "dim_transaction", "dim_payment_type"} {
		q := fmt.Sprintf("SELECT t::text FROM %s t", table)
		sameRows(t, "rebuilt "+table, query(t, rebuilt, q), query(t, wh, q))
	}
}

func TestEndToEndOnTheRealSnapshot(t *testing.T) {
	t.Parallel()
	dir := pgtest.SnapshotDir(t)
	ctx := context.Background()
	src, wh := pgtest.Pool(t, pgtest.NewDB(t)), pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := seed.LoadSnapshot(ctx, src, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	versions := map[string]map[string]bool{}
	capture(t, src, versions)
	res, err := pipeline.Run(ctx, pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)
	var summary []string
	for _, s := range res.Stages {
		summary = append(summary, s.String())
	}
	t.Log("\n" + strings.Join(summary, "\n"))
}

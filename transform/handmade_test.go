package transform_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
)

// row is a raw row: values by column, an int for an integer, int64 cents
// for money, a time.Time for a timestamp, nil for NULL.
type row map[string]any

// writeRaw commits raw batch seq with rows of each table, as extraction
// writes them, filling created_at and last_updated where a row lacks them.
func writeRaw(t testing.TB, lk *lake.Lake, seq uint64, rows map[string][]row) lake.Manifest {
	t.Helper()
	ctx := context.Background()
	b := lk.NewBatch(lake.Raw, seq, time.Now())
	for name, rs := range rows {
		table, err := totesys.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		schema := table.Schema()
		f, err := b.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[any](f, schema)
		for _, r := range rs {
			out := make(parquet.Row, len(schema.Columns()))
			xid, _ := r[totesys.XidColumn].(int64)
			leaf, _ := schema.Lookup(totesys.XidColumn)
			out[leaf.ColumnIndex] = parquet.Int64Value(xid).Level(0, 0, leaf.ColumnIndex)
			for _, c := range table.Columns {
				leaf, _ := schema.Lookup(c.Name)
				v, ok := r[c.Name]
				if !ok && (c.Name == totesys.CreatedAt || c.Name == totesys.LastUpdated) {
					v = time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
				}
				var pv parquet.Value
				switch v := v.(type) {
				case nil:
					out[leaf.ColumnIndex] = parquet.NullValue().Level(0, 0, leaf.ColumnIndex)
					continue
				case int:
					pv = parquet.Int32Value(int32(v))
				case int64:
					pv = parquet.Int64Value(v)
				case bool:
					pv = parquet.BooleanValue(v)
				case string:
					pv = parquet.ByteArrayValue([]byte(v))
				case time.Time:
					pv = parquet.Int64Value(v.UnixMicro())
				default:
					t.Fatalf("%s.%s: value %T", name, c.Name, v)
				}
				out[leaf.ColumnIndex] = pv.Level(0, leaf.MaxDefinitionLevel, leaf.ColumnIndex)
			}
			if _, err := w.WriteRows([]parquet.Row{out}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.SetRows(int64(len(rs)))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Commit(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func at(hour int) time.Time { return time.Date(2024, 3, 1, hour, 0, 0, 0, time.UTC) }

// strings reads the named text columns of rows as "a/b", sorted.
func texts(rows []record, columns ...string) []string {
	var out []string
	for _, rec := range rows {
		s := fmt.Sprint(rec[columns[0]].Int32())
		for _, c := range columns[1:] {
			if rec[c].IsNull() {
				s += "/NULL"
			} else {
				s += "/" + string(rec[c].ByteArray())
			}
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Extraction never puts two versions of a row in one batch, but if a batch
// had them, a dimension would get the newest stamp; and a later batch's
// version wins whatever its stamp.
func TestDimensionsKeepTheNewestVersion(t *testing.T) {
	t.Parallel()
	lk := laketest.Mem(t)
	ctx := context.Background()
	addr := func(id int, city string, lu time.Time) row {
		return row{"address_id": id, "address_line_1": "1 High St", "address_line_2": nil, "district": nil,
			"city": city, "postal_code": "LS1", "country": "UK", "phone": "0113", "last_updated": lu}
	}
	staff := func(id, dept int, last string, lu time.Time) row {
		return row{"staff_id": id, "first_name": "Ann", "last_name": last, "department_id": dept,
			"email_address": "ann@example.com", "last_updated": lu}
	}
	writeRaw(t, lk, 1, map[string][]row{
		"address": {addr(1, "Old", at(1)), addr(1, "New", at(3)), addr(1, "Middle", at(2)), addr(2, "Leeds", at(1))},
		"department": {{"department_id": 1, "department_name": "Sales", "location": "Leds", "manager": nil, "last_updated": at(1)},
			{"department_id": 2, "department_name": "Finance", "location": nil, "manager": "Bo", "last_updated": at(1)}},
		"staff": {staff(1, 1, "Older", at(1)), staff(1, 1, "Newer", at(2)), staff(2, 2, "Other", at(1))},
		"counterparty": {{"counterparty_id": 1, "counterparty_legal_name": "Acme", "legal_address_id": 1,
			"commercial_contact": nil, "delivery_contact": nil, "last_updated": at(1)}},
		"currency": {{"currency_id": 1, "currency_code": "GBP", "last_updated": at(1)},
			{"currency_id": 1, "currency_code": "CHF", "last_updated": at(2)}},
	})
	transformRun(t, lk)
	m := latest(t, lk, lake.Processed)
	if got := texts(readTable(t, lk, m, "dim_location"), "location_id", "city"); !slices.Equal(got, []string{"1/New", "2/Leeds"}) {
		t.Errorf("dim_location %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_staff"), "staff_id", "last_name", "department_name", "location"); !slices.Equal(got,
		[]string{"1/Newer/Sales/Leds", "2/Other/Finance/NULL"}) {
		t.Errorf("dim_staff %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_currency"), "currency_id", "currency_code", "currency_name"); !slices.Equal(got,
		[]string{"1/CHF/Swiss Franc"}) {
		t.Errorf("dim_currency %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_counterparty"), "counterparty_id", "counterparty_legal_city"); !slices.Equal(got, []string{"1/New"}) {
		t.Errorf("dim_counterparty %v", got)
	}
	if _, ok := slices.BinarySearch(tables(m), "dim_date"); ok {
		t.Error("dim_date without facts")
	}

	// A version stamped earlier than the state's is still the newer one: a
	// later batch saw it (a writer that set an old stamp). Department 1's
	// rename re-emits its staff member with the name.
	writeRaw(t, lk, 2, map[string][]row{
		"staff":      {staff(1, 1, "Ancient", at(0))},
		"department": {{"department_id": 1, "department_name": "Sales & Marketing", "location": "Leeds", "manager": nil, "last_updated": at(5)}},
	})
	transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	if got := texts(readTable(t, lk, m, "dim_staff"), "staff_id", "last_name", "department_name", "location"); !slices.Equal(got,
		[]string{"1/Ancient/Sales & Marketing/Leeds"}) {
		t.Errorf("dim_staff after the rename %v", got)
	}
	state, err := transform.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	staffRows, depts := state.Rows("staff"), state.Rows("department")
	if state.RawSeq != 2 || len(staffRows) != 2 || staffRows[0]["last_name"] != "Ancient" || depts[0]["department_name"] != "Sales & Marketing" {
		t.Errorf("state %+v", state)
	}

	// A member of staff in a department never seen.
	raw := writeRaw(t, lk, 3, map[string][]row{"staff": {staff(7, 99, "Lost", at(6))}})
	_, err = transform.Run(ctx, lk, transform.Options{Strict: true})
	want := fmt.Sprintf("transform raw batch %s: staff 7: department_id 99 is not a known department (none in this raw batch or before it)", raw.ID)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if n := len(batches(t, lk, lake.Processed)); n != 2 {
		t.Errorf("%d processed batches, want 2", n)
	}
}

// Facts keep every version, dim_date gets each date once, and a payment's
// money and flags come through exactly.
func TestFactsKeepEveryVersion(t *testing.T) {
	t.Parallel()
	lk := laketest.Mem(t)
	pay := func(paid bool, lu time.Time) row {
		return row{"payment_id": 5, "transaction_id": 5, "counterparty_id": 1, "payment_amount": int64(-123456),
			"currency_id": 1, "payment_type_id": 3, "paid": paid, "payment_date": "2024-02-29",
			"company_ac_number": 1, "counterparty_ac_number": 2,
			"created_at": time.Date(2023, 12, 31, 23, 59, 59, 999_000_000, time.UTC), "last_updated": lu}
	}
	writeRaw(t, lk, 1, map[string][]row{"payment": {pay(false, at(1)), pay(true, at(2))}})
	transformRun(t, lk)
	m := latest(t, lk, lake.Processed)
	facts := readTable(t, lk, m, "fact_payment")
	var got []string
	for _, rec := range facts {
		got = append(got, startest.Lake(mustTable("fact_payment"), rec))
	}
	slices.Sort(got)
	want := []string{
		"5|2023-12-31|23:59:59.999000|2024-03-01|01:00:00.000000|5|1|-1234.56|1|3|false|2024-02-29|0|false",
		"5|2023-12-31|23:59:59.999000|2024-03-01|02:00:00.000000|5|1|-1234.56|1|3|true|2024-02-29|0|false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("fact_payment\n%v\nwant\n%v", got, want)
	}
	for _, rec := range facts {
		if b := string(rec[star.BatchID].ByteArray()); b != m.ID {
			t.Errorf("fact_payment batch_id %q, want the processed batch %s", b, m.ID)
		}
	}
	var dates []string
	for _, rec := range readTable(t, lk, m, "dim_date") {
		dates = append(dates, startest.Lake(mustTable("dim_date"), rec))
	}
	slices.Sort(dates)
	wantDates := []string{
		"2023-12-31|2023|12|31|7|Sunday|December|4",
		"2024-02-29|2024|2|29|4|Thursday|February|1",
		"2024-03-01|2024|3|1|5|Friday|March|1",
	}
	if !slices.Equal(dates, wantDates) {
		t.Errorf("dim_date\n%v\nwant\n%v", dates, wantDates)
	}
}

// A processed file's manifest entry says whether its rows are in key
// order, which lets a first load copy it straight into its table.
func TestFilesSayWhetherInKeyOrder(t *testing.T) {
	t.Parallel()
	pay := func(id int, lu time.Time) row {
		return row{"payment_id": id, "transaction_id": id, "counterparty_id": 1, "payment_amount": int64(100),
			"currency_id": 1, "payment_type_id": 3, "paid": false, "payment_date": "2024-02-29",
			"company_ac_number": 1, "counterparty_ac_number": 2, "created_at": at(0), "last_updated": lu}
	}
	for _, c := range []struct {
		name string
		rows []row
		want bool
	}{
		{"in order", []row{pay(1, at(1)), pay(1, at(2)), pay(2, at(1)), pay(7, at(1))}, true},
		{"an id back", []row{pay(1, at(1)), pay(7, at(1)), pay(2, at(1))}, false},
		{"a version back", []row{pay(1, at(2)), pay(1, at(1))}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lk := laketest.Mem(t)
			writeRaw(t, lk, 1, map[string][]row{"payment": c.rows})
			transformRun(t, lk)
			got := map[string]bool{}
			for _, f := range latest(t, lk, lake.Processed).Files {
				got[f.Table] = f.KeyOrdered
			}
			if got["fact_payment"] != c.want || !got["dim_date"] {
				t.Errorf("key order: %v; want fact_payment %v and dim_date true", got, c.want)
			}
		})
	}
}

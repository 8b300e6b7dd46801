package warehouse_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/warehouse"
)

// A first load copies each file whose manifest says its rows are in key
// order straight into its empty table, with the surrogate keys the merge
// would have given. A file that says so wrongly (out of order, or a key
// twice) is staged and merged after all, with the same result as if it had
// not said so.
func TestStraightCopy(t *testing.T) {
	t.Parallel()
	inOrder := batch1()
	inOrder["dim_date"] = append([]row{date0, date1, date2}, agreedDays...)
	inOrder["fact_sales_order"] = []row{order1, order2}
	inOrder["fact_payment"] = []row{payment1, payment2}

	twice := batch{}
	for table, rows := range inOrder {
		twice[table] = rows
	}
	order1Again := row{}
	for k, v := range order1 {
		order1Again[k] = v
	}
	order1Again["units_sold"] = 7 // the same version: the later row wins
	twice["fact_sales_order"] = []row{order1, order1Again, order2}

	var many []row // enough rows for the load to drop the unique key and build it after
	for i := range 60_000 {
		r := row{}
		for k, v := range order1 {
			r[k] = v
		}
		r["sales_order_id"] = i + 1
		many = append(many, r)
	}

	for _, c := range []struct {
		name     string
		b        batch
		straight []string // the tables expected to go straight in
	}{
		{"in key order", inOrder, []string{"dim_date", "dim_staff", "dim_location", "dim_design", "dim_currency",
			"dim_counterparty", "dim_transaction", "dim_payment_type", "fact_sales_order", "fact_purchase_order", "fact_payment"}},
		{"out of order", batch1(), []string{"dim_staff", "dim_location", "dim_design", "dim_currency",
			"dim_counterparty", "dim_transaction", "dim_payment_type", "fact_purchase_order"}},
		{"a key twice", twice, []string{"dim_date", "dim_staff", "dim_location", "dim_design", "dim_currency",
			"dim_counterparty", "dim_transaction", "dim_payment_type", "fact_purchase_order", "fact_payment"}},
		{"large", batch{"fact_sales_order": many}, []string{"fact_sales_order"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// The same batch, claiming key order and not, in two warehouses.
			claimed := memLake(t)
			commitClaiming(t, claimed, 1, c.b, true)
			got, _ := migratedWarehouse(t)
			withIndex(t, got)
			var logs bytes.Buffer
			w := warehouse.New(got, nil).WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			res, err := w.Load(ctx, claimed)
			if err != nil {
				t.Fatal(err)
			}
			if res.Inserted() != int64(c.b.rows()) && c.name != "a key twice" {
				t.Errorf("inserted %d rows, want %d", res.Inserted(), c.b.rows())
			}
			if c.name == "large" {
				// Surrogate keys from 1 in key order, as rendered says.
				sameTables(t, "claiming key order", map[string][]string{"fact_sales_order": dump(t, got, "fact_sales_order")},
					map[string][]string{"fact_sales_order": rendered("fact_sales_order", many...)})
			} else {
				plain := memLake(t)
				commit(t, plain, 1, c.b)
				want, _ := migratedWarehouse(t)
				loadOK(t, want, plain)
				sameTables(t, "claiming key order", dumpAll(t, got), dumpAll(t, want))
			}

			var straight []string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `msg="copied table straight"`) {
					straight = append(straight, strings.Fields(strings.SplitN(line, "table=", 2)[1])[0])
				}
			}
			if fmt.Sprint(straight) != fmt.Sprint(c.straight) {
				t.Errorf("copied straight: %v, want %v", straight, c.straight)
			}
			if len(straight) < len(c.b) && !strings.Contains(logs.String(), "not in key order after all") {
				t.Errorf("no warning for the files staged after all:\n%s", logs.String())
			}
			// The keys and indexes the large load dropped are back, as they
			// were: those of a warehouse that loaded nothing.
			fresh, _ := migratedWarehouse(t)
			withIndex(t, fresh)
			if g, w := indexes(t, got), indexes(t, fresh); g != w {
				t.Errorf("fact_sales_order's indexes after the load:\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// rows is the number of rows in all of the batch's tables.
func (b batch) rows() int {
	n := 0
	for _, rows := range b {
		n += len(rows)
	}
	return n
}

// withIndex migrates the warehouse in db and gives fact_sales_order an
// index that backs no constraint, as the dashboard's (package web) or a
// DBA's would be: a large first load drops it and builds it again after.
func withIndex(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	migrate(t, db)
	execSQL(t, db, `CREATE INDEX fact_sales_order_design_idx ON fact_sales_order (design_id, created_date)`)
}

// indexes lists fact_sales_order's indexes and the constraints they back.
func indexes(t *testing.T, db *pgxpool.Pool) string {
	t.Helper()
	var out string
	if err := db.QueryRow(context.Background(), `
		SELECT string_agg(pg_get_indexdef(i.indexrelid) || coalesce(' ' || k.contype::text, ''), E'\n' ORDER BY pg_get_indexdef(i.indexrelid))
		FROM pg_index i LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid
		WHERE i.indrelid = 'fact_sales_order'::regclass`).Scan(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "version_key") || !strings.Contains(out, "design_idx") {
		t.Fatalf("fact_sales_order lacks the indexes the test expects:\n%s", out)
	}
	return out
}

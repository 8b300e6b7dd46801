package pipeline_test

import (
	"context"
	"testing"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/warehouse"
)

// Columns added to source tables do not stop the pipeline
// (docs/decisions/0018-schema-evolution.md): the pass reports them once,
// the rows changed since reach the warehouse, verify finds no difference,
// and a warehouse rebuilt from the lake, whose raw zone carries the new
// columns, matches the one loaded incrementally.
func TestNewColumnsFlowThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)
	srcExec(t, src,
		`ALTER TABLE sales_order ADD COLUMN discount numeric(5,2)`,
		`ALTER TABLE counterparty ADD COLUMN notes jsonb NOT NULL DEFAULT '{}'`,
		`UPDATE sales_order SET discount = 7.5, units_sold = 4242, last_updated = now() WHERE sales_order_id = 7`,
		`UPDATE counterparty SET notes = '{"vip": true}', counterparty_legal_name = 'Renamed Ltd', last_updated = now() WHERE counterparty_id = 3`)
	res := pass(t, parts)
	want := []extract.Carried{{Table: "counterparty", Column: "notes", Type: "jsonb NOT NULL"},
		{Table: "sales_order", Column: "discount", Type: "numeric(5,2) NULL"}}
	if got := res.Extract.NewColumns; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("new columns %v, want %v", got, want)
	}
	if n := one(t, wh, `SELECT units_sold FROM fact_sales_order_current WHERE sales_order_id = 7`); n != 4242 {
		t.Errorf("units_sold of the order changed with the new column: %d, want 4242", n)
	}
	if n := one(t, wh, `SELECT count(*) FROM dim_counterparty WHERE counterparty_legal_name = 'Renamed Ltd'`); n != 1 {
		t.Errorf("%d counterparties renamed, want 1", n)
	}
	if res := pass(t, parts); len(res.Extract.NewColumns) != 0 {
		t.Errorf("the next pass reports %v again", res.Extract.NewColumns)
	}
	if d := diffs(verifyOK(t, parts)); len(d) != 0 {
		t.Errorf("verify after the new columns: %v", d)
	}
	fresh := warehouse.New(pgtest.Pool(t, pgtest.NewDB(t)), nil)
	if _, err := fresh.Rebuild(ctx, parts.Lake, false); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`SELECT count(*) FROM fact_sales_order`, `SELECT sum(units_sold) FROM fact_sales_order`,
		`SELECT count(*) FROM dim_counterparty`} {
		var a, b int64
		if err := wh.QueryRow(ctx, sql).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Pool().QueryRow(ctx, sql).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s: %d incrementally, %d rebuilt from the lake", sql, a, b)
		}
	}
}

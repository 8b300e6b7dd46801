package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/warehouse"
)

// A bad date and an unknown currency are quarantined and the rest flows;
// once fixed in the source, the fixed versions load and resolve the
// rejects, and the warehouse is the star schema computed from the source.
func TestQuarantineThenFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	versions := firstPass(t, src, parts)

	for _, sql := range []string{
		`UPDATE sales_order SET agreed_delivery_date = 'soon', last_updated = now() WHERE sales_order_id = 7`,
		`INSERT INTO currency (currency_code, last_updated) VALUES ('XYZ', now())`,
		`UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 3`, // flows
	} {
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	res := pass(t, parts)
	q := res.Quarantined()
	if len(q) != 2 || !strings.Contains(strings.Join(q, "\n"), `sales_order 7: agreed_delivery_date "soon" is not a date`) ||
		!strings.Contains(strings.Join(q, "\n"), `currency 4: currency_code "XYZ" is not an ISO 4217 currency code`) {
		t.Fatalf("quarantined %q", q)
	}
	var paid bool
	if err := wh.QueryRow(ctx, `SELECT paid FROM fact_payment WHERE payment_id = 3 ORDER BY batch_id DESC LIMIT 1`).Scan(&paid); err != nil || !paid {
		t.Errorf("the rest of the batch did not flow: paid %v (%v)", paid, err)
	}
	open := rejects(t, parts.Warehouse, false)
	if len(open) != 2 {
		t.Fatalf("%d open rejects, want 2: %v", len(open), open)
	}
	// The lake's rejects zone holds them, with the processed batch.
	m, err := parts.Lake.Latest(ctx, lake.Processed)
	if err != nil || m == nil {
		t.Fatal(err)
	}
	inZone := false
	for _, f := range m.Files {
		inZone = inZone || (f.Table == lake.RejectsTable && strings.HasPrefix(f.Path, "rejects/") && f.Rows == 2)
	}
	if !inZone {
		t.Errorf("batch %s has no rejects file in the rejects zone: %+v", m.ID, m.Files)
	}

	for _, sql := range []string{
		`UPDATE sales_order SET agreed_delivery_date = '2026-12-24', last_updated = now() WHERE sales_order_id = 7`,
		`UPDATE currency SET currency_code = 'CHF', last_updated = now() WHERE currency_id = 4`,
	} {
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	capture(t, src, versions)
	res = pass(t, parts)
	if q := res.Quarantined(); len(q) != 0 {
		t.Errorf("quarantined after the fix: %q", q)
	}
	compare(t, src, wh, versions)
	if open := rejects(t, parts.Warehouse, false); len(open) != 0 {
		t.Errorf("rejects still open after the fix: %v", open)
	}
	all := rejects(t, parts.Warehouse, true)
	if len(all) != 2 || all[0].ResolvedBy == "" || all[1].ResolvedBy == "" {
		t.Errorf("rejects after the fix: %+v", all)
	}

	// A warehouse rebuilt from the lake holds the same rejects, resolved.
	rebuilt := warehouse.New(pgtest.Pool(t, pgtest.NewDB(t)), nil)
	if _, err := rebuilt.Rebuild(ctx, parts.Lake, false); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rejectKeys(rejects(t, rebuilt, true))), fmt.Sprint(rejectKeys(all)); got != want {
		t.Errorf("rebuilt rejects %s, want %s", got, want)
	}
}

func rejects(t *testing.T, wh *warehouse.Warehouse, all bool) []tote.Reject {
	t.Helper()
	rs, err := wh.Rejects(context.Background(), all, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func rejectKeys(rs []tote.Reject) []string {
	var out []string
	for _, r := range rs {
		v := "NULL"
		if r.Value != nil {
			v = *r.Value
		}
		out = append(out, fmt.Sprintf("%s/%d/%s/%s/%s/%s/%s/%v", r.Table, r.SourceID, r.Column, v, r.Reason, r.Batch, r.ResolvedBy, r.Version))
	}
	return out
}

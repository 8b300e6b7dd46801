package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/verify"
)

func verifyOK(t *testing.T, parts pipeline.Parts) verify.Result {
	t.Helper()
	res, err := verify.Run(context.Background(), parts, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// diffs renders what verify found, by table.
func diffs(res verify.Result) map[string]string {
	out := map[string]string{}
	for _, tr := range res.Tables {
		if tr.Differences() > 0 {
			out[tr.Table] = fmt.Sprintf("missing %v extra %v different %v", tr.Missing, tr.Extra, tr.Different)
		}
	}
	return out
}

// Rows deleted or altered by hand in the warehouse are named by verify,
// and --repair sends them through the pipeline again, and a tombstone for
// the row the source does not have: the warehouse is the star schema
// computed from the source once more, that row flagged deleted.
func TestVerifyFindsAndRepairs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	versions := firstPass(t, src, parts)
	if d := diffs(verifyOK(t, parts)); len(d) != 0 {
		t.Fatalf("differences right after a pass: %v", d)
	}

	for _, sql := range []string{
		`DELETE FROM fact_sales_order WHERE sales_order_id = 10`,
		`UPDATE fact_payment SET payment_amount = 0 WHERE payment_id = 20`,
		// By hand, past the foreign keys that would refuse it.
		`SET session_replication_role = replica; DELETE FROM dim_staff WHERE staff_id = 3; RESET session_replication_role`,
		`UPDATE dim_location SET city = 'Atlantis' WHERE location_id = 5`,
		`UPDATE dim_currency SET currency_name = 'Doubloon' WHERE currency_id = 2`,
		`INSERT INTO dim_design VALUES (999999, 'Ghost', '/nowhere', 'ghost.json')`,
	} {
		if _, err := wh.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	res := verifyOK(t, parts)
	want := map[string]string{
		"fact_sales_order": "missing [10] extra [] different []",
		"fact_payment":     "missing [] extra [] different [20]",
		"dim_staff":        "missing [3] extra [] different []",
		"dim_location":     "missing [] extra [] different [5]",
		"dim_currency":     "missing [] extra [] different [2]",
		"dim_design":       "missing [] extra [999999] different []",
	}
	if got := diffs(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verify found\n%v\nwant\n%v", got, want)
	}
	if _, err := verify.Repair(ctx, parts, res, nil); err != nil {
		t.Fatal(err)
	}
	res = verifyOK(t, parts)
	if got := diffs(res); len(got) != 0 {
		t.Errorf("after the repair verify found %v", got)
	}
	var ghost string
	if err := wh.QueryRow(ctx, `SELECT d::text FROM dim_design d WHERE design_id = 999999`).Scan(&ghost); err != nil || ghost != "(999999,Ghost,/nowhere,ghost.json,t)" {
		t.Errorf("the design the source does not have: %q (%v), want it flagged deleted", ghost, err)
	}
	if _, err := wh.Exec(ctx, `DELETE FROM dim_design WHERE design_id = 999999`); err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)
}

// verify on a source receiving writes all the while, deletions among them,
// reports no difference: what changed or was deleted since the last
// extraction is not a difference.
func TestVerifyOnABusySource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _, parts := setup(t)
	pass(t, parts)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 2000, Events: 50, Seed: 100 + i, Deletions: 0.2}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	inFlight := 0
	for i := range 3 {
		res := verifyOK(t, parts)
		if d := diffs(res); len(d) != 0 {
			t.Errorf("verify %d on a busy source found %v", i, d)
		}
		for _, tr := range res.Tables {
			inFlight += tr.InFlight
		}
		pass(t, parts)
		time.Sleep(200 * time.Millisecond)
	}
	if inFlight == 0 {
		t.Error("no row was in flight: the source was not busy, the test proved nothing")
	}
}

// A transaction open in another database of the same cluster holds back
// every snapshot's xmin, so the rows an extraction took sit at or above
// its horizon. They were taken, so they are not in flight: verify compares
// them and a repair sends them again.
func TestRepairUnderAHeldBackHorizon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := pgtest.Pool(t, pgtest.NewDB(t))
	hold, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	// Seeded after the held transaction began: not a copy of a template,
	// whose rows were written before it.
	srcURL := pgtest.NewDB(t)
	if _, err := seed.Generate(ctx, pgtest.Pool(t, srcURL), seed.Options{Scale: 1, Seed: 37}); err != nil {
		t.Fatal(err)
	}
	src, wh, parts := setupWith(t, srcURL)
	versions := firstPass(t, src, parts)
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for _, sql := range []string{
		`DELETE FROM fact_sales_order WHERE sales_order_id = 10`,
		`UPDATE dim_location SET city = 'Atlantis' WHERE location_id = 5`,
	} {
		if _, err := wh.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	res := verifyOK(t, parts)
	want := map[string]string{
		"fact_sales_order": "missing [10] extra [] different []",
		"dim_location":     "missing [] extra [] different [5]",
	}
	if got := diffs(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("verify found\n%v\nwant\n%v", got, want)
	}
	if _, err := verify.Repair(ctx, parts, res, nil); err != nil {
		t.Fatal(err)
	}
	if got := diffs(verifyOK(t, parts)); len(got) != 0 {
		t.Errorf("after the repair verify found %v", got)
	}
	compare(t, src, wh, versions)
}

package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/warehouse"
)

// setup returns a source seeded at scale 1 (a copy of one template, seeded
// with seed 31), a migrated warehouse, and the parts of a pass over them
// with a lake in memory.
func setup(t *testing.T) (src, wh *pgxpool.Pool, parts pipeline.Parts) {
	t.Helper()
	return setupWith(t, fixture.Source(1, 31).NewDB(t))
}

// setupWith is setup with the source at srcURL.
func setupWith(t *testing.T, srcURL string) (src, wh *pgxpool.Pool, parts pipeline.Parts) {
	t.Helper()
	src, wh = pgtest.Pool(t, srcURL), pgtest.Pool(t, fixture.Warehouse().NewDB(t))
	lk := laketest.Mem(t)
	return src, wh, pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}
}

// firstPass captures the source's fact versions (see capture) and runs a
// pass; it returns the versions captured, for compare.
func firstPass(t *testing.T, src *pgxpool.Pool, parts pipeline.Parts) map[string]map[string]bool {
	t.Helper()
	versions := map[string]map[string]bool{}
	capture(t, src, versions)
	pass(t, parts)
	return versions
}

func pass(t *testing.T, parts pipeline.Parts) pipeline.Result {
	t.Helper()
	res, err := pipeline.Run(context.Background(), parts, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A writer whose session is in another time zone stamps its rows with its
// local time, hours behind the server's: its versions arrive all the same.
func TestWriterInAnotherTimeZone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	versions := firstPass(t, src, parts)

	conn, err := src.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, sql := range []string{
		`SET TimeZone = 'America/New_York'`,
		`INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
		 agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, created_at, last_updated)
		 VALUES (1, 1, 1, 10, 2.50, 1, '2026-12-10', '2026-12-11', 1, now(), now())`,
		`UPDATE sales_order SET units_sold = units_sold + 1, last_updated = now() WHERE sales_order_id = 3`,
		`UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = (SELECT min(payment_id) FROM payment WHERE NOT paid)`,
		`RESET TimeZone`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	capture(t, src, versions)
	res := pass(t, parts)
	compare(t, src, wh, versions)
	if late := lateVersions(res); late < 3 {
		t.Errorf("%d versions reported as stamped before the previous extraction, want the writer's 3", late)
	}
}

func lateVersions(res pipeline.Result) int64 {
	var n int64
	if res.Extract != nil {
		for _, tr := range res.Extract.Tables {
			n += tr.Late
		}
	}
	return n
}

// Writers whose stamps run seconds behind the server's clock, while the
// pipeline runs every second: every version arrives, once.
func TestWritersWithSlowClocks(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs writers and passes for seconds")
	}
	ctx := context.Background()
	src, wh, parts := setup(t)
	versions := firstPass(t, src, parts)

	// Each writer updates seeded payments of its own (each once) and
	// inserts orders (never updated), stamping them 3 s in the past: so the
	// versions that ever existed are those seeded and those there at the end.
	var payments []int64
	rows, err := src.Query(ctx, `SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		payments = append(payments, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	const writers = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 32))
			for i := w; ; i += writers {
				select {
				case <-stop:
					return
				default:
				}
				sql := `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
					agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
					VALUES (1, 1, 1, 3, 9.99, 1, '2026-12-10', '2026-12-11', 1, clock_timestamp() - interval '3 seconds')`
				var args []any
				if i < len(payments) && r.IntN(2) == 0 {
					sql = `UPDATE payment SET paid = true, last_updated = clock_timestamp() - interval '3 seconds' WHERE payment_id = $1`
					args = []any{payments[i]}
				}
				if _, err := src.Exec(ctx, sql, args...); err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
			}
		})
	}
	passes := 0
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); passes++ {
		pass(t, parts)
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	capture(t, src, versions)
	res := pass(t, parts)
	compare(t, src, wh, versions)
	t.Logf("%d passes while writing; the last took %s", passes+1, res.Elapsed)
}

// A row rewritten without a later last_updated is a new version all the
// same: one whose writer did not move the stamp, and one that set an
// earlier one. The facts keep both versions, in the order of their
// batches, and the business figures take the latest.
func TestRewriteWithoutALaterStamp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	versions := firstPass(t, src, parts)
	for _, sql := range []string{
		`UPDATE sales_order SET units_sold = units_sold + 1000 WHERE sales_order_id = 5`,
		`UPDATE sales_order SET unit_price = 1.00, last_updated = last_updated - interval '1 day' WHERE sales_order_id = 6`,
	} {
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	capture(t, src, versions)
	pass(t, parts)
	compare(t, src, wh, versions)

	// The newest version of each is the one in the newest batch.
	for id, want := range map[int]string{5: "units_sold", 6: "unit_price"} {
		var n int
		var current string
		if err := wh.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) OVER (), %s::text FROM fact_sales_order
			WHERE sales_order_id = $1 ORDER BY batch_id DESC LIMIT 1`, want), id).Scan(&n, &current); err != nil {
			t.Fatal(err)
		}
		var source string
		if err := src.QueryRow(ctx, fmt.Sprintf(`SELECT %s::text FROM sales_order WHERE sales_order_id = $1`, want), id).Scan(&source); err != nil {
			t.Fatal(err)
		}
		if n != 2 || current != source {
			t.Errorf("order %d: %d fact versions, the newest batch's %s is %s; want 2 and %s", id, n, want, current, source)
		}
	}
}

package simulate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/simulate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// seeded returns a source of the test's own, seeded at scale 1 with seed 3,
// its pool connected: TestRunStopsCleanlyWhenCancelled gives simulate 300 ms
// to start, which the first connection would eat into on a busy machine.
func seeded(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t, fixture.Source(1, 3).NewDB(t))
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pool
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestRunMakesTheChangesItReports(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	ctx := context.Background()
	var dbStart time.Time
	if err := pool.QueryRow(ctx, "SELECT localtimestamp").Scan(&dbStart); err != nil {
		t.Fatal(err)
	}
	sales0, purchases0 := count(t, pool, "SELECT count(*) FROM sales_order"), count(t, pool, "SELECT count(*) FROM purchase_order")

	stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 1500, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Total() != 1500 {
		t.Fatalf("made %d events, want 1500", stats.Total())
	}
	for _, ev := range []simulate.Event{simulate.NewSale, simulate.NewPurchase, simulate.PaymentPaid, simulate.OrderUpdated} {
		if stats.Events[ev] == 0 {
			t.Errorf("no %s in 1500 events", ev)
		}
	}
	if got := count(t, pool, "SELECT count(*) FROM sales_order") - sales0; got != stats.Events[simulate.NewSale] {
		t.Errorf("%d new sales orders, stats say %d", got, stats.Events[simulate.NewSale])
	}
	if got := count(t, pool, "SELECT count(*) FROM purchase_order") - purchases0; got != stats.Events[simulate.NewPurchase] {
		t.Errorf("%d new purchase orders, stats say %d", got, stats.Events[simulate.NewPurchase])
	}
	// Every order still has exactly one transaction and one payment of the right amount.
	for what, sql := range map[string]string{
		"orders without a transaction":   `SELECT (SELECT count(*) FROM sales_order) + (SELECT count(*) FROM purchase_order) - (SELECT count(*) FROM transaction)`,
		"transactions without a payment": `SELECT count(*) FROM transaction t LEFT JOIN payment p USING (transaction_id) WHERE p.payment_id IS NULL`,
		"new payments of the wrong amount": `SELECT count(*) FROM payment p JOIN transaction t USING (transaction_id)
			LEFT JOIN sales_order s ON s.sales_order_id = t.sales_order_id
			LEFT JOIN purchase_order o ON o.purchase_order_id = t.purchase_order_id
			WHERE NOT p.paid AND p.payment_amount <> coalesce(s.units_sold * s.unit_price, o.item_quantity * o.item_unit_price)`,
	} {
		if n := count(t, pool, sql); n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	// Changes are stamped with the database's now(), as the application does.
	since := dbStart.Add(-time.Millisecond)
	var created, flipped int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE created_at >= $1), count(*) FILTER (WHERE paid AND last_updated >= $1)
		FROM payment`, since).Scan(&created, &flipped); err != nil {
		t.Fatal(err)
	}
	if want := stats.Events[simulate.NewSale] + stats.Events[simulate.NewPurchase]; created != want {
		t.Errorf("%d payments created since the run began, want %d (one per new order)", created, want)
	}
	if flipped != stats.Events[simulate.PaymentPaid] {
		t.Errorf("%d payments flipped to paid since the run began, stats say %d", flipped, stats.Events[simulate.PaymentPaid])
	}
}

func TestRunRareEventsTouchReferenceTables(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	stats, err := simulate.Run(context.Background(), pool, simulate.Options{Rate: 100_000, Events: 4000, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for ev, sql := range map[simulate.Event]string{
		simulate.DepartmentRename: "SELECT count(*) FROM department WHERE last_updated > created_at",
		simulate.CounterpartyMove: "SELECT count(*) FROM counterparty WHERE last_updated > created_at",
		simulate.StaffMoved:       "SELECT count(*) FROM staff WHERE last_updated > created_at",
		simulate.DesignAdded:      "SELECT count(*) FROM design WHERE created_at > '2025-01-01'",
	} {
		if stats.Events[ev] == 0 {
			t.Errorf("no %s in 4000 events", ev)
			continue
		}
		if count(t, pool, sql) == 0 {
			t.Errorf("%s reported but no row shows it", ev)
		}
	}
}

func TestRunStopsCleanlyWhenCancelled(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: 200, Seed: 1})
	if err != nil {
		t.Fatalf("cancelled run returned %v, want a clean stop", err)
	}
	if stats.Total() == 0 {
		t.Error("no events before the stop")
	}
}

func TestRunNeedsASeededSource(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = simulate.Run(context.Background(), pool, simulate.Options{Rate: 10, Events: 1})
	if err == nil || !strings.Contains(err.Error(), "has the source been seeded?") {
		t.Fatalf("err = %v", err)
	}
}

// With Options.Deletions, a share of the events delete payments, and
// sales orders with their transactions and payments, respecting the
// source's foreign keys; without it, nothing is deleted.
func TestRunDeletes(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	ctx := context.Background()
	sales0, payments0 := count(t, pool, "SELECT count(*) FROM sales_order"), count(t, pool, "SELECT count(*) FROM payment")
	stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 600, Seed: 5, Deletions: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	deleted, cancelled := stats.Events[simulate.PaymentDeleted], stats.Events[simulate.SaleCancelled]
	if deleted < 30 || cancelled < 30 || deleted+cancelled > 180 {
		t.Errorf("%d payments deleted and %d sales cancelled in 600 events, want about 60 each", deleted, cancelled)
	}
	if got, want := count(t, pool, "SELECT count(*) FROM sales_order"), sales0+stats.Events[simulate.NewSale]-cancelled; got != want {
		t.Errorf("%d sales orders, want %d", got, want)
	}
	newOrders := stats.Events[simulate.NewSale] + stats.Events[simulate.NewPurchase]
	// A cancelled sale's payment may have been deleted before it.
	if got := count(t, pool, "SELECT count(*) FROM payment"); got > payments0+newOrders-deleted || got < payments0+newOrders-deleted-cancelled {
		t.Errorf("%d payments, want from %d to %d", got, payments0+newOrders-deleted-cancelled, payments0+newOrders-deleted)
	}
	if n := count(t, pool, `SELECT (SELECT count(*) FROM sales_order) + (SELECT count(*) FROM purchase_order) - (SELECT count(*) FROM transaction)`); n != 0 {
		t.Errorf("%d orders without a transaction, or transactions without an order", n)
	}

	// Off by default: the same seed deletes nothing.
	stats, err = simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 600, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if n := stats.Events[simulate.PaymentDeleted] + stats.Events[simulate.SaleCancelled]; n != 0 {
		t.Errorf("%d deletions with Deletions unset", n)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []simulate.Options{{Rate: 0}, {Rate: -1}, {Rate: 1, Duration: -time.Second}, {Rate: 1, Deletions: -0.1}, {Rate: 1, Deletions: 1.5}} {
		if _, err := simulate.Run(context.Background(), nil, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/verify"
	"github.com/terrifictotes/tote/warehouse"
)

// The truth the summaries must equal, as of batch $1 (the largest bigint:
// now): each source row once, at its newest version among the batches up
// to $1, the warehouse's order (a later batch, as the ledger numbers them,
// wins, then a later stamp), unless that version is its deletion,
// straight from the facts. $2 and $3 are a period for the designs.
const truthSQL = `
WITH f_sales AS (
  SELECT f.*, coalesce(l.seq, 0) AS seq FROM fact_sales_order f LEFT JOIN tote.load_ledger l USING (batch_id)
), sales AS (
  SELECT * FROM (SELECT DISTINCT ON (sales_order_id) is_deleted, created_date AS day, currency_id,
         tote_dash.lead_bucket(agreed_delivery_date - created_date) AS lead, agreed_delivery_location_id AS loc,
         sales_staff_id AS staff, counterparty_id AS cp, design_id, units_sold::bigint AS units,
         (units_sold * unit_price * 100)::bigint AS value
  FROM f_sales WHERE seq <= $1::bigint
  ORDER BY sales_order_id, seq DESC, last_updated_date DESC, last_updated_time DESC, source_xmin DESC) v WHERE NOT is_deleted
), f_purchases AS (
  SELECT f.*, coalesce(l.seq, 0) AS seq FROM fact_purchase_order f LEFT JOIN tote.load_ledger l USING (batch_id)
), purchases AS (
  SELECT * FROM (SELECT DISTINCT ON (purchase_order_id) is_deleted, created_date AS day, currency_id, agreed_delivery_location_id AS loc,
         staff_id AS staff, counterparty_id AS cp, item_quantity::bigint AS quantity,
         (item_quantity * item_unit_price * 100)::bigint AS value
  FROM f_purchases WHERE seq <= $1::bigint
  ORDER BY purchase_order_id, seq DESC, last_updated_date DESC, last_updated_time DESC, source_xmin DESC) v WHERE NOT is_deleted
), f_payments AS (
  SELECT f.*, coalesce(l.seq, 0) AS seq FROM fact_payment f LEFT JOIN tote.load_ledger l USING (batch_id)
), payments AS (
  SELECT * FROM (SELECT DISTINCT ON (payment_id) is_deleted, payment_date AS day, currency_id, payment_type_id, paid, counterparty_id AS cp,
         (payment_amount * 100)::bigint AS amount
  FROM f_payments WHERE seq <= $1::bigint
  ORDER BY payment_id, seq DESC, last_updated_date DESC, last_updated_time DESC, source_xmin DESC) v WHERE NOT is_deleted
)
SELECT 'sales ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ': ' || o || ' ' || u || ' ' || v FROM (
  SELECT 'all' AS dim, day, 0 AS key, currency_id, count(*) AS o, sum(units) AS u, sum(value) AS v FROM sales GROUP BY 2, 3, 4
  UNION ALL SELECT 'lead', day, lead::integer, currency_id, count(*), sum(units), sum(value) FROM sales GROUP BY 2, 3, 4
  UNION ALL SELECT 'location', day, loc, currency_id, count(*), sum(units), sum(value) FROM sales GROUP BY 2, 3, 4
  UNION ALL SELECT 'staff', day, staff, currency_id, count(*), sum(units), sum(value) FROM sales GROUP BY 2, 3, 4
  UNION ALL SELECT 'counterparty', day, cp, currency_id, count(*), sum(units), sum(value) FROM sales GROUP BY 2, 3, 4) s
UNION ALL
SELECT 'design ' || currency_id || ' ' || design_id || ': ' || count(*) || ' ' || sum(units) || ' ' || sum(value)
FROM sales WHERE day BETWEEN $2::date AND $3::date GROUP BY currency_id, design_id
UNION ALL
SELECT 'purchases ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ': ' || o || ' ' || q || ' ' || v FROM (
  SELECT 'all' AS dim, day, 0 AS key, currency_id, count(*) AS o, sum(quantity) AS q, sum(value) AS v FROM purchases GROUP BY 2, 3, 4
  UNION ALL SELECT 'location', day, loc, currency_id, count(*), sum(quantity), sum(value) FROM purchases GROUP BY 2, 3, 4
  UNION ALL SELECT 'staff', day, staff, currency_id, count(*), sum(quantity), sum(value) FROM purchases GROUP BY 2, 3, 4
  UNION ALL SELECT 'counterparty', day, cp, currency_id, count(*), sum(quantity), sum(value) FROM purchases GROUP BY 2, 3, 4) p
UNION ALL
SELECT 'payments ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ' ' || payment_type_id || ' ' || paid || ': ' || n || ' ' || a FROM (
  SELECT 'all' AS dim, day, 0 AS key, currency_id, payment_type_id, paid, count(*) AS n, sum(amount) AS a FROM payments GROUP BY 2, 3, 4, 5, 6
  UNION ALL SELECT 'counterparty', day, cp, currency_id, payment_type_id, paid, count(*), sum(amount) FROM payments GROUP BY 2, 3, 4, 5, 6) y
ORDER BY 1`

// summarySQL is the same figures from the summaries, as of batch $1 read
// in mode $4 ('current', 'upto' or 'after', as the dashboard reads them).
const summarySQL = `
WITH sales AS (
  SELECT dim, day, key, currency_id, orders, units, value_cents FROM tote_dash.sales_by WHERE $4::text IN ('current', 'after')
  UNION ALL SELECT dim, day, key, currency_id, orders, units, value_cents FROM tote_dash.sales_by_log WHERE $4::text = 'upto' AND seq <= $1::bigint
  UNION ALL SELECT dim, day, key, currency_id, -orders, -units, -value_cents FROM tote_dash.sales_by_log WHERE $4::text = 'after' AND seq > $1::bigint
), designs AS (
  SELECT currency_id, key AS design_id, sign * (coalesce(orders[b], 0) - coalesce(orders[a], 0)) AS o,
         sign * (coalesce(units[b], 0) - coalesce(units[a], 0)) AS u,
         sign * (coalesce(value_cents[b], 0) - coalesce(value_cents[a], 0)) AS v
  FROM (SELECT d.*, 1 AS sign FROM tote_dash.sales_design d WHERE $4::text IN ('current', 'after')
        UNION ALL SELECT currency_id, key, days, orders, units, value_cents, 1
        FROM tote_dash.sales_design_log WHERE $4::text = 'upto' AND seq <= $1::bigint
        UNION ALL SELECT currency_id, key, days, orders, units, value_cents, -1
        FROM tote_dash.sales_design_log WHERE $4::text = 'after' AND seq > $1::bigint) d,
       LATERAL (SELECT width_bucket($3::date, d.days) AS b, width_bucket($2::date - 1, d.days) AS a) w
), purchases AS (
  SELECT dim, day, key, currency_id, orders, quantity, value_cents FROM tote_dash.purchases_by WHERE $4::text IN ('current', 'after')
  UNION ALL SELECT dim, day, key, currency_id, orders, quantity, value_cents FROM tote_dash.purchases_by_log WHERE $4::text = 'upto' AND seq <= $1::bigint
  UNION ALL SELECT dim, day, key, currency_id, -orders, -quantity, -value_cents FROM tote_dash.purchases_by_log WHERE $4::text = 'after' AND seq > $1::bigint
), payments AS (
  SELECT dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents FROM tote_dash.payments_by WHERE $4::text IN ('current', 'after')
  UNION ALL SELECT dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents FROM tote_dash.payments_by_log WHERE $4::text = 'upto' AND seq <= $1::bigint
  UNION ALL SELECT dim, day, key, currency_id, payment_type_id, paid, -payments, -amount_cents FROM tote_dash.payments_by_log WHERE $4::text = 'after' AND seq > $1::bigint
)
SELECT 'sales ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ': ' || sum(orders) || ' ' || sum(units) || ' ' || sum(value_cents)
FROM sales GROUP BY dim, day, key, currency_id HAVING sum(orders) <> 0 OR sum(units) <> 0 OR sum(value_cents) <> 0
UNION ALL
SELECT 'design ' || currency_id || ' ' || design_id || ': ' || sum(o) || ' ' || sum(u) || ' ' || sum(v)
FROM designs GROUP BY currency_id, design_id HAVING sum(o) <> 0 OR sum(u) <> 0 OR sum(v) <> 0
UNION ALL
SELECT 'purchases ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ': ' || sum(orders) || ' ' || sum(quantity) || ' ' || sum(value_cents)
FROM purchases GROUP BY dim, day, key, currency_id HAVING sum(orders) <> 0 OR sum(quantity) <> 0 OR sum(value_cents) <> 0
UNION ALL
SELECT 'payments ' || dim || ' ' || day || ' ' || key || ' ' || currency_id || ' ' || payment_type_id || ' ' || paid || ': ' || sum(payments) || ' ' || sum(amount_cents)
FROM payments GROUP BY dim, day, key, currency_id, payment_type_id, paid HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0
ORDER BY 1`

// nextSQL lists each version that has a next one with the next one's
// batch: from the facts ($1 true) or from the summaries' record of it.
const nextSQL = `
SELECT f || ' ' || rec || ' ' || nxt FROM (
  SELECT 's' AS f, rec, lead(seq) OVER (PARTITION BY id ORDER BY seq, rec) AS nxt FROM tote_dash.sales_versions WHERE $1
  UNION ALL SELECT 'p', rec, lead(seq) OVER (PARTITION BY id ORDER BY seq, rec) FROM tote_dash.purchases_versions WHERE $1
  UNION ALL SELECT 'y', rec, lead(seq) OVER (PARTITION BY id ORDER BY seq, rec) FROM tote_dash.payments_versions WHERE $1
  UNION ALL SELECT 's', rec, next_seq FROM tote_dash.sales_next WHERE NOT $1
  UNION ALL SELECT 'p', rec, next_seq FROM tote_dash.purchases_next WHERE NOT $1
  UNION ALL SELECT 'y', rec, next_seq FROM tote_dash.payments_next WHERE NOT $1
) x WHERE nxt IS NOT NULL ORDER BY 1`

// checkSummaries checks that every summary of warehouse wh equals the same
// figures computed from its facts: now, and as of each batch of its
// ledger, both ways of reading the log.
func checkSummaries(t *testing.T, wh *pgxpool.Pool, what string) {
	t.Helper()
	from, to := "2023-02-11", "2024-06-30"
	if got, want := pgtest.Texts(t, wh, nextSQL, false), pgtest.Texts(t, wh, nextSQL, true); !slices.Equal(got, want) {
		t.Errorf("%s: tote_dash.*_next differs from the facts' version chains:\n got %v\nwant %v", what, got, want)
	}
	const now = int64(1<<63 - 1)
	if got, want := pgtest.Texts(t, wh, summarySQL, now, from, to, modeCurrent), pgtest.Texts(t, wh, truthSQL, now, from, to); !slices.Equal(got, want) {
		t.Errorf("%s: the current summaries differ from the facts:\n%s", what, diff(got, want))
	}
	seqs := pgtest.Texts(t, wh, `SELECT seq::text FROM tote.load_ledger UNION SELECT '0' ORDER BY 1`)
	for _, seq := range seqs {
		var n int64
		fmt.Sscan(seq, &n)
		want := pgtest.Texts(t, wh, truthSQL, n, from, to)
		for _, mode := range []string{modeUpTo, modeAfter} {
			if got := pgtest.Texts(t, wh, summarySQL, n, from, to, mode); !slices.Equal(got, want) {
				t.Errorf("%s: as of batch %d, read %s, the summaries differ from the facts:\n%s", what, n, mode, diff(got, want))
			}
		}
	}
}

// diff shows the first rows only one of two sorted lists has.
func diff(got, want []string) string {
	var out []string
	i, j := 0, 0
	for (i < len(got) || j < len(want)) && len(out) < 10 {
		switch {
		case j >= len(want) || i < len(got) && got[i] < want[j]:
			out = append(out, "+ "+got[i])
			i++
		case i >= len(got) || want[j] < got[i]:
			out = append(out, "- "+want[j])
			j++
		default:
			i++
			j++
		}
	}
	return fmt.Sprintf("%d rows, want %d; + only in the summaries, - only in the facts:\n%s", len(got), len(want), joinLines(out))
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += l + "\n"
	}
	return out
}

// After more changes and loads, deletions among them, every summary equals
// the same figures from the facts, now and as of each batch; a warehouse
// rebuilt from the lake has the same summaries, row for row; and the
// dashboard's view as of the first load is what the facts of that batch
// say.
func TestSummariesStayCurrent(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	checkSummaries(t, b.wh, "after two runs")
	if _, err := b.src.Exec(ctx, `UPDATE sales_order SET units_sold = units_sold + 1, last_updated = now() WHERE sales_order_id % 97 = 0`); err != nil {
		t.Fatal(err)
	}
	b.run(t)
	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 300, Seed: 4, Deletions: 0.1}); err != nil {
		t.Fatal(err)
	}
	b.run(t)
	var deleted int
	if err := b.wh.QueryRow(ctx, `SELECT count(*) FROM fact_sales_order WHERE is_deleted`).Scan(&deleted); err != nil || deleted == 0 {
		t.Fatalf("%d sales deleted (%v): the test proves nothing of deletions", deleted, err)
	}
	checkSummaries(t, b.wh, "after four runs")

	rebuiltURL := pgtest.NewDB(t)
	rebuilt := pgtest.Pool(t, rebuiltURL)
	if _, err := warehouse.New(rebuilt, nil).Rebuild(ctx, b.lake, false); err != nil {
		t.Fatal(err)
	}
	refresh(t, rebuilt)
	for _, table := range summaryTables {
		q := summaryRowsSQL(table)
		loaded, again := pgtest.Texts(t, b.wh, q), pgtest.Texts(t, rebuilt, q)
		if !slices.Equal(loaded, again) {
			t.Errorf("tote.%s: the rebuilt warehouse has %d rows, the loaded one %d, or they differ", table, len(again), len(loaded))
		}
	}

	// As of the first load, the view shows the first load's versions.
	var firstLoad time.Time
	if err := b.wh.QueryRow(ctx, `SELECT loaded_at FROM tote.load_ledger ORDER BY seq LIMIT 1`).Scan(&firstLoad); err != nil {
		t.Fatal(err)
	}
	st, _ := ParseState(map[string][]string{"preset": {"all"}, "asof": {firstLoad.Add(time.Millisecond).Format(time.RFC3339Nano)}})
	got, err := b.srv.business(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want := pgtest.Texts(t, b.wh, `
		WITH cur AS (SELECT DISTINCT ON (sales_order_id) f.* FROM fact_sales_order f
		             WHERE f.batch_id <= (SELECT batch_id FROM tote.load_ledger ORDER BY seq LIMIT 1)
		             ORDER BY sales_order_id, batch_id DESC, sales_record_id DESC)
		SELECT c.currency_code || ' ' || count(*) || ' ' || sum(units_sold) || ' ' || sum(units_sold * unit_price)::text
		       || ' ' || round(sum(units_sold * unit_price) / count(*), 2)::text
		FROM cur JOIN dim_currency c USING (currency_id) WHERE created_date BETWEEN $1::date AND $2::date GROUP BY c.currency_code ORDER BY 1`,
		got.Period.From, got.Period.To)
	if g := kpiRows(got); !slices.Equal(g, want) || got.Period.AsOf != 1 {
		t.Errorf("as of the first load (batch %d):\n got %q\nwant %q", got.Period.AsOf, g, want)
	}
}

// summaryTables are the summaries' tables, but the watermark (which says
// when they were refreshed).
var summaryTables = []string{"state", "sales_next", "sales_by", "sales_by_log", "sales_design",
	"sales_design_log", "purchases_next", "purchases_by", "purchases_by_log", "payments_next",
	"payments_by", "payments_by_log", "sales_retired", "purchases_retired", "payments_retired", "truncated"}

// summaryRowsSQL lists the rows of summary table t in order. A ranked
// table's arrays are listed as their figures, one entry a day: a day may
// have several entries with the same running totals until a change makes
// them one, depending on how the rows were built.
func summaryRowsSQL(t string) string {
	if strings.HasPrefix(t, "sales_design") {
		seq := ""
		if strings.HasSuffix(t, "_log") {
			seq = "seq, "
		}
		return `SELECT DISTINCT ON (` + seq + `currency_id, key, e.day) concat_ws(' ', ` + seq + `currency_id, key, e.day, e.o, e.u, e.v)
FROM tote_dash.` + t + ` d, unnest(d.days, d.orders, d.units, d.value_cents) WITH ORDINALITY e(day, o, u, v, i)
ORDER BY ` + seq + `currency_id, key, e.day, e.i DESC`
	}
	return `SELECT t::text FROM tote_dash.` + t + ` t ORDER BY 1`
}

// A batch loaded after a later one (committed late) lands in its place:
// the figures now and as of every batch are the facts', and the same as a
// warehouse that loaded the batches in order.
func TestLateBatch(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	// Batches 3 and 4 both change the same rows, so that the late batch
	// goes between versions already loaded.
	for seed := range uint64(2) {
		if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 300, Seed: 10 + seed}); err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{
			`UPDATE sales_order SET units_sold = units_sold + 1, staff_id = 1 + sales_order_id % 3, last_updated = now() WHERE sales_order_id % 31 = 0`,
			`UPDATE purchase_order SET item_quantity = item_quantity + 2, last_updated = now() WHERE purchase_order_id % 17 = 0`,
			`UPDATE payment SET payment_amount = payment_amount + 1, last_updated = now() WHERE payment_id % 23 = 0`,
		} {
			if _, err := b.src.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		b.run(t)
	}
	// The lake's directory, as the bundle made it, with one batch's
	// manifest hidden (a name the lake skips): a copy of it without that
	// batch yet.
	src := b.lake.URL()
	dir, ok := strings.CutPrefix(src, "file://")
	if !ok {
		t.Fatalf("the bundle's lake is %s, not a directory", src)
	}
	copyDir := t.TempDir()
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(copyDir, "manifests", "processed", "000000000003.json")
	hidden := filepath.Join(copyDir, "manifests", "processed", ".000000000003.json")
	if err := os.Rename(manifest, hidden); err != nil {
		t.Fatal(err)
	}
	lk, err := lake.Open(ctx, "file://"+copyDir, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	late := pgtest.Pool(t, pgtest.NewDB(t))
	w := warehouse.New(late, nil)
	if _, err := w.Load(ctx, lk); err != nil {
		t.Fatal(err)
	}
	refresh(t, late)
	checkSummaries(t, late, "without batch 3")
	if err := os.Rename(hidden, manifest); err != nil {
		t.Fatal(err)
	}
	res, err := w.Load(ctx, lk)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) != 1 || res.Batches[0].Seq != 3 {
		t.Fatalf("the second load loaded %+v, want batch 3 alone", res.Batches)
	}
	refresh(t, late)
	checkSummaries(t, late, "with batch 3 loaded late")
	// (The designs' arrays hold the same figures, checked above, but may
	// hold them in more entries: a row is made compact when it changes.
	// The next versions are keyed by surrogate key, which the late batch's
	// rows have after batch 4's.)
	for _, table := range []string{"sales_by", "purchases_by", "payments_by"} {
		q := `SELECT t::text FROM tote_dash.` + table + ` t ORDER BY 1`
		if inOrder, lateOne := pgtest.Texts(t, b.wh, q), pgtest.Texts(t, late, q); !slices.Equal(inOrder, lateOne) {
			t.Errorf("tote.%s: loading batch 3 late gives %d rows, in order %d, or they differ", table, len(lateOne), len(inOrder))
		}
	}
}

// Facts changed without an insert (by hand, or by a corrective batch's
// updates) change the summaries with them.
func TestCorrections(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	for _, sql := range []string{
		`DELETE FROM fact_sales_order WHERE sales_order_id % 53 = 0`,
		`UPDATE fact_sales_order SET units_sold = units_sold + 3, agreed_delivery_location_id = 2 WHERE sales_order_id % 41 = 0`,
		`UPDATE fact_payment SET payment_amount = 0, paid = NOT paid WHERE payment_id % 37 = 0`,
		`DELETE FROM fact_payment WHERE payment_id % 43 = 0`,
		`UPDATE fact_purchase_order SET item_quantity = item_quantity * 2 WHERE purchase_order_id % 29 = 0`,
		`DELETE FROM fact_purchase_order WHERE purchase_order_id = (SELECT max(purchase_order_id) FROM fact_purchase_order)`,
	} {
		if _, err := b.wh.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		refresh(t, b.wh)
		checkSummaries(t, b.wh, sql)
	}
	// verify finds the changes; its repair sends the source's rows again
	// as a corrective batch, which updates and inserts facts.
	res, err := verify.Run(ctx, b.parts, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Repair(ctx, b.parts, res, nil); err != nil {
		t.Fatal(err)
	}
	refresh(t, b.wh)
	checkSummaries(t, b.wh, "after the repair")
	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 200, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	b.run(t)
	checkSummaries(t, b.wh, "after the next run")
	if _, err := b.wh.Exec(ctx, `TRUNCATE fact_payment`); err != nil {
		t.Fatal(err)
	}
	refresh(t, b.wh)
	checkSummaries(t, b.wh, "after TRUNCATE fact_payment")
}

// While the summaries catch up with a load, the figures are those of the
// batch they reflect, which the badge and the period say, and each
// drill-down counts what its figure counts (the facts are read as far as
// the summaries have them); once caught up, the new batch is in both.
func TestCatchingUp(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	_, before := businessAt(t, b, "preset=all")
	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 300, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.src.Exec(ctx, `UPDATE sales_order SET units_sold = units_sold + 1, last_updated = now() WHERE sales_order_id % 7 = 0`); err != nil {
		t.Fatal(err)
	}
	b.load(t)

	badge, err := b.srv.freshness(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !badge.Summaries.CatchingUp() || badge.Summaries.Seq != before.Period.Seq {
		t.Errorf("after a load, before a refresh: the badge says the figures reflect batch %d of %d, want %d of more",
			badge.Summaries.Seq, badge.Summaries.Newest, before.Period.Seq)
	}
	_, behind := businessAt(t, b, "preset=all")
	if !slices.Equal(kpiRows(behind), kpiRows(before)) || behind.Period.Seq != before.Period.Seq {
		t.Errorf("catching up, the KPIs are not those of batch %d:\n got %q (batch %d)\nwant %q",
			before.Period.Seq, kpiRows(behind), behind.Period.Seq, kpiRows(before))
	}
	testDrillCountsAgree(t, b)

	w := refresh(t, b.wh)
	_, after := businessAt(t, b, "preset=all")
	if w.CatchingUp() || after.Period.Seq != w.Seq || after.Period.Seq <= before.Period.Seq {
		t.Errorf("caught up: the figures reflect batch %d, the summaries %d of %d", after.Period.Seq, w.Seq, w.Newest)
	}
	if want := pgtest.Texts(t, b.wh, currentSales, after.Period.From, after.Period.To, nil, nil, nil); !slices.Equal(kpiRows(after), want) {
		t.Errorf("caught up, KPIs\n got %q\nwant %q", kpiRows(after), want)
	}
	testDrillCountsAgree(t, b)
}

// A load commits while a refresh that builds the summaries afresh (the
// first after a full run) holds its transaction open: nothing the refresh
// holds is a lock the load waits for (decision 0011). Whether the load
// waits is read from pg_blocking_pids while it runs, not from a clock.
func TestLoadNotBlockedByRefresh(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	// Forget the summaries' state, and the indexes the first refresh
	// makes (one left invalid, as a concurrent build cut short leaves
	// it): the next refresh is a first one.
	for _, q := range []string{`DELETE FROM tote_dash.state`, `DROP INDEX fact_sales_order_dash_day_idx, fact_sales_order_dash_design_idx`,
		`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'fact_payment_dash_day_idx'::regclass`} {
		if _, err := b.wh.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := b.wh.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	tx, err := beginRefresh(ctx, conn.Conn())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var want []string
	for _, f := range summarized {
		for _, ix := range f.indexes() {
			want = append(want, ix.Name)
		}
	}
	slices.Sort(want)
	if got := pgtest.Texts(t, b.wh, `SELECT indexrelid::regclass::text FROM pg_index WHERE indexrelid::regclass::text LIKE 'fact%dash%' AND indisvalid ORDER BY indexrelid::regclass::text COLLATE "C"`); !slices.Equal(got, want) {
		t.Errorf("the valid indexes on the facts after the refresh:\n got %q\nwant %q", got, want)
	}
	var rebuilt bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'tote_dash.sales_by'::regclass AND mode = 'RowExclusiveLock')`).Scan(&rebuilt); err != nil || !rebuilt {
		t.Fatalf("the refresh did not write the summaries (%v): the test proves nothing", err)
	}
	before := pgtest.Texts(t, b.wh, `SELECT count(*)::text FROM tote.load_ledger`)

	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 300, Seed: 6}); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(ctx, b.parts, pipeline.Options{})
		loaded <- err
	}()
	for done := false; !done; {
		select {
		case err := <-loaded:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
			blocked := pgtest.Texts(t, b.wh, `
				SELECT a.pid || ' waits for ' || l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype) || ': ' || a.query
				FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
				WHERE $1::integer = ANY(pg_blocking_pids(a.pid))`, pid)
			if len(blocked) > 0 {
				t.Fatalf("the load waits for the refresh:\n%s", strings.Join(blocked, "\n"))
			}
		}
	}
	if after := pgtest.Texts(t, b.wh, `SELECT count(*)::text FROM tote.load_ledger`); slices.Equal(after, before) {
		t.Fatalf("the load committed no batch (%v batches before and after)", before)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	refresh(t, b.wh)
	checkSummaries(t, b.wh, "after a load during the first refresh, and the next")
}

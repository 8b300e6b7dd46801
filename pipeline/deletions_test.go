package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// The tests of deletions, end to end: each deletes in the source, runs the
// pipeline, and reads what a user would: a fact's current view, its
// versions, and the dimensions' rows and flags.

// srcExec runs statements on the source.
func srcExec(t *testing.T, db *pgxpool.Pool, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := db.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// one returns the single integer sql selects.
func one(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// factVersion is one version of a fact row, as a user reads it.
type factVersion struct {
	Record  int64
	Stamp   time.Time // last_updated_date + last_updated_time
	Xmin    int64
	Batch   string
	Deleted bool
	Values  string // the model's columns but the stamp and where the version came from
}

// versions returns every version of fact's source id, in surrogate order.
func versions(t *testing.T, wh *pgxpool.Pool, fact string, id int64) []factVersion {
	t.Helper()
	table, err := star.Lookup(fact)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, c := range table.Columns {
		switch {
		case c.Name == star.LastUpdatedDate, c.Name == star.LastUpdatedTime, c.Conv == star.Xmin, c.Conv == star.Batch, c.Conv == star.Deleted:
		default:
			values = append(values, fmt.Sprintf("coalesce(%s::text, 'NULL')", pgx.Identifier{c.Name}.Sanitize()))
		}
	}
	rows, err := wh.Query(context.Background(), fmt.Sprintf(`SELECT %[1]s, last_updated_date + last_updated_time, source_xmin, batch_id, is_deleted,
		concat_ws('|', %[2]s) FROM %[3]s WHERE %[4]s = $1 ORDER BY %[1]s`, table.Surrogate, strings.Join(values, ", "), fact, table.ID()), id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (factVersion, error) {
		var v factVersion
		return v, r.Scan(&v.Record, &v.Stamp, &v.Xmin, &v.Batch, &v.Deleted, &v.Values)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seenAt is when the extraction of pass res saw the source: the stamp of
// the deletions it found.
func seenAt(t *testing.T, parts pipeline.Parts, res pipeline.Result) time.Time {
	t.Helper()
	m, err := parts.Lake.Batch(context.Background(), lake.Raw, strconv.FormatUint(res.Extract.Seq, 10))
	if err != nil {
		t.Fatal(err)
	}
	s, err := extract.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	return s.SourceTime
}

// processedBatch is the one processed batch pass res loaded.
func processedBatch(t *testing.T, res pipeline.Result) string {
	t.Helper()
	if res.Load == nil || len(res.Load.Batches) != 1 {
		t.Fatalf("the pass loaded %v, want one batch", res.Load)
	}
	return res.Load.Batches[0].Batch
}

// checkDeleted checks that fact's source id ends in a deletion version
// made by batch at seen: the values of the version before, source_xmin 0,
// the largest surrogate key of the table; and that the versions before it
// are still there.
func checkDeleted(t *testing.T, wh *pgxpool.Pool, fact string, id int64, before int, batch string, seen time.Time) {
	t.Helper()
	vs := versions(t, wh, fact, id)
	if len(vs) != before+1 {
		t.Fatalf("%s %d: %d versions, want the %d before and the deletion", fact, id, len(vs), before)
	}
	last, prev := vs[len(vs)-1], vs[len(vs)-2]
	if !last.Deleted || !last.Stamp.Equal(seen) || last.Xmin != 0 || last.Batch != batch || last.Values != prev.Values || prev.Deleted {
		t.Errorf("%s %d: the last versions are\n %+v\n %+v\nwant a deletion seen at %v by batch %s, with the values before", fact, id, prev, last, seen, batch)
	}
	table, _ := star.Lookup(fact)
	if top := one(t, wh, fmt.Sprintf(`SELECT max(%s) FROM %s`, table.Surrogate, fact)); last.Record != top && len(vs) > 0 {
		t.Logf("%s %d: deletion version %d, the table's largest %d (other deletions after it?)", fact, id, last.Record, top)
	}
}

// inCurrent reports whether fact's current view has source id.
func inCurrent(t *testing.T, wh *pgxpool.Pool, fact string, id int64) bool {
	t.Helper()
	table, _ := star.Lookup(fact)
	return one(t, wh, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, table.CurrentView(), table.ID()), id) == 1
}

// dimension returns dimension dim's row of id, as text, and its flag;
// "" if it has none.
func dimension(t *testing.T, wh *pgxpool.Pool, dim string, id int64) (string, bool) {
	t.Helper()
	table, _ := star.Lookup(dim)
	var row string
	var deleted bool
	err := wh.QueryRow(context.Background(), fmt.Sprintf(`SELECT d::text, d.is_deleted FROM %s d WHERE %s = $1`, dim, table.ID()), id).Scan(&row, &deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return row, deleted
}

// checkCurrent checks that the warehouse holds the source as it is now,
// as a user counts it (see startest): each fact's current view, each
// dimension's rows not flagged deleted, and flags only on rows whose
// entity the source no longer has.
func checkCurrent(t *testing.T, src, wh *pgxpool.Pool) {
	t.Helper()
	for _, table := range star.Tables {
		if table.Source == "" {
			continue
		}
		want := startest.Expected(t, src, table, "")
		switch {
		case table.Kind == star.Fact:
			sameRows(t, table.CurrentView(), startest.Current(t, wh, table), slices.Collect(maps.Values(want)))
		default:
			var live []string
			for _, r := range startest.Warehouse(t, wh, table) {
				if strings.HasSuffix(r, "|true") {
					if id, _, _ := strings.Cut(r, "|"); want[id] != "" {
						t.Errorf("%s %s is flagged deleted, and the source has it", table.Name, id)
					}
					continue
				}
				live = append(live, r)
			}
			sameRows(t, table.Name+" (not deleted)", live, slices.Collect(maps.Values(want)))
		}
	}
}

// verifyClean fails unless verify finds no difference.
func verifyClean(t *testing.T, parts pipeline.Parts) {
	t.Helper()
	if d := diffs(verifyOK(t, parts)); len(d) != 0 {
		t.Errorf("verify found %v", d)
	}
}

// A deleted payment: its fact gets one more version, the deletion, with
// the last values it had, seen when the extraction saw it gone; the
// current view leaves it out; what the payment referred to stays.
func TestDeletedPayment(t *testing.T) {
	t.Parallel()
	src, wh, parts := setup(t)
	pass(t, parts)
	srcExec(t, src, `UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = 5`)
	pass(t, parts)
	transaction := one(t, src, `SELECT transaction_id FROM payment WHERE payment_id = 5`)

	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 5`)
	res := pass(t, parts)
	checkDeleted(t, wh, "fact_payment", 5, 2, processedBatch(t, res), seenAt(t, parts, res))
	if inCurrent(t, wh, "fact_payment", 5) {
		t.Error("the current view still has payment 5")
	}
	if n, c := one(t, wh, `SELECT count(*) FROM fact_payment_current`), one(t, src, `SELECT count(*) FROM payment`); n != c {
		t.Errorf("fact_payment_current has %d payments, the source %d", n, c)
	}
	if row, deleted := dimension(t, wh, "dim_transaction", transaction); row == "" || deleted {
		t.Errorf("the payment's transaction %d: %q, deleted %v; want it kept as it is", transaction, row, deleted)
	}
	if res.Load.Deleted() != 1 || res.Extract.Deleted() != 1 {
		t.Errorf("the pass extracted %d deletions and loaded %d, want 1 each", res.Extract.Deleted(), res.Load.Deleted())
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)

	// Nothing more happens: the next pass adds nothing.
	before := versions(t, wh, "fact_payment", 5)
	pass(t, parts)
	if after := versions(t, wh, "fact_payment", 5); len(after) != len(before) {
		t.Errorf("a pass with nothing new made payment 5 %d versions, had %d", len(after), len(before))
	}
}

// A sales order cancelled as the application would: deleted with its
// transaction and that transaction's payment. Both facts get a deletion
// version; the transaction's dimension row stays, flagged, for the
// versions that refer to it.
func TestDeletedSalesOrderWithItsTransaction(t *testing.T) {
	t.Parallel()
	src, wh, parts := setup(t)
	pass(t, parts)
	var order, transaction, payment int64
	if err := src.QueryRow(context.Background(), `SELECT t.sales_order_id, t.transaction_id, p.payment_id
		FROM transaction t JOIN payment p USING (transaction_id) WHERE t.sales_order_id IS NOT NULL ORDER BY 1 LIMIT 1`).Scan(&order, &transaction, &payment); err != nil {
		t.Fatal(err)
	}
	rowBefore, _ := dimension(t, wh, "dim_transaction", transaction)
	srcExec(t, src,
		fmt.Sprintf(`DELETE FROM payment WHERE payment_id = %d`, payment),
		fmt.Sprintf(`DELETE FROM transaction WHERE transaction_id = %d`, transaction),
		fmt.Sprintf(`DELETE FROM sales_order WHERE sales_order_id = %d`, order))
	res := pass(t, parts)
	batch, seen := processedBatch(t, res), seenAt(t, parts, res)
	checkDeleted(t, wh, "fact_sales_order", order, 1, batch, seen)
	checkDeleted(t, wh, "fact_payment", payment, 1, batch, seen)
	if inCurrent(t, wh, "fact_sales_order", order) || inCurrent(t, wh, "fact_payment", payment) {
		t.Error("a current view still has the cancelled order or its payment")
	}
	row, deleted := dimension(t, wh, "dim_transaction", transaction)
	if !deleted || strings.TrimSuffix(row, ",t)") != strings.TrimSuffix(rowBefore, ",f)") {
		t.Errorf("dim_transaction %d: %s, deleted %v; want %s flagged", transaction, row, deleted, rowBefore)
	}
	if got := one(t, wh, `SELECT count(*) FROM dim_transaction WHERE is_deleted`); got != 1 {
		t.Errorf("%d transactions flagged deleted, want 1", got)
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
}

// A design that no order refers to, deleted: its dimension row stays,
// flagged, with the values it had.
func TestDeletedDesignNeverReferenced(t *testing.T) {
	t.Parallel()
	src, wh, parts := setup(t)
	pass(t, parts)
	design := one(t, src, `INSERT INTO design (design_name, file_location, file_name, last_updated)
		VALUES ('Unsold', '/designs', 'unsold.json', now()) RETURNING design_id`)
	pass(t, parts)
	before, _ := dimension(t, wh, "dim_design", design)
	srcExec(t, src, fmt.Sprintf(`DELETE FROM design WHERE design_id = %d`, design))
	res := pass(t, parts)
	row, deleted := dimension(t, wh, "dim_design", design)
	if !deleted || row != strings.Replace(before, ",f)", ",t)", 1) {
		t.Errorf("dim_design %d after its deletion: %s, deleted %v; want %s flagged", design, row, deleted, before)
	}
	if n := one(t, wh, `SELECT count(*) FROM dim_design WHERE is_deleted`); n != 1 {
		t.Errorf("%d designs flagged deleted, want 1", n)
	}
	if got := res.Load.Batches[0].Tables; len(got) != 1 || got[0].Table != "dim_design" || got[0].Deleted != 1 {
		t.Errorf("the load says %+v, want one dim_design row deleted", got)
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
}

// A row deleted, then inserted again with the same id: a fact gets a
// version after the deletion version, which the current view shows; a
// dimension's row is no longer flagged and has the new values.
func TestDeleteAndInsertAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)
	var transaction int64
	if err := src.QueryRow(ctx, `SELECT transaction_id FROM payment WHERE payment_id = 8`).Scan(&transaction); err != nil {
		t.Fatal(err)
	}
	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 8`, `DELETE FROM design WHERE design_id = 3`)
	pass(t, parts)
	srcExec(t, src,
		fmt.Sprintf(`INSERT INTO payment (payment_id, transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
			payment_date, company_ac_number, counterparty_ac_number, last_updated)
			VALUES (8, %d, 1, 123.45, 1, 1, false, '2026-12-24', 1, 2, now())`, transaction),
		`INSERT INTO design (design_id, design_name, file_location, file_name, last_updated) VALUES (3, 'Again', '/d', 'again.json', now())`)
	res := pass(t, parts)
	vs := versions(t, wh, "fact_payment", 8)
	if len(vs) != 3 || vs[0].Deleted || !vs[1].Deleted || vs[2].Deleted || vs[2].Batch != processedBatch(t, res) || !strings.Contains(vs[2].Values, "|123.45|") {
		t.Errorf("payment 8's versions: %+v; want the first, its deletion, and the new one after it", vs)
	}
	if !inCurrent(t, wh, "fact_payment", 8) {
		t.Error("the current view lacks payment 8, inserted again")
	}
	if row, deleted := dimension(t, wh, "dim_design", 3); deleted || !strings.Contains(row, "Again") {
		t.Errorf("design 3 inserted again: %s, deleted %v", row, deleted)
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
}

// A row inserted and deleted between two runs never appears.
func TestInsertedAndDeletedBetweenRuns(t *testing.T) {
	t.Parallel()
	src, wh, parts := setup(t)
	pass(t, parts)
	design := one(t, src, `INSERT INTO design (design_name, file_location, file_name, last_updated)
		VALUES ('Fleeting', '/d', 'fleeting.json', now()) RETURNING design_id`)
	order := one(t, src, `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
		agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
		VALUES (1, 1, 1, 5, 3.25, 1, '2026-12-01', '2026-12-02', 1, now()) RETURNING sales_order_id`)
	srcExec(t, src, fmt.Sprintf(`DELETE FROM design WHERE design_id = %d`, design), fmt.Sprintf(`DELETE FROM sales_order WHERE sales_order_id = %d`, order))
	res := pass(t, parts)
	if row, _ := dimension(t, wh, "dim_design", design); row != "" {
		t.Errorf("the design inserted and deleted between two runs is in the warehouse: %s", row)
	}
	if vs := versions(t, wh, "fact_sales_order", order); len(vs) != 0 {
		t.Errorf("the order inserted and deleted between two runs has versions: %+v", vs)
	}
	if res.Extract.Committed || res.Extract.Deleted() != 0 {
		t.Errorf("the extraction committed %v with %d deletions, want nothing", res.Extract.Committed, res.Extract.Deleted())
	}
	checkCurrent(t, src, wh)
}

// A TRUNCATE is held back: the run fails saying how to accept it, and the
// warehouse is as it was; accepted, every row of the table gets its
// deletion version and the current view is empty.
func TestTruncateHeldBackThenAccepted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)
	rows := one(t, wh, `SELECT count(*) FROM fact_payment`)
	srcExec(t, src, `TRUNCATE payment`)
	_, err := pipeline.Run(ctx, parts, pipeline.Options{})
	var held *extract.MassDeletionError
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "tote extract --accept-deletes payment") ||
		!strings.Contains(err.Error(), "the table is empty in the source") {
		t.Fatalf("a run after TRUNCATE payment: %v; want the deletions held back, and how to accept them", err)
	}
	if n := one(t, wh, `SELECT count(*) FROM fact_payment`); n != rows || one(t, wh, `SELECT count(*) FROM fact_payment_current`) != rows {
		t.Errorf("after the held-back run fact_payment has %d rows, had %d", n, rows)
	}

	res, err := pipeline.Run(ctx, parts, pipeline.Options{Extract: extract.Options{AcceptDeletes: []string{"payment"}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := one(t, wh, `SELECT count(*) FROM fact_payment_current`); n != 0 {
		t.Errorf("fact_payment_current has %d rows after the truncate was accepted, want none", n)
	}
	if n := one(t, wh, `SELECT count(*) FROM fact_payment WHERE is_deleted`); n != rows || res.Load.Deleted() != rows {
		t.Errorf("%d deletion versions (the load says %d), want one for each of the %d payments", n, res.Load.Deleted(), rows)
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
}

// A deletion under a writer whose transaction is open at the horizon: its
// deletion is not seen until it commits, the others' are.
func TestDeletionUnderConcurrentWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)
	conn, err := src.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM payment WHERE payment_id = 21`); err != nil {
		t.Fatal(err)
	}
	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 22`)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 100, Seed: 57}); err != nil {
		t.Fatal(err)
	}
	pass(t, parts)
	if !inCurrent(t, wh, "fact_payment", 21) || inCurrent(t, wh, "fact_payment", 22) {
		t.Errorf("with the writer open: payment 21 current %v, 22 current %v; want 21 only", inCurrent(t, wh, "fact_payment", 21), inCurrent(t, wh, "fact_payment", 22))
	}
	checkCurrent(t, src, wh) // the source as others see it
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := pass(t, parts)
	checkDeleted(t, wh, "fact_payment", 21, 1, processedBatch(t, res), seenAt(t, parts, res))
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
}

// dumpWarehouse renders every star table and current view of a warehouse,
// rows in key order, surrogate keys included.
func dumpWarehouse(t *testing.T, wh *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range star.Tables {
		names := []string{table.Name}
		order := strings.Join(table.Key, ", ")
		if table.Kind == star.Fact {
			names = append(names, table.CurrentView())
			order = table.Surrogate
		}
		for _, name := range names {
			out[name] = query(t, wh, fmt.Sprintf(`SELECT r::text FROM %s r ORDER BY %s`, name, order))
		}
	}
	return out
}

// sameWarehouse fails unless a and b hold the same rows.
func sameWarehouse(t *testing.T, what string, a, b *pgxpool.Pool) {
	t.Helper()
	da, db := dumpWarehouse(t, a), dumpWarehouse(t, b)
	for _, name := range slices.Sorted(maps.Keys(da)) {
		if !slices.Equal(da[name], db[name]) {
			x, y := da[name], db[name]
			i := 0
			for i < min(len(x), len(y)) && x[i] == y[i] {
				i++
			}
			first := func(r []string) string {
				if i < len(r) {
					return r[i]
				}
				return "(none)"
			}
			t.Errorf("%s: %s differs: %d rows against %d; first difference at row %d:\n %s\n %s", what, name, len(x), len(y), i+1, first(x), first(y))
		}
	}
}

// rebuild builds a new warehouse from the lake alone.
func rebuild(t *testing.T, parts pipeline.Parts) *pgxpool.Pool {
	t.Helper()
	db := pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := warehouse.New(db, nil).Rebuild(context.Background(), parts.Lake, false); err != nil {
		t.Fatal(err)
	}
	return db
}

// Deletions of every kind over many runs, on a simulated business that
// deletes: a warehouse rebuilt from the lake is the incrementally loaded
// one row for row, surrogate keys and deletion versions included, and
// verify finds nothing afterwards.
func TestRebuildWithDeletions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)
	for i := range 4 {
		if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 200, Seed: 580 + uint64(i), Deletions: 0.2}); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			srcExec(t, src, `DELETE FROM design WHERE design_id = 5`, `DELETE FROM payment WHERE payment_id = 40`)
		case 2:
			srcExec(t, src, `INSERT INTO design (design_id, design_name, file_location, file_name, last_updated) VALUES (5, 'Back', '/d', 'b.json', now())`)
		}
		pass(t, parts)
	}
	if n := one(t, wh, `SELECT count(*) FROM fact_sales_order WHERE is_deleted`) + one(t, wh, `SELECT count(*) FROM fact_payment WHERE is_deleted`); n < 10 {
		t.Fatalf("only %d deletion versions: the simulation deleted too little to prove anything", n)
	}
	checkCurrent(t, src, wh)
	verifyClean(t, parts)
	sameWarehouse(t, "rebuilt against incremental", rebuild(t, parts), wh)
}

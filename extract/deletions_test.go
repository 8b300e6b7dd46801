package extract_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
)

// execSQL runs SQL on the source.
func execSQL(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// insertSale inserts a sales order of units through q (a pool, or a
// transaction a test holds open) and returns its id and stamp.
func insertSale(t *testing.T, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, units int) (id int64, stamp time.Time) {
	t.Helper()
	if err := q.QueryRow(context.Background(), `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
		agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
		VALUES (1, 1, 1, $1, 3.25, 1, '2026-12-01', '2026-12-02', 1, now()) RETURNING sales_order_id, last_updated`, units).Scan(&id, &stamp); err != nil {
		t.Fatal(err)
	}
	return id, stamp
}

// backUp copies the source database at url, whose pool is given, and
// returns a pool to it again, and restore: it puts the copy back in
// place (the same server and database name), closing the pool given, and
// returns a pool to the restored database.
func backUp(t *testing.T, url string, pool *pgxpool.Pool) (*pgxpool.Pool, func(*pgxpool.Pool) *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	name, backup := cfg.Database, cfg.Database+"_backup"
	pool.Close()
	admin := pgtest.Pool(t, pgtest.AdminURL(t))
	execSQL(t, admin, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, backup, name))
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+backup) })
	restore := func(pool *pgxpool.Pool) *pgxpool.Pool {
		t.Helper()
		pool.Close()
		execSQL(t, admin, fmt.Sprintf(`DROP DATABASE %s WITH (FORCE)`, name))
		execSQL(t, admin, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, backup))
		return pgtest.Pool(t, url)
	}
	return pgtest.Pool(t, url), restore
}

// queryInt returns the one integer sql selects.
func queryInt(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// latest returns the lake's newest raw batch.
func latest(t *testing.T, lk *lake.Lake) lake.Manifest {
	t.Helper()
	m, err := lk.Latest(context.Background(), lake.Raw)
	if err != nil || m == nil {
		t.Fatalf("latest raw batch: %v, %v", m, err)
	}
	return *m
}

// wantTombstones checks the tombstones of the newest raw batch, ids by
// table, against want (and that each is stamped with the source clock of
// the batch's snapshot); what names the step in the error. It returns the
// batch.
func wantTombstones(t *testing.T, lk *lake.Lake, what string, want map[string][]int64) lake.Manifest {
	t.Helper()
	m := latest(t, lk)
	state, err := extract.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := tombstones(t, lk, m, state.SourceTime); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("%s: tombstones %s, want %s", what, brief(got), brief(want))
	}
	return m
}

// tombstones reads a batch's tombstones as ids by table, checking that
// each is stamped with the source clock of the batch's snapshot, seenAt
// (unless zero).
func tombstones(t *testing.T, lk *lake.Lake, m lake.Manifest, seenAt time.Time) map[string][]int64 {
	t.Helper()
	ts, err := extract.ReadTombstones(context.Background(), lk, m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int64{}
	for _, tb := range ts {
		out[tb.Table] = append(out[tb.Table], int64(tb.ID))
		if !seenAt.IsZero() && !tb.SeenAt.Equal(seenAt) {
			t.Errorf("tombstone %s %d seen at %v, want the snapshot's source time %v", tb.Table, tb.ID, tb.SeenAt, seenAt)
		}
	}
	return out
}

// files lists a batch's files as table: rows.
func files(m lake.Manifest) map[string]int64 {
	out := map[string]int64{}
	for _, f := range m.Files {
		out[f.Table] = f.Rows
	}
	return out
}

// sourceIDs returns the ids a source table holds now.
func sourceIDs(t *testing.T, pool *pgxpool.Pool, table string) *roaring.Bitmap {
	t.Helper()
	tb, _ := totesys.Lookup(table)
	rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT %s FROM %s", tb.Key(), pgx.Identifier{table}.Sanitize()))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	s := roaring.New()
	for _, id := range ids {
		s.Add(uint32(id))
	}
	return s
}

// liveMatchesSource checks that the lake's sets of live ids, as of its
// latest batch, are the source's ids.
func liveMatchesSource(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake) {
	t.Helper()
	state, err := extract.LoadState(latest(t, lk))
	if err != nil {
		t.Fatal(err)
	}
	live, err := extract.LiveIDs(context.Background(), lk, state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range totesys.Tables {
		got, ok := live[tb.Name]
		if !ok {
			t.Errorf("the lake holds no live ids of %s", tb.Name)
			continue
		}
		want := sourceIDs(t, pool, tb.Name)
		if !got.Equals(want) {
			t.Errorf("%s: the lake holds %d live ids, the source %d; lake only %v, source only %v", tb.Name,
				got.GetCardinality(), want.GetCardinality(), head(roaring.AndNot(got, want)), head(roaring.AndNot(want, got)))
		}
	}
}

// brief renders ids by table, the first few of each.
func brief(ids map[string][]int64) string {
	var b strings.Builder
	for _, table := range slices.Sorted(maps.Keys(ids)) {
		v := ids[table]
		fmt.Fprintf(&b, "%s: %d %v; ", table, len(v), v[:min(len(v), 10)])
	}
	return b.String()
}

func head(s *roaring.Bitmap) []int32 {
	var out []int32
	s.Iterate(func(m uint32) bool {
		out = append(out, int32(m))
		return len(out) < 10
	})
	return out
}

// Each kind of deletion reaches the raw zone as tombstones of exactly the
// rows deleted, in a batch of its own when nothing else changed, with the
// new sets of live ids of the tables that lost rows and no others.
func TestDeletionsReachTheRawZone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// before runs ahead of the first extraction; del deletes and
		// returns the ids it deleted, by table.
		before string
		del    func(t *testing.T, pool *pgxpool.Pool) map[string][]int64
	}{
		{name: "a deleted payment", del: func(t *testing.T, pool *pgxpool.Pool) map[string][]int64 {
			execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 5`)
			return map[string][]int64{"payment": {5}}
		}},
		{name: "a sales order deleted with its transaction and payment", del: func(t *testing.T, pool *pgxpool.Pool) map[string][]int64 {
			tx := queryInt(t, pool, `SELECT transaction_id FROM transaction WHERE sales_order_id = 7`)
			pay := queryInt(t, pool, `SELECT payment_id FROM payment WHERE transaction_id = $1`, tx)
			// payment.transaction_id references transaction: the payment first.
			err := pgx.BeginFunc(context.Background(), pool, func(q pgx.Tx) error {
				for _, sql := range []string{`DELETE FROM payment WHERE transaction_id = $1`, `DELETE FROM transaction WHERE transaction_id = $1`} {
					if _, err := q.Exec(context.Background(), sql, tx); err != nil {
						return err
					}
				}
				_, err := q.Exec(context.Background(), `DELETE FROM sales_order WHERE sales_order_id = 7`)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return map[string][]int64{"sales_order": {7}, "transaction": {tx}, "payment": {pay}}
		}},
		{name: "a design never referenced",
			before: `INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Unused', '/tmp', 'unused.json', now())`,
			del: func(t *testing.T, pool *pgxpool.Pool) map[string][]int64 {
				id := queryInt(t, pool, `DELETE FROM design WHERE design_name = 'Unused' RETURNING design_id`)
				if n := queryInt(t, pool, `SELECT count(*) FROM sales_order WHERE design_id = $1`, id); n != 0 {
					t.Fatalf("design %d is referenced by %d sales orders", id, n)
				}
				return map[string][]int64{"design": {id}}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := seeded(t, 1)
			lk := laketest.Mem(t)
			if c.before != "" {
				execSQL(t, pool, c.before)
			}
			run(t, pool, lk)
			want := c.del(t, pool)
			res := run(t, pool, lk)
			if !res.Committed || res.Rows() != 0 || res.Deleted() != int64(len(slices.Concat(slices.Collect(maps.Values(want))...))) {
				t.Fatalf("extraction after the deletion: committed %v, %d rows, %d deleted; want a batch of %v", res.Committed, res.Rows(), res.Deleted(), want)
			}
			m := latest(t, lk)
			state, _ := extract.LoadState(m)
			got := tombstones(t, lk, m, state.SourceTime)
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("tombstones %s, want %s", brief(got), brief(want))
			}
			// The batch holds the tombstones and the changed sets, no rows.
			wantFiles := map[string]int64{extract.DeletedTable: res.Deleted(), extract.IDsTable: int64(len(want))}
			if f := files(m); !maps.Equal(f, wantFiles) {
				t.Errorf("batch files %v, want %v", f, wantFiles)
			}
			for _, tb := range totesys.Tables {
				wantSeq := uint64(1)
				if _, ok := want[tb.Name]; ok {
					wantSeq = m.Seq
				}
				if got := state.Tables[tb.Name].IDs; got != wantSeq {
					t.Errorf("%s's live ids are in batch %d, want %d", tb.Name, got, wantSeq)
				}
			}
			for _, tr := range res.Tables {
				if n := int64(len(want[tr.Table])); tr.Deleted != n {
					t.Errorf("%s: result says %d deleted, want %d", tr.Table, tr.Deleted, n)
				}
			}
			liveMatchesSource(t, pool, lk)
			if res := run(t, pool, lk); res.Committed {
				t.Errorf("the deletion was found twice: %+v", res)
			}
		})
	}
}

// A row deleted, then inserted again with the same id: a tombstone, then
// a new version. A row inserted and deleted between two extractions
// leaves nothing at all.
func TestDeleteAndInsertAgain(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)

	execSQL(t, pool, `CREATE TABLE kept AS SELECT * FROM payment WHERE payment_id = 11`) // not a totesys table
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 11`)
	res := run(t, pool, lk)
	wantTombstones(t, lk, "after the delete", map[string][]int64{"payment": {11}})
	if res.Rows() != 0 {
		t.Fatalf("after the delete: %d rows, want none", res.Rows())
	}

	// The same id, inserted again.
	execSQL(t, pool, `UPDATE kept SET last_updated = now()`)
	execSQL(t, pool, `INSERT INTO payment SELECT * FROM kept`)
	res = run(t, pool, lk)
	m := latest(t, lk)
	got := batchVersions(t, lk, m)
	var ids []int64
	for v := range got {
		ids = append(ids, v.id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{11}) || res.Deleted() != 0 {
		t.Fatalf("after inserting the id again: versions of payments %v, %d deleted; want one version of 11 and no tombstone", ids, res.Deleted())
	}
	liveMatchesSource(t, pool, lk)

	// Inserted and deleted between two extractions: nothing.
	sale, _ := insertSale(t, pool, 5)
	execSQL(t, pool, `DELETE FROM sales_order WHERE sales_order_id = $1`, sale)
	before := latest(t, lk).Seq
	if res := run(t, pool, lk); res.Committed || res.Rows() != 0 || res.Deleted() != 0 {
		t.Errorf("a row inserted and deleted between two extractions left %+v", res)
	}
	if latest(t, lk).Seq != before {
		t.Error("a batch was committed for a row inserted and deleted between two extractions")
	}
	liveMatchesSource(t, pool, lk)
}

// A TRUNCATE is held back: nothing is committed and the error says how to
// accept it; accepted, every id is tombstoned, and the changes held back
// with it arrive in the same batch.
func TestTruncateHeldBackThenAccepted(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, 1)
	ctx := context.Background()
	lk, dir := laketest.File(t)
	run(t, pool, lk)
	payments := sourceIDs(t, pool, "payment")
	execSQL(t, pool, `TRUNCATE payment`)
	execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 1`)
	lakeFiles := func() []string {
		var out []string
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(path, filepath.Join(dir, "status")) {
				out = append(out, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	filesBefore := lakeFiles()

	for range 2 { // the same every time: nothing is applied
		_, err := extract.Run(ctx, pool, lk, extract.Options{})
		var held *extract.MassDeletionError
		if !errors.As(err, &held) {
			t.Fatalf("err = %v, want a MassDeletionError", err)
		}
		want := "extract raw batch 000000000002-"
		wantCause := ": held back the deletion of 16600 of the 16600 rows of payment (the table is empty in the source: a TRUNCATE, " +
			"a restore, the wrong database?): nothing was committed. If the deletions are meant, accept them: tote extract --accept-deletes payment"
		if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, wantCause) || strings.Contains(msg, "\n") {
			t.Errorf("message:\n%s\nwant\n%s…%s", msg, want, wantCause)
		}
		if held.Retryable() || len(held.Tables) != 1 || held.Tables[0] != (extract.HeldDeletion{Table: "payment", Deleted: 16600, Live: 16600}) {
			t.Errorf("held %+v, retryable %v", held.Tables, held.Retryable())
		}
		if got := lakeFiles(); !slices.Equal(got, filesBefore) {
			t.Errorf("the lake changed: %v, was %v", got, filesBefore)
		}
	}

	res, err := extract.Run(ctx, pool, lk, extract.Options{AcceptDeletes: []string{"payment"}})
	if err != nil {
		t.Fatal(err)
	}
	m := latest(t, lk)
	state, _ := extract.LoadState(m)
	got := tombstones(t, lk, m, state.SourceTime)
	if !slices.Equal(got["payment"], toInt64s(payments)) || len(got) != 1 {
		t.Errorf("accepted: %d payment tombstones of %d, tables %v", len(got["payment"]), payments.GetCardinality(), slices.Collect(maps.Keys(got)))
	}
	if f := files(m); f["currency"] != 1 || res.Deleted() != 16600 {
		t.Errorf("accepted batch: files %v, %d deleted; want the held currency change too", f, res.Deleted())
	}
	liveMatchesSource(t, pool, lk)
}

func toInt64s(s *roaring.Bitmap) []int64 {
	var out []int64
	s.Iterate(func(m uint32) bool {
		out = append(out, int64(int32(m)))
		return true
	})
	slices.Sort(out)
	return out
}

// More than the allowed share of a table is held back; a larger allowance
// lets it through; an unknown table to accept is refused.
func TestMassDeletionThreshold(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)
	ctx := context.Background()
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id % 10 < 6`) // 60%
	_, err := extract.Run(ctx, pool, lk, extract.Options{})
	var held *extract.MassDeletionError
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "held back the deletion of 9960 of the 16600 rows of payment (60%): nothing was committed") {
		t.Fatalf("err = %v", err)
	}
	if _, err := extract.Run(ctx, pool, lk, extract.Options{AcceptDeletes: []string{"paymnet"}}); err == nil || !strings.Contains(err.Error(), "paymnet") {
		t.Errorf("accepting an unknown table: %v", err)
	}
	res, err := extract.Run(ctx, pool, lk, extract.Options{MaxDeleteFraction: 0.7})
	if err != nil || res.Deleted() != 9960 {
		t.Fatalf("with 70%% allowed: %v, %d deleted", err, res.Deleted())
	}
	liveMatchesSource(t, pool, lk)
}

// A deletion under a concurrent writer at the horizon: a transaction that
// deletes and inserts stays open across an extraction. Its deletion is not
// taken as done, nor its insertion as there, until it commits; another
// deletion committed meanwhile is found at once.
func TestDeletionUnderConcurrentWriter(t *testing.T) {
	t.Parallel()
	pool, url, lk := extracted(t)
	ctx := context.Background()

	tx := begin(t, url)
	if _, err := tx.Exec(ctx, `DELETE FROM payment WHERE payment_id = 21`); err != nil {
		t.Fatal(err)
	}
	sale, _ := insertSale(t, tx, 5)
	// Committed by others while tx stays open: a deletion, and rows in the
	// same ranges as tx's.
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 22`)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 100, Seed: 7}); err != nil {
		t.Fatal(err)
	}

	res := run(t, pool, lk)
	m := wantTombstones(t, lk, "with the writer open", map[string][]int64{"payment": {22}})
	for v := range batchVersions(t, lk, m) {
		if v.table == "sales_order" && v.id == sale {
			t.Error("the open transaction's sale was extracted")
		}
	}
	if !res.Committed {
		t.Fatal("nothing extracted")
	}
	liveMatchesSource(t, pool, lk) // the source, as others see it: payment 21 is still there

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res = run(t, pool, lk)
	m = wantTombstones(t, lk, "after the writer committed", map[string][]int64{"payment": {21}})
	found := false
	for v := range batchVersions(t, lk, m) {
		found = found || v.table == "sales_order" && v.id == sale
	}
	if !found || res.Deleted() != 1 {
		t.Errorf("after the writer committed: its sale extracted %v, %d deleted", found, res.Deleted())
	}
	liveMatchesSource(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// A lake written before tote kept sets of live ids (its manifests' state
// names none, and no batch holds one) carries on: the first extraction
// after the upgrade builds the sets in its own snapshot, takes exactly the
// new versions, and derives no deletion; the next finds deletions.
func TestUpgradeBuildsTheSets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := seeded(t, 1)
	lk, dir := laketest.File(t)
	run(t, pool, lk)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 200, Seed: 31}); err != nil {
		t.Fatal(err)
	}
	run(t, pool, lk)

	// Make the two batches what the release before this one wrote: no
	// IDsTable file, no "ids" in the state.
	fixture.LakeBeforeDeletions(t, dir)
	if strings.Contains(string(must(os.ReadFile(filepath.Join(dir, "manifests", "raw", "000000000002.json")))), `"ids"`) {
		t.Fatal("the old manifest still names sets of ids")
	}

	// Changes, and a deletion the upgrade cannot tell, before it.
	before := sourceVersions(t, pool)
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 3`)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 200, Seed: 32}); err != nil {
		t.Fatal(err)
	}
	res := run(t, pool, lk)
	m := latest(t, lk)
	if res.Deleted() != 0 || files(m)[extract.IDsTable] != int64(len(totesys.Tables)) {
		t.Errorf("upgrade batch: %d deleted, files %v; want no deletion and every table's set", res.Deleted(), files(m))
	}
	want := map[version]bool{}
	for v := range sourceVersions(t, pool) {
		if !before[v] {
			want[v] = true
		}
	}
	got := batchVersions(t, lk, m)
	if len(got) != len(want) {
		t.Errorf("the upgrade batch holds %d versions, want the %d new ones", len(got), len(want))
	}
	for v := range want {
		if got[v] != 1 {
			t.Errorf("new version %+v extracted %d times", v, got[v])
		}
	}
	liveMatchesSource(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))

	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 4`)
	res = run(t, pool, lk)
	wantTombstones(t, lk, "after the upgrade", map[string][]int64{"payment": {4}})
	if res.Deleted() != 1 {
		t.Errorf("after the upgrade: %d deleted, want 1", res.Deleted())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A corrective batch tombstones the rows asked for that the source no
// longer holds and the lake does not hold live; a row still in the source,
// or deleted since the last extraction (the next one finds it), is not.
// Where extraction stands does not change.
func TestCorrectTombstones(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)
	ctx := context.Background()
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 31`)
	run(t, pool, lk)
	stateBefore, _ := extract.LoadState(latest(t, lk))
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 32`) // since the last extraction

	res, err := extract.Correct(ctx, pool, lk, extract.Corrections{
		Rows:    map[string][]int64{"sales_order": {1}},
		Deleted: map[string][]int64{"payment": {31, 32, 33, 31}, "design": {999_999}},
	}, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := latest(t, lk)
	if !m.Corrective || !res.Committed {
		t.Fatalf("corrective %v, committed %v", m.Corrective, res.Committed)
	}
	want := map[string][]int64{"payment": {31}, "design": {999_999}}
	if got := tombstones(t, lk, m, time.Time{}); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("corrective tombstones %s, want %s", brief(got), brief(want))
	}
	if f := files(m); !maps.Equal(f, map[string]int64{"sales_order": 1, extract.DeletedTable: 2}) {
		t.Errorf("corrective batch files %v", f)
	}
	stateAfter, _ := extract.LoadState(m)
	if stateAfter.Snapshot != stateBefore.Snapshot || stateAfter.Tables["payment"].IDs != stateBefore.Tables["payment"].IDs {
		t.Error("the corrective batch moved where extraction stands")
	}
	// The deletion since the last extraction is the next one's.
	run(t, pool, lk)
	m = wantTombstones(t, lk, "next extraction", map[string][]int64{"payment": {32}})
	liveMatchesSource(t, pool, lk)
}

// Accepting a moved source rebuilds the sets of live ids from it, without
// tombstones: what the new source lacks is for tote verify to find; the
// deletions after the move are found as usual.
func TestMoveSourceRebuildsTheSets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := seeded(t, 1)
	moved, _ := seeded(t, 1) // the same rows, in another database
	lk := laketest.Mem(t)
	run(t, a, lk)
	execSQL(t, moved, `DELETE FROM payment WHERE payment_id = 5`)
	res, err := extract.MoveSource(ctx, moved, lk, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := latest(t, lk)
	if f := files(m); res.Deleted() != 0 || res.Rows() != 0 || !maps.Equal(f, map[string]int64{extract.IDsTable: int64(len(totesys.Tables))}) {
		t.Errorf("move: %d rows, %d deleted, files %v; want only every table's live ids", res.Rows(), res.Deleted(), f)
	}
	liveMatchesSource(t, moved, lk)
	execSQL(t, moved, `DELETE FROM payment WHERE payment_id = 6`)
	run(t, moved, lk)
	wantTombstones(t, lk, "after the move", map[string][]int64{"payment": {6}})
}

// A source restored in place from a copy older than the lake: rows the
// lake took for deleted are back, with the versions they had, so no
// transaction since the last extraction wrote them. The extraction counts
// them (one far from every id the lake holds live), puts them back in the
// sets and says so; a full extraction reads them again.
func TestRestoredSourceAndFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	pool := pgtest.Pool(t, url)
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, pool, `INSERT INTO design (design_id, design_name, file_location, file_name, last_updated)
		VALUES (5000000, 'Far', '/tmp', 'far.json', now())`)
	// The backup, taken before the lake's first extraction.
	pool, restore := backUp(t, url, pool)
	lk := laketest.Mem(t)
	run(t, pool, lk)
	execSQL(t, pool, `DELETE FROM design WHERE design_id = 5000000`)
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 9`)
	if res := run(t, pool, lk); res.Deleted() != 2 {
		t.Fatalf("%d deleted, want design 5000000 and payment 9", res.Deleted())
	}

	// Restored in place: the same server and database name.
	pool = restore(pool)
	res := run(t, pool, lk)
	// Each row back is counted as reappeared; or, if a transaction open
	// elsewhere on the server held the last horizon below the one that
	// wrote it, read as a version at or above the horizon.
	back := map[string]int64{}
	for _, tr := range res.Tables {
		back[tr.Table] += tr.Reappeared
	}
	for v := range batchVersions(t, lk, latest(t, lk)) {
		back[v.table]++
	}
	if back["design"] != 1 || back["payment"] != 1 || res.Deleted() != 0 {
		t.Errorf("after the restore: %d rows, %d deleted, back %v; want design and payment 1 each", res.Rows(), res.Deleted(), back)
	}
	liveMatchesSource(t, pool, lk)

	res, err := extract.Run(ctx, pool, lk, extract.Options{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	m := latest(t, lk)
	found := 0
	for v := range batchVersions(t, lk, m) {
		if v.table == "design" && v.id == 5000000 || v.table == "payment" && v.id == 9 {
			found++
		}
	}
	if !m.Full || found != 2 || res.Deleted() != 0 || int64(len(sourceVersions(t, pool))) != res.Rows() {
		t.Errorf("full batch: marked %v, %d of the 2 rows back, %d deleted, %d rows", m.Full, found, res.Deleted(), res.Rows())
	}
}

// Many new versions (every payment updated) are read in a second pass
// over the table; a deletion among them is found all the same.
func TestBulkUpdateWithADeletion(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)
	execSQL(t, pool, `UPDATE payment SET paid = true, last_updated = now()`)
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 16000`)
	res := run(t, pool, lk)
	wantTombstones(t, lk, "the big batch", map[string][]int64{"payment": {16000}})
	if res.Rows() != 16599 {
		t.Errorf("%d rows; want the 16599 others' new versions", res.Rows())
	}
	liveMatchesSource(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// A table large enough to be counted in parts (ranges of its pages, see
// countFresh): the new versions and deletions of random changes all over
// it are taken exactly.
func TestLargeTableCountedInParts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("seeds a larger source")
	}
	ctx := context.Background()
	pool, _ := seeded(t, 8)
	if pages := queryInt(t, pool, `SELECT relpages FROM pg_class WHERE relname = 'payment'`); pages < 3*512 {
		t.Fatalf("payment has %d pages: too few to be counted in parts, the test would prove nothing", pages)
	}
	lk := laketest.Mem(t)
	run(t, pool, lk)
	before := map[string]*roaring.Bitmap{}
	for _, tb := range totesys.Tables {
		before[tb.Name] = sourceIDs(t, pool, tb.Name)
	}
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 400, Seed: 12, Deletions: 0.25}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, pool, `UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id % 997 = 0`)
	res := run(t, pool, lk)
	m := latest(t, lk)
	state, _ := extract.LoadState(m)
	got := tombstones(t, lk, m, state.SourceTime)
	for _, tb := range totesys.Tables {
		want := toInt64s(roaring.AndNot(before[tb.Name], sourceIDs(t, pool, tb.Name)))
		if !slices.Equal(got[tb.Name], want) {
			t.Errorf("%s: tombstones %s, want %d %v", tb.Name, brief(map[string][]int64{tb.Name: got[tb.Name]}), len(want), want[:min(len(want), 10)])
		}
	}
	if res.Deleted() == 0 {
		t.Error("no deletion: the test proved nothing")
	}
	liveMatchesSource(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// One row deleted is named by the sums of the ids; two deleted after a
// restore brought one back leave the source one row short too, but the
// sums point at a row the source holds, and the ranges name the two.
func TestOneRowShort(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	pool := pgtest.Pool(t, url)
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 13}); err != nil {
		t.Fatal(err)
	}
	pool, restore := backUp(t, url, pool)
	lk := laketest.Mem(t)
	run(t, pool, lk)
	execSQL(t, pool, `UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id % 50 = 0`)
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id = 9`)
	run(t, pool, lk)
	wantTombstones(t, lk, "one row deleted", map[string][]int64{"payment": {9}})
	liveMatchesSource(t, pool, lk)

	// Restored in place, then two rows deleted: 10 + 11 - 9 = 12, which
	// the source holds.
	pool = restore(pool)
	execSQL(t, pool, `DELETE FROM payment WHERE payment_id IN (10, 11)`)
	run(t, pool, lk)
	wantTombstones(t, lk, "after the restore", map[string][]int64{"payment": {10, 11}})
	liveMatchesSource(t, pool, lk)
}

// A move is refused when the new source does not hold the rows the lake
// has (another database: other values, or no rows), naming rows that
// differ, and nothing is committed; Force accepts it. A moved copy with a
// few rows changed since is accepted.
func TestMoveSourceChecksASample(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := seeded(t, 1)
	lk := laketest.Mem(t)
	run(t, a, lk)
	other := pgtest.Pool(t, fixture.Source(1, 12).NewDB(t)) // seeded with another seed
	empty := pgtest.Pool(t, pgtest.NewDB(t))
	if err := totesys.CreateTables(ctx, empty); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		source *pgxpool.Pool
		want   string
	}{
		{"another database", other, "differ as of the same or an older last_updated (address "},
		{"empty tables", empty, " match the lake's latest version, "},
	} {
		_, err := extract.MoveSource(ctx, c.source, lk, extract.Options{})
		var mm *extract.MoveMismatchError
		if !errors.As(err, &mm) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "is it the right database? If it is, accept it with --force") {
			t.Errorf("%s: %v; want a MoveMismatchError saying %q", c.name, err, c.want)
		} else if mm.Matched*2 >= mm.Sampled && len(mm.Differ) == 0 {
			t.Errorf("%s: %+v", c.name, mm)
		}
		if m := latest(t, lk); m.Seq != 1 {
			t.Errorf("%s: a refused move committed batch %d", c.name, m.Seq)
		}
	}
	moved, _ := seeded(t, 1)
	execSQL(t, moved, `UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id IN (1, 2, 3)`)
	if _, err := extract.MoveSource(ctx, moved, lk, extract.Options{}); err != nil {
		t.Fatalf("a moved copy with three rows changed since: %v", err)
	}
	lk2 := laketest.Mem(t)
	run(t, a, lk2)
	if _, err := extract.MoveSource(ctx, other, lk2, extract.Options{Force: true}); err != nil {
		t.Errorf("Force: %v", err)
	}
}

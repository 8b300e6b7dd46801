package extract_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
)

// privateCluster starts a private server with opts and a seeded totesys
// database on it, and returns the server and a pool on the database.
func privateCluster(t *testing.T, opts pgcluster.Options) (*pgcluster.Cluster, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	c := pgtest.Cluster(t, opts)
	url, err := postgres.CreateDatabase(ctx, c.URL(), "totesys")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t, url)
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return c, pool
}

// withStandby is a private seeded primary (see privateCluster) and a hot
// standby of it that has caught up.
func withStandby(t *testing.T) (*pgcluster.Cluster, *pgxpool.Pool, *pgxpool.Pool) {
	t.Helper()
	primaryCluster, primary := privateCluster(t, pgcluster.Options{})
	standbyCluster, err := primaryCluster.StartStandby(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standbyCluster.Stop() })
	standby := pgtest.Pool(t, standbyCluster.DatabaseURL("totesys"))
	caughtUp(t, primary, standby)
	return primaryCluster, primary, standby
}

// caughtUp waits until the standby has replayed everything the primary
// has written so far. The private servers commit asynchronously, so a
// synchronous commit first flushes (and so sends) all the WAL before it.
func caughtUp(t *testing.T, primary, standby *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var lsn string
	tx, err := primary.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A commit waits for its WAL to be flushed only if it wrote some.
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on;
		CREATE TABLE IF NOT EXISTS tote_test_flush (at timestamptz); INSERT INTO tote_test_flush VALUES (now())`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var done bool
		if err := standby.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			t.Logf("%s caught up to %s", time.Now().Format("15:04:05.000"), lsn)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby has not replayed the primary's WAL up to %s", lsn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// extractFrom runs an extraction and checks which kind of server it read.
func extractFrom(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake, role string) extract.Result {
	t.Helper()
	res := run(t, pool, lk)
	t.Logf("%s extract: %s rows=%d committed=%v behind=%v source=%+v", time.Now().Format("15:04:05.000"), role, res.Rows(), res.Committed, res.Behind, res.Source)
	if res.Source.Role != role {
		t.Fatalf("extraction read a %s, want a %s", res.Source.Role, role)
	}
	return res
}

// Extraction reads a hot standby: a transaction on the primary open across
// an extraction arrives once it commits and is replayed; a standby whose
// replay is paused is reported; one behind the last extraction's source is
// not read; nothing is lost or doubled.
func TestHotStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, primary, standby := withStandby(t)
	lk := laketest.Mem(t)
	extractFrom(t, standby, lk, extract.Standby)

	// A transaction on the primary stays open across an extraction from
	// the standby, while later ones commit and are extracted.
	long, err := primary.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	lateSale, _ := insertSale(t, long, 7)
	if _, err := simulate.Run(ctx, primary, simulate.Options{Rate: 100_000, Events: 200, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, primary, standby)
	res := extractFrom(t, standby, lk, extract.Standby)
	if !res.Committed {
		t.Fatal("the changes committed on the primary were not extracted from the standby")
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, primary, standby)
	extractFrom(t, standby, lk, extract.Standby)
	m, _ := lk.Latest(ctx, lake.Raw)
	found := false
	for v := range batchVersions(t, lk, *m) {
		found = found || (v.table == "sales_order" && v.id == lateSale)
	}
	if !found {
		t.Fatal("the transaction open across the extraction was not in the next batch")
	}
	exactlyOnce(t, primary, lk, allVersions(t, lk))

	// Replay paused: reported, and read as of what it has replayed.
	if _, err := standby.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	if _, err := simulate.Run(ctx, primary, simulate.Options{Rate: 100_000, Events: 50, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	res = extractFrom(t, standby, lk, extract.Standby)
	if !res.Source.ReplayPaused {
		t.Errorf("a paused standby was not reported: %+v", res.Source)
	}
	// The primary has moved on: read it, and the paused standby is then
	// behind the last extraction. Nothing is read from it.
	extractFrom(t, primary, lk, extract.Primary)
	batches, _ := lk.Batches(ctx, lake.Raw)
	res = extractFrom(t, standby, lk, extract.Standby)
	if !res.Behind || res.Committed {
		t.Errorf("a standby behind the last extraction was read: %+v", res)
	}
	if after, _ := lk.Batches(ctx, lake.Raw); len(after) != len(batches) {
		t.Errorf("%d batches after reading a standby that is behind, want %d", len(after), len(batches))
	}
	if _, err := standby.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	if _, err := simulate.Run(ctx, primary, simulate.Options{Rate: 100_000, Events: 50, Seed: 10}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, primary, standby)
	extractFrom(t, standby, lk, extract.Standby)
	exactlyOnce(t, primary, lk, allVersions(t, lk))
}

// Transaction ids wrap around at 2^32: rows written on both sides of the
// wrap, and a transaction open across it, are each extracted once.
func TestTransactionIDWraparound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const next = 1<<32 - 3000
	_, pool := privateCluster(t, pgcluster.Options{NextXID: next})
	lk := laketest.Mem(t)
	run(t, pool, lk)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 300, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	run(t, pool, lk)

	// A transaction begun before the wrap stays open across it.
	long, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	if _, err := long.Exec(ctx, `UPDATE payment SET paid = true, last_updated = now()
		WHERE payment_id = (SELECT min(payment_id) FROM payment WHERE NOT paid)`); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3000 {
		if _, err := conn.Exec(ctx, `SELECT txid_current()`, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	conn.Release()
	var now uint64
	if err := pool.QueryRow(ctx, `SELECT txid_current()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if now < 1<<32 {
		t.Fatalf("transaction ids have not wrapped: %d", now)
	}
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 300, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	run(t, pool, lk)
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	run(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))

	// The lake's transaction ids are on both sides of the wrap.
	var before, after bool
	batches, _ := lk.Batches(ctx, lake.Raw)
	for _, m := range batches {
		for _, f := range m.Files {
			if totesys.ExtractionFile(f.Table) {
				continue
			}
			rows, _ := laketest.ReadFile(t, lk, m, f)
			for _, r := range rows {
				xid := r[totesys.XidColumn].Int64()
				before = before || (xid > 0 && xid < 1<<32)
				after = after || xid >= 1<<32
			}
		}
	}
	if !before || !after {
		t.Errorf("versions before the wrap: %v, after: %v; want both", before, after)
	}
}

// A lake whose last manifest was written by the last_updated design
// (format 1) is carried on from once by its rule, then by transaction ids,
// and nothing is lost or doubled.
func TestCarriesOnFromTheLastUpdatedFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := seeded(t, 1)
	lk, dir := laketest.File(t)
	run(t, pool, lk)

	// Rewrite batch 1's state as the old design would have written it: a
	// time horizon a second before the snapshot's clock, and the versions
	// stamped at or after it.
	m, _ := lk.Latest(ctx, lake.Raw)
	state, err := extract.LoadState(*m)
	if err != nil {
		t.Fatal(err)
	}
	horizon := state.SourceTime.Add(-time.Second)
	old := map[string]any{"snapshot": state.Snapshot, "source_time": state.SourceTime, "horizon": horizon,
		"horizon_from": "activity"}
	tables := map[string]any{}
	for v := range batchVersions(t, lk, *m) {
		ts, _ := tables[v.table].(map[string]any)
		if ts == nil {
			ts = map[string]any{"taken": [][2]int64{}}
			tables[v.table] = ts
		}
		if v.lu >= horizon.UnixMicro() {
			ts["taken"] = append(ts["taken"].([][2]int64), [2]int64{v.id, v.lu})
		}
	}
	old["tables"] = tables
	laketest.EditManifest(t, filepath.Join(dir, "manifests", "raw", "000000000001.json"), func(manifest map[string]any) {
		manifest["state"] = old
	})

	for i := range 2 {
		if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 200, Seed: uint64(20 + i)}); err != nil {
			t.Fatal(err)
		}
		run(t, pool, lk)
		m, _ := lk.Latest(ctx, lake.Raw)
		if s, _ := extract.LoadState(*m); s.Format != 2 {
			t.Errorf("batch %d's state is format %d, want 2", m.Seq, s.Format)
		}
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// A failover to a standby that never received the last transactions the
// lake took: the new primary lacks rows the lake holds live, and still has
// a row whose deletion the lake took. An incremental extraction does not
// read it (its WAL and transaction ids are behind the lake's); a full one
// re-baselines: every row of the new primary in one batch marked full,
// tombstones for the rows the lake holds and it lacks, the sets rebuilt;
// and extraction carries on from there.
func TestFullAfterAFailoverThatLostTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primaryCluster, primary, standby := withStandby(t)
	lk := laketest.Mem(t)
	extractFrom(t, primary, lk, extract.Primary)

	// The standby stops receiving WAL; the primary goes on, and the lake
	// takes what it does.
	if _, err := standby.Exec(ctx, `ALTER SYSTEM SET primary_conninfo = ''`); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var streaming bool
		if err := standby.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_wal_receiver)`).Scan(&streaming); err != nil {
			t.Fatal(err)
		}
		if !streaming {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby's WAL receiver did not stop")
		}
	}
	var sale, txn, pay int64
	err := pgx.BeginFunc(ctx, primary, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
			agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
			VALUES (1, 1, 1, 5, 3.25, 1, '2026-12-01', '2026-12-02', 1, now()) RETURNING sales_order_id`).Scan(&sale); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO transaction (transaction_type, sales_order_id, last_updated)
			VALUES ('SALE', $1, now()) RETURNING transaction_id`, sale).Scan(&txn); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id,
			payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number, last_updated)
			VALUES ($1, 1, 16.25, 1, 1, false, '2026-12-02', 12345678, 87654321, now()) RETURNING payment_id`, txn).Scan(&pay); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM payment WHERE payment_id = 9`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res := extractFrom(t, primary, lk, extract.Primary); res.Rows() != 3 || res.Deleted() != 1 {
		t.Fatalf("the primary's last batch: %d rows, %d deleted; want the new sale's 3 rows and payment 9", res.Rows(), res.Deleted())
	}

	// The primary is lost; the standby is promoted without them.
	if err := primaryCluster.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Exec(ctx, `SELECT pg_promote()`); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, standby, `SELECT count(*) FROM payment WHERE payment_id IN (9, $1)`, pay); n != 1 {
		t.Fatalf("the new primary holds %d of payments 9 and %d, want payment 9 only", n, pay)
	}
	batches, _ := lk.Batches(ctx, lake.Raw)
	if res, err := extract.Run(ctx, standby, lk, extract.Options{}); err == nil && !res.Behind {
		t.Fatalf("an incremental extraction read a source behind the lake: %+v", res)
	}
	if after, _ := lk.Batches(ctx, lake.Raw); len(after) != len(batches) {
		t.Fatal("an incremental extraction committed from a source behind the lake")
	}

	res, err := extract.Run(ctx, standby, lk, extract.Options{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	m := latest(t, lk)
	state, _ := extract.LoadState(m)
	if !m.Full || !res.Full {
		t.Error("the full extraction's batch is not marked full")
	}
	want := map[string][]int64{"sales_order": {sale}, "transaction": {txn}, "payment": {pay}}
	if got := tombstones(t, lk, m, state.SourceTime); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("tombstones %s, want %s", brief(got), brief(want))
	}
	got := batchVersions(t, lk, m)
	source := sourceVersions(t, standby)
	for v := range source {
		if got[v] != 1 {
			t.Errorf("the full batch holds %+v %d times", v, got[v])
		}
	}
	if len(got) != len(source) {
		t.Errorf("the full batch holds %d versions, the source %d", len(got), len(source))
	}
	liveMatchesSource(t, standby, lk)

	// Extraction carries on from the full batch: only what changes next.
	if _, err := standby.Exec(ctx, `DELETE FROM payment WHERE payment_id = 10`); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Exec(ctx, `UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 11`); err != nil {
		t.Fatal(err)
	}
	res = run(t, standby, lk)
	m = wantTombstones(t, lk, "after the full batch", map[string][]int64{"payment": {10}})
	if res.Rows() != 1 || m.Full {
		t.Errorf("after the full batch: %d rows (full %v), want the one update", res.Rows(), m.Full)
	}
	liveMatchesSource(t, standby, lk)
}

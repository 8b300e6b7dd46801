package pipeline_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/verify"
	"github.com/terrifictotes/tote/warehouse"
)

// lastBeforeDeletions is the newest warehouse migration of the release
// before deletions were carried: migrations are never edited once
// released, so the tree's files up to it are that release's schema.
const lastBeforeDeletions = 11

// oldWarehouse makes, in a new database, the warehouse the release before
// deletions would have made of what warehouse from holds: its schema
// (migrations 1 to 11), and the rows and ledger of from, less what that
// release did not have (no row was a deletion).
func oldWarehouse(t *testing.T, from *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	to := fixture.OldWarehouse(t, lastBeforeDeletions)
	tables := []string{"tote.load_ledger"}
	for _, tb := range star.Tables {
		tables = append(tables, tb.Name)
	}
	for _, table := range tables {
		fixture.CopyRows(t, from, to, table, "")
	}
	fixture.SetFactSequences(t, to)
	return to
}

// A warehouse and a lake the release before deletions wrote carry on in
// place: the migrations add is_deleted (false everywhere) and the current
// views, the next run reads only what is new (the extraction builds its
// sets of live ids in its own snapshot), nothing is lost or doubled. A
// deletion made before the upgrade the lake cannot tell: verify finds it,
// and --repair makes it a deletion version. Deletions after are carried as
// usual, and a rebuild from the lake is the upgraded warehouse.
func TestUpgradeInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := seed.Generate(ctx, src, seed.Options{Scale: 1, Seed: 61}); err != nil {
		t.Fatal(err)
	}
	lk, dir := laketest.File(t)
	made := pgtest.Pool(t, pgtest.NewDB(t))
	parts := pipeline.Parts{Source: src, Warehouse: warehouse.New(made, nil), Lake: lk}
	versions := firstPass(t, src, parts)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 200, Seed: 61}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	pass(t, parts)
	old := oldWarehouse(t, made)
	fixture.LakeBeforeDeletions(t, dir)
	parts.Warehouse = warehouse.New(old, nil)

	// Before the upgrade: a deletion the lake cannot tell, and changes.
	before := sourceVersions(t, src)
	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 3`)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 200, Seed: 62}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	res := pass(t, parts)
	if v := one(t, old, `SELECT max(version) FROM tote.schema_migrations`); v <= lastBeforeDeletions {
		t.Fatalf("the warehouse is at migration %d after the run", v)
	}
	for _, tb := range star.Tables {
		if tb.Source == "" {
			continue
		}
		if n := one(t, old, fmt.Sprintf(`SELECT count(*) FROM %s WHERE is_deleted`, tb.Name)); n != 0 {
			t.Errorf("%s has %d rows flagged deleted after the upgrade", tb.Name, n)
		}
	}
	if res.Extract.Deleted() != 0 || res.Extract.IDSetBytes == 0 {
		t.Errorf("the first extraction after the upgrade: %d deletions, %d bytes of live ids; want none and every table's set",
			res.Extract.Deleted(), res.Extract.IDSetBytes)
	}
	// Every version the source ever had, once: none lost, none doubled, and
	// the batches before the upgrade not read again.
	compare(t, src, old, versions)
	written := 0
	for v := range sourceVersions(t, src) {
		if !before[v] {
			written++
		}
	}
	if n := res.Extract.Rows(); n != int64(written) || n == 0 {
		t.Errorf("the first extraction after the upgrade read %d versions, want the %d written since the last", n, written)
	}

	vr := verifyOK(t, parts)
	if got := diffs(vr); fmt.Sprint(got) != fmt.Sprint(map[string]string{"fact_payment": "missing [] extra [3] different []"}) {
		t.Fatalf("verify after the upgrade found %v; want the payment deleted before it", got)
	}
	rr, err := verify.Repair(ctx, parts, vr, nil)
	if err != nil {
		t.Fatal(err)
	}
	vs := versions3(t, old)
	if len(vs) != 2 || !vs[1].Deleted || vs[1].Values != vs[0].Values || vs[1].Batch != processedBatch(t, rr) {
		t.Errorf("payment 3 after the repair: %+v; want its version and the deletion, made by the corrective batch", vs)
	}
	verifyClean(t, parts)

	// After the upgrade, deletions are found as they happen.
	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 4`)
	res = pass(t, parts)
	checkDeleted(t, old, "fact_payment", 4, 1, processedBatch(t, res), seenAt(t, parts, res))
	checkCurrent(t, src, old)
	verifyClean(t, parts)
	sameWarehouse(t, "rebuilt against upgraded", rebuild(t, parts), old)
}

// sourceVersions returns the row versions the source holds now, as
// "table id xmin".
func sourceVersions(t *testing.T, src *pgxpool.Pool) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, tb := range totesys.Tables {
		for _, v := range query(t, src, fmt.Sprintf(`SELECT '%s ' || %s || ' ' || xmin FROM %s`, tb.Name, tb.Key(), pgx.Identifier{tb.Name}.Sanitize())) {
			out[v] = true
		}
	}
	return out
}

// versions3 is payment 3's versions.
func versions3(t *testing.T, wh *pgxpool.Pool) []factVersion {
	t.Helper()
	return versions(t, wh, "fact_payment", 3)
}

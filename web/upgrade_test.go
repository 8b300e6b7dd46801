package web

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// lastOldMigration is the newest migration of the release before the
// dashboard left the load (e6f8a86): migrations are never edited once
// released, so the tree's files up to it are that release's schema.
const lastOldMigration = 10

// oldWarehouse makes, in a new database, the warehouse that release would
// have made of the batches warehouse from holds: its schema (migrations 1
// to 10, with the summaries of 0008), then each batch loaded as that
// release loaded it, in one transaction: its rows, its ledger row, and
// tote.after_load, which kept the summaries.
func oldWarehouse(t *testing.T, from *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	to := fixture.OldWarehouse(t, lastOldMigration)
	for _, d := range star.Tables {
		if d.Kind == star.Dimension {
			fixture.CopyRows(t, from, to, d.Name, "")
		}
	}
	batches := pgtest.Texts(t, from, `SELECT batch_id FROM tote.load_ledger ORDER BY seq`)
	for _, batch := range batches {
		tx, err := to.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range star.Tables {
			if f.Kind == star.Fact {
				fixture.CopyRows(t, from, tx, f.Name, "batch_id = $1", batch)
			}
		}
		fixture.CopyRows(t, from, tx, "tote.load_ledger", "batch_id = $1", batch)
		if _, err := tx.Exec(ctx, `SELECT tote.after_load($1)`, batch); err != nil {
			t.Fatalf("the old release's after_load of batch %s: %v", batch, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fixture.SetFactSequences(t, to)
	return to
}

// A warehouse the release before this one made and loaded, with its
// summaries kept by the load, migrates: the old summaries, functions,
// triggers and indexes go, the new summaries are built once, loading goes
// on, and the dashboard's figures are the facts'.
func TestUpgradeInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	old := oldWarehouse(t, b.wh)
	var summarized int
	if err := old.QueryRow(ctx, `SELECT count(*) FROM tote.dash_state`).Scan(&summarized); err != nil || summarized != 3 {
		t.Fatalf("the old release's summaries: %d facts summarized (%v), want 3", summarized, err)
	}

	// Changes in the source, then a run of this tote on the old warehouse:
	// it migrates it and loads the new batch.
	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 300, Seed: 21}); err != nil {
		t.Fatal(err)
	}
	parts := b.parts
	parts.Warehouse = warehouse.New(old, nil)
	res, err := pipeline.Run(ctx, parts, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Load.Batches); n != 1 {
		t.Fatalf("the run after the upgrade loaded %d batches, want 1", n)
	}
	for what, sql := range map[string]string{
		"old summaries and views": `SELECT string_agg(relname, ' ') FROM pg_class WHERE relnamespace = 'tote'::regnamespace AND relname LIKE 'dash%'`,
		"old functions":           `SELECT string_agg(proname, ' ') FROM pg_proc WHERE pronamespace = 'tote'::regnamespace AND (proname LIKE 'dash%' OR proname IN ('after_load', 'batch_seq', 'lead_bucket'))`,
		"old triggers":            `SELECT string_agg(tgname, ' ') FROM pg_trigger WHERE tgname LIKE 'dash%'`,
		"old indexes":             `SELECT string_agg(indexname, ' ') FROM pg_indexes WHERE indexname IN ('fact_sales_order_created_idx', 'fact_sales_order_design_idx', 'fact_payment_date_idx')`,
	} {
		var left *string
		if err := old.QueryRow(ctx, sql).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != nil {
			t.Errorf("%s are still there after the upgrade: %s", what, *left)
		}
	}

	// The new summaries: made once, then kept.
	w := refresh(t, old)
	if want := pgtest.Texts(t, old, `SELECT max(seq)::text FROM tote.load_ledger`)[0]; strconv.FormatInt(w.Seq, 10) != want || w.CatchingUp() {
		t.Errorf("the summaries reflect batch %d of %d, want %s", w.Seq, w.Newest, want)
	}
	refresh(t, old)
	if got := pgtest.Texts(t, old, `SELECT grp || ' ' || version || ' ' || name FROM tote.group_migrations WHERE grp = 'dashboard'`); !slices.Equal(got, []string{"dashboard 1 0001_summaries"}) {
		t.Errorf("the dashboard's migrations: %q, want it applied once", got)
	}
	checkSummaries(t, old, "after the upgrade")
	srv, err := New(Config{Pool: old, Warehouse: parts.Warehouse})
	if err != nil {
		t.Fatal(err)
	}
	got, err := srv.business(ctx, State{Preset: "all"})
	if err != nil {
		t.Fatal(err)
	}
	if want := pgtest.Texts(t, old, currentSales, got.Period.From, got.Period.To, nil, nil, nil); !slices.Equal(kpiRows(got), want) {
		t.Errorf("KPIs after the upgrade\n got %q\nwant %q", kpiRows(got), want)
	}
}

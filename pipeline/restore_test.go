package pipeline_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/warehouse"
)

// inserted returns how many rows pass res added to each star table.
func inserted(res pipeline.Result) map[string]int64 {
	out := map[string]int64{}
	for _, b := range res.Load.Batches {
		for _, tr := range b.Tables {
			out[tr.Table] += tr.Inserted
		}
	}
	return out
}

// A source restored in place from a physical copy older than a deletion:
// the deleted payment is back with the very version it had (same stamps,
// same transaction id), which no extraction reads as new. A full
// extraction reads it, and the warehouse adds it after its deletion
// version, its source_xmin raised by 2^32 to keep the version key unique;
// every other row of the full batch it holds already, and adds nothing.
func TestRestoredSourceAndFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	src := pgtest.Pool(t, url)
	if _, err := seed.Generate(ctx, src, seed.Options{Scale: 1, Seed: 63}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	name, backup := cfg.Database, cfg.Database+"_backup"
	src.Close()
	admin := pgtest.Pool(t, pgtest.AdminURL(t))
	srcExec(t, admin, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, backup, name))
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+backup) })

	src = pgtest.Pool(t, url)
	wh := pgtest.Pool(t, pgtest.NewDB(t))
	lk := laketest.Mem(t)
	parts := pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}
	pass(t, parts)
	srcExec(t, src, `DELETE FROM payment WHERE payment_id = 9`)
	pass(t, parts)
	first := versions(t, wh, "fact_payment", 9)

	src.Close()
	srcExec(t, admin, fmt.Sprintf(`DROP DATABASE %s WITH (FORCE)`, name), fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, backup))
	src = pgtest.Pool(t, url)
	parts.Source = src
	pass(t, parts)
	if inCurrent(t, wh, "fact_payment", 9) {
		t.Fatal("payment 9, back without a new version, is current before a full extraction")
	}
	res, err := pipeline.Run(ctx, parts, pipeline.Options{Extract: extract.Options{Full: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := inserted(res); got["fact_payment"] != 1 || got["fact_sales_order"] != 0 || got["fact_purchase_order"] != 0 {
		t.Errorf("the full batch added %v fact rows; want payment 9's and nothing else", got)
	}
	vs := versions(t, wh, "fact_payment", 9)
	if len(first) != 2 || len(vs) != 3 || vs[2].Deleted || vs[2].Values != vs[0].Values || vs[2].Xmin != vs[0].Xmin+1<<32 ||
		!vs[2].Stamp.Equal(vs[0].Stamp) {
		t.Errorf("payment 9's versions after the full extraction: %+v; want the first, its deletion, and the first again after it", vs)
	}
	if !inCurrent(t, wh, "fact_payment", 9) {
		t.Error("payment 9 is not current after the full extraction")
	}
	verifyClean(t, parts)
	sameWarehouse(t, "rebuilt against incremental", rebuild(t, parts), wh)
}

// A source moved by a logical copy (a dump restored elsewhere): every row
// has another transaction id. A full extraction of it adds only what
// differs: a changed row's new version and a deletion, not a version of
// every row.
func TestFullAfterALogicalCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, wh, parts := setup(t)
	pass(t, parts)

	moved := pgtest.Pool(t, pgtest.NewDB(t))
	if err := totesys.CreateTables(ctx, moved); err != nil {
		t.Fatal(err)
	}
	for _, tb := range totesys.Tables {
		fixture.CopyRows(t, src, moved, tb.Name, "")
	}
	if err := totesys.AddKeys(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if err := totesys.AddForeignKeys(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if err := totesys.ResetSequences(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := extract.MoveSource(ctx, moved, parts.Lake, extract.Options{}); err != nil {
		t.Fatal(err)
	}
	parts.Source = moved
	srcExec(t, moved, `DELETE FROM payment WHERE payment_id = 11`,
		`UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = 12`)
	res, err := pipeline.Run(ctx, parts, pipeline.Options{Extract: extract.Options{Full: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Extract.Full || res.Extract.Deleted() != 1 {
		t.Fatalf("the extraction: full %v, %d deleted", res.Extract.Full, res.Extract.Deleted())
	}
	if got := inserted(res); got["fact_payment"] != 1 || got["fact_sales_order"] != 0 || got["fact_purchase_order"] != 0 {
		t.Errorf("the full batch added %v fact rows; want payment 12's new version only", got)
	}
	if vs := versions(t, wh, "fact_payment", 11); len(vs) != 2 || !vs[1].Deleted {
		t.Errorf("payment 11: %+v, want its version and its deletion", vs)
	}
	// The current versions keep the transaction ids they were first read
	// with; verify compares the rest.
	for fact, table := range map[string]string{"fact_payment": "payment", "fact_sales_order": "sales_order"} {
		if n, want := one(t, wh, `SELECT count(*) FROM `+fact+`_current`), one(t, moved, `SELECT count(*) FROM `+table); n != want {
			t.Errorf("%s_current has %d rows, the source %d", fact, n, want)
		}
	}
	verifyClean(t, parts)
}

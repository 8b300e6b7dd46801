package iceberg

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/terrifictotes/tote/star"
)

// rangeFiles returns the data files of the current snapshot of the named
// dimension's Iceberg table by path, each with its key range's first key,
// and the table.
func rangeFiles(t *testing.T, p *Publisher, name string) (map[string]int64, *table.Table) {
	t.Helper()
	ctx := context.Background()
	tbl, err := p.Table(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	files, current, err := liveFiles(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	st, err := star.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if !rangeSpec(st, tbl) || !current {
		t.Fatalf("%s is not split by key range (spec %v, every file of it: %v)", name, tbl.Spec(), current)
	}
	spec := tbl.Spec()
	out := map[string]int64{}
	for _, df := range files {
		lo, ok := df.Partition()[spec.Field(0).FieldID].(int32)
		if !ok {
			t.Fatalf("%s: file %s has no key range: %v", name, df.FilePath(), df.Partition())
		}
		out[df.FilePath()] = int64(lo)
	}
	return out, tbl
}

// replacedRanges checks that the publish between before and after
// replaced the files of exactly the ranges want (and kept every other
// file), and that its snapshot says so.
func replacedRanges(t *testing.T, what string, before, after map[string]int64, tbl *table.Table, want ...int64) {
	t.Helper()
	var gone, added []int64
	for path, lo := range before {
		if _, ok := after[path]; !ok {
			gone = append(gone, lo)
		}
	}
	for path, lo := range after {
		if _, ok := before[path]; !ok {
			added = append(added, lo)
		}
	}
	slices.Sort(gone)
	slices.Sort(added)
	if !slices.Equal(gone, want) || !slices.Equal(added, want) {
		t.Errorf("%s: replaced the files of ranges %v with files of ranges %v, want only %v", what, gone, added, want)
	}
	props := tbl.CurrentSnapshot().Summary.Properties
	if got, want := props.Get("deleted-data-files", "0")+"/"+props.Get("added-data-files", "0"), fmt.Sprintf("%d/%d", len(want), len(want)); got != want {
		t.Errorf("%s: the snapshot's summary says deleted/added data files %s, want %s (%v)", what, got, want, props)
	}
}

// A dimension is split into files by key range, and a publish replaces
// only the files of the ranges whose keys the batches changed (an update,
// a deletion's flag, a row deleted then inserted again), with the
// warehouse's rows: the Iceberg table stays equal to the warehouse's.
func TestPublishDimensionRanges(t *testing.T) {
	t.Parallel()
	b := setup(t, "file://"+t.TempDir())
	b.load(t)
	b.publish(t)
	files, _ := rangeFiles(t, b.pub, "dim_transaction")
	if want := one(t, b.wh, fmt.Sprintf(`SELECT count(DISTINCT transaction_id / %d) FROM dim_transaction`, rangeWidth)); int64(len(files)) != want {
		t.Fatalf("dim_transaction has %d files, want one per key range: %d", len(files), want)
	}
	if len(files) < 8 {
		t.Fatalf("dim_transaction has %d key ranges: the test needs more", len(files))
	}

	// An update in range 0, deletions in ranges 4096 and 8192; an order
	// of a design totesys lacks, which gets a placeholder in dim_design.
	b.exec(t, b.src,
		`UPDATE sales_order SET design_id = 99999, last_updated = now() WHERE sales_order_id = 1`,
		`UPDATE transaction SET last_updated = now() WHERE transaction_id = 100`,
		`CREATE TABLE saved_transaction AS SELECT * FROM transaction WHERE transaction_id = 9000`,
		`DELETE FROM payment WHERE transaction_id IN (5000, 9000)`,
		`DELETE FROM transaction WHERE transaction_id IN (5000, 9000)`)
	b.load(t)
	b.publish(t)
	same(t, b, "after an update and deletions")
	if n := one(t, b.wh, `SELECT count(*) FROM dim_transaction WHERE is_deleted AND transaction_id IN (5000, 9000)`); n != 2 {
		t.Fatalf("%d of the deleted transactions are flagged in the warehouse, want 2: the test proves nothing", n)
	}
	if n := one(t, b.wh, `SELECT count(*) FROM tote.placeholders WHERE dim_table = 'dim_design' AND id = 99999 AND resolved_batch IS NULL`); n != 1 {
		t.Fatal("no placeholder for design 99999: the test proves nothing")
	}
	after, tbl := rangeFiles(t, b.pub, "dim_transaction")
	replacedRanges(t, "after an update and deletions", files, after, tbl, 0, 4096, 8192)

	// The deleted row inserted again: its range only. The design comes.
	files = after
	b.exec(t, b.src, `INSERT INTO transaction SELECT transaction_id, transaction_type, sales_order_id, purchase_order_id, created_at, now() FROM saved_transaction`,
		`INSERT INTO design (design_id, design_name, file_location, file_name, last_updated) VALUES (99999, 'Wool', '/designs', 'wool.json', now())`)
	b.load(t)
	b.publish(t)
	same(t, b, "after a row came back")
	if n := one(t, b.wh, `SELECT count(*) FROM dim_transaction WHERE NOT is_deleted AND transaction_id = 9000`); n != 1 {
		t.Fatal("transaction 9000 is not back in the warehouse: the test proves nothing")
	}
	if n := one(t, b.wh, `SELECT count(*) FROM tote.placeholders WHERE dim_table = 'dim_design' AND id = 99999 AND resolved_batch IS NOT NULL`); n != 1 {
		t.Fatal("the placeholder for design 99999 is not resolved: the test proves nothing")
	}
	after, tbl = rangeFiles(t, b.pub, "dim_transaction")
	replacedRanges(t, "after a row came back", files, after, tbl, 8192)

	// Simulated changes, placeholders among them perhaps: still equal.
	b.simulate(t, 71, 0.2)
	b.load(t)
	b.publish(t)
	same(t, b, "after simulated changes")
}

// The tables of an earlier release, whose dimensions are unpartitioned and
// were rewritten whole, keep working: a dimension gets the key ranges
// when a batch next changes it (rewritten whole once), then only its
// changed ranges; a dimension no batch changes stays as it was.
func TestPublishUpgradesWholeDimensions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, "file://"+t.TempDir())
	b.pub.wholeDimensions = true
	b.load(t)
	b.publish(t)
	tbl, err := b.pub.Table(ctx, "dim_transaction")
	if err != nil {
		t.Fatal(err)
	}
	if !tbl.Spec().IsUnpartitioned() {
		t.Fatalf("the earlier release's dim_transaction is partitioned: %v", tbl.Spec())
	}

	b.pub = b.open(t) // this release
	b.simulate(t, 61, 0.2)
	b.load(t)
	b.publish(t)
	same(t, b, "after the first publish of this release")
	files, _ := rangeFiles(t, b.pub, "dim_transaction")
	if want := one(t, b.wh, fmt.Sprintf(`SELECT count(DISTINCT transaction_id / %d) FROM dim_transaction`, rangeWidth)); int64(len(files)) != want {
		t.Fatalf("dim_transaction has %d files after the upgrade, want one per key range: %d", len(files), want)
	}
	pt, err := b.pub.Table(ctx, "dim_payment_type")
	if err != nil {
		t.Fatal(err)
	}
	if !pt.Spec().IsUnpartitioned() {
		t.Errorf("dim_payment_type, which no batch changed, was partitioned: %v", pt.Spec())
	}

	b.exec(t, b.src, `UPDATE transaction SET last_updated = now() WHERE transaction_id = 2000`)
	b.load(t)
	b.publish(t)
	same(t, b, "after a change once upgraded")
	after, tbl := rangeFiles(t, b.pub, "dim_transaction")
	replacedRanges(t, "after a change once upgraded", files, after, tbl, 1024)
}

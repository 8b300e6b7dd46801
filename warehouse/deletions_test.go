package warehouse_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// tombstone is a row of a processed batch's deletions file.
func tombstone(table string, id int, seen string) row {
	t, err := time.Parse("2006-01-02 15:04:05.999999", seen)
	if err != nil {
		panic(err)
	}
	return row{"star_table": table, "id": id, "seen_date": t.Format("2006-01-02"), "seen_time": t.Format("15:04:05.999999")}
}

// commitWithDeletions writes b and the deletions to lk as processed batch
// seq.
func commitWithDeletions(t *testing.T, lk *lake.Lake, seq uint64, b batch, deletions ...row) lake.Manifest {
	t.Helper()
	w := writeBatch(t, lk, seq, b, false)
	writeFile(t, w, star.Deletions.Name, star.Deletions.Schema(), deletions)
	return commitWriter(t, w)
}

// A batch's deletions, after its rows: a fact's id gets a deletion version
// (the newest version's values, stamped when seen, source_xmin 0, this
// batch, numbered after the largest surrogate key in id order), a
// dimension's row is flagged; an id the warehouse never had, and one whose
// newest version is a deletion already, add nothing; a dimension row sent
// again is no longer flagged. The ledger and the result count them.
func TestLoadDeletions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	lk := memLake(t)
	commit(t, lk, 1, batch1())
	commit(t, lk, 2, batch2())
	loadOK(t, db, lk)

	m3 := commitWithDeletions(t, lk, 3, batch{"dim_date": {date3}},
		tombstone("fact_sales_order", 1, "2024-02-29 10:00:00.123456"),
		tombstone("fact_payment", 2, "2024-02-29 10:00:00.123456"),
		tombstone("fact_payment", 99, "2024-02-29 10:00:00.123456"),
		tombstone("dim_design", 8, "2024-02-29 10:00:00.123456"),
		tombstone("dim_staff", 99, "2024-02-29 10:00:00.123456"))
	res := loadOK(t, db, lk)
	deleted := map[string]int64{}
	for _, tr := range res.Batches[0].Tables {
		if tr.Deleted > 0 {
			deleted[tr.Table] = tr.Deleted
		}
	}
	want := map[string]int64{"dim_design": 1, "fact_sales_order": 1, "fact_payment": 1}
	if !maps.Equal(deleted, want) || res.Deleted() != 3 {
		t.Errorf("the load says it deleted %v (%d), want %v", deleted, res.Deleted(), want)
	}
	entries, err := warehouse.New(db, nil).Loaded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[2].Deleted; !maps.Equal(got, want) {
		t.Errorf("the ledger says batch 3 deleted %v, want %v", got, want)
	}
	gone := func(r row) row {
		return with(r, row{"last_updated_date": "2024-02-29", "last_updated_time": "10:00:00.123456", star.SourceXmin: 0,
			star.BatchID: m3.ID, star.IsDeleted: true})
	}
	after3 := after2()
	after3["dim_design"] = rendered("dim_design", with(design8, row{star.IsDeleted: true}))
	// Surrogate keys after the largest, in id order: order 1 is the 5th
	// sales version; payment 2 the 4th payment version.
	after3["fact_sales_order"] = append(after3["fact_sales_order"], render("fact_sales_order", 5, gone(order1Edited)))
	after3["fact_payment"] = append(after3["fact_payment"], render("fact_payment", 4, gone(payment2)))
	sameTables(t, "after the deletions", dumpAll(t, db), after3)
	if got := pgtest.Texts(t, db, `SELECT payment_id::text FROM fact_payment_current ORDER BY 1`); !slices.Equal(got, []string{"1"}) {
		t.Errorf("fact_payment_current holds payments %v, want 1", got)
	}

	// The same deletions again, and design 8 sent again.
	commitWithDeletions(t, lk, 4, batch{"dim_design": {design8}},
		tombstone("fact_sales_order", 1, "2024-03-01 10:00:00"),
		tombstone("fact_payment", 2, "2024-03-01 10:00:00"))
	res = loadOK(t, db, lk)
	if res.Deleted() != 0 {
		t.Errorf("deleting again deleted %d", res.Deleted())
	}
	after3["dim_design"] = rendered("dim_design", design8)
	sameTables(t, "after the deletions again", dumpAll(t, db), after3)

	rebuilt, _ := newWarehouse(t)
	if _, err := warehouse.New(rebuilt, nil).Rebuild(ctx, lk, false); err != nil {
		t.Fatal(err)
	}
	sameTables(t, "rebuilt", dumpAll(t, rebuilt), after3)
}

// Processed files written before deletions were carried lack is_deleted:
// their rows load as not deleted, by a straight copy into an empty table
// and by the merge.
func TestFilesWithoutIsDeleted(t *testing.T) {
	t.Parallel()
	db, _ := newWarehouse(t)
	lk := memLake(t)
	for seq, b := range []batch{batch1(), batch2()} {
		w := lk.NewBatch(lake.Processed, uint64(seq+1), time.Now())
		for name, rows := range b {
			table, err := star.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			table.Columns = slices.DeleteFunc(slices.Clone(table.Columns), func(c star.Column) bool { return c.Conv == star.Deleted })
			writeFileClaiming(t, w, name, table.Schema(), rows, seq == 0)
		}
		commitWriter(t, w)
	}
	loadOK(t, db, lk)
	sameTables(t, "old files", dumpAll(t, db), after2())
}

// A deletions file that is not the model's fails its batch, naming the
// file and what is wrong, and loads nothing of the batch.
func TestBadDeletionsFile(t *testing.T) {
	t.Parallel()
	db, lk := loadedBatch1(t)
	before := dumpAll(t, db)
	w := lk.NewBatch(lake.Processed, 2, time.Now())
	bad := star.Deletions
	bad.Columns = bad.Columns[:3] // no seen_time
	writeFile(t, w, star.Deletions.Name, bad.Schema(), []row{{"star_table": "fact_payment", "id": 1, "seen_date": "2024-03-01"}})
	m := commitWriter(t, w)
	_, err := warehouse.New(db, nil).Load(context.Background(), lk)
	if err == nil || !strings.Contains(err.Error(), "load processed batch "+m.ID+": tote_deleted: processed/tote_deleted/") ||
		!strings.Contains(err.Error(), "column seen_time is missing") {
		t.Errorf("loading a deletions file without seen_time: %v", err)
	}
	sameTables(t, "after the bad batch", dumpAll(t, db), before)
	if got := ledger(t, db); len(got) != 1 {
		t.Errorf("the ledger lists %v after the bad batch", got)
	}
}

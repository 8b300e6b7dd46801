package iceberg

// A dimension's rows change in place (an upsert, a deletion's flag, a
// placeholder made or replaced), so its Iceberg table is rewritten, copy on
// write, where the batches changed it: its data files are split by key
// range (a truncate[rangeWidth] partition on the key), and a publish
// replaces only the files of the ranges that hold a key the batches
// changed, with the warehouse's rows of those ranges. A batch changes a
// few hundred keys of dim_transaction, which at scale 20 has 332,000 rows:
// a whole rewrite read and wrote them all on every run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
)

// rangeWidth is how many keys one of a dimension's key ranges spans: the
// width of its truncate partition, so a file holds at most that many rows.
// A batch's changed keys are mostly new ones (at the top) and a scattered
// few (deletions, edits), each scattered key costing a rewrite of its
// range: narrower ranges rewrite fewer rows but make more, smaller files
// for readers (3,300 files of dim_transaction at scale 200), and a file
// written costs about as much as 5,000 rows. Decision 0017 has the
// figures.
const rangeWidth = 1024

// maxRangedBatches is the most batches whose changed keys a publish reads
// (a processed file of the dimension, a deletions file, each a fetch from
// the lake) to rewrite a dimension's changed ranges only: more (a publish
// missed for a long while, the first publish of a long history) and the
// dimension is rewritten whole.
const maxRangedBatches = 16

// rangeField is the name of the partition field of a dimension's key ranges.
func rangeField(t star.Table) string { return t.Key[0] + "_range" }

// ranged reports whether dimension t is rewritten by key range: one whose
// key is an integer. The calendar (dim_date, a date key, a few thousand
// rows, its placeholder days not recorded) is rewritten whole.
func ranged(t star.Table) bool {
	if t.Kind != star.Dimension || len(t.Key) != 1 {
		return false
	}
	c, ok := t.Column(t.Key[0])
	return ok && (c.Type == star.Integer || c.Type == star.BigInt)
}

// rangeOf is the first key of k's range, as Iceberg's truncate transform
// computes it (negative keys included).
func rangeOf(k int64) int64 { return k - ((k%rangeWidth)+rangeWidth)%rangeWidth }

// rangeSpec reports whether tbl is partitioned as dimension t's key ranges.
func rangeSpec(t star.Table, tbl *table.Table) bool {
	spec := tbl.Spec()
	if spec.NumFields() != 1 {
		return false
	}
	f := spec.Field(0)
	key, ok := tbl.Schema().FindFieldByName(t.Key[0])
	return ok && f.SourceID() == key.ID && f.Transform.Equals(iceberg.TruncateTransform{Width: rangeWidth})
}

// evolveSpec gives a dimension table made before the key ranges (whole,
// unpartitioned) the range partition (a metadata commit, no snapshot).
// Its files stay as they are until the next publish that changes the
// dimension, which rewrites it whole (publishTable: a file of another
// spec), once.
func (p *Publisher) evolveSpec(ctx context.Context, t star.Table, tbl *table.Table) (*table.Table, error) {
	if !ranged(t) || rangeSpec(t, tbl) || p.wholeDimensions {
		return tbl, nil
	}
	txn := tbl.NewTransaction()
	us := txn.UpdateSpec(true)
	old := tbl.Spec()
	for _, f := range old.Fields() {
		us = us.RemoveField(f.Name)
	}
	if err := us.AddField(t.Key[0], iceberg.TruncateTransform{Width: rangeWidth}, rangeField(t)).Commit(); err != nil {
		return nil, fmt.Errorf("partition it by key range: %w", err)
	}
	committed, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("partition it by key range: %w", err)
	}
	p.log.Info("partitioned iceberg dimension by key range", "table", p.namespace+"."+t.Name, "width", rangeWidth)
	return committed, nil
}

// changes are the dimension keys that the pending batches changed besides
// the rows in their files: their deletions (a flag set) and the
// placeholders made or resolved in them, by table.
type changes map[string][]keyAt

// keyAt is a key changed by the batch of sequence number seq.
type keyAt struct {
	seq uint64
	key int64
}

// dimensionChanges reads the deletions files of batches and the
// placeholders made or resolved in them.
func (p *Publisher) dimensionChanges(ctx context.Context, batches []Batch, manifests []lake.Manifest) (changes, error) {
	out := changes{}
	for i, m := range manifests {
		for _, f := range m.Files {
			if f.Table != star.Deletions.Name {
				continue
			}
			err := readFile(ctx, p.lake, m, f, []string{"star_table", "id"}, func(v []parquet.Value) {
				out[string(v[0].ByteArray())] = append(out[string(v[0].ByteArray())], keyAt{batches[i].Seq, intValue(v[1])})
			})
			if err != nil {
				return nil, fmt.Errorf("publish batch %s to iceberg: read its deletions: %w", m.ID, err)
			}
		}
	}
	ids := make([]string, len(batches))
	for i, b := range batches {
		ids[i] = b.ID
	}
	rows, err := p.pool.Query(ctx, `SELECT p.dim_table, l.seq, p.id FROM tote.placeholders p
JOIN tote.load_ledger l ON l.batch_id IN (p.batch_id, p.resolved_batch) WHERE l.batch_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("publish to iceberg: read the batches' placeholders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq, id int64
		if err := rows.Scan(&name, &seq, &id); err != nil {
			return nil, fmt.Errorf("publish to iceberg: read the batches' placeholders: %w", err)
		}
		out[name] = append(out[name], keyAt{uint64(seq), id})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("publish to iceberg: read the batches' placeholders: %w", err)
	}
	return out, nil
}

// changedRanges returns the first keys of the ranges of dimension t that
// the batches after seq changed, in order: the keys of the rows in their
// files of t (the load upserts exactly those), and those of changed.
func (p *Publisher) changedRanges(ctx context.Context, t star.Table, seq uint64, manifests []lake.Manifest, changed func() (changes, error)) ([]int64, error) {
	ch, err := changed()
	if err != nil {
		return nil, err
	}
	set := map[int64]struct{}{}
	for _, m := range manifests {
		if m.Seq <= seq {
			continue
		}
		for _, f := range m.Files {
			if f.Table != t.Name {
				continue
			}
			err := readFile(ctx, p.lake, m, f, t.Key[:1], func(v []parquet.Value) { set[rangeOf(intValue(v[0]))] = struct{}{} })
			if err != nil {
				return nil, fmt.Errorf("batch %s: read its keys: %w", m.ID, err)
			}
		}
	}
	for _, k := range ch[t.Name] {
		if k.seq > seq {
			set[rangeOf(k.key)] = struct{}{}
		}
	}
	out := make([]int64, 0, len(set))
	for lo := range set {
		out = append(out, lo)
	}
	slices.Sort(out)
	return out, nil
}

// readFile calls fn with the values of the named columns of every row of
// file f of batch m.
func readFile(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, names []string, fn func([]parquet.Value)) error {
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return err
	}
	defer r.Close()
	leaves := make([]int, len(names))
	for i, n := range names {
		leaf, ok := r.Schema().Lookup(n)
		if !ok {
			return fmt.Errorf("%s: no column %s", f.Path, n)
		}
		leaves[i] = leaf.ColumnIndex
	}
	buf := make([]parquet.Row, 1024)
	vals := make([]parquet.Value, len(names))
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			for i, leaf := range leaves {
				vals[i] = row[leaf]
			}
			fn(vals)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
}

func intValue(v parquet.Value) int64 {
	if v.Kind() == parquet.Int32 {
		return int64(v.Int32())
	}
	return v.Int64()
}

// liveFiles returns tbl's data files in its current snapshot, and whether
// every one of them is of its current partition spec.
func liveFiles(ctx context.Context, tbl *table.Table) ([]iceberg.DataFile, bool, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil, true, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, false, err
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return nil, false, err
	}
	cur := tbl.Spec()
	spec := int32(cur.ID())
	var out []iceberg.DataFile
	current := true
	for _, m := range manifests {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		for e, err := range m.Entries(fs, true) {
			if err != nil {
				return nil, false, err
			}
			df := e.DataFile()
			out = append(out, df)
			current = current && df.SpecID() == spec
		}
	}
	return out, current, nil
}

// filesOfRanges returns those of files (of t's range spec) whose range is
// one of los.
func filesOfRanges(t star.Table, tbl *table.Table, files []iceberg.DataFile, los []int64) []iceberg.DataFile {
	spec := tbl.Spec()
	id := spec.Field(0).FieldID
	var out []iceberg.DataFile
	for _, df := range files {
		var lo int64
		switch v := df.Partition()[id].(type) {
		case int32:
			lo = int64(v)
		case int64:
			lo = v
		default:
			out = append(out, df) // no range (a null key): rewrite it to be safe
			continue
		}
		if _, ok := slices.BinarySearch(los, lo); ok {
			out = append(out, df)
		}
	}
	return out
}

// rangesJoin joins dimension t to the ranges starting at $1 (an array),
// for a FROM clause: an index range on the key per range.
func rangesJoin(t star.Table) string {
	key := pgx.Identifier{t.Key[0]}.Sanitize()
	return ` JOIN unnest($1::bigint[]) AS tote_range(lo) ON ` + key + ` >= tote_range.lo AND ` + key + ` < tote_range.lo + ` + strconv.Itoa(rangeWidth)
}

// replaceRows writes rdr's rows (in key order) as new data files of tbl
// and commits them in txn in place of the files old: an append if there
// are none. The writer holds a record or two and one open Parquet file (a
// range's, closed when the next range starts), as appendRows's does:
// iceberg-go's Overwrite queues 64 records.
func replaceRows(ctx context.Context, tbl *table.Table, txn *table.Transaction, rdr *rowReader, old []iceberg.DataFile, props iceberg.Properties) error {
	files, err := writeRows(ctx, tbl, rdr)
	if err != nil {
		return err
	}
	if len(old) == 0 {
		if len(files) == 0 {
			return nil
		}
		return txn.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck())
	}
	return txn.ReplaceDataFilesWithDataFiles(ctx, old, files, props)
}

// writeRows writes rdr's rows as new data files of tbl: by partition (rdr
// reads them in partition order), one Parquet writer open at a time, a
// record or two queued.
func writeRows(ctx context.Context, tbl *table.Table, rdr *rowReader) ([]iceberg.DataFile, error) {
	records := func(yield func(arrow.RecordBatch, error) bool) {
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain() // WriteRecords releases what it takes; rdr releases its own on Next
			if !yield(rec, nil) {
				return
			}
		}
		if err := rdr.Err(); err != nil {
			yield(nil, err)
		}
	}
	opts := []table.WriteRecordOption{table.WithRecordBatchBufferSize(appendBuffer)}
	if !tbl.Spec().IsUnpartitioned() {
		opts = append(opts, table.WithClusteredWrite())
	}
	var files []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, tbl, rdr.Schema(), records, opts...) {
		if err != nil {
			return nil, err
		}
		files = append(files, df)
	}
	return files, nil
}

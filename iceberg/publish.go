package iceberg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
)

// publishLock is the advisory lock key that serializes publishers of one
// warehouse (the warehouse's own keys are in package warehouse).
const publishLock int64 = 0x746f74652d696365 // "tote-ice"

// publishConcurrency is how many tables are published at once.
const publishConcurrency = 4

// Batch is a loaded batch of the ledger.
type Batch struct {
	ID  string
	Seq uint64
}

// TableResult is what a Publish did to one table.
type TableResult struct {
	Table string `json:"table"`
	// Operation is "append" or "overwrite"; empty when the table was
	// already up to date (Healed says if that was found after a crash).
	Operation string `json:"operation,omitempty"`
	Snapshot  int64  `json:"snapshot,omitempty"`
	Rows      int64  `json:"rows"`
	Healed    bool   `json:"healed,omitempty"`
	// Elapsed is the time the table took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Result says what a Publish did.
type Result struct {
	// Batches are the batches published, in order.
	Batches []string `json:"batches,omitempty"`
	// Tables are the tables the batches changed, in the order of
	// star.Tables: the others are not loaded.
	Tables  []TableResult `json:"tables,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rows is the number of rows written in all tables.
func (r Result) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// Publish brings every table up to the warehouse's newest loaded batch:
// the ledger's batches not yet published, in order, as one snapshot per
// table that changed, carrying the newest of them in its summary (one
// batch in the usual run; the whole history on the first publish of an
// existing warehouse). Tables missing from the catalog are created first.
func (p *Publisher) Publish(ctx context.Context) (res Result, err error) {
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("publish to iceberg: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, publishLock); err != nil {
		return res, fmt.Errorf("publish to iceberg: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, publishLock); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the session's lock goes with it
		}
	}()
	pending, err := p.pending(ctx)
	if err != nil || len(pending) == 0 {
		return res, err
	}
	corrective := false
	manifests := make([]lake.Manifest, len(pending))
	for i, b := range pending {
		m, err := p.lake.Batch(ctx, lake.Processed, b.ID)
		if err != nil {
			return res, fmt.Errorf("publish batch %s to iceberg: %w", b.ID, err)
		}
		manifests[i] = m
		corrective = corrective || m.Corrective
	}
	touched, err := p.touched(ctx, pending)
	if err != nil {
		return res, err
	}
	// Only the tables the batches changed are loaded and published: a
	// load reads the table's metadata, and an untouched table has nothing
	// to write, nor to heal (it has no snapshot of these batches).
	need := map[string]bool{}
	for _, t := range star.Tables {
		need[t.Name] = touched[t.Name] > 0 || (corrective && t.Kind == star.Fact)
	}
	tables, err := p.ensureTables(ctx, need)
	if err != nil {
		return res, err
	}
	// The deletions and placeholders are read once, by the first
	// dimension that rewrites its changed ranges only.
	ch := sync.OnceValues(func() (changes, error) { return p.dimensionChanges(ctx, pending, manifests) })
	// The tables are independent (each its own commit and summary), so
	// they are published at once: most of a table's time is waiting on
	// the warehouse, the catalog and the lake.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(publishConcurrency)
	var mu sync.Mutex
	for _, t := range star.Tables {
		if !need[t.Name] {
			continue
		}
		g.Go(func() error {
			tr, err := p.publishTable(gctx, t, tables[t.Name], pending, corrective, touched[t.Name], manifests, ch)
			mu.Lock()
			res.Tables = append(res.Tables, tr)
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("publish %s to iceberg, batches %s to %s: %w", t.Name, pending[0].ID, pending[len(pending)-1].ID, err)
			}
			return nil
		})
	}
	err = g.Wait()
	slices.SortFunc(res.Tables, func(a, b TableResult) int { return tableOrder(a.Table) - tableOrder(b.Table) })
	if err != nil {
		return res, err
	}
	batch := &pgx.Batch{}
	for _, b := range pending {
		batch.Queue(`INSERT INTO tote.iceberg_batches (batch_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.ID, int64(b.Seq))
		res.Batches = append(res.Batches, b.ID)
	}
	if err := p.pool.SendBatch(ctx, batch).Close(); err != nil {
		return res, fmt.Errorf("publish to iceberg: record batches: %w", err)
	}
	p.log.Info("published to iceberg", "batches", len(pending), "last", pending[len(pending)-1].ID, "rows", res.Rows())
	return res, nil
}

// tableOrder is the place of the named table in star.Tables.
func tableOrder(name string) int {
	return slices.IndexFunc(star.Tables, func(t star.Table) bool { return t.Name == name })
}

// pending returns the ledger's batches not yet published, in order.
func (p *Publisher) pending(ctx context.Context) ([]Batch, error) {
	rows, err := p.pool.Query(ctx, `SELECT l.batch_id, l.seq FROM tote.load_ledger l
WHERE NOT EXISTS (SELECT FROM tote.iceberg_batches b WHERE b.batch_id = l.batch_id) ORDER BY l.seq`)
	if err != nil {
		return nil, fmt.Errorf("publish to iceberg: read the load ledger: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Batch, error) {
		var b Batch
		var seq int64
		err := r.Scan(&b.ID, &seq)
		b.Seq = uint64(seq)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("publish to iceberg: read the load ledger: %w", err)
	}
	return out, nil
}

// ensureTables loads the Iceberg tables of the star tables in need,
// creating the namespace and every table that is missing (one listing of
// the catalog, not a load of each: a load reads the table's metadata
// file, which grows with its snapshots).
func (p *Publisher) ensureTables(ctx context.Context, need map[string]bool) (map[string]*table.Table, error) {
	cat, err := p.catalog(ctx)
	if err != nil {
		return nil, err
	}
	ns := table.Identifier{p.namespace}
	if ok, err := cat.CheckNamespaceExists(ctx, ns); err != nil {
		return nil, fmt.Errorf("iceberg namespace %s: %w", p.namespace, err)
	} else if !ok {
		err := cat.CreateNamespace(ctx, ns, iceberg.Properties{"comment": "tote's star schema"})
		if err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			return nil, fmt.Errorf("create iceberg namespace %s: %w", p.namespace, err)
		}
	}
	existing := map[string]bool{}
	for id, err := range cat.ListTables(ctx, ns) {
		if err != nil {
			return nil, fmt.Errorf("iceberg namespace %s: list its tables: %w", p.namespace, err)
		}
		existing[id[len(id)-1]] = true
	}
	out := make(map[string]*table.Table, len(star.Tables))
	for _, t := range star.Tables {
		if existing[t.Name] && !need[t.Name] {
			continue
		}
		var tbl *table.Table
		var err error
		if existing[t.Name] {
			tbl, err = p.Table(ctx, t.Name)
		}
		if !existing[t.Name] || errors.Is(err, catalog.ErrNoSuchTable) {
			tbl, err = p.create(ctx, t)
		}
		if err != nil {
			return nil, fmt.Errorf("iceberg table %s.%s: %w", p.namespace, t.Name, err)
		}
		if !need[t.Name] {
			continue
		}
		if err := checkSchema(t, tbl); err != nil {
			return nil, fmt.Errorf("iceberg table %s.%s: %w", p.namespace, t.Name, err)
		}
		if tbl, err = p.setWriteProperties(ctx, tbl); err != nil {
			return nil, fmt.Errorf("iceberg table %s.%s: %w", p.namespace, t.Name, err)
		}
		if tbl, err = p.evolveSpec(ctx, t, tbl); err != nil {
			return nil, fmt.Errorf("iceberg table %s.%s: %w", p.namespace, t.Name, err)
		}
		out[t.Name] = tbl
	}
	return out, nil
}

// checkSchema refuses a table whose columns are not the model's (a table
// made by something else, or by a tote with another model), naming every
// difference: appending to it would fail, or write what readers do not
// expect.
func checkSchema(t star.Table, tbl *table.Table) error {
	want, err := Schema(t)
	if err != nil {
		return err
	}
	var diffs []string
	got := tbl.Schema()
	for _, w := range want.Fields() {
		g, ok := got.FindFieldByName(w.Name)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %s is missing", w.Name))
		case !g.Type.Equals(w.Type):
			diffs = append(diffs, fmt.Sprintf("column %s is %s, want %s", w.Name, g.Type, w.Type))
		case g.Required != w.Required:
			diffs = append(diffs, fmt.Sprintf("column %s is required=%v, want %v", w.Name, g.Required, w.Required))
		}
	}
	for _, g := range got.Fields() {
		if _, ok := want.FindFieldByName(g.Name); !ok {
			diffs = append(diffs, fmt.Sprintf("column %s is not in the model", g.Name))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("refused: its schema is not the star model's: %s (drop the table to have tote create it again)", strings.Join(diffs, "; "))
	}
	return nil
}

// writeProperties are the table properties that say how tote's tables
// are written (decision 0017 says why each).
var writeProperties = iceberg.Properties{
	table.ParquetCompressionKey:      "zstd",
	table.ParquetCompressionLevelKey: "1",
}

// setWriteProperties gives a table made by an older tote the
// writeProperties it lacks (a metadata commit, no snapshot), once.
func (p *Publisher) setWriteProperties(ctx context.Context, tbl *table.Table) (*table.Table, error) {
	props := tbl.Properties()
	missing := iceberg.Properties{}
	for k, v := range writeProperties {
		if props.Get(k, "") != v {
			missing[k] = v
		}
	}
	if len(missing) == 0 {
		return tbl, nil
	}
	txn := tbl.NewTransaction()
	if err := txn.SetProperties(missing); err != nil {
		return nil, fmt.Errorf("set its write properties: %w", err)
	}
	committed, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("set its write properties: %w", err)
	}
	p.log.Info("set iceberg table write properties", "table", p.namespace+"."+tbl.Identifier()[len(tbl.Identifier())-1], "properties", missing)
	return committed, nil
}

// create creates t's Iceberg table (format version 2) under the lake's
// iceberg/ prefix.
func (p *Publisher) create(ctx context.Context, t star.Table) (*table.Table, error) {
	sc, err := Schema(t)
	if err != nil {
		return nil, err
	}
	spec, err := partitionSpec(t, sc)
	if err != nil {
		return nil, err
	}
	if p.wholeDimensions && t.Kind == star.Dimension {
		spec = iceberg.UnpartitionedSpec
	}
	props := iceberg.Properties{
		table.PropertyFormatVersion: "2",
		"comment":                   t.Comment,
	}
	maps.Copy(props, writeProperties)
	cat, err := p.catalog(ctx)
	if err != nil {
		return nil, err
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{p.namespace, t.Name}, sc,
		catalog.WithLocation(p.location+"/"+p.namespace+"/"+t.Name),
		catalog.WithPartitionSpec(spec), catalog.WithProperties(props))
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		return p.Table(ctx, t.Name)
	}
	if err == nil {
		p.log.Info("created iceberg table", "table", p.namespace+"."+t.Name, "location", tbl.Location())
	}
	return tbl, err
}

// state is what a table's newest tote snapshot says it holds.
type state struct {
	seq    uint64 // the newest batch it holds; 0 if none
	maxKey int64  // a fact's largest surrogate key
}

// stateOf reads the table's current snapshot's summary (every snapshot
// tote commits carries the keys, maintenance ones included).
func stateOf(tbl *table.Table) state {
	snap := tbl.CurrentSnapshot()
	if snap == nil || snap.Summary == nil {
		return state{}
	}
	props := snap.Summary.Properties
	return state{
		seq:    props.GetUInt64(SummarySeq, 0),
		maxKey: props.GetInt64(SummaryMaxKey, 0),
	}
}

// snapshotHolding returns the table's oldest snapshot that holds batch seq
// (the first whose tote.seq is at least seq), or the current snapshot if
// expiry removed it. The table has a current snapshot.
func snapshotHolding(tbl *table.Table, seq uint64) table.Snapshot {
	snaps := slices.Clone(tbl.Metadata().Snapshots())
	slices.SortFunc(snaps, func(a, b table.Snapshot) int { return int(a.SequenceNumber - b.SequenceNumber) })
	for _, s := range snaps {
		if s.Summary != nil && s.Summary.Properties.Get(SummaryBatch, "") != "" &&
			s.Summary.Properties.GetUInt64(SummarySeq, 0) >= seq {
			return s
		}
	}
	return *tbl.CurrentSnapshot()
}

// publishTable brings one table up to the last of pending.
// A dimension's rows are read from the warehouse and written where the
// batches after the table's changed it: the key ranges that hold their
// keys (dimension.go), or the whole table if it is not split by range or
// still has files made before it was.
func (p *Publisher) publishTable(ctx context.Context, t star.Table, tbl *table.Table, pending []Batch, corrective bool, touched uint64, manifests []lake.Manifest, ch func() (changes, error)) (tr TableResult, err error) {
	start := time.Now()
	tr.Table = t.Name
	defer func() { tr.Elapsed = time.Since(start) }()
	st := stateOf(tbl)
	// Batches the table already holds: a publish that crashed after its
	// Iceberg commit. Record them; never write them again.
	var rest []Batch
	for _, b := range pending {
		if b.Seq <= st.seq {
			snap := snapshotHolding(tbl, b.Seq)
			if err := p.record(ctx, b, t.Name, snap.SnapshotID, string(snap.Summary.Operation), snap.Summary.Properties.GetInt64("added-records", 0)); err != nil {
				return tr, err
			}
			tr.Healed = true
			continue
		}
		rest = append(rest, b)
	}
	if len(rest) == 0 {
		return tr, nil
	}
	last := rest[len(rest)-1]
	props := iceberg.Properties{SummaryBatch: last.ID, SummarySeq: strconv.FormatUint(last.Seq, 10)}
	if len(rest) > 1 {
		props["tote.batches-from"] = rest[0].ID
	}

	from := ` FROM ` + pgx.Identifier{t.Name}.Sanitize()
	key := pgx.Identifier{t.Surrogate}.Sanitize()
	var where string
	var args []any
	overwrite := t.Kind == star.Dimension || corrective
	switch {
	case t.Kind == star.Dimension:
		if touched <= st.seq {
			return tr, nil // no batch it does not hold changed it
		}
	case corrective:
	default:
		ids := make([]string, len(rest))
		for i, b := range rest {
			ids[i] = b.ID
		}
		where = ` WHERE ` + key + ` > $1 AND ` + pgx.Identifier{star.BatchID}.Sanitize() + ` = ANY($2)`
		args = []any{st.maxKey, ids}
	}
	if t.Kind == star.Fact {
		// The summary's largest key is known before the rows are read
		// (they stream into the writer): the primary key's index, read
		// backwards, finds it at once.
		var maxKey *int64
		if err := p.pool.QueryRow(ctx, `SELECT max(`+key+`)::bigint`+from+where, args...).Scan(&maxKey); err != nil {
			return tr, fmt.Errorf("read the warehouse table's largest %s: %w", t.Surrogate, err)
		}
		if maxKey == nil && !overwrite {
			return tr, nil // no new versions in these batches
		}
		var mk int64 // a corrective overwrite holds the table as it is
		if !corrective {
			mk = st.maxKey
		}
		if maxKey != nil && (*maxKey > mk || corrective) {
			mk = *maxKey
		}
		props[SummaryMaxKey] = strconv.FormatInt(mk, 10)
	}
	// A dimension's files that the rows replace: all of them, or those of
	// the ranges the batches changed.
	var replaced []iceberg.DataFile
	if t.Kind == star.Dimension {
		files, current, err := liveFiles(ctx, tbl)
		if err != nil {
			return tr, fmt.Errorf("read its manifests: %w", err)
		}
		replaced = files
		if ranged(t) && !p.wholeDimensions && current && len(files) > 0 && len(rest) <= maxRangedBatches {
			los, err := p.changedRanges(ctx, t, st.seq, manifests, ch)
			if err != nil {
				return tr, err
			}
			if len(los) == 0 {
				return tr, nil // the ledger named it, but no key changed
			}
			replaced = filesOfRanges(t, tbl, files, los)
			from += rangesJoin(t)
			args = []any{los}
		}
	}
	as, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return tr, fmt.Errorf("arrow schema: %w", err)
	}
	order := orderBy(t)
	if !overwrite {
		order = appendOrder(t)
	}
	rows, err := p.pool.Query(ctx, `SELECT `+selectList(t)+from+where+` ORDER BY `+order,
		append([]any{resultFormats(t)}, args...)...)
	if err != nil {
		return tr, fmt.Errorf("read the warehouse table: %w", err)
	}
	rdr := newRowReader(rows, t, as)
	defer rdr.Release()
	txn := tbl.NewTransaction()
	switch {
	case t.Kind == star.Dimension && !p.wholeDimensions:
		tr.Operation = "overwrite"
		err = replaceRows(ctx, tbl, txn, rdr, replaced, props)
	case overwrite:
		tr.Operation = "overwrite"
		err = txn.Overwrite(ctx, rdr, props)
	default:
		tr.Operation = "append"
		err = appendRows(ctx, tbl, txn, rdr, props)
	}
	if err != nil {
		return tr, fmt.Errorf("%s: %w", tr.Operation, err)
	}
	committed, err := txn.Commit(ctx)
	if err != nil {
		return tr, fmt.Errorf("commit %s: %w", tr.Operation, err)
	}
	*tbl = *committed
	tr.Rows = rdr.Rows()
	if committed.CurrentSnapshot() == nil {
		return tr, nil // nothing written to a table that had nothing
	}
	tr.Snapshot = committed.CurrentSnapshot().SnapshotID
	if p.BeforeRecord != nil {
		if err := p.BeforeRecord(last.ID, t.Name); err != nil {
			return tr, err
		}
	}
	for _, b := range rest {
		if err := p.record(ctx, b, t.Name, tr.Snapshot, tr.Operation, tr.Rows); err != nil {
			return tr, err
		}
	}
	return tr, nil
}

// record says that snapshot holds batch b of table.
func (p *Publisher) record(ctx context.Context, b Batch, table string, snapshot int64, op string, rows int64) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO tote.iceberg_snapshots (batch_id, table_name, snapshot_id, operation, rows)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, b.ID, table, snapshot, op, rows)
	if err != nil {
		return fmt.Errorf("record snapshot %d of batch %s: %w", snapshot, b.ID, err)
	}
	return nil
}

// touched returns, for each star table the given batches changed as far
// as the ledger and the placeholders say, the newest of those batches'
// sequence numbers: those with rows in their files or deletions, and the
// dimensions that got or lost a placeholder row; the calendar (whose
// placeholder days are not recorded) whenever a fact did.
func (p *Publisher) touched(ctx context.Context, batches []Batch) (map[string]uint64, error) {
	ids := make([]string, len(batches))
	for i, b := range batches {
		ids[i] = b.ID
	}
	rows, err := p.pool.Query(ctx, `SELECT t, max(seq) FROM (
    SELECT jsonb_object_keys(tables) AS t, seq FROM tote.load_ledger WHERE batch_id = ANY($1)
    UNION ALL SELECT jsonb_object_keys(deleted), seq FROM tote.load_ledger WHERE batch_id = ANY($1)
    UNION ALL SELECT p.dim_table, l.seq FROM tote.placeholders p
        JOIN tote.load_ledger l ON l.batch_id IN (p.batch_id, p.resolved_batch)
        WHERE l.batch_id = ANY($1)
) x GROUP BY t`, ids)
	if err != nil {
		return nil, fmt.Errorf("publish to iceberg: read what the batches changed: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("publish to iceberg: read what the batches changed: %w", err)
		}
		out[name] = max(out[name], uint64(seq))
		if t, err := star.Lookup(name); err == nil && t.Kind == star.Fact {
			out["dim_date"] = max(out["dim_date"], uint64(seq))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("publish to iceberg: read what the batches changed: %w", err)
	}
	return out, nil
}

// appendBuffer is how many records the Parquet writer of an append may
// have queued: one being written, one waiting (iceberg-go's default, 64
// records of batchRows rows, is most of a table).
const appendBuffer = 2

// appendRows writes rdr's rows (in appendOrder: by partition) as new data
// files of tbl and adds them to txn. iceberg-go's Transaction.Append keeps
// a Parquet writer open for every partition it has seen, each holding its
// row group, until the last row: the clustered write keeps one open at a
// time, closing a partition's files when the next partition starts, so an
// append holds about one row group and a few records, whatever the
// number of months.
func appendRows(ctx context.Context, tbl *table.Table, txn *table.Transaction, rdr *rowReader, props iceberg.Properties) error {
	files, err := writeRows(ctx, tbl, rdr)
	if err != nil {
		return err
	}
	// The files are new (their names are this write's): no need to read
	// every manifest to check they are not in the table already. Append
	// sets no name mapping; neither does this.
	return txn.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
}

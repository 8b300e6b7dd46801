package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/star"
)

// Load migrates the warehouse (unless w is Premigrated), then loads every
// committed processed batch that its ledger does not list, in sequence
// order, each in one transaction. It stops at the first batch that fails:
// nothing of that batch is loaded, and the batches loaded before it,
// listed in the Result, stay loaded.
func (w *Warehouse) Load(ctx context.Context, lk *lake.Lake) (_ Result, err error) {
	defer func() { err = tote.At(err, tote.Where{Stage: tote.Load}) }()
	start := time.Now()
	log := w.log
	res := Result{Batches: []BatchResult{}}
	if !w.premigrated {
		if err := w.Migrate(ctx); err != nil {
			return res, err
		}
	}
	todo, newest, err := w.toLoad(ctx, lk)
	if err != nil {
		return res, err
	}

	for _, m := range todo {
		if m.Seq < newest {
			log.Warn("loading a processed batch older than one already loaded (committed late?)",
				"batch", m.ID, "seq", m.Seq, "newest_loaded_seq", newest)
		}
		br, done, err := w.loadBatch(ctx, lk, m)
		if err != nil {
			res.Elapsed = time.Since(start)
			return res, batchError(tote.At(err, tote.Where{Stage: tote.Load, Batch: m.ID}), res.Batches)
		}
		if done {
			res.Batches = append(res.Batches, br)
			newest = max(newest, m.Seq)
		}
	}
	res.Elapsed = time.Since(start)
	if len(res.Batches) > 0 {
		log.Info("loaded processed batches", "batches", len(res.Batches), "rows", res.Rows(),
			"inserted", res.Inserted(), "updated", res.Updated(), "seconds", res.Elapsed.Seconds())
	}
	return res, nil
}

// toLoad returns the processed batches the ledger does not list, in
// sequence order, and the newest batch number it does. Batches are
// numbered without gaps and loaded in order, so while the ledger holds
// batches 1 to n it reads only the manifests after n: a run's cost does not
// grow with the lake's history. A ledger with gaps (a batch committed late,
// which exclusive commits should prevent) gets every manifest compared.
func (w *Warehouse) toLoad(ctx context.Context, lk *lake.Lake) ([]lake.Manifest, uint64, error) {
	var count, newest int64
	var newestID string
	if err := w.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq), 0),
		coalesce((SELECT batch_id FROM tote.load_ledger ORDER BY seq DESC LIMIT 1), '') FROM tote.load_ledger`).Scan(&count, &newest, &newestID); err != nil {
		return nil, 0, fmt.Errorf("read load ledger: %w", err)
	}
	// The newest batch loaded must still be the lake's: a processed zone
	// rewritten since is found by comparing every batch, below.
	same := newest == 0
	if newest > 0 {
		m, err := lk.Batch(ctx, lake.Processed, strconv.FormatInt(newest, 10))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("read processed batch %d: %w", newest, err)
		}
		same = err == nil && m.ID == newestID
	}
	if count == newest && same {
		todo, err := lk.BatchesAfter(ctx, lake.Processed, uint64(newest))
		if err != nil {
			return nil, 0, fmt.Errorf("list processed batches: %w", err)
		}
		w.log.Debug("processed batches", "loaded", count, "to_load", len(todo))
		return todo, uint64(newest), nil
	}
	batches, err := lk.Batches(ctx, lake.Processed)
	if err != nil {
		return nil, 0, fmt.Errorf("list processed batches: %w", err)
	}
	ledger, err := w.Loaded(ctx)
	if err != nil {
		return nil, 0, err
	}
	loaded := make(map[string]bool, len(ledger))
	for _, e := range ledger {
		loaded[e.Batch] = true
	}
	var todo []lake.Manifest
	for _, m := range batches {
		if !loaded[m.ID] {
			todo = append(todo, m)
		}
	}
	w.log.Debug("processed batches", "committed", len(batches), "loaded", len(ledger), "to_load", len(todo), "compared", "all")
	return todo, uint64(newest), nil
}

// batchError adds to the failure to load a batch which batches loaded
// before it stay loaded. err must carry its stage and batch already: the
// note is written after them.
func batchError(err error, before []BatchResult) error {
	switch len(before) {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w (batch %s, loaded before it, stays loaded)", err, before[0].Batch)
	}
	return fmt.Errorf("%w (the %d batches loaded before it, %s to %s, stay loaded)",
		err, len(before), before[0].Batch, before[len(before)-1].Batch)
}

// Rebuild fills an empty warehouse from the lake: it refuses a database
// that has any star table or tote's own tables, unless replace is set, in
// which case it drops them first; then it migrates and loads every
// processed batch. The result has the same rows, surrogate keys included,
// as the warehouse that loaded the same batches over time.
func (w *Warehouse) Rebuild(ctx context.Context, lk *lake.Lake, replace bool) (Result, error) {
	found, err := inspect(ctx, w.pool)
	if err != nil {
		return Result{}, fmt.Errorf("rebuild warehouse: %w", err)
	}
	var tables []string
	for _, t := range star.Tables {
		if found[t.Name] != nil {
			tables = append(tables, t.Name)
		}
	}
	version, err := schemaVersion(ctx, w.pool)
	if err != nil {
		return Result{}, fmt.Errorf("rebuild warehouse: %w", err)
	}
	var batches int
	if version >= 2 {
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM tote.load_ledger`).Scan(&batches); err != nil {
			return Result{}, fmt.Errorf("rebuild warehouse: %w", err)
		}
	}
	if len(tables) > 0 || version > 0 {
		var what []string
		if len(tables) > 0 {
			what = append(what, "star tables "+strings.Join(tables, ", "))
		}
		if version > 0 {
			what = append(what, fmt.Sprintf("tote's tables, with %d loaded batches in tote.load_ledger", batches))
		}
		if !replace {
			return Result{}, fmt.Errorf("rebuild warehouse: refused: the database is not empty (it has %s); "+
				"rebuild into a new, empty database, give --replace to drop them first, or load new batches into this one with tote run",
				strings.Join(what, " and "))
		}
		w.log.Warn("rebuild: dropping what the warehouse holds", "it_has", strings.Join(what, " and "))
		if err := w.drop(ctx, tables); err != nil {
			return Result{}, fmt.Errorf("rebuild warehouse: %w", err)
		}
	}
	c := *w // the tables just dropped: migrate whatever w is
	c.premigrated = false
	return c.Load(ctx, lk)
}

// drop removes the star tables named and tote's schema, in one transaction.
func (w *Warehouse) drop(ctx context.Context, tables []string) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, t := range tables {
		if _, err := tx.Exec(ctx, "DROP TABLE "+ident(t)+" CASCADE"); err != nil {
			return fmt.Errorf("drop %s: %w", t, err)
		}
	}
	if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS tote CASCADE"); err != nil {
		return fmt.Errorf("drop schema tote: %w", err)
	}
	return tx.Commit(ctx)
}

// AdoptLake makes the warehouse follow another lake (or its own lake's
// processed zone, rewritten): the ledger of the batches loaded so far moves
// to tote.load_ledger_history, so that the next Load loads the lake's
// batches from its first. Facts already here are the same versions (same
// source id, last_updated and source_xmin) and are not loaded twice;
// dimensions take the lake's current state.
func (w *Warehouse) AdoptLake(ctx context.Context) error {
	if err := w.Migrate(ctx); err != nil {
		return err
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("adopt lake: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, loadLock); err != nil {
		return fmt.Errorf("adopt lake: lock: %w", err)
	}
	tag, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM tote.load_ledger RETURNING batch_id, seq, loaded_at, rows, tables, newest_change, deleted)
INSERT INTO tote.load_ledger_history (batch_id, seq, loaded_at, rows, tables, newest_change, deleted) SELECT * FROM moved`)
	if err != nil {
		return fmt.Errorf("adopt lake: archive the ledger: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("adopt lake: %w", err)
	}
	w.log.Info("the warehouse follows a new lake: the old ledger is in tote.load_ledger_history", "batches", tag.RowsAffected())
	return nil
}

// loadBatch loads processed batch m in one transaction, with its ledger
// row. It reports false, and does nothing, if another loader has loaded the
// batch in the meantime.
func (w *Warehouse) loadBatch(ctx context.Context, lk *lake.Lake, m lake.Manifest) (BatchResult, bool, error) {
	start := time.Now()
	files := make(map[string]lake.File, len(m.Files))
	for _, f := range m.Files {
		if _, err := star.Lookup(f.Table); err != nil && f.Table != lake.RejectsTable && f.Table != star.Deletions.Name {
			return BatchResult{}, false, fmt.Errorf("%s: %w", f.Path, err)
		}
		if _, dup := files[f.Table]; dup {
			return BatchResult{}, false, fmt.Errorf("%s: the batch has two files of table %s", f.Path, f.Table)
		}
		files[f.Table] = f
	}

	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return BatchResult{}, false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return BatchResult{}, false, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, loadLock); err != nil {
		return BatchResult{}, false, fmt.Errorf("lock: %w", err)
	}
	// Under the lock, the ledger is final: another loader may have just
	// loaded this batch.
	var other string
	err = tx.QueryRow(ctx, `SELECT batch_id FROM tote.load_ledger WHERE batch_id = $1 OR seq = $2`, m.ID, int64(m.Seq)).Scan(&other)
	switch {
	case err == nil && other == m.ID:
		w.log.Info("processed batch already loaded by another loader", "batch", m.ID)
		return BatchResult{}, false, nil
	case err == nil:
		return BatchResult{}, false, fmt.Errorf("the ledger says batch %s was loaded as number %d: "+
			"the processed zone was rewritten since, or this is another lake; build a warehouse from it with tote rebuild "+
			"(into an empty database, or --replace), or load it into this one with tote load --adopt-lake "+
			"(the rows already here are recognised, not doubled)", other, m.Seq)
	case !errors.Is(err, pgx.ErrNoRows):
		return BatchResult{}, false, fmt.Errorf("read load ledger: %w", err)
	}

	br := BatchResult{Batch: m.ID, Seq: m.Seq, Tables: []TableResult{}}
	perTable := map[string]int64{}
	var newest *time.Time // the newest change the batch brings
	for _, t := range star.Tables {
		f, ok := files[t.Name]
		if !ok {
			continue
		}
		tr, err := w.loadTable(ctx, tx, lk, m, f, t)
		if err != nil {
			return BatchResult{}, false, tote.At(err, tote.Where{Table: t.Name})
		}
		br.Tables = append(br.Tables, tr)
		perTable[t.Name] = tr.Rows
		if !tr.newest.IsZero() && (newest == nil || tr.newest.After(*newest)) {
			newest = &tr.newest
		}
	}
	deleted := map[string]int64{}
	if f, ok := files[star.Deletions.Name]; ok {
		if deleted, err = w.loadDeletions(ctx, tx, lk, m, f); err != nil {
			return BatchResult{}, false, err
		}
		for _, t := range star.Tables {
			n, ok := deleted[t.Name]
			if !ok {
				continue
			}
			if i := slices.IndexFunc(br.Tables, func(tr TableResult) bool { return tr.Table == t.Name }); i >= 0 {
				br.Tables[i].Deleted = n
			} else {
				br.Tables = append(br.Tables, TableResult{Table: t.Name, Deleted: n})
			}
		}
		slices.SortStableFunc(br.Tables, func(a, b TableResult) int { return tableOrder(a.Table) - tableOrder(b.Table) })
	}
	if f, ok := files[lake.RejectsTable]; ok {
		if br.Rejected, br.Resolved, err = loadRejects(ctx, tx, lk, m, f); err != nil {
			return BatchResult{}, false, tote.At(err, tote.Where{Table: "tote.rejects"})
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tote.load_ledger (batch_id, seq, rows, tables, newest_change, deleted) VALUES ($1, $2, $3, $4, $5, $6)`,
		m.ID, int64(m.Seq), br.Rows(), perTable, newest, deleted); err != nil {
		return BatchResult{}, false, fmt.Errorf("record in load ledger: %w", err)
	}
	// A notice to listeners (dashboards, in this process or another) once
	// the batch commits: what they derive from the facts, they bring up to
	// date after, outside this transaction (docs/decisions/0011).
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, LoadedChannel, m.ID); err != nil {
		return BatchResult{}, false, fmt.Errorf("notify: %w", err)
	}
	if w.BeforeCommit != nil {
		w.BeforeCommit(m.ID)
	}
	if err := tx.Commit(ctx); err != nil {
		return BatchResult{}, false, fmt.Errorf("commit: %w", err)
	}
	conn.Release() // the checks take connections of their own
	unchecked := map[string][]string{}
	for _, tr := range br.Tables {
		if len(tr.unchecked) > 0 {
			unchecked[tr.Table] = tr.unchecked
		}
	}
	if err := w.checkForeignKeys(ctx, m.ID, unchecked); err != nil {
		// The batch is loaded; the next migration checks them again.
		return br, true, fmt.Errorf("batch %s loaded, but its facts' foreign keys are not checked yet (the next run checks them): %w", m.ID, err)
	}
	br.Elapsed = time.Since(start)
	w.log.Info("loaded processed batch", "batch", m.ID, "seq", m.Seq, "rows", br.Rows(), "deleted", br.Deleted(),
		"seconds", br.Elapsed.Seconds())
	return br, true, nil
}

// loadTable stages file f, table t's rows of batch m, and merges them
// into the table.
func (w *Warehouse) loadTable(ctx context.Context, tx pgx.Tx, lk *lake.Lake, m lake.Manifest, f lake.File, t star.Table) (TableResult, error) {
	start := time.Now()
	sql := loadSQL[t.Name]
	var empty bool
	if err := tx.QueryRow(ctx, sql.empty).Scan(&empty); err != nil {
		return TableResult{}, fmt.Errorf("look for rows: %w", err)
	}
	if empty && f.KeyOrdered {
		tr, ok, err := w.copyStraight(ctx, tx, lk, m, f, t)
		if err != nil || ok {
			return tr, err
		}
	}
	src, err := openProcessed(ctx, lk, m, f, t)
	if err != nil {
		return TableResult{}, err
	}
	defer src.close()

	if _, err := tx.Exec(ctx, sql.create); err != nil {
		return TableResult{}, fmt.Errorf("create staging table: %w", err)
	}
	staged, err := postgres.CopyFromBinary(ctx, tx.Conn(), sql.stage, sql.copyNames, src.next)
	if err != nil {
		return TableResult{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	stagedIn := time.Since(start)
	defer func() {
		w.log.Debug("loaded table", "table", t.Name, "rows", staged,
			"stage_seconds", stagedIn.Seconds(), "merge_seconds", (time.Since(start) - stagedIn).Seconds())
	}()
	tr := TableResult{Table: t.Name, Rows: staged}
	tr.newest, _ = src.newest()
	switch {
	case empty && t.Kind == star.Dimension:
		tag, err := tx.Exec(ctx, sql.first)
		if err != nil {
			return TableResult{}, fmt.Errorf("merge: %w", err)
		}
		tr.Inserted = tag.RowsAffected()
	case t.Kind == star.Dimension:
		if err := tx.QueryRow(ctx, sql.merge).Scan(&tr.Inserted, &tr.Updated); err != nil {
			return TableResult{}, fmt.Errorf("merge: %w", err)
		}
		if err := resolvePlaceholders(ctx, tx, t, m.ID); err != nil {
			return TableResult{}, err
		}
	default:
		// A row whose dimension row is missing makes a foreign key refuse
		// the rows: placeholders, and again (decision 0013).
		if err := w.keepForeignKeys(ctx, tx, t, true, m.ID, func(tx pgx.Tx) error {
			if m.Corrective && !empty {
				tag, err := tx.Exec(ctx, sql.correct)
				if err != nil {
					return fmt.Errorf("correct: %w", err)
				}
				tr.Updated = tag.RowsAffected()
			}
			var err error
			switch {
			case empty:
				tr.Inserted, tr.unchecked, err = insertFirst(ctx, tx, sql, t, staged)
			case m.Full:
				var tag pgconn.CommandTag
				tag, err = tx.Exec(ctx, sql.full)
				tr.Inserted = tag.RowsAffected()
			default:
				var tag pgconn.CommandTag
				tag, err = tx.Exec(ctx, sql.merge)
				tr.Inserted = tag.RowsAffected()
			}
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			if (m.Full || m.Corrective) && !empty {
				tag, err := tx.Exec(ctx, sql.back)
				if err != nil {
					return fmt.Errorf("insert the rows back after their deletion: %w", err)
				}
				tr.Inserted += tag.RowsAffected()
			}
			return nil
		}); err != nil {
			return TableResult{}, err
		}
		if tr.Inserted > 0 {
			if _, err := tx.Exec(ctx, sql.sequence); err != nil {
				return TableResult{}, fmt.Errorf("move surrogate sequence on: %w", err)
			}
		}
	}
	tr.Elapsed = time.Since(start)
	return tr, nil
}

// loadDeletions loads file f, batch m's deletions (star.Deletions), into
// the tables it names, after the batch's rows: a fact gets a deletion
// version of each id it holds whose newest version is not one already, a
// dimension flags the rows of its ids. It returns how many of each were
// made, by star table (none for a table that changed nothing).
func (w *Warehouse) loadDeletions(ctx context.Context, tx pgx.Tx, lk *lake.Lake, m lake.Manifest, f lake.File) (map[string]int64, error) {
	start := time.Now()
	src, err := openProcessed(ctx, lk, m, f, star.Deletions)
	if err != nil {
		return nil, tote.At(err, tote.Where{Table: star.Deletions.Name})
	}
	defer src.close()
	if _, err := tx.Exec(ctx, deletedStageSQL); err != nil {
		return nil, fmt.Errorf("create the deletions' staging table: %w", err)
	}
	staged, err := postgres.CopyFromBinary(ctx, tx.Conn(), deletedStage, append(star.Deletions.ColumnNames(), ordinalColumn), src.next)
	if err != nil {
		return nil, tote.At(fmt.Errorf("%s: %w", f.Path, err), tote.Where{Table: star.Deletions.Name})
	}
	out := map[string]int64{}
	for _, t := range star.Tables {
		sql := loadSQL[t.Name]
		if sql.deleted == "" {
			continue
		}
		var n int64
		var err error
		if t.Kind == star.Fact {
			// A deletion version refers to what the version it copies
			// does, and to the day it was seen, which the transform puts in
			// the batch's calendar; placeholders all the same if a key
			// refuses it (decision 0013).
			err = w.keepForeignKeys(ctx, tx, t, false, m.ID, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, sql.deleted, t.Name, m.ID)
				n = tag.RowsAffected()
				return err
			})
		} else {
			var tag pgconn.CommandTag
			tag, err = tx.Exec(ctx, sql.deleted, t.Name)
			n = tag.RowsAffected()
		}
		if err != nil {
			return nil, tote.At(fmt.Errorf("deletions: %w", err), tote.Where{Table: t.Name})
		}
		if n > 0 {
			out[t.Name] = n
			if t.Kind == star.Fact {
				if _, err := tx.Exec(ctx, sql.sequence); err != nil {
					return nil, tote.At(fmt.Errorf("move surrogate sequence on: %w", err), tote.Where{Table: t.Name})
				}
			}
		}
	}
	w.log.Debug("loaded deletions", "rows", staged, "deleted", out, "seconds", time.Since(start).Seconds())
	return out, nil
}

// tableOrder is star table name's place in star.Tables.
func tableOrder(name string) int {
	return slices.IndexFunc(star.Tables, func(t star.Table) bool { return t.Name == name })
}

// copyStraight loads file f, whose rows are in key order (say the
// manifest), into t's empty table with one COPY: no staging table, no
// merge. In key order, the rows are distinct versions and their ordinals
// are the surrogate keys the merge would have given them. The file is
// checked as it goes: if a row is out of order after all, the copy is
// rolled back to a savepoint and copyStraight reports false, for the load
// to stage the file instead.
func (w *Warehouse) copyStraight(ctx context.Context, tx pgx.Tx, lk *lake.Lake, m lake.Manifest, f lake.File, t star.Table) (TableResult, bool, error) {
	start := time.Now()
	sql := loadSQL[t.Name]
	src, err := openProcessed(ctx, lk, m, f, t)
	if err != nil {
		return TableResult{}, false, err
	}
	defer src.close()
	if !src.straightInto(t) {
		return TableResult{}, false, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return TableResult{}, false, fmt.Errorf("savepoint: %w", err)
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }()
	keys, err := dropUniqueKeys(ctx, sp, sql, f.Rows)
	if err != nil {
		return TableResult{}, false, err
	}
	// The foreign keys come off too: checking them row by row costs many
	// times the copy, and nothing is staged to find missing dimension rows
	// in first. They come back unchecked (NOT VALID), and are checked in
	// one pass each after the batch commits (decisions 0013 and 0021).
	fks, err := dropForeignKeys(ctx, sp, t)
	if err != nil {
		return TableResult{}, false, err
	}
	n, err := postgres.CopyFromBinary(ctx, sp.Conn(), t.Name, sql.straightNames, src.next)
	if errors.Is(err, errNotInKeyOrder) {
		w.log.Warn("processed file not in key order after all: staging it", "table", t.Name, "batch", m.ID, "error", err)
		return TableResult{}, false, nil
	}
	if err != nil {
		return TableResult{}, false, fmt.Errorf("%s: %w", f.Path, err)
	}
	if err := addUniqueKeys(ctx, sp, sql, keys); err != nil {
		return TableResult{}, false, err
	}
	if err := addForeignKeysUnchecked(ctx, sp, sql, fks); err != nil {
		return TableResult{}, false, err
	}
	if t.Kind == star.Fact && n > 0 {
		if _, err := sp.Exec(ctx, sql.sequence); err != nil {
			return TableResult{}, false, fmt.Errorf("move surrogate sequence on: %w", err)
		}
	}
	if err := sp.Commit(ctx); err != nil {
		return TableResult{}, false, fmt.Errorf("release savepoint: %w", err)
	}
	w.log.Debug("copied table straight", "table", t.Name, "rows", n, "seconds", time.Since(start).Seconds())
	tr := TableResult{Table: t.Name, Rows: n, Inserted: n, Elapsed: time.Since(start), unchecked: keyNames(fks)}
	tr.newest, _ = src.newest()
	return tr, true, nil
}

// bulkRows is the size of a first load from which a fact's unique key is
// dropped during the insert and built afterwards.
const bulkRows = 50_000

// insertFirst inserts the staged rows of fact t into its empty table,
// without its unique and foreign keys while it does if the batch is large.
// The foreign keys come back unchecked: it returns their names, for
// checkForeignKeys after the batch commits.
func insertFirst(ctx context.Context, tx pgx.Tx, sql tableSQL, t star.Table, staged int64) (int64, []string, error) {
	keys, err := dropUniqueKeys(ctx, tx, sql, staged)
	if err != nil {
		return 0, nil, err
	}
	var fks []uniqueKey
	if staged >= bulkRows {
		if fks, err = dropForeignKeys(ctx, tx, t); err != nil {
			return 0, nil, err
		}
	}
	tag, err := tx.Exec(ctx, sql.first)
	if err != nil {
		return 0, nil, err
	}
	if err := addUniqueKeys(ctx, tx, sql, keys); err != nil {
		return 0, nil, err
	}
	return tag.RowsAffected(), keyNames(fks), addForeignKeysUnchecked(ctx, tx, sql, fks)
}

// uniqueKey is a table's unique constraint, or an index that backs no
// constraint, by name and definition.
type uniqueKey struct {
	name, def  string
	constraint bool
}

// drop is the statement that drops k from table.
func (k uniqueKey) drop(table string) string {
	if k.constraint {
		return "ALTER TABLE " + table + " DROP CONSTRAINT " + pgx.Identifier{k.name}.Sanitize()
	}
	return "DROP INDEX " + pgx.Identifier{k.name}.Sanitize()
}

// add is the statement that adds k back to table.
func (k uniqueKey) add(table string) string {
	if k.constraint {
		return "ALTER TABLE " + table + " ADD CONSTRAINT " + pgx.Identifier{k.name}.Sanitize() + " " + k.def
	}
	return k.def
}

// dropUniqueKeys drops a fact's unique keys and its other indexes but the
// primary key before a first load of rows rows, if that is large enough to
// pay, and returns them for addUniqueKeys to add back after, in the same
// transaction: the rows are the same, adding a key checks it as inserting
// would have, and building an index once is much cheaper than growing it
// row by row. Dimensions keep theirs (a primary key).
func dropUniqueKeys(ctx context.Context, tx pgx.Tx, sql tableSQL, rows int64) ([]uniqueKey, error) {
	if sql.keys == "" || rows < bulkRows {
		return nil, nil
	}
	list, err := tx.Query(ctx, sql.keys)
	if err != nil {
		return nil, fmt.Errorf("list unique keys: %w", err)
	}
	keys, err := pgx.CollectRows(list, func(r pgx.CollectableRow) (uniqueKey, error) {
		var k uniqueKey
		return k, r.Scan(&k.name, &k.def, &k.constraint)
	})
	if err != nil {
		return nil, fmt.Errorf("list unique keys: %w", err)
	}
	for _, k := range keys {
		if _, err := tx.Exec(ctx, k.drop(sql.table)); err != nil {
			return nil, fmt.Errorf("drop %s: %w", k.name, err)
		}
	}
	if len(keys) > 0 {
		// The sort that builds each key back gets room enough to run in
		// memory at any scale this machine class loads in one go.
		if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '256MB'`); err != nil {
			return nil, fmt.Errorf("set maintenance_work_mem: %w", err)
		}
	}
	return keys, nil
}

// addForeignKeysUnchecked adds back the foreign keys dropForeignKeys
// dropped, NOT VALID: they hold for the rows written from now on, and
// checkForeignKeys checks the rows already there.
func addForeignKeysUnchecked(ctx context.Context, tx pgx.Tx, sql tableSQL, fks []uniqueKey) error {
	for _, k := range fks {
		if _, err := tx.Exec(ctx, k.add(sql.table)+" NOT VALID"); err != nil {
			return fmt.Errorf("add %s back: %w", k.name, err)
		}
	}
	return nil
}

// keyNames returns the keys' names.
func keyNames(keys []uniqueKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.name)
	}
	return out
}

// addUniqueKeys adds back the keys and indexes dropUniqueKeys dropped.
func addUniqueKeys(ctx context.Context, tx pgx.Tx, sql tableSQL, keys []uniqueKey) error {
	for _, k := range keys {
		if _, err := tx.Exec(ctx, k.add(sql.table)); err != nil {
			return fmt.Errorf("add %s back: %w", k.name, err)
		}
	}
	return nil
}

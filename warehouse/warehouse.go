// Package warehouse owns the star-schema warehouse (PostgreSQL): its schema
// and the numbered migrations that create it, loading the lake's processed
// batches into it exactly once, and the ledger that records what is loaded.
//
// It does not transform rows (see transform) and knows nothing of the
// source: what the tables hold is the star package's model, and the rows
// come from the processed zone of the lake. Nor does it own runs: its
// migrations create the run history's table, which package pipeline
// writes and reads, with the run lock.
//
// # Schema
//
// The star tables are created by migration 0001 exactly as star.Tables
// defines them, in the connection's current schema (normally public):
// dimensions keyed by their id, facts under a serial surrogate key with a
// unique key on the source row version (source id, last_updated_date,
// last_updated_time). Migration 0002 creates the schema tote with the load
// ledger and the run history. Applied migrations are recorded in
// tote.schema_migrations. A star table that exists before tote creates it
// is adopted if it matches the model and refused, with every difference
// named, if it does not; Check catches a table altered later. After the
// migrations, the migrator gives the facts their foreign keys to the
// dimensions and every star table and column its comment, both from the
// model (bi.go, for BI tools; GrantReader makes a role that reads them).
// Other parts that keep objects of their own in the warehouse (the
// dashboard's summaries) bring them as a Group, a line of migrations that
// MigrateGroup applies under the same lock and records in
// tote.group_migrations.
//
// # Exactly once
//
// Each processed batch is loaded in one transaction that also inserts its
// ledger row, under an advisory lock that serializes loaders, and only if
// the ledger does not already hold it (checked again under the lock). A
// crash or error leaves no trace of the batch, and the next Load loads it
// whole. Dimensions are loaded before facts. A dimension row is upserted by
// its key, the last row of the file winning, and left alone when nothing
// changed; a fact row is inserted unless its version is already there, so a
// repeated version adds nothing.
//
// Surrogate keys are numbered by the loader, not by the sequence: each
// batch's new fact rows get the ids after the table's largest, in key
// order. Sequence values are not transactional, so numbering with nextval
// would leave gaps after a rolled-back load; numbering this way makes the
// ids a function of the batches and their order alone, and a warehouse
// rebuilt from the lake matches the original id for id. The sequence is
// moved past the largest id after each batch so that the column's default
// stays safe to use.
//
// # Deletions
//
// A processed batch's deletions file (star.Deletions) is loaded in the
// batch's transaction, after its rows. Each fact id in it gets a deletion
// version: the values of the id's newest version (the largest surrogate
// key), last_updated_date and _time when the deletion was seen,
// source_xmin 0, batch_id this batch, is_deleted true; numbered after the
// largest surrogate key, in id order, so that a rebuild numbers them the
// same. Its version key (id, stamp, source_xmin) is unique: 0 is no
// transaction's id (InvalidTransactionId), so no version read from the
// source has it, and two deletions of one id are seen by two extractions,
// at two times. An id whose newest version is a deletion already, or that
// the table never had, adds nothing. A dimension row of an id in it is
// flagged is_deleted and keeps its values; the row is upserted as usual if
// its entity comes back. History is never rewritten: the facts' current
// views (views.go) pick the newest version of each id, deletions left
// out.
//
// A batch of a full extraction (lake.Manifest.Full) holds every source
// row: a fact version is added only if the id's newest version differs
// from it in more than where it came from (a source restored from a dump
// has other transaction ids). In such a batch, and in a corrective one, a
// row whose id's newest version is a deletion came back, and is added
// after it even if it is the very version it had before the deletion (a
// source restored from a physical copy keeps transaction ids): its
// source_xmin is then raised by 2^32 for each such version, which keeps
// the version key unique and the 32-bit xmin in its low bits.
package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/sum"
	"github.com/terrifictotes/tote/postgres"
)

// LoadedChannel is the PostgreSQL notification channel on which the load
// announces each batch it commits (the payload is the batch id): LISTEN
// tote_loaded to learn of new data without polling.
const LoadedChannel = "tote_loaded"

// Warehouse is the star-schema warehouse in one PostgreSQL database. It is
// safe for concurrent use; loads and migrations from any number of
// Warehouses, in any number of processes, take turns.
type Warehouse struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	owned bool // Close closes the pool

	// premigrated: Load does not migrate first (Premigrated).
	premigrated bool

	// BeforeCommit, if set, is called with a batch's id right before the
	// transaction that loads it commits. Tests set it to crash a load
	// there. Nil does nothing.
	BeforeCommit func(batch string)
}

// Open connects to the warehouse database at url, checking that it
// answers. Close closes the connections. A nil logger discards the logs.
func Open(ctx context.Context, url string, log *slog.Logger) (*Warehouse, error) {
	pool, err := postgres.Open(ctx, "warehouse", url)
	if err != nil {
		return nil, err
	}
	w := New(pool, log)
	w.owned = true
	return w, nil
}

// New returns the warehouse in pool's database. The caller keeps the pool:
// Close does not close it. A nil logger discards the logs.
func New(pool *pgxpool.Pool, log *slog.Logger) *Warehouse {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Warehouse{pool: pool, log: log}
}

// WithLogger returns a copy of w that logs to log: the same database and
// hooks, for a caller that adds context to the logs (a run, a stage).
// Closing the copy does nothing.
func (w *Warehouse) WithLogger(log *slog.Logger) *Warehouse {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := *w
	c.log, c.owned = log, false
	return &c
}

// Premigrated returns a copy of w whose Load does not migrate first, for a
// caller that has just migrated it (pipeline.Begin, before a run's first
// pass): checking the schema again moments later costs a dozen round trips
// and finds what the first check found.
func (w *Warehouse) Premigrated() *Warehouse {
	c := *w
	c.premigrated, c.owned = true, false
	return &c
}

// Close closes the connections if Open made them.
func (w *Warehouse) Close() {
	if w.owned {
		w.pool.Close()
	}
}

// Pool is the warehouse's connection pool, for readers with queries of
// their own (tote verify, the dashboard), which do not write the star
// schema, and for the run history and run lock (package pipeline).
func (w *Warehouse) Pool() *pgxpool.Pool { return w.pool }

// Ping checks that the warehouse database answers.
func (w *Warehouse) Ping(ctx context.Context) error { return w.pool.Ping(ctx) }

// Result says what a Load or Rebuild did.
type Result struct {
	// Batches are the batches loaded, in the order they were loaded. When
	// Load fails, they are the ones loaded before the failure, and they
	// stay loaded.
	Batches []BatchResult `json:"batches"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// BatchResult says what loading one processed batch did.
type BatchResult struct {
	Batch  string        `json:"batch"`
	Seq    uint64        `json:"seq"`
	Tables []TableResult `json:"tables"`
	// Rejected counts the quarantined rows recorded in tote.rejects, and
	// Resolved the earlier rejects marked resolved.
	Rejected int64         `json:"rejected,omitempty"`
	Resolved int64         `json:"resolved,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// TableResult says what one table's file of a batch did to the warehouse.
type TableResult struct {
	Table string `json:"table"`
	// Rows is the number of rows in the processed file.
	Rows int64 `json:"rows"`
	// Inserted rows are new dimension entities or new fact versions.
	Inserted int64 `json:"inserted"`
	// Updated rows are dimension entities that changed. Rows neither
	// inserted nor updated were already in the warehouse as they are.
	Updated int64 `json:"updated"`
	// Deleted counts the source rows deleted: a fact's deletion versions
	// added (besides Inserted), a dimension's rows flagged.
	Deleted int64         `json:"deleted,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`

	newest time.Time // a fact's newest last_updated in the file; zero if none
	// unchecked names the fact's foreign keys that a first load added
	// back NOT VALID, for checkForeignKeys once the batch commits.
	unchecked []string
}

// Rows is the number of rows in the processed files of the loaded batches.
func (r Result) Rows() int64 {
	return sum.Of(r.Batches, BatchResult.Rows)
}

// Inserted is the number of rows the loaded batches added to the warehouse.
func (r Result) Inserted() int64 {
	return sum.Of(r.Batches, func(b BatchResult) int64 {
		return sum.Of(b.Tables, func(t TableResult) int64 { return t.Inserted })
	})
}

// Updated is the number of dimension rows the loaded batches changed.
func (r Result) Updated() int64 {
	return sum.Of(r.Batches, func(b BatchResult) int64 {
		return sum.Of(b.Tables, func(t TableResult) int64 { return t.Updated })
	})
}

// Deleted is the number of deletions the loaded batches made (see
// TableResult.Deleted).
func (r Result) Deleted() int64 {
	return sum.Of(r.Batches, BatchResult.Deleted)
}

// Deleted is the number of deletions the batch made.
func (b BatchResult) Deleted() int64 {
	return sum.Of(b.Tables, func(t TableResult) int64 { return t.Deleted })
}

// Rows is the number of rows in the batch's processed files.
func (b BatchResult) Rows() int64 {
	return sum.Of(b.Tables, func(t TableResult) int64 { return t.Rows })
}

// LedgerEntry is one processed batch recorded as loaded.
type LedgerEntry struct {
	Batch    string    `json:"batch"`
	Seq      uint64    `json:"seq"`
	LoadedAt time.Time `json:"loaded_at"`
	// Rows is the number of rows in the batch's processed files, and
	// Tables the same per star table.
	Rows   int64            `json:"rows"`
	Tables map[string]int64 `json:"tables"`
	// Deleted is what the batch deleted, per star table (see
	// TableResult.Deleted).
	Deleted map[string]int64 `json:"deleted,omitempty"`
}

const loadedSQL = `SELECT batch_id, seq, loaded_at, rows, tables, deleted FROM tote.load_ledger ORDER BY seq`

// Loaded returns the batches recorded in the warehouse's ledger, in
// sequence order; none if the warehouse has not been migrated.
func (w *Warehouse) Loaded(ctx context.Context) ([]LedgerEntry, error) {
	if ok, err := w.migrated(ctx); !ok || err != nil {
		return nil, err
	}
	rows, err := w.pool.Query(ctx, loadedSQL)
	if err != nil {
		return nil, fmt.Errorf("read load ledger: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerEntry, error) {
		var e LedgerEntry
		var seq int64
		var tables, deleted []byte
		if err := r.Scan(&e.Batch, &seq, &e.LoadedAt, &e.Rows, &tables, &deleted); err != nil {
			return e, err
		}
		e.Seq = uint64(seq)
		if err := json.Unmarshal(tables, &e.Tables); err != nil {
			return e, fmt.Errorf("batch %s: tables: %w", e.Batch, err)
		}
		if err := json.Unmarshal(deleted, &e.Deleted); err != nil {
			return e, fmt.Errorf("batch %s: deleted: %w", e.Batch, err)
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read load ledger: %w", err)
	}
	return entries, nil
}

// Migrated reports whether the warehouse has every migration this tote
// knows (false before its first load), for readers of tote's tables kept by
// other packages (the run history, pipeline's).
func (w *Warehouse) Migrated(ctx context.Context) (bool, error) { return w.migrated(ctx) }

// migrated reports whether the warehouse has every migration this tote
// knows: readers of the ledger and the run history ask first, so that a
// warehouse not yet migrated (by a load) reads as empty rather than failing.
// A warehouse migrated by a newer tote is an error.
func (w *Warehouse) migrated(ctx context.Context) (bool, error) {
	v, err := schemaVersion(ctx, w.pool)
	if err != nil {
		return false, err
	}
	if latest := migrations[len(migrations)-1].version; v > latest {
		return false, fmt.Errorf("warehouse: it has schema version %d, newer than this tote knows (%d): upgrade tote", v, latest)
	}
	return v == migrations[len(migrations)-1].version, nil
}

// schemaVersion returns the newest migration applied to the warehouse, 0
// if none: the one probe of whether tote's tables are there.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var booted bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('tote.schema_migrations') IS NOT NULL`).Scan(&booted); err != nil {
		return 0, fmt.Errorf("warehouse: look for tote's tables: %w", err)
	}
	if !booted {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM tote.schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("warehouse: read tote.schema_migrations: %w", err)
	}
	return v, nil
}

// freshnessSQL is the newest change any loaded batch brought, from the
// ledger (and that of lakes followed before: the rows they loaded are
// still here), which the load records (migration 0010).
const freshnessSQL = `SELECT max(t) AT TIME ZONE 'UTC' FROM (
    SELECT max(newest_change) AS t FROM tote.load_ledger
    UNION ALL SELECT max(newest_change) FROM tote.load_ledger_history) f`

// NewestChange returns the time of the newest source change loaded into
// the warehouse, and false if nothing is loaded yet.
func (w *Warehouse) NewestChange(ctx context.Context) (time.Time, bool, error) {
	if ok, err := w.migrated(ctx); !ok || err != nil {
		return time.Time{}, false, err
	}
	var t *time.Time
	if err := w.pool.QueryRow(ctx, freshnessSQL).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("freshness: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

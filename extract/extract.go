// Package extract owns the first stage of the pipeline: reading the row
// versions of every totesys table that are new since the last committed
// extraction, and the rows deleted since, from one consistent snapshot, and
// writing them to the lake's raw zone as one batch.
//
// It does not interpret rows (see transform) and keeps no state of its own:
// where the next extraction starts is recorded in the latest raw manifest,
// so a run on a new machine or in a Lambda carries on where the last one
// stopped.
//
// # Never missing a row version: transaction ids, not clocks
//
// What is new is decided by which transaction wrote a row version, never by
// its last_updated stamp. The application stamps last_updated itself, from
// its own clock and time zone, and a transaction's rows become visible when
// it commits, not when it stamped them; a cursor on last_updated loses the
// rows of a writer whose clock is behind, of a session in another time
// zone, and of a transaction that stays open across an extraction (the
// classic cursor-boundary bug). Transaction ids have none of these faults.
//
// Every row version carries xmin, the id of the transaction that wrote it,
// and every snapshot has an xmin of its own: every transaction with a lower
// id (its subtransactions included, whose ids are higher than their
// parent's) had ended when the snapshot was taken. So a version visible to
// extraction k's snapshot S(k) whose xmin is below S(k-1).xmin was written
// by a transaction that had committed before S(k-1) was taken: it was
// visible to S(k-1) too, and extraction k-1 (or an earlier one, by the same
// argument) took it. Extraction k therefore reads only the versions whose
// xmin is at or above S(k-1).xmin: the horizon. That is a superset of what
// it must take: it also meets versions that an earlier extraction took
// because their transaction had committed, although an older one was still
// open. Each manifest lists those as (id, xmin) pairs, for the versions at
// or above its own snapshot's xmin, and the next extraction skips them. A
// version is taken once: never before it is visible, never again after. The
// list is the versions written since the oldest transaction that was open
// at the last extraction began: normally a second's worth, an hour's if a
// transaction stays open for an hour.
//
// This holds whatever the writers' clocks and time zones, without reading
// pg_stat_activity (no privilege beyond SELECT is needed), and on a hot
// standby, whose snapshots are made of the primary's transactions. It does
// not use pg_visible_in_snapshot on the previous snapshot, which would be
// wrong for subtransactions (a savepoint's id is not in a snapshot's list
// of running transactions) and on a standby (whose snapshots list none).
//
// Transaction ids are 32 bits and wrap around every 2^32 transactions;
// manifests hold them widened to 64 bits with their epoch (xid8), and rows
// are compared by age(xmin), PostgreSQL's own wraparound-safe distance from
// the current transaction id, so an extraction on either side of a
// wraparound reads the same versions. Frozen and bootstrap rows (xmin 1 or
// 2, as pg_upgrade can leave them) are infinitely old to age() and count as
// below every horizon. Since 9.4, freezing keeps a row's xmin, so a row
// frozen between two extractions is still read; a row frozen more than 2^32
// transactions ago shows an xmin that has come round again, and is taken a
// second time once in every 2^32 transactions: the load recognises it as the
// version it already holds (the same id, last_updated and 32-bit xmin) and
// adds nothing.
//
// # Deletions: the ids live at the last extraction
//
// A deleted row leaves no version to read, so deletions are found by
// comparing. Each raw batch records, for every table whose set changed,
// the ids live in the source at its snapshot (IDsTable: a compressed
// bitmap, a few hundred bytes for a dense table of millions of rows), and
// its state says which batch holds each table's current set. Call the set
// of the last extraction L, and N the ids of the versions this one reads
// (those at or above the horizon).
//
// Every id in the source now is in L or in N: a row not live at S(k-1) but
// visible to S(k) has a version that S(k-1) did not see, written by a
// transaction that had not committed when S(k-1) was taken, so at or above
// its xmin, by the argument above; such a version is in N. An id live at
// S(k-1) and still in the source is in L. So in any range r of ids,
//
//	count(source ∩ r) = |(L ∪ N) ∩ r| − |deleted ∩ r|
//
// exactly, in one snapshot, for r a range of ids or the whole table. The
// extraction's one pass over each table counts its rows, sums their ids
// and lists the ids of the new versions (SELECT count(*), sum(id),
// array_agg(id) FILTER (WHERE <the xmin filter>)), and reads those
// versions through the primary key. If the count is |L ∪ N|, nothing was
// deleted: the common case costs a count in the pass that was made anyway.
// If it is one less, the one id deleted is the difference between the
// sums of L ∪ N and of the source: it is taken if it is in L ∪ N, not in
// N, and a probe of the primary key finds it gone. Otherwise it counts the
// rows of each range of 2^rangeBits ids through the primary key (an
// index-only scan), and reads the ids only of the ranges whose count is
// below what L ∪ N says, to name the deleted ones. The new set is
// (L − deleted) ∪ N: the ids live at S(k). A row inserted and deleted between two extractions is
// in neither and leaves no trace; a row deleted and inserted again with
// the same id is a new version. A range that holds more rows than L ∪ N
// says has rows that came back without a new version (a source restored
// from a backup): they are counted (TableResult.Reappeared) and put in the
// new set, and a full extraction reads them. (As many rows back as gone
// leave the count equal, and one more gone than back can leave the sums
// naming one of the gone only: either way a full extraction, which a
// restore calls for, sets it right.)
//
// Rows in flight are never taken for deleted: a deletion not committed
// when the snapshot was taken leaves the row visible, and an insertion not
// committed leaves it invisible both to the count and to N. Each deletion
// becomes a tombstone in the batch (DeletedTable), stamped with the
// source's clock in the snapshot that no longer has the row. A batch with
// tombstones and no new versions is committed all the same.
//
// A batch that would delete more than Options.MaxDeleteFraction of a
// table's live rows, or all of them (a TRUNCATE, a restore, the wrong
// database), is not committed: the extraction returns a
// *MassDeletionError, and nothing is lost meanwhile, for the next
// extraction reads from the same horizon. An operator who means the
// deletions accepts them (Options.AcceptDeletes). Options.Full reads every
// row and tombstones every id of L the source lacks, to re-baseline after
// a restore or a failover that lost transactions. (A deletion made before
// the lake kept sets is in no L: tote verify --repair finds it, from the
// warehouse, and Correct tombstones it.)
//
// A lake written before tote kept these sets carries on: the first
// extraction after the upgrade reads each table's ids once (an index-only
// pass) in its own snapshot, and can tell no deletion that time.
//
// A source that moves backwards (a standby lagging behind the server the
// last extraction read) is detected by its WAL position, recorded in each
// manifest: the extraction commits nothing and says why, and the next one
// carries on. The cost of all this is one sequential scan of each table
// per extraction, with a cheap filter on xmin (xmin cannot be indexed), a
// count and a sum; and a pass over the primary key of a table that lost
// more than one row.
//
// Manifests written by the last_updated design (format 1) are carried on
// from by one extraction that applies their rule (last_updated at or after
// their time horizon, less the versions they list) to the versions at or
// above their snapshot's xmin, and records the new state.
//
// # Consistency and drift
//
// All tables are read in one REPEATABLE READ, READ ONLY transaction, so a
// batch is one instant of the source. Before reading, every table's columns
// are compared with the totesys model: a dropped or retyped model column,
// or a missing table, stops the extraction with a message naming each
// difference and the fix, and nothing is committed. A column the model
// lacks is carried instead, as its text, in a nullable column of the same
// name beside the model's, and reported once (Result.NewColumns):
// docs/decisions/0018-schema-evolution.md.
//
// # Batches
//
// A batch holds one zstd Parquet file per table that changed: the model's
// columns with their types kept exactly (see totesys.Table.Schema), and
// tote_xid, the 64-bit id of the transaction that wrote the version; and
// the extraction's own files, IDsTable and DeletedTable, when a set of
// live ids changed or rows were deleted. Rows are streamed from the
// database to the lake a row group at a time, so memory stays flat however
// large a table is. When nothing changed, no batch is committed. Two
// extractions at once cannot both commit: the manifest of batch n is
// created only if it does not exist.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/sum"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/totesys"
)

// DefaultMaxReplicaDelay is Options.MaxReplicaDelay's default.
const DefaultMaxReplicaDelay = 5 * time.Minute

// DefaultMaxDeleteFraction is Options.MaxDeleteFraction's default.
const DefaultMaxDeleteFraction = 0.5

// Options controls Run.
type Options struct {
	Logger *slog.Logger
	// Progress, if set, receives a line per table as it is read (for a terminal).
	Progress io.Writer
	// MaxReplicaDelay is how far a hot standby's replay may trail the WAL
	// it has received before the extraction reports it as far behind.
	// Zero means DefaultMaxReplicaDelay.
	MaxReplicaDelay time.Duration
	// Readers is how many connections read tables at once, all in the
	// same snapshot; zero means the number of CPUs, at most 4.
	Readers int
	// MaxDeleteFraction is the share of a table's live rows that one batch
	// may delete: an extraction that would delete more, or empty a table
	// the lake holds rows of, commits nothing and returns a
	// *MassDeletionError, unless the table is in AcceptDeletes. Zero means
	// DefaultMaxDeleteFraction.
	MaxDeleteFraction float64
	// AcceptDeletes names the source tables whose deletions this
	// extraction applies however many they are.
	AcceptDeletes []string
	// Full reads every row of every table, not only what is new, into one
	// batch marked lake.Manifest.Full, with a tombstone for every row the
	// lake holds live that the source does not; the sets of live ids are
	// rebuilt from what is read. For a re-baseline, e.g. after a restore.
	Full bool
	// Force makes MoveSource accept a source without comparing a sample
	// of its rows with the lake's.
	Force bool
	// Capture is how changes are found: CaptureXmin (the default, "")
	// by transaction ids in a pass over each table, CaptureLogical from
	// a logical replication slot (see logical.go).
	Capture string
	// Replication names the slot and publication of CaptureLogical.
	Replication replication.Config

	// Test hooks: called just before and just after a logical batch's
	// manifest is committed.
	beforeCommit, afterCommit func()
}

// validate checks the options and fills in the defaults.
func (o *Options) validate() error {
	if o.MaxReplicaDelay <= 0 {
		o.MaxReplicaDelay = DefaultMaxReplicaDelay
	}
	switch {
	case o.MaxDeleteFraction == 0:
		o.MaxDeleteFraction = DefaultMaxDeleteFraction
	case o.MaxDeleteFraction < 0 || o.MaxDeleteFraction > 1 || math.IsNaN(o.MaxDeleteFraction):
		return fmt.Errorf("the share of a table that an extraction may delete must be above 0 and at most 1, not %v", o.MaxDeleteFraction)
	}
	if err := CheckCapture(o.Capture); err != nil {
		return err
	}
	for _, t := range o.AcceptDeletes {
		if _, err := totesys.Lookup(t); err != nil {
			return fmt.Errorf("accept deletions: %w", err)
		}
	}
	return nil
}

// TableResult says what one table contributed to a batch.
type TableResult struct {
	Table       string        `json:"table"`
	Rows        int64         `json:"rows"`
	Bytes       int64         `json:"bytes"`        // written to the lake (compressed Parquet)
	SourceBytes int64         `json:"source_bytes"` // read from the source (binary values)
	Elapsed     time.Duration `json:"elapsed_ns"`
	// Late counts the versions taken that were stamped (last_updated)
	// more than a second before the previous extraction read the source,
	// by the source's clock; MaxLate is the largest such gap. A cursor on
	// last_updated would have lost them: they come from transactions open
	// across that extraction, or from writers whose clocks or time zones
	// differ from the server's.
	Late    int64         `json:"late,omitempty"`
	MaxLate time.Duration `json:"max_late_ns,omitempty"`
	// Deleted counts the table's rows found deleted: live at the last
	// extraction, gone from the source now (for Correct: tombstoned).
	Deleted int64 `json:"deleted,omitempty"`
	// Reappeared counts rows in the source that the lake holds as deleted,
	// or never saw, although no transaction since the last extraction
	// wrote them: a source restored from a backup. They are not read; a
	// full extraction (Options.Full) reads them again.
	Reappeared int64 `json:"reappeared,omitempty"`
}

// Result says what an extraction did.
type Result struct {
	Batch     string        `json:"batch,omitempty"` // empty when nothing was committed
	Seq       uint64        `json:"seq,omitempty"`
	Committed bool          `json:"committed"`
	Tables    []TableResult `json:"tables"`
	Snapshot  string        `json:"snapshot"`
	// Horizon is the xid horizon of this extraction's read: the versions
	// written by transactions from this id on were read.
	Horizon uint64 `json:"horizon"`
	// Source is what was read: the primary or a hot standby, and how far
	// a standby's replay is behind.
	Source Source `json:"source"`
	// Behind says the source was behind the last extraction's (a standby
	// lagging behind the server that was read before): nothing was read.
	Behind bool `json:"behind,omitempty"`
	// Full says the batch holds every row of the source (Options.Full).
	Full bool `json:"full,omitempty"`
	// NewColumns are the source columns beyond the model that this batch
	// is the first to carry (a column added to a source table): the raw
	// zone keeps them, the star schema does not read them. Each is
	// reported once, by the batch that first carries it.
	NewColumns []Carried `json:"new_columns,omitempty"`
	// Capture is CaptureLogical for a logical capture's extraction, and
	// LSN the end of the last source transaction the lake then holds.
	Capture string `json:"capture,omitempty"`
	LSN     string `json:"lsn,omitempty"`
	// IDSetBytes and DeletedBytes are the sizes of the batch's IDsTable
	// and DeletedTable files (0 when it has none).
	IDSetBytes   int64         `json:"id_set_bytes,omitempty"`
	DeletedBytes int64         `json:"deleted_bytes,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
}

// Rows is the number of row versions extracted.
func (r Result) Rows() int64 {
	return sum.Of(r.Tables, func(t TableResult) int64 { return t.Rows })
}

// Deleted is the number of rows found deleted (tombstones written).
func (r Result) Deleted() int64 {
	return sum.Of(r.Tables, func(t TableResult) int64 { return t.Deleted })
}

// Bytes is the size of the batch's files.
func (r Result) Bytes() int64 {
	return r.IDSetBytes + r.DeletedBytes + sum.Of(r.Tables, func(t TableResult) int64 { return t.Bytes })
}

// SourceBytes is the size of the values read from the source.
func (r Result) SourceBytes() int64 {
	return sum.Of(r.Tables, func(t TableResult) int64 { return t.SourceBytes })
}

// Run extracts the row versions new since the last committed raw batch,
// and the rows deleted since, into a new one, and commits it unless nothing
// changed (see Options.Full for reading everything).
func Run(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, opts Options) (Result, error) {
	if opts.Capture == CaptureLogical {
		return runLogical(ctx, pool, lk, opts)
	}
	if opts.Full {
		return run(ctx, pool, lk, opts, job{kind: full})
	}
	return run(ctx, pool, lk, opts, job{})
}

// MoveSource accepts a new source for the lake: the same data, moved (a
// dump and restore, a new cluster), whose system identifier or database
// differs from the one the lake was extracted from, so that extraction
// refuses it. It commits a raw batch with no rows whose state declares the
// new source's current rows already extracted (they are the ones the lake
// holds, if nothing was written between the last extraction and the move:
// tote verify checks that) and extractions carry on from it. It refuses a
// source that is the lake's already, and, unless opts.Force, a source
// that does not hold the rows the lake has, by a sample of ids per table
// (MoveMismatchError).
func MoveSource(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, opts Options) (Result, error) {
	return run(ctx, pool, lk, opts, job{kind: move})
}

// Corrections are what a corrective batch sends (see Correct), as source
// ids by table.
type Corrections struct {
	// Rows are sent again: their current versions.
	Rows map[string][]int64
	// Deleted are tombstoned: rows the warehouse holds and the source does
	// not.
	Deleted map[string][]int64
}

// Correct sends the current versions of the given rows again, and
// tombstones for the given rows that the source no longer holds, in a
// corrective raw batch, so that the warehouse can be repaired where it
// differs from the source (see tote verify). Rows changed since the last
// extraction, and rows deleted since (which the lake still holds live),
// are left to the next one; a row asked to be tombstoned that the source
// holds is not. The batch changes nothing of where extraction stands.
func Correct(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, c Corrections, opts Options) (Result, error) {
	return run(ctx, pool, lk, opts, job{kind: correct, fix: c})
}

// jobKind is what an extraction is for.
type jobKind int

const (
	normal  jobKind = iota // what is new since the last extraction
	move                   // accept a moved source: no rows, a new baseline
	correct                // send rows again, to repair the warehouse
	full                   // every row, and what the lake holds that the source does not
)

type job struct {
	kind jobKind
	fix  Corrections // correct
	// snapshot, if set, is an exported snapshot to read in (a replication
	// slot's), and lsn the slot's consistent point: the batch starts
	// logical capture there.
	snapshot string
	lsn      replication.LSN
}

func run(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, opts Options, j job) (_ Result, err error) {
	defer func() { err = tote.At(err, tote.Where{Stage: tote.Extract}) }()
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.validate(); err != nil {
		return Result{}, err
	}

	latest, err := lk.Latest(ctx, lake.Raw)
	if err != nil {
		return Result{}, err
	}
	var prev *State
	var seq uint64 = 1
	if latest != nil {
		s, err := LoadState(*latest)
		if err != nil {
			return Result{}, err
		}
		prev, seq = &s, latest.Seq+1
	}
	if j.kind == normal && prev != nil && prev.Capture == CaptureLogical {
		// Back from logical capture: its batches record no xid horizon to
		// carry on from, so this one reads everything in its own snapshot
		// (adding only what the lake lacks, tombstoning what it has extra).
		log.Info("the last extraction was by logical replication: this xmin extraction reads a full batch; drop the slot with tote capture drop")
		j.kind = full
	}
	if (j.kind == move || j.kind == correct) && (prev == nil || prev.Format < 2) {
		return Result{}, errors.New("the lake has no extraction of tote's current format to carry on from: run tote extract first")
	}
	// The ids the lake holds live, to tell deletions by (a move takes the
	// new source's as they are).
	live := map[string]*roaring.Bitmap{}
	if j.kind != move {
		if live, err = loadIDSets(ctx, lk, prev); err != nil {
			return Result{}, err
		}
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer conn.Release()
	// Where the source is, before the snapshot: the snapshot is at least
	// this new (see the package comment).
	before, err := sourceBefore(ctx, conn.Conn())
	if err != nil {
		return Result{}, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Result{}, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if j.snapshot != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+j.snapshot+"'"); err != nil { // the server's own name
			return Result{}, fmt.Errorf("read in the replication slot's snapshot: %w", err)
		}
	}
	snap, err := takeSnapshot(ctx, tx, before)
	if err != nil {
		return Result{}, err
	}
	res := Result{Seq: seq, Snapshot: snap.text, Source: snap.source, Full: j.kind == full}
	reportStandby(log, snap.source, opts.MaxReplicaDelay)
	if err := checkIdentity(prev, snap.source, j.kind == move); err != nil {
		return Result{}, err
	}
	behind := prev != nil && prev.Format >= 2 && snap.lsnBefore < prev.Source.lsn()
	if behind && j.kind == full {
		// A re-baseline takes the source as it is: after a failover that
		// lost transactions, or a restore, what the lake holds and the
		// source lacks is deleted (and held back if it is much).
		log.Warn("the source is behind the last extraction: a full extraction takes it as it is, and tombstones the rows the lake "+
			"holds that it lacks; if it is a standby still catching up, wait for it instead",
			"source_lsn", snap.source.LSN, "last_extraction_lsn", prev.Source.LSN)
		behind = false
	}
	if j.kind != move && behind {
		res.Behind, res.Elapsed = true, time.Since(start)
		log.Warn("the source is behind the last extraction (a standby that has not yet replayed what was read before): "+
			"nothing extracted; the next extraction carries on", "source_lsn", snap.source.LSN, "last_extraction_lsn", prev.Source.LSN)
		return res, nil
	}
	carried, err := checkDrift(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	if j.kind == move && !opts.Force {
		if err := checkMove(ctx, tx, lk, prev); err != nil {
			return Result{}, err
		}
	}

	p, next, err := j.plan(prev, snap)
	if err != nil {
		return Result{}, err
	}
	res.Horizon = p.horizon
	if j.snapshot != "" {
		next.Capture, next.LSN = CaptureLogical, j.lsn.String()
	}
	batch := lk.NewBatch(lake.Raw, seq, start)
	switch j.kind {
	case correct:
		batch.SetCorrective()
	case full:
		batch.SetFull()
	}
	committed := false
	defer func() {
		if !committed {
			if err := batch.Abort(context.WithoutCancel(ctx)); err != nil {
				log.Warn("could not remove the files of an uncommitted batch; a later clean will", "batch", batch.ID(), "error", err)
			}
		}
	}()
	unchanged := j.kind == normal && prev != nil && prev.Format >= 2 && prev.Snapshot == snap.text
	sizes, err := tableSizes(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	parts, err := scanParts(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	var reads []tableRead
	for _, table := range totesys.Tables {
		tp := p.forTable(table.Name)
		tp.live = live[table.Name]
		if j.kind == correct {
			tp.correct, tp.ids, tp.gone = true, j.fix.Rows[table.Name], j.fix.Deleted[table.Name]
			if len(tp.ids) == 0 && len(tp.gone) == 0 {
				continue
			}
		}
		if unchanged {
			// The same snapshot as the last extraction's: no transaction has
			// ended since, so nothing is new. Nothing to read.
			tp.skip = true
		}
		tp.weight = sizes[table.Name]
		if tp.weight >= minPartPages*int64(parts) {
			tp.parts = parts
		}
		reads = append(reads, tableRead{table: table, plan: tp, carry: carried[table.Name]})
	}
	if err := readTables(ctx, pool, tx, batch, reads, opts, p, newProgress(opts.Progress)); err != nil {
		if errors.Is(err, lake.ErrConflict) {
			return Result{}, conflict(seq, err)
		}
		return Result{}, tote.At(err, tote.Where{Batch: batch.ID()})
	}
	deleted, sets := map[string][]int32{}, map[string]*roaring.Bitmap{}
	var held []HeldDeletion
	accepted := map[string]bool{}
	for _, t := range opts.AcceptDeletes {
		accepted[t] = true
	}
	for _, r := range reads {
		res.Tables = append(res.Tables, r.result)
		if j.kind != correct {
			for _, c := range r.carry {
				if !slices.Contains(r.plan.prev.Carried, c.Column) {
					res.NewColumns = append(res.NewColumns, c)
					log.Warn("the source has a column the totesys model lacks: the raw zone carries it as text from this batch on, "+
						"the star schema does not read it", "table", c.Table, "column", c.Column, "type", c.Type)
				}
			}
			next.Tables[r.table.Name] = r.state
			if r.next != nil {
				sets[r.table.Name] = r.next
			}
		}
		if len(r.deleted) > 0 {
			deleted[r.table.Name] = r.deleted
			if h, ok := massDeletion(&r, opts.MaxDeleteFraction); ok && j.kind != correct {
				if accepted[r.table.Name] {
					log.Warn("applying deletions accepted by the operator", "table", h.Table, "deleted", h.Deleted, "live", h.Live)
				} else {
					held = append(held, h)
				}
			}
		}
		if r.result.Reappeared > 0 {
			log.Warn("the source holds rows that the lake holds as deleted or never saw, and that no transaction since the last "+
				"extraction wrote: restored from a backup? A full extraction (tote extract --full) reads them again",
				"table", r.table.Name, "rows", r.result.Reappeared)
		}
		log.Debug("extracted table", "table", r.table.Name, "rows", r.result.Rows, "deleted", r.result.Deleted,
			"bytes", r.result.Bytes, "seconds", r.result.Elapsed.Seconds())
		reportLate(log, r.result, r.state)
	}
	if err := tx.Commit(ctx); err != nil { // read-only: just ends the snapshot
		return Result{}, fmt.Errorf("end snapshot: %w", err)
	}
	if len(held) > 0 {
		return Result{}, tote.At(&MassDeletionError{Batch: batch.ID(), Tables: held}, tote.Where{Batch: batch.ID()})
	}

	// A new column commits a batch even without rows: the lake records
	// from which batch on its files carry it, and it is reported once.
	if res.Rows() == 0 && len(deleted) == 0 && len(sets) == 0 && j.kind != move && len(res.NewColumns) == 0 {
		res.Elapsed = time.Since(start)
		log.Info("nothing new in the source: no batch committed", "source", snap.source.Role)
		if latest != nil && j.kind == normal {
			putStatus(ctx, lk, log, Status{ReadAt: snap.readAt, Seq: latest.Seq, Batch: latest.ID, Source: snap.source.Role})
		}
		return res, nil
	}
	if len(deleted) > 0 {
		if res.DeletedBytes, err = writeTombstones(ctx, batch, deleted, snap.sourceTime); err != nil {
			return Result{}, tote.At(err, tote.Where{Batch: batch.ID()})
		}
	}
	if res.IDSetBytes, err = writeIDSets(ctx, batch, sets); err != nil {
		return Result{}, tote.At(err, tote.Where{Batch: batch.ID()})
	}
	for table := range sets {
		ts := next.Tables[table]
		ts.IDs = seq
		next.Tables[table] = ts
	}
	m, err := commit(ctx, batch, seq, next)
	if err != nil {
		return Result{}, err
	}
	committed = true
	res.Batch, res.Committed = m.ID, true
	res.Elapsed = time.Since(start)
	if j.kind != correct {
		putStatus(ctx, lk, log, Status{ReadAt: snap.readAt, Seq: m.Seq, Batch: m.ID, Source: snap.source.Role})
	}
	return res, nil
}

// plan works out what the job reads and the state it leaves.
func (j job) plan(prev *State, snap snapshot) (*plan, State, error) {
	next := State{Format: stateFormat, Snapshot: snap.text, SourceTime: snap.sourceTime, ReadAt: snap.readAt,
		XidHorizon: snap.xmin, Source: snap.source, Tables: map[string]TableState{}}
	switch j.kind {
	case move:
		// Read every row, to list those at or above the new snapshot's
		// xmin as taken; write none.
		p, err := newPlan(nil, snap)
		p.noRows = true
		next.MovedFrom = &prev.Source
		return p, next, err
	case correct:
		// Read the rows asked for that are not in flight (see
		// tablePlan.inFlight: the next extraction takes those); the state
		// stays the last extraction's.
		p, err := newPlan(prev, snap)
		if err != nil {
			return nil, State{}, err
		}
		p.first = true
		return p, *prev, nil
	case full:
		// Read every row, as the first extraction does; the previous state
		// matters only for its live ids.
		p, err := newPlan(nil, snap)
		return p, next, err
	}
	p, err := newPlan(prev, snap)
	return p, next, err
}

// commit commits raw batch seq with the extraction state next; the
// error names the batch, or says that another extraction committed seq
// first.
func commit(ctx context.Context, batch *lake.BatchWriter, seq uint64, next State) (lake.Manifest, error) {
	m, err := batch.Commit(ctx, tote.Version(), next)
	if errors.Is(err, lake.ErrConflict) {
		return m, conflict(seq, err)
	}
	if err != nil {
		return m, tote.At(fmt.Errorf("commit: %w", err), tote.Where{Batch: batch.ID()})
	}
	return m, nil
}

// conflict reports a lost race with another extraction.
func conflict(seq uint64, err error) error {
	return fmt.Errorf("another extraction committed raw batch %d first; this run committed nothing and the next one will carry on: %w", seq, err)
}

// reportStandby warns about a standby whose replay is paused or far behind.
func reportStandby(log *slog.Logger, s Source, maxDelay time.Duration) {
	switch {
	case s.Role != Standby:
	case s.ReplayPaused:
		log.Warn("the source is a hot standby whose WAL replay is paused: extracting the data as of its last replayed transaction",
			"last_replayed", s.LastReplayed)
	case s.ReplayDelay > maxDelay:
		log.Warn("the source is a hot standby far behind the WAL it has received",
			"replay_delay", s.ReplayDelay.Round(time.Second), "max", maxDelay)
	}
}

// reportLate warns about versions stamped well before the previous
// extraction: taken all the same, but a sign of skewed writers.
func reportLate(log *slog.Logger, tr TableResult, ts TableState) {
	if tr.Late == 0 {
		return
	}
	log.Warn("took row versions stamped before the previous extraction read the source: "+
		"transactions open across it, or writers whose clock or time zone differs from the server's",
		"table", tr.Table, "versions", tr.Late, "ids", ts.lateIDs, "apparent_clock_offset", tr.MaxLate.Round(time.Millisecond))
}

// StatusName is the lake status object (see lake.PutStatus) in which each
// extraction says up to when the source has been read.
const StatusName = "extract"

// Status is what the last extraction says of the source: as of ReadAt
// (tote's clock at its snapshot), the source held nothing that raw batch
// Seq and those before it do not.
type Status struct {
	ReadAt time.Time `json:"read_at"`
	Seq    uint64    `json:"seq"`
	Batch  string    `json:"batch"`
	Source string    `json:"source"` // Primary or Standby
}

// putStatus records s; failing to is worth a warning, not a failed
// extraction: the status is advisory.
func putStatus(ctx context.Context, lk *lake.Lake, log *slog.Logger, s Status) {
	if err := lk.PutStatus(ctx, StatusName, s); err != nil {
		log.Warn("could not record the extraction's status in the lake (freshness will read older)", "err", err)
	}
}

// Package extract owns the first stage of the pipeline: reading the row
// versions of every totesys table that are new since the last committed
// extraction, from one consistent snapshot, and writing them to the lake's
// raw zone as one batch.
//
// It does not interpret rows (see transform) and keeps no state of its own:
// where the next extraction starts is recorded in the latest raw manifest,
// so a run on a new machine or in a Lambda carries on where the last one
// stopped.
//
// # Never missing a row version: the horizon argument
//
// totesys stamps rows with last_updated = now(), and now() is the time the
// writing transaction started, not when it committed. A naive cursor
// ("everything with last_updated > the newest value seen") loses rows: a
// transaction that starts at 10:00:00, writes, and commits at 10:00:05
// produces a row stamped 10:00:00 that becomes visible only after an
// extraction at 10:00:03 has moved the cursor past it.
//
// Each extraction therefore records a horizon H: a time no later than the
// start of any transaction that could still commit rows invisible to its
// snapshot. It is computed before the snapshot is taken, as
//
//	H = min(clock_timestamp(), start of every open transaction in the database) - margin
//
// reading pg_stat_activity. Any transaction whose rows the snapshot cannot
// see was open when the snapshot was taken; it was either already open when
// H was computed (so its start, and the now() of its rows, is >= H), or it
// began after that (so its start is later than the clock reading, >= H).
// Taking the snapshot after reading the activity is what closes the race
// in which a transaction commits between the two. The margin (default 1 s)
// covers timestamp(3) rounding now() to the millisecond. Prepared (two-phase)
// transactions count from their prepare time less the maximum transaction
// age.
//
// The next extraction reads every row with last_updated >= H, which is a
// superset of what it must take: it also meets versions the previous batch
// already took (those stamped at or after H and visible then). Each manifest
// lists exactly those (table, id, last_updated) pairs, and they are skipped.
// So a version is taken once: never before it is visible, and never again
// after. The list holds only versions stamped after H (normally the last
// second or so), so it stays small; an open transaction that lasts an hour
// widens it to an hour of changes, and no more.
//
// Seeing other sessions' transaction start times needs superuser or the
// pg_read_all_stats role. Without it the horizon falls back to
// clock - max-transaction-age (default 15 minutes): still loss-free for
// transactions shorter than that, at the cost of a larger list. The
// comparison is made in the server's default TimeZone, which is what the
// application's now() is stored in unless it sets its own.
//
// # Consistency and drift
//
// All tables are read in one REPEATABLE READ, READ ONLY transaction, so a
// batch is one instant of the source. Before reading, every table's columns
// are compared with the totesys model: a new, dropped or retyped column, or
// a missing table, stops the extraction with a message naming each
// difference, and nothing is committed.
//
// # Batches
//
// A batch holds one zstd Parquet file per table that changed. Types are
// kept exactly: integers as INT32, numeric(10,2) as DECIMAL(10,2), text
// dates and enums as strings, timestamps as microseconds without time zone.
// Rows are streamed from the database to the lake a row group at a time, so
// memory stays flat however large a table is. When nothing changed, no
// batch is committed. Two extractions at once cannot both commit: the
// manifest of batch n is created only if it does not exist.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/totesys"
)

// Defaults for Options.
const (
	DefaultMargin         = time.Second
	DefaultMaxTransaction = 15 * time.Minute
)

// Options controls Run.
type Options struct {
	Logger *slog.Logger
	// Progress, if set, receives a line per table as it is read (for a terminal).
	Progress io.Writer
	// Margin is subtracted from the horizon; zero means DefaultMargin.
	Margin time.Duration
	// MaxTransaction bounds how long a source transaction is assumed to
	// stay open when open transactions cannot be seen; zero means
	// DefaultMaxTransaction.
	MaxTransaction time.Duration
}

// State is what an extraction records in its manifest for the next one.
type State struct {
	// Snapshot is the source snapshot the batch was read in (pg_current_snapshot()).
	Snapshot string `json:"snapshot"`
	// SourceTime is the source's now() in that snapshot.
	SourceTime time.Time `json:"source_time"`
	// Horizon: the next extraction reads every row with last_updated >= Horizon.
	Horizon time.Time `json:"horizon"`
	// HorizonFrom says how the horizon was found: "activity" or "max-transaction-age".
	HorizonFrom string `json:"horizon_from"`
	// Tables holds, per table, the newest version extracted so far and the
	// versions at or after Horizon already extracted.
	Tables map[string]TableState `json:"tables"`
}

// TableState is one table's part of State.
type TableState struct {
	// Watermark is the newest last_updated extracted from the table so far.
	Watermark time.Time `json:"watermark,omitzero"`
	// Taken lists the versions stamped at or after the horizon that have
	// been extracted, as [id, last_updated in Unix microseconds].
	Taken [][2]int64 `json:"taken,omitempty"`
}

// TableResult says what one table contributed to a batch.
type TableResult struct {
	Table       string        `json:"table"`
	Rows        int64         `json:"rows"`
	Bytes       int64         `json:"bytes"`        // written to the lake (compressed Parquet)
	SourceBytes int64         `json:"source_bytes"` // read from the source (binary values)
	Elapsed     time.Duration `json:"elapsed_ns"`
}

// Result says what an extraction did.
type Result struct {
	Batch     string        `json:"batch,omitempty"` // empty when nothing was committed
	Seq       uint64        `json:"seq,omitempty"`
	Committed bool          `json:"committed"`
	Tables    []TableResult `json:"tables"`
	Snapshot  string        `json:"snapshot"`
	Horizon   time.Time     `json:"horizon"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Rows is the number of row versions extracted.
func (r Result) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// Bytes is the size of the batch's files.
func (r Result) Bytes() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Bytes
	}
	return n
}

// SourceBytes is the size of the values read from the source.
func (r Result) SourceBytes() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.SourceBytes
	}
	return n
}

// LoadState decodes the extraction state recorded in a raw manifest.
func LoadState(m lake.Manifest) (State, error) {
	var s State
	if err := decodeState(m.State, &s); err != nil {
		return State{}, tote.At(fmt.Errorf("extraction state: %w", err), tote.Where{Batch: m.ID})
	}
	return s, nil
}

// Run extracts the row versions new since the last committed raw batch
// into a new one, and commits it unless nothing changed.
func Run(ctx context.Context, source *pgxpool.Pool, lk *lake.Lake, opts Options) (_ Result, err error) {
	defer func() { err = tote.At(err, tote.Where{Stage: tote.Extract}) }()
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Margin <= 0 {
		opts.Margin = DefaultMargin
	}
	if opts.MaxTransaction <= 0 {
		opts.MaxTransaction = DefaultMaxTransaction
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

	// The horizon is found before the snapshot is taken (see the package comment).
	hz, err := findHorizon(ctx, source, opts.Margin, opts.MaxTransaction)
	if err != nil {
		return Result{}, err
	}
	if hz.from != "activity" {
		log.Warn("cannot see other sessions' transactions (needs superuser or pg_read_all_stats): "+
			"assuming none stays open longer than the max transaction age", "max_transaction", opts.MaxTransaction)
	}
	if prev != nil && hz.at.Before(prev.Horizon) {
		// Only a smaller margin can move it back; the old horizon is still safe.
		hz.at = prev.Horizon
	}

	conn, err := source.Acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Result{}, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	next := State{Horizon: hz.at, HorizonFrom: hz.from, Tables: map[string]TableState{}}
	// The first statement fixes the snapshot every later one reads.
	if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text, localtimestamp`).Scan(&next.Snapshot, &next.SourceTime); err != nil {
		return Result{}, fmt.Errorf("take snapshot: %w", err)
	}
	if err := checkDrift(ctx, tx); err != nil {
		return Result{}, err
	}

	res := Result{Seq: seq, Snapshot: next.Snapshot, Horizon: hz.at}
	batch := lk.NewBatch(lake.Raw, seq, start)
	committed := false
	defer func() {
		if !committed {
			if err := batch.Abort(context.WithoutCancel(ctx)); err != nil {
				log.Warn("could not remove the files of an uncommitted batch; a later clean will", "batch", batch.ID(), "error", err)
			}
		}
	}()
	prog := newProgress(opts.Progress)
	for _, table := range totesys.Tables {
		var prevTable *TableState
		var since time.Time
		if prev != nil {
			t := prev.Tables[table.Name]
			prevTable, since = &t, prev.Horizon
		}
		tr, ts, err := extractTable(ctx, tx, batch, table, since, prevTable, hz.at, prog)
		if errors.Is(err, lake.ErrConflict) {
			return Result{}, conflict(seq, err)
		}
		if err != nil {
			return Result{}, tote.At(err, tote.Where{Batch: batch.ID(), Table: table.Name})
		}
		res.Tables = append(res.Tables, tr)
		next.Tables[table.Name] = ts
		log.Debug("extracted table", "table", table.Name, "rows", tr.Rows, "bytes", tr.Bytes, "seconds", tr.Elapsed.Seconds())
	}
	if err := tx.Commit(ctx); err != nil { // read-only: just ends the snapshot
		return Result{}, fmt.Errorf("end snapshot: %w", err)
	}

	if res.Rows() == 0 {
		res.Elapsed = time.Since(start)
		log.Info("nothing new in the source: no batch committed")
		return res, nil
	}
	m, err := batch.Commit(ctx, tote.Version(), next)
	if err != nil {
		if errors.Is(err, lake.ErrConflict) {
			return Result{}, conflict(seq, err)
		}
		return Result{}, tote.At(fmt.Errorf("commit: %w", err), tote.Where{Batch: batch.ID()})
	}
	committed = true
	res.Batch, res.Committed = m.ID, true
	res.Elapsed = time.Since(start)
	return res, nil
}

// conflict reports a lost race with another extraction.
func conflict(seq uint64, err error) error {
	return fmt.Errorf("another extraction committed raw batch %d first; this run committed nothing and the next one will carry on: %w", seq, err)
}

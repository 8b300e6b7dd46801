// Package transform owns the second stage of the pipeline: turning each
// committed raw batch of the lake into one processed batch of the star
// schema (see star), as zstd Parquet files in the lake's processed zone.
//
// It does not read the source database (see extract) and does not load the
// warehouse (see warehouse); the lake is all it reads and writes.
//
// # Batches
//
// Raw batches are transformed in order, each into exactly one processed
// batch numbered one more than the last. Each processed manifest records
// the raw batch it was made from (State.RawSeq), so a run carries on after
// the latest processed batch, on any machine. A processed batch is
// committed before the next raw batch is read: a crash loses at most one
// batch's work. A raw batch that yields no star rows (a department renamed
// that has no staff, say) still gets a processed batch, with no files, so
// that it counts as consumed. If a raw batch holds a value that cannot be
// transformed (a date that does not parse, a currency code that is not ISO
// 4217, a staff member of an unknown department) or a file that does not
// match its manifest, the run stops with an error naming the batch, table,
// id and value, and nothing is committed for that batch.
//
// # The model
//
// What each star table holds, and how each of its columns is made, is
// star.Tables: a table's Source and Joins, and per column From and Conv.
// This package interprets it and knows no table by name; a column added to
// the model is a column the transform makes.
//
// # Facts
//
// A fact gets one row per raw row version of its Source: created_at and
// last_updated are split into a date and a time of day, text dates
// ('YYYY-MM-DD') become dates, money stays exact (DECIMAL(10,2) on int64
// cents). Facts are streamed a row group at a time, never held whole in
// memory. The calendar (dim_date) gets one row for every day a row of the
// batch refers to.
//
// # Dimensions
//
// A dimension row carries the current state of its entity; a batch holds
// one for each entity that changed in the raw batch (the newest version,
// should a raw batch hold several). A dimension that joins (dim_staff joins
// staff to department, dim_counterparty counterparty to its legal address)
// follows a change on either side: renaming a department re-emits all its
// staff. To do that from the raw batch alone, each processed manifest's
// State keeps the current rows of the tables on either side of a join
// (star.JoinSources; tens of rows); a batch costs what changed in it, not
// what the lake holds. dim_currency names each code with its ISO 4217
// English name (GBP is "Pound Sterling").
//
// # Deletions
//
// Every row made from a source row has is_deleted false (star.Deleted). A
// raw batch's tombstones become the processed batch's deletions file,
// which the warehouse makes into deletion versions and flags: see
// deletions.go. A row State keeps that the source deleted stays, marked,
// with its last values: a staff member of a deleted department keeps the
// department's last name and location, and a deleted staff member is not
// made again when their department is renamed. A later version of the row
// (inserted again with the same id) clears the mark. A processed batch
// made from a full extraction (lake.Manifest.Full) is marked full too, for
// the warehouse to add only the versions it lacks.
package transform

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/sum"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/star"
)

// Options controls Run.
type Options struct {
	Logger *slog.Logger
	// Strict fails a batch on a value that cannot be transformed, instead
	// of quarantining its row (see Reject).
	Strict bool
}

// Result says what a run did.
type Result struct {
	// Batches lists the processed batches committed, in order; empty when
	// there was no new raw batch.
	Batches []BatchResult `json:"batches"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rows is the number of rows written to all processed batches.
func (r Result) Rows() int64 {
	return sum.Of(r.Batches, BatchResult.Rows)
}

// BatchResult says what transforming one raw batch did.
type BatchResult struct {
	Raw       string        `json:"raw"`       // id of the raw batch read
	Processed string        `json:"processed"` // id of the processed batch committed
	Seq       uint64        `json:"seq"`       // the processed batch's number
	Tables    []TableResult `json:"tables"`    // star tables with rows, in star.Tables order
	// Rejects are the rows the batch quarantined, and Resolved the earlier
	// rejects whose rows transformed in it.
	Rejects  []tote.Reject `json:"rejects,omitempty"`
	Resolved []Resolution  `json:"resolved,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Rows is the number of rows in the batch's star tables' files.
func (b BatchResult) Rows() int64 {
	return sum.Of(b.Tables, func(t TableResult) int64 { return t.Rows })
}

// Deleted is the number of rows of the batch's deletions file.
func (b BatchResult) Deleted() int64 {
	return sum.Of(b.Tables, func(t TableResult) int64 { return t.Deleted })
}

// Deleted is the number of rows of the deletions files of all processed
// batches.
func (r Result) Deleted() int64 {
	return sum.Of(r.Batches, BatchResult.Deleted)
}

// TableResult says what one star table got in a processed batch.
type TableResult struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"` // compressed Parquet written to the lake
	// Deleted counts the table's rows whose source row was deleted: rows
	// of the batch's deletions file (star.Deletions).
	Deleted int64 `json:"deleted,omitempty"`
}

// Run transforms every committed raw batch that has not been transformed
// yet, in order, each into one processed batch committed before the next
// is read. A raw batch that yields no star rows still gets a processed
// batch, with no files, so that it counts as consumed. When there is no new
// raw batch, nothing is committed. On error the result lists the batches
// committed before it.
func Run(ctx context.Context, lk *lake.Lake, opts Options) (_ Result, err error) {
	defer func() { err = tote.At(err, tote.Where{Stage: tote.Transform}) }()
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{Batches: []BatchResult{}}
	done := func() { res.Elapsed = time.Since(start) }

	latest, err := lk.Latest(ctx, lake.Processed)
	if err != nil {
		return res, err
	}
	var state State
	var seq uint64 = 1
	if latest != nil {
		if state, err = LoadState(*latest); err != nil {
			return res, err
		}
		seq = latest.Seq + 1
	}
	lastRaw, err := lk.Latest(ctx, lake.Raw)
	if err != nil {
		return res, err
	}
	if lastRaw == nil || lastRaw.Seq <= state.RawSeq {
		if lastRaw == nil && state.RawSeq > 0 || lastRaw != nil && lastRaw.Seq < state.RawSeq {
			log.Warn("the processed zone was made from raw batches the lake no longer has", "raw_seq", state.RawSeq)
		}
		done()
		log.Debug("no new raw batch to transform", "raw_seq", state.RawSeq)
		return res, nil
	}

	// Raw batches are numbered without gaps (extraction commits number
	// latest+1), so each is read by number: only the new manifests are read.
	for rawSeq := state.RawSeq + 1; rawSeq <= lastRaw.Seq; rawSeq++ {
		raw := *lastRaw
		if rawSeq != lastRaw.Seq {
			raw, err = lk.Batch(ctx, lake.Raw, strconv.FormatUint(rawSeq, 10))
			if errors.Is(err, fs.ErrNotExist) {
				done()
				return res, fmt.Errorf("raw batch %d is missing from the lake although batch %d exists; "+
					"its rows cannot be transformed: %w", rawSeq, lastRaw.Seq, err)
			}
			if err != nil {
				done()
				return res, err
			}
		}
		br, next, err := transformBatch(ctx, lk, raw, seq, state, opts.Strict, log)
		if err != nil {
			done()
			return res, err
		}
		res.Batches = append(res.Batches, br)
		state, seq = next, seq+1
	}
	done()
	log.Info("transformed raw batches", "batches", len(res.Batches), "rows", res.Rows(), "seconds", res.Elapsed.Seconds())
	return res, nil
}

// transformBatch transforms raw batch raw into processed batch seq, given
// the state after the previous one, and commits it.
func transformBatch(ctx context.Context, lk *lake.Lake, raw lake.Manifest, seq uint64, prev State, strict bool, log *slog.Logger) (BatchResult, State, error) {
	start := time.Now()
	out := lk.NewBatch(lake.Processed, seq, start)
	if raw.Corrective {
		out.SetCorrective()
	}
	if raw.Full {
		out.SetFull()
	}
	committed := false
	defer func() {
		if !committed {
			if err := out.Abort(context.WithoutCancel(ctx)); err != nil {
				log.Warn("could not remove the files of an uncommitted batch; a later clean will", "batch", out.ID(), "error", err)
			}
		}
	}()
	fail := func(err error) (BatchResult, State, error) {
		if errors.Is(err, lake.ErrConflict) {
			return BatchResult{}, State{}, conflict(seq, err)
		}
		return BatchResult{}, State{}, tote.At(err, tote.Where{Batch: raw.ID})
	}

	b, err := newBatch(ctx, lk, raw, out, prev, strict)
	if err != nil {
		return fail(err)
	}
	if err := b.run(); err != nil {
		return fail(err)
	}
	next := b.ref.state(raw)
	next.OpenRejects = b.q.openRows()
	m, err := out.Commit(ctx, tote.Version(), next)
	if err != nil {
		if errors.Is(err, lake.ErrConflict) {
			return BatchResult{}, State{}, conflict(seq, err)
		}
		return BatchResult{}, State{}, tote.At(fmt.Errorf("commit processed batch %s: %w", out.ID(), err), tote.Where{Batch: raw.ID})
	}
	committed = true

	br := BatchResult{Raw: raw.ID, Processed: m.ID, Seq: m.Seq, Tables: []TableResult{}, Elapsed: time.Since(start),
		Rejects: b.q.found, Resolved: b.q.resolved}
	for _, r := range br.Rejects {
		log.Warn("quarantined a row version whose value cannot be transformed; the rest of the batch goes on",
			"raw", raw.ID, "reject", r.String())
	}
	if len(br.Resolved) > 0 {
		log.Info("rejected rows transformed in a later version", "raw", raw.ID, "resolved", len(br.Resolved))
	}
	deleted := b.deletedTables()
	for _, t := range star.Tables {
		tr := TableResult{Table: t.Name, Deleted: deleted[t.Name]}
		if i := slices.IndexFunc(m.Files, func(f lake.File) bool { return f.Table == t.Name }); i >= 0 {
			tr.Rows, tr.Bytes = m.Files[i].Rows, m.Files[i].Bytes
		}
		if tr.Rows > 0 || tr.Deleted > 0 {
			br.Tables = append(br.Tables, tr)
		}
	}
	if len(m.Files) == 0 {
		log.Info("raw batch yields no star rows: committed an empty processed batch to mark it consumed",
			"raw", raw.ID, "processed", m.ID)
	}
	log.Info("transformed raw batch", "raw", raw.ID, "processed", m.ID, "rows", br.Rows(), "deleted", br.Deleted(),
		"seconds", br.Elapsed.Seconds())
	return br, next, nil
}

// conflict reports a lost race with another transform.
func conflict(seq uint64, err error) error {
	return fmt.Errorf("another transform committed processed batch %d first; "+
		"this run stopped there and the next one will carry on: %w", seq, err)
}

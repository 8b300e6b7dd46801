// Package pipeline owns one pass of tote: extract, then transform, then
// load, each stage carrying on from what the previous passes committed;
// and a run, the unit the run history (tote.runs) records: one or more
// passes under the warehouse's run lock. It owns both: the history's
// records (Record, Runs) and the lock (LockRun), which the warehouse's
// migrations only make room for. `tote run` makes a run of one pass; the
// daemon makes runs that retry a failed pass; the Lambda functions call
// the stages one at a time, the load under the same lock.
//
// It adds no logic of its own to the stages: each one reads its starting
// point from the lake (or the warehouse's ledger), so a pass that fails in
// any stage leaves everything committed so far in place, and the next pass
// picks up from there. Nor does it add words to their errors: every stage
// returns a *tote.Error that names itself, the batch and the table.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

// Parts are what a pass runs against.
type Parts struct {
	Source    *pgxpool.Pool
	Warehouse *warehouse.Warehouse
	Lake      *lake.Lake
	// Iceberg, if not nil, publishes the loaded batches to the star's
	// Iceberg tables after the load.
	Iceberg *iceberg.Publisher
}

// Options controls a pass.
type Options struct {
	Logger  *slog.Logger
	Extract extract.Options // its Logger defaults to Logger
	// Strict fails the transform on a value it cannot transform, instead
	// of quarantining the row (see transform.Options).
	Strict bool
}

// StageResult summarises one stage of a pass.
type StageResult struct {
	Stage tote.Stage `json:"stage"`
	Rows  int64      `json:"rows"`
	// Deleted counts the source rows deleted that the stage carried: the
	// extraction's tombstones, the transform's deletions rows, the load's
	// deletion versions and flagged dimension rows.
	Deleted int64         `json:"deleted,omitempty"`
	Batches []string      `json:"batches,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Result says what a pass did. Extract, Transform and Load hold each
// stage's own detailed result, for those that ran.
type Result struct {
	Stages    []StageResult     `json:"stages"`
	Extract   *extract.Result   `json:"extract,omitempty"`
	Transform *transform.Result `json:"transform,omitempty"`
	Load      *warehouse.Result `json:"load,omitempty"`
	Publish   *iceberg.Result   `json:"publish,omitempty"`
	Elapsed   time.Duration     `json:"elapsed_ns"`
}

// logger is the pass's logger: opts.Logger, or one that discards.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// failed is what a pass that stops at stage returns: the result so far,
// stamped with the time since start, and err placed at the stage.
func (r Result) failed(start time.Time, stage tote.Stage, err error) (Result, error) {
	r.Elapsed = time.Since(start)
	return r, tote.At(err, tote.Where{Stage: stage})
}

// Run makes one pass. On failure the result holds the stages that
// completed, and the error is a *tote.Error whose Stage is the stage that
// failed.
func Run(ctx context.Context, p Parts, opts Options) (Result, error) {
	start := time.Now()
	log := opts.logger()
	var res Result

	eopts := opts.Extract
	if eopts.Logger == nil {
		eopts.Logger = log.With("stage", tote.Extract)
	}
	t0 := time.Now()
	er, err := extract.Run(ctx, p.Source, p.Lake, eopts)
	if err != nil {
		return res.failed(start, tote.Extract, err)
	}
	res.Extract = &er
	sr := StageResult{Stage: tote.Extract, Rows: er.Rows(), Deleted: er.Deleted(), Elapsed: time.Since(t0)}
	if er.Committed {
		sr.Batches = []string{er.Batch}
	}
	res.Stages = append(res.Stages, sr)

	t0 = time.Now()
	tr, err := transform.Run(ctx, p.Lake, transform.Options{Logger: log.With("stage", tote.Transform), Strict: opts.Strict})
	res.Transform = &tr // the batches committed before a failure stay committed
	if err != nil {
		return res.failed(start, tote.Transform, err)
	}
	sr = StageResult{Stage: tote.Transform, Rows: tr.Rows(), Deleted: tr.Deleted(), Elapsed: time.Since(t0)}
	for _, b := range tr.Batches {
		sr.Batches = append(sr.Batches, b.Processed)
	}
	res.Stages = append(res.Stages, sr)

	t0 = time.Now()
	lr, err := p.Warehouse.WithLogger(log.With("stage", tote.Load)).Load(ctx, p.Lake)
	if err != nil {
		return res.failed(start, tote.Load, err)
	}
	res.Load = &lr
	sr = StageResult{Stage: tote.Load, Rows: lr.Rows(), Deleted: lr.Deleted(), Elapsed: time.Since(t0)}
	for _, b := range lr.Batches {
		sr.Batches = append(sr.Batches, b.Batch)
	}
	res.Stages = append(res.Stages, sr)

	if p.Iceberg != nil {
		t0 = time.Now()
		pr, err := p.Iceberg.Publish(ctx)
		res.Publish = &pr
		if err != nil {
			return res.failed(start, tote.Publish, err)
		}
		res.Stages = append(res.Stages, StageResult{Stage: tote.Publish, Rows: pr.Rows(), Batches: pr.Batches, Elapsed: time.Since(t0)})
	}
	res.Elapsed = time.Since(start)
	log.Info("pass complete", "seconds", res.Elapsed.Seconds(),
		"extracted", er.Rows(), "transformed", tr.Rows(), "loaded", lr.Rows(), "deleted", lr.Deleted())
	return res, nil
}

// Quarantined names the rows the pass's transform quarantined.
func (r Result) Quarantined() []string {
	var out []string
	if r.Transform != nil {
		for _, b := range r.Transform.Batches {
			for _, rj := range b.Rejects {
				out = append(out, rj.String()+" (raw batch "+rj.RawBatch+")")
			}
		}
	}
	return out
}

// String is a one-line summary of a stage.
func (s StageResult) String() string {
	out := fmt.Sprintf("%-9s %12s %-4s %6s  %s", s.Stage, human.Int(s.Rows), human.Plural(s.Rows, "row"),
		human.Duration(s.Elapsed), human.Count(len(s.Batches), "batch"))
	if s.Deleted > 0 {
		out += ", " + human.Int(s.Deleted) + " deleted"
	}
	return out
}

// Correct sends the given source rows through the pipeline again, and
// tombstones for the given rows the source no longer has, to repair the
// warehouse where it differs from the source: a corrective raw batch
// (extract.Correct), transformed and loaded like any other, after
// whatever batches were pending.
func Correct(ctx context.Context, p Parts, c extract.Corrections, opts Options) (Result, error) {
	start := time.Now()
	log := opts.logger()
	var res Result
	er, err := extract.Correct(ctx, p.Source, p.Lake, c, extract.Options{Logger: log.With("stage", tote.Extract)})
	if err != nil {
		return res.failed(start, tote.Extract, err)
	}
	res.Extract = &er
	tr, err := transform.Run(ctx, p.Lake, transform.Options{Logger: log.With("stage", tote.Transform), Strict: opts.Strict})
	res.Transform = &tr
	if err != nil {
		return res.failed(start, tote.Transform, err)
	}
	lr, err := p.Warehouse.WithLogger(log.With("stage", tote.Load)).Load(ctx, p.Lake)
	if err != nil {
		return res.failed(start, tote.Load, err)
	}
	res.Load = &lr
	if p.Iceberg != nil {
		pr, err := p.Iceberg.Publish(ctx)
		res.Publish = &pr
		if err != nil {
			return res.failed(start, tote.Publish, err)
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// Package pipeline owns one pass of tote: extract, then transform, then
// load, each stage carrying on from what the previous passes committed. It
// is what `tote run` calls, and what the daemon and the Lambda functions
// will call on their schedules.
//
// It adds no logic of its own to the stages: each one reads its starting
// point from the lake (or the warehouse's ledger), so a pass that fails in
// any stage leaves everything committed so far in place, and the next pass
// picks up from there.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

// Stage names, as results and errors give them.
const (
	Extract   = "extract"
	Transform = "transform"
	Load      = "load"
)

// Parts are what a pass runs against.
type Parts struct {
	Source    *pgxpool.Pool
	Warehouse *pgxpool.Pool
	Lake      *lake.Lake
}

// Options controls a pass.
type Options struct {
	Logger  *slog.Logger
	Extract extract.Options // its Logger defaults to Logger
}

// StageResult summarises one stage of a pass.
type StageResult struct {
	Stage   string        `json:"stage"`
	Rows    int64         `json:"rows"`
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
	Elapsed   time.Duration     `json:"elapsed_ns"`
}

// StageError is a pass's failure, naming the stage that failed.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string {
	msg := e.Err.Error()
	if strings.HasPrefix(msg, e.Stage) {
		return msg // the stage's own error already says which it is
	}
	return e.Stage + ": " + msg
}
func (e *StageError) Unwrap() error { return e.Err }

// Run makes one pass. On failure the error is a *StageError and the result
// holds the stages that completed.
func Run(ctx context.Context, p Parts, opts Options) (Result, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var res Result
	done := func() { res.Elapsed = time.Since(start) }

	eopts := opts.Extract
	if eopts.Logger == nil {
		eopts.Logger = log.With("stage", Extract)
	}
	t0 := time.Now()
	er, err := extract.Run(ctx, p.Source, p.Lake, eopts)
	if err != nil {
		done()
		return res, &StageError{Extract, err}
	}
	res.Extract = &er
	sr := StageResult{Stage: Extract, Rows: er.Rows(), Elapsed: time.Since(t0)}
	if er.Committed {
		sr.Batches = []string{er.Batch}
	}
	res.Stages = append(res.Stages, sr)

	t0 = time.Now()
	tr, err := transform.Run(ctx, p.Lake, transform.Options{Logger: log.With("stage", Transform)})
	if err != nil {
		done()
		return res, &StageError{Transform, err}
	}
	res.Transform = &tr
	sr = StageResult{Stage: Transform, Rows: tr.Rows(), Elapsed: time.Since(t0)}
	for _, b := range tr.Batches {
		sr.Batches = append(sr.Batches, b.Processed)
	}
	res.Stages = append(res.Stages, sr)

	t0 = time.Now()
	lr, err := warehouse.Load(ctx, p.Warehouse, p.Lake, warehouse.Options{Logger: log.With("stage", Load)})
	if err != nil {
		done()
		return res, &StageError{Load, err}
	}
	res.Load = &lr
	sr = StageResult{Stage: Load, Rows: lr.Rows(), Elapsed: time.Since(t0)}
	for _, b := range lr.Batches {
		sr.Batches = append(sr.Batches, b.Batch)
	}
	res.Stages = append(res.Stages, sr)
	done()
	log.Info("pass complete", "seconds", res.Elapsed.Seconds(),
		"extracted", er.Rows(), "transformed", tr.Rows(), "loaded", lr.Rows())
	return res, nil
}

// String is a one-line summary of a stage.
func (s StageResult) String() string {
	return fmt.Sprintf("%-9s %12d rows %8.2fs  %d batches", s.Stage, s.Rows, s.Elapsed.Seconds(), len(s.Batches))
}

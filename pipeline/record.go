package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/terrifictotes/tote"
)

// Outcomes of a run, as the history records them.
const (
	Success   = "success"
	Failure   = "failure"
	Abandoned = "abandoned" // stopped by shutdown or a signal
)

// Recorded is a run of the pipeline as the warehouse's history (tote.runs)
// records it: one or more passes, made under the warehouse's run lock
// from Begin to Finish, so that no other run, in this process or another,
// overlaps it. It is not safe for concurrent use.
type Recorded struct {
	parts   Parts
	log     *slog.Logger
	release func()
	run     Record
	acc     accumulator
}

// Begin migrates the warehouse (a failure is the load stage's), takes its
// run lock without waiting (LockRun), and records the start of a run in
// the history. If another run holds the lock it returns an error wrapping
// ErrRunInProgress and records nothing. The caller must call Finish.
func Begin(ctx context.Context, p Parts, trigger string, log *slog.Logger) (*Recorded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The history is in the warehouse: migrate it first, as a load would.
	if err := p.Warehouse.Migrate(ctx); err != nil {
		return nil, tote.At(err, tote.Where{Stage: tote.Load})
	}
	release, err := LockRun(ctx, p.Warehouse)
	if err != nil {
		return nil, err
	}
	r := &Recorded{parts: p, release: release, run: Record{Trigger: trigger, StartedAt: time.Now()}}
	// Recorded whatever ctx does: a cancellation that arrives as the row is
	// inserted would otherwise leave it in the history, never finished. A
	// cancelled run then ends in Finish, as abandoned.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if r.run.ID, err = startRun(sctx, p.Warehouse, trigger, r.run.StartedAt); err != nil {
		release()
		return nil, err
	}
	r.log = log.With("run", r.run.ID)
	r.log.Info("run started", "trigger", trigger)
	return r, nil
}

// ID is the run's id in the history.
func (r *Recorded) ID() int64 { return r.run.ID }

// Logger is the run's logger: every line carries the run's id.
func (r *Recorded) Logger() *slog.Logger { return r.log }

// Pass makes one pass of the run (an attempt) with Run. Its logs carry the
// run's id unless opts gives a logger of its own.
func (r *Recorded) Pass(ctx context.Context, opts Options) (Result, error) {
	if opts.Logger == nil {
		opts.Logger = r.log
	}
	r.run.Attempts++
	parts := r.parts
	if r.run.Attempts == 1 {
		// Begin has just migrated the warehouse: the first pass's load
		// need not check its schema again. A retry checks it.
		parts.Warehouse = parts.Warehouse.Premigrated()
	}
	res, err := Run(ctx, parts, opts)
	r.acc.add(res)
	if err != nil {
		r.acc.fail(err)
	}
	return res, err
}

// Finish records how the run ended, given the error of its last pass, and
// releases the run lock. It records the run even when ctx is cancelled
// (the run is then abandoned). A quiet run takes the quiet runs just
// before it into its row (see QuietSpan); its id stays the same. The
// returned Record is what was recorded; the error says if recording
// failed.
func (r *Recorded) Finish(ctx context.Context, err error) (Record, error) {
	defer r.release()
	finished := time.Now()
	run := r.run
	run.FinishedAt = &finished
	run.Stages, run.Batches = r.acc.stages(), r.acc.batches
	if run.Batches == nil {
		run.Batches = []string{}
	}
	switch {
	case err == nil:
		run.Outcome = Success
	case ctx.Err() != nil:
		run.Outcome = Abandoned
	default:
		run.Outcome = Failure
	}
	if err != nil {
		run.Error, run.Where = err.Error(), tote.Locate(err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	run, ferr := finishRun(rctx, r.parts.Warehouse, run)
	if ferr != nil {
		r.log.Error("cannot record run", "err", ferr)
		return run, ferr
	}
	if run.Coalesced > 1 {
		r.log.Debug("quiet run coalesced", "first", run.FirstID, "runs", run.Coalesced)
	}
	return run, nil
}

// accumulator sums what the passes of a run did, stage by stage.
type accumulator struct {
	byStage map[tote.Stage]*StageRecord
	batches []string
}

func (a *accumulator) stage(name tote.Stage) *StageRecord {
	if a.byStage == nil {
		a.byStage = map[tote.Stage]*StageRecord{}
	}
	s, ok := a.byStage[name]
	if !ok {
		s = &StageRecord{Stage: string(name), Tables: map[string]int64{}}
		a.byStage[name] = s
	}
	return s
}

func (a *accumulator) add(res Result) {
	for _, sr := range res.Stages {
		s := a.stage(sr.Stage)
		s.Rows += sr.Rows
		s.Elapsed += sr.Elapsed
		s.Error = "" // a later attempt got through
		for _, b := range sr.Batches {
			if !slices.Contains(a.batches, b) {
				a.batches = append(a.batches, b)
			}
		}
	}
	if res.Extract != nil {
		for _, t := range res.Extract.Tables {
			a.stage(tote.Extract).Tables[t.Table] += t.Rows
			addDeleted(a.stage(tote.Extract), t.Table, t.Deleted)
		}
	}
	if res.Transform != nil {
		for _, b := range res.Transform.Batches {
			for _, t := range b.Tables {
				a.stage(tote.Transform).Tables[t.Table] += t.Rows
				addDeleted(a.stage(tote.Transform), t.Table, t.Deleted)
			}
		}
	}
	if res.Load != nil {
		for _, b := range res.Load.Batches {
			for _, t := range b.Tables {
				a.stage(tote.Load).Tables[t.Table] += t.Rows
				addDeleted(a.stage(tote.Load), t.Table, t.Deleted)
			}
		}
	}
	if res.Publish != nil {
		for _, t := range res.Publish.Tables {
			if t.Rows > 0 {
				a.stage(tote.Publish).Tables[t.Table] += t.Rows
			}
		}
	}
}

// addDeleted adds n deletions of table to what stage s carried.
func addDeleted(s *StageRecord, table string, n int64) {
	if n == 0 {
		return
	}
	if s.Deleted == nil {
		s.Deleted = map[string]int64{}
	}
	s.Deleted[table] += n
}

// fail notes the stage a pass failed in.
func (a *accumulator) fail(err error) {
	var e *tote.Error
	if errors.As(err, &e) && e.Stage != "" {
		a.stage(e.Stage).Error = err.Error()
	}
}

// stages returns the stages in pipeline order.
func (a *accumulator) stages() []StageRecord {
	out := []StageRecord{}
	for _, name := range []tote.Stage{tote.Extract, tote.Transform, tote.Load, tote.Publish} {
		if s, ok := a.byStage[name]; ok {
			out = append(out, *s)
		}
	}
	return out
}

package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/warehouse"
)

// runOnce makes a run of one pass, as tote run does, and returns its record.
func runOnce(t *testing.T, p pipeline.Parts, trigger string) pipeline.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := pipeline.Begin(ctx, p, trigger, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rec.Pass(ctx, pipeline.Options{})
	run, ferr := rec.Finish(ctx, err)
	if ferr != nil {
		t.Fatal(ferr)
	}
	return run
}

// history is the run history, oldest first.
func history(t *testing.T, wh *warehouse.Warehouse) []pipeline.Record {
	t.Helper()
	rs, err := pipeline.Runs(context.Background(), wh, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return rs
}

// sameTime reports whether a and b are the same time to PostgreSQL's
// precision, the microsecond.
func sameTime(a, b time.Time) bool { return a.Sub(b).Abs() < time.Microsecond }

// Runs that find nothing new, in a row, make one row of the history; a run
// that moved data, failed, or was alerted about is a row of its own, and
// so is the first quiet run after it, or after a change of trigger, or
// once a row's quiet runs span QuietSpan.
func TestQuietRunsShareARow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pgtest.Pool(t, fixture.Source(1, 31).NewDB(t))
	wh := warehouse.New(pgtest.Pool(t, fixture.Warehouse().NewDB(t)), nil)
	lk, err := lake.Open(ctx, "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	p := pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}

	// The seed, then five runs that find nothing new: two rows.
	seeded := runOnce(t, p, "schedule")
	if seeded.Quiet || seeded.Coalesced != 1 || len(seeded.Batches) == 0 {
		t.Fatalf("the seed's run: %+v", seeded)
	}
	var quiet []pipeline.Record
	for range 5 {
		quiet = append(quiet, runOnce(t, p, "schedule"))
	}
	last := quiet[4]
	if !last.Quiet || last.Coalesced != 5 || last.FirstID != quiet[0].ID || last.FirstStartedAt == nil ||
		!sameTime(*last.FirstStartedAt, quiet[0].StartedAt) {
		t.Errorf("the fifth quiet run, as recorded: %+v", last)
	}
	h := history(t, wh)
	if len(h) != 2 || h[0].ID != seeded.ID || h[0].Coalesced != 1 || h[0].Quiet {
		t.Fatalf("after the seed and 5 quiet runs, the history is %+v", h)
	}
	// The row is its newest run's: its id, its times, its stages.
	if r := h[1]; r.ID != last.ID || !r.Quiet || r.Coalesced != 5 || r.FirstID != quiet[0].ID || r.Outcome != pipeline.Success ||
		!sameTime(r.StartedAt, last.StartedAt) || r.FinishedAt == nil || !sameTime(*r.FinishedAt, *last.FinishedAt) || len(r.Stages) != 3 ||
		len(r.Batches) != 0 || r.Attempts != 1 {
		t.Errorf("the row of quiet runs: %+v", r)
	}
	// Its ids are contiguous: a log line's run id is in the row whose
	// first_id..id holds it.
	if last.ID-last.FirstID != 4 {
		t.Errorf("5 quiet runs span ids %d..%d", last.FirstID, last.ID)
	}

	// Another trigger starts a row of its own, and ends the streak.
	if r := runOnce(t, p, "http"); !r.Quiet || r.Coalesced != 1 {
		t.Errorf("a quiet run by another trigger: %+v", r)
	}
	if r := runOnce(t, p, "schedule"); r.Coalesced != 1 {
		t.Errorf("a quiet run after another trigger's: %+v", r)
	}

	// Data: a row of its own, and the quiet run after it too.
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 50, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	moved := runOnce(t, p, "schedule")
	if moved.Quiet || moved.Coalesced != 1 || len(moved.Batches) == 0 {
		t.Errorf("a run that moved data: %+v", moved)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 1 {
		t.Errorf("the quiet run after one that moved data: %+v", r)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 2 {
		t.Errorf("the second quiet run after one that moved data: %+v", r)
	}

	// A failure: a row of its own, and so is the quiet run after it.
	if _, err := src.Exec(ctx, `ALTER TABLE currency RENAME TO currency_gone`); err != nil {
		t.Fatal(err)
	}
	failed := runOnce(t, p, "schedule")
	if failed.Outcome != pipeline.Failure || failed.Quiet || failed.Coalesced != 1 {
		t.Errorf("a failed run: %+v", failed)
	}
	if _, err := src.Exec(ctx, `ALTER TABLE currency_gone RENAME TO currency`); err != nil {
		t.Fatal(err)
	}
	afterFailure := runOnce(t, p, "schedule")
	if !afterFailure.Quiet || afterFailure.Coalesced != 1 {
		t.Errorf("the quiet run after a failure: %+v", afterFailure)
	}

	// An alert recorded against a quiet run keeps its row apart.
	if err := pipeline.RecordNotifications(ctx, wh, afterFailure.ID, []pipeline.Notification{
		{Notifier: "webhook", Kind: "lag", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	alerted := runOnce(t, p, "schedule")
	if !alerted.Quiet || alerted.Coalesced != 1 {
		t.Errorf("the quiet run after one alerted about: %+v", alerted)
	}

	// A row's quiet runs span at most QuietSpan.
	if _, err := wh.Pool().Exec(ctx, `UPDATE tote.runs SET started_at = started_at - $2::interval WHERE id = $1`,
		alerted.ID, (pipeline.QuietSpan + time.Minute).String()); err != nil {
		t.Fatal(err)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 1 {
		t.Errorf("a quiet run more than QuietSpan after the row's first: %+v", r)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 2 {
		t.Errorf("the next one: %+v", r)
	}

	// Every run is accounted for: 1 seed, 5 quiet, http, schedule, moved,
	// 2 quiet, failed, quiet, alerted, 2 quiet.
	var outcomes = map[string]int{}
	for _, r := range history(t, wh) {
		outcomes[r.Outcome] += r.Coalesced
	}
	if outcomes[pipeline.Success] != 15 || outcomes[pipeline.Failure] != 1 || len(outcomes) != 2 {
		t.Errorf("runs by outcome, counted over the rows: %v", outcomes)
	}
	if h := history(t, wh); len(h) != 10 {
		t.Errorf("%d rows of history, want 10: %+v", len(h), h)
	}
}

// A run in progress is a row of its own until it finishes: a quiet run
// takes in the row before it only when it finishes, and a run that ends
// abandoned is not quiet.
func TestAnAbandonedRunIsARowOfItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pgtest.Pool(t, fixture.Source(1, 31).NewDB(t))
	wh := warehouse.New(pgtest.Pool(t, fixture.Warehouse().NewDB(t)), nil)
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	p := pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}
	runOnce(t, p, "schedule")
	q := runOnce(t, p, "schedule")

	rec, err := pipeline.Begin(ctx, p, "schedule", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := history(t, wh); len(h) != 3 || h[2].Outcome != "" || h[1].ID != q.ID {
		t.Fatalf("with a run in progress: %+v", h)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, perr := rec.Pass(cctx, pipeline.Options{})
	run, err := rec.Finish(cctx, perr)
	if err != nil || run.Outcome != pipeline.Abandoned || run.Quiet || run.Coalesced != 1 {
		t.Fatalf("the abandoned run: %+v (%v)", run, err)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 1 {
		t.Errorf("the quiet run after an abandoned one: %+v", r)
	}
	if h := history(t, wh); len(h) != 4 {
		t.Errorf("%d rows, want 4: %+v", len(h), h)
	}
}

// A run whose row someone deleted while it ran cannot be recorded: Finish
// says so, naming the run, rather than recording nothing in silence.
func TestFinishWithoutItsRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wh := warehouse.New(pgtest.Pool(t, fixture.Warehouse().NewDB(t)), nil)
	rec, err := pipeline.Begin(ctx, pipeline.Parts{Warehouse: wh}, "manual", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.Pool().Exec(ctx, `DELETE FROM tote.runs WHERE id = $1`, rec.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = rec.Finish(ctx, nil)
	if want := fmt.Sprintf("record run %d: its row is gone from tote.runs", rec.ID()); err == nil || err.Error() != want {
		t.Errorf("Finish: %v, want %q", err, want)
	}
	// The run lock is released all the same.
	release, err := pipeline.LockRun(ctx, wh)
	if err != nil {
		t.Fatalf("the run lock after: %v", err)
	}
	release()
}

// lastBeforeQuietRuns is the newest warehouse migration of the release
// before quiet runs were coalesced: its tote.runs has a row per run.
const lastBeforeQuietRuns = 14

// A history the release before wrote carries on: its rows read as one run
// each, none of them quiet (the migration cannot tell, and the rule is for
// runs recorded since), so the first quiet run after the upgrade never
// takes one in; quiet runs after it share a row.
func TestRunHistoryUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := fixture.OldWarehouse(t, lastBeforeQuietRuns)
	// What that release recorded: a failure, then two runs that found
	// nothing new, one with an alert.
	if _, err := old.Exec(ctx, `INSERT INTO tote.runs (trigger, started_at, finished_at, outcome, error, stages, batches, error_where, attempts, notifications)
VALUES ('schedule', now() - interval '3 minutes', now() - interval '3 minutes', 'failure', 'extract: source down', '[]', '[]', '{"stage": "extract"}', 3, '[]'),
       ('schedule', now() - interval '2 minutes', now() - interval '2 minutes', 'success', NULL, '[{"stage": "extract", "rows": 0, "elapsed_ns": 5}]', '[]', NULL, 1,
        '[{"notifier": "webhook", "kind": "recovered", "at": "2026-12-01T10:00:00Z"}]'),
       ('schedule', now() - interval '1 minute', now() - interval '1 minute', 'success', NULL, '[{"stage": "extract", "rows": 0, "elapsed_ns": 5}]', '[]', NULL, 1, '[]')`); err != nil {
		t.Fatal(err)
	}
	wh := warehouse.New(old, nil)
	if err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h := history(t, wh)
	if len(h) != 3 {
		t.Fatalf("the old history after the upgrade: %+v", h)
	}
	for _, r := range h {
		if r.Quiet || r.Coalesced != 1 || r.FirstID != 0 || r.FirstStartedAt != nil {
			t.Errorf("run %d of the old release, upgraded: %+v", r.ID, r)
		}
	}
	if h[0].Outcome != pipeline.Failure || h[0].Attempts != 3 || h[0].Where.Stage != "extract" || len(h[1].Notifications) != 1 || len(h[2].Stages) != 1 {
		t.Errorf("the old history, as read: %+v", h)
	}

	// The runs after the upgrade: the seed, then quiet runs.
	src := pgtest.Pool(t, fixture.Source(1, 31).NewDB(t))
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	p := pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}
	if r := runOnce(t, p, "schedule"); r.Quiet || r.Coalesced != 1 {
		t.Errorf("the seed's run after the upgrade: %+v", r)
	}
	// An old row that looks quiet is not taken in: the same as the last
	// row of the old release, recorded after the seed's.
	if _, err := old.Exec(ctx, `INSERT INTO tote.runs (trigger, started_at, finished_at, outcome, stages, batches)
SELECT trigger, now(), now(), outcome, stages, batches FROM tote.runs WHERE id = $1`, h[2].ID); err != nil {
		t.Fatal(err)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 1 {
		t.Errorf("the first quiet run, after an old row: %+v", r)
	}
	if r := runOnce(t, p, "schedule"); !r.Quiet || r.Coalesced != 2 {
		t.Errorf("the second quiet run: %+v", r)
	}
	if n := len(history(t, wh)); n != 6 {
		t.Errorf("%d rows, want 6 (3 old, the seed's, the old-looking one, 2 quiet runs in one)", n)
	}
}

// BenchmarkQuietRun measures a run that finds nothing new, as tote serve
// makes every second under logical capture (here by xmin): Begin, one
// pass, Finish, which records it; and reports the rows of history per run.
func BenchmarkQuietRun(b *testing.B) {
	ctx := context.Background()
	src := pgtest.Pool(b, fixture.Source(1, 31).NewDB(b))
	wh := warehouse.New(pgtest.Pool(b, fixture.Warehouse().NewDB(b)), nil)
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer lk.Close()
	p := pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}
	if _, err := pipeline.Run(ctx, p, pipeline.Options{}); err != nil {
		b.Fatal(err)
	}
	var before int64
	if err := wh.Pool().QueryRow(ctx, `SELECT count(*) FROM tote.runs`).Scan(&before); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rec, err := pipeline.Begin(ctx, p, "schedule", nil)
		if err != nil {
			b.Fatal(err)
		}
		_, err = rec.Pass(ctx, pipeline.Options{})
		if _, err := rec.Finish(ctx, err); err != nil {
			b.Fatal(err)
		}
	}
	var after int64
	if err := wh.Pool().QueryRow(ctx, `SELECT count(*) FROM tote.runs`).Scan(&after); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/float64(b.N), "rows/run")
}

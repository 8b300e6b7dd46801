package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/warehouse"
)

// The run history is a table of the warehouse (tote.runs, created by its
// migrations), and the run lock a session lock on the warehouse's
// database: runs are serialized where they load, whichever process makes
// them. This file owns both; the warehouse package only creates the table.
//
// Quiet runs are coalesced. tote serve under logical capture runs every
// second, on its schedule otherwise, and most runs find nothing new: one
// row each would be 86,400 rows a day of "nothing new", burying the runs
// that did something. So a run that succeeded at its first attempt and
// moved nothing (no batch in any stage, no row, no deletion) is quiet, and
// when it finishes it takes into its own row the row just before it (the
// newest of a lower id) if that one is quiet too, has the same trigger,
// has no alert recorded against it, and its first run began less than
// QuietSpan before this one. The row keeps describing its newest run in
// full (id, times, stages: so "last run" is the newest pass and proves the
// daemon alive, and durations stay one run's), and says how many runs it
// stands for (Coalesced) and since when (FirstID, FirstStartedAt). The
// runs taken in are contiguous ids (runs are serialized by the run lock),
// so a log line's run id is found in the row whose FirstID..ID holds it.
// A run that moved data, failed, was abandoned, took retries, or had an
// alert sent about it (its notifications, recorded after Finish, keep
// the next quiet run from taking its row) is always a row of its own, and
// ends a streak. Readers of the rows alone see fewer rows, not other
// ones: the metrics (tote_runs_total) still count every run, the lag
// comes from the lake and the ledger, not from here, and the run lock is
// untouched.
//
// Retention: none is applied. Coalesced, a quiet tote serve adds at most
// 24 rows a day (one per QuietSpan); every other row records a run that
// committed batches (which the ledger and the lake keep forever too), or
// failed or alerted, which is what a person reads the history for.
// Nothing reads old rows, so an operator may delete rows by age at will
// (README, "The warehouse").

// QuietSpan bounds a row of coalesced quiet runs: a streak longer than
// that starts a new row, so a quiet day is 24 rows, each an hour's proof
// of life, and "runs in the last 24 hours" is right to within an hour.
const QuietSpan = time.Hour

// runLock is the advisory lock key that serializes pipeline runs across
// processes: "toterun!" in ASCII.
const runLock int64 = 0x746f746572756e21

// ErrRunInProgress is returned by LockRun when another session, in this
// process or another, holds the run lock. It is tote.Busy.
var ErrRunInProgress = tote.Sentinel(tote.Busy, "another tote run is in progress on this warehouse")

// LockRun takes the warehouse's run lock without waiting, so that two
// daemons, or a daemon and `tote run`, never run the pipeline at once. The
// lock is held by one pooled connection until release is called, or until
// that connection is lost.
func LockRun(ctx context.Context, wh *warehouse.Warehouse) (release func(), err error) {
	conn, err := wh.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, runLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrRunInProgress
	}
	return func() {
		// A fresh context: the lock must go even when the run's was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, runLock); err != nil {
			// Closing the session is the only other way to drop the lock.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// Record is one run as the history (tote.runs) records it.
type Record struct {
	ID int64 `json:"id"`
	// Trigger says what started the run: "startup", "schedule" or "http"
	// for the daemon's runs, "manual" for tote run.
	Trigger    string     `json:"trigger"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Outcome is Success, Failure or Abandoned (stopped by shutdown);
	// empty while the run is in progress.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
	// Where says where a failed run failed, as its error says it.
	Where   tote.Where    `json:"where,omitzero"`
	Stages  []StageRecord `json:"stages"`
	Batches []string      `json:"batches"`
	// Attempts is how many times the pass was tried.
	Attempts int `json:"attempts"`
	// Notifications are the alerts sent about the run, one per notifier.
	Notifications []Notification `json:"notifications"`
	// Quiet says the run succeeded at its first attempt and moved
	// nothing: no batch, no row, no deletion in any stage.
	Quiet bool `json:"quiet,omitempty"`
	// Coalesced is how many runs the record stands for: 1, or for a quiet
	// run, itself and the streak of quiet runs before it that it took in
	// (see QuietSpan). FirstID and FirstStartedAt are the first of them,
	// set only when there is more than one; the record's other fields are
	// those of its newest run.
	Coalesced      int        `json:"coalesced"`
	FirstID        int64      `json:"first_id,omitempty"`
	FirstStartedAt *time.Time `json:"first_started_at,omitempty"`
}

// isQuiet reports whether run r, finished, is quiet: it succeeded at its
// first attempt and moved nothing.
func isQuiet(r Record) bool {
	if r.Outcome != Success || r.Attempts > 1 || len(r.Batches) > 0 {
		return false
	}
	for _, s := range r.Stages {
		if s.Rows != 0 || len(s.Deleted) > 0 || s.Error != "" {
			return false
		}
	}
	return true
}

// Notification is one notifier's attempt to deliver one alert about a run.
type Notification struct {
	Notifier string    `json:"notifier"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"` // empty if delivered
}

// StageRecord is what one stage did over all attempts of a run.
type StageRecord struct {
	Stage  string           `json:"stage"`
	Rows   int64            `json:"rows"`
	Tables map[string]int64 `json:"tables,omitempty"`
	// Deleted counts the source rows deleted that the stage carried, by
	// table (see StageResult.Deleted); none if it carried none.
	Deleted map[string]int64 `json:"deleted,omitempty"`
	Elapsed time.Duration    `json:"elapsed_ns"`
	Error   string           `json:"error,omitempty"`
}

// DeletedRows is the number of source rows deleted that the stage carried.
func (s StageRecord) DeletedRows() int64 {
	var n int64
	for _, d := range s.Deleted {
		n += d
	}
	return n
}

const (
	startRunSQL = `INSERT INTO tote.runs (trigger, started_at) VALUES ($1, $2) RETURNING id`
	// finishRunSQL records how run $1 ended and, if it is quiet ($9),
	// takes in the row before it when that one may be (see QuietSpan: $10
	// is the run's trigger, $11 the earliest start its streak may have).
	// One statement: the history never holds both rows, nor neither.
	finishRunSQL = `WITH prev AS (
    SELECT id, coalesced, coalesce(first_id, id) AS first_id, coalesce(first_started_at, started_at) AS first_started_at
    FROM tote.runs WHERE id < $1 ORDER BY id DESC LIMIT 1
), taken AS (
    DELETE FROM tote.runs r USING prev
    WHERE $9 AND r.id = prev.id AND r.quiet AND r.notifications = '[]' AND r.trigger = $10 AND prev.first_started_at >= $11
    RETURNING prev.coalesced, prev.first_id, prev.first_started_at
)
UPDATE tote.runs SET finished_at = $2, outcome = $3, error = $4, stages = $5, batches = $6, error_where = $7,
       attempts = $8, quiet = $9, coalesced = 1 + coalesce((SELECT coalesced FROM taken), 0),
       first_id = (SELECT first_id FROM taken), first_started_at = (SELECT first_started_at FROM taken)
WHERE id = $1
RETURNING coalesced, coalesce(first_id, 0), first_started_at`
	notifySQL = `UPDATE tote.runs SET notifications = notifications || $2 WHERE id = $1`
	runsSQL   = `SELECT id, trigger, started_at, finished_at, coalesce(outcome, ''), coalesce(error, ''),
       coalesce(stages, '[]'), coalesce(batches, '[]'), coalesce(error_where, '{}'), attempts, notifications,
       quiet, coalesced, coalesce(first_id, 0), first_started_at
FROM tote.runs ORDER BY id DESC LIMIT $1`
)

// startRun records the start of a run and returns its id. The warehouse
// must have been migrated.
func startRun(ctx context.Context, wh *warehouse.Warehouse, trigger string, started time.Time) (int64, error) {
	var id int64
	if err := wh.Pool().QueryRow(ctx, startRunSQL, trigger, started).Scan(&id); err != nil {
		return 0, fmt.Errorf("record run start: %w", err)
	}
	return id, nil
}

// finishRun records how run r ended, coalescing it with the quiet runs
// before it if it is quiet, and returns r as recorded.
func finishRun(ctx context.Context, wh *warehouse.Warehouse, r Record) (Record, error) {
	stages, err := json.Marshal(r.Stages)
	if err != nil {
		return r, fmt.Errorf("record run %d: %w", r.ID, err)
	}
	batches, err := json.Marshal(r.Batches)
	if err != nil {
		return r, fmt.Errorf("record run %d: %w", r.ID, err)
	}
	var errText *string
	var where []byte
	if r.Error != "" {
		errText = &r.Error
		if where, err = json.Marshal(r.Where); err != nil {
			return r, fmt.Errorf("record run %d: %w", r.ID, err)
		}
	}
	r.Attempts = max(r.Attempts, 1)
	r.Quiet = isQuiet(r)
	err = wh.Pool().QueryRow(ctx, finishRunSQL, r.ID, r.FinishedAt, r.Outcome, errText, stages, batches, where, r.Attempts,
		r.Quiet, r.Trigger, r.StartedAt.Add(-QuietSpan)).Scan(&r.Coalesced, &r.FirstID, &r.FirstStartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errors.New("its row is gone from tote.runs")
	}
	if err != nil {
		return r, fmt.Errorf("record run %d: %w", r.ID, err)
	}
	return r, nil
}

// RecordNotifications adds the alerts sent about run to its record.
func RecordNotifications(ctx context.Context, wh *warehouse.Warehouse, run int64, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	b, err := json.Marshal(ns)
	if err != nil {
		return fmt.Errorf("record run %d's alerts: %w", run, err)
	}
	if _, err := wh.Pool().Exec(ctx, notifySQL, run, b); err != nil {
		return fmt.Errorf("record run %d's alerts: %w", run, err)
	}
	return nil
}

// Runs returns the most recent runs in wh's history, newest first; none if
// the warehouse has not been migrated.
func Runs(ctx context.Context, wh *warehouse.Warehouse, limit int) ([]Record, error) {
	if ok, err := wh.Migrated(ctx); !ok || err != nil {
		return nil, err
	}
	rows, err := wh.Pool().Query(ctx, runsSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("read run history: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) {
		var r Record
		var stages, batches, where, notifications []byte
		if err := row.Scan(&r.ID, &r.Trigger, &r.StartedAt, &r.FinishedAt, &r.Outcome, &r.Error, &stages, &batches, &where,
			&r.Attempts, &notifications, &r.Quiet, &r.Coalesced, &r.FirstID, &r.FirstStartedAt); err != nil {
			return r, err
		}
		if err := json.Unmarshal(notifications, &r.Notifications); err != nil {
			return r, fmt.Errorf("run %d: notifications: %w", r.ID, err)
		}
		if err := json.Unmarshal(where, &r.Where); err != nil {
			return r, fmt.Errorf("run %d: where: %w", r.ID, err)
		}
		if err := json.Unmarshal(stages, &r.Stages); err != nil {
			return r, fmt.Errorf("run %d: stages: %w", r.ID, err)
		}
		if err := json.Unmarshal(batches, &r.Batches); err != nil {
			return r, fmt.Errorf("run %d: batches: %w", r.ID, err)
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read run history: %w", err)
	}
	return runs, nil
}

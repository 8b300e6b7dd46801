package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
)

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
func (w *Warehouse) LockRun(ctx context.Context) (release func(), err error) {
	conn, err := w.pool.Acquire(ctx)
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

// Run is one pipeline run as the history (tote.runs) records it.
type Run struct {
	ID int64 `json:"id"`
	// Trigger says what started the run: "startup", "schedule" or "http"
	// for the daemon's runs, "manual" for tote run.
	Trigger    string     `json:"trigger"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Outcome is "success", "failure" or "abandoned" (stopped by shutdown);
	// empty while the run is in progress.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
	// Where says where a failed run failed, as its error says it.
	Where   tote.Where `json:"where,omitzero"`
	Stages  []RunStage `json:"stages"`
	Batches []string   `json:"batches"`
	// Attempts is how many times the pass was tried.
	Attempts int `json:"attempts"`
	// Notifications are the alerts sent about the run, one per notifier.
	Notifications []Notification `json:"notifications"`
}

// Notification is one notifier's attempt to deliver one alert about a run.
type Notification struct {
	Notifier string    `json:"notifier"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"` // empty if delivered
}

// RunStage is what one stage did over all attempts of a run.
type RunStage struct {
	Stage   string           `json:"stage"`
	Rows    int64            `json:"rows"`
	Tables  map[string]int64 `json:"tables,omitempty"`
	Elapsed time.Duration    `json:"elapsed_ns"`
	Error   string           `json:"error,omitempty"`
}

const (
	startRunSQL  = `INSERT INTO tote.runs (trigger, started_at) VALUES ($1, $2) RETURNING id`
	finishRunSQL = `UPDATE tote.runs SET finished_at = $2, outcome = $3, error = $4, stages = $5, batches = $6, error_where = $7,
       attempts = $8 WHERE id = $1`
	notifySQL = `UPDATE tote.runs SET notifications = notifications || $2 WHERE id = $1`
	runsSQL   = `SELECT id, trigger, started_at, finished_at, coalesce(outcome, ''), coalesce(error, ''),
       coalesce(stages, '[]'), coalesce(batches, '[]'), coalesce(error_where, '{}'), attempts, notifications
FROM tote.runs ORDER BY id DESC LIMIT $1`
)

// StartRun records the start of a run and returns its id. The warehouse
// must have been migrated.
func (w *Warehouse) StartRun(ctx context.Context, trigger string, started time.Time) (int64, error) {
	var id int64
	if err := w.pool.QueryRow(ctx, startRunSQL, trigger, started).Scan(&id); err != nil {
		return 0, fmt.Errorf("record run start: %w", err)
	}
	return id, nil
}

// FinishRun records how run r ended.
func (w *Warehouse) FinishRun(ctx context.Context, r Run) error {
	stages, err := json.Marshal(r.Stages)
	if err != nil {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	batches, err := json.Marshal(r.Batches)
	if err != nil {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	var errText *string
	var where []byte
	if r.Error != "" {
		errText = &r.Error
		if where, err = json.Marshal(r.Where); err != nil {
			return fmt.Errorf("record run %d: %w", r.ID, err)
		}
	}
	if _, err := w.pool.Exec(ctx, finishRunSQL, r.ID, r.FinishedAt, r.Outcome, errText, stages, batches, where, max(r.Attempts, 1)); err != nil {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	return nil
}

// RecordNotifications adds the alerts sent about run to its record.
func (w *Warehouse) RecordNotifications(ctx context.Context, run int64, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	b, err := json.Marshal(ns)
	if err != nil {
		return fmt.Errorf("record run %d's alerts: %w", run, err)
	}
	if _, err := w.pool.Exec(ctx, notifySQL, run, b); err != nil {
		return fmt.Errorf("record run %d's alerts: %w", run, err)
	}
	return nil
}

// Runs returns the most recent runs, newest first; none if the warehouse
// has not been migrated.
func (w *Warehouse) Runs(ctx context.Context, limit int) ([]Run, error) {
	if ok, err := w.migrated(ctx); !ok || err != nil {
		return nil, err
	}
	rows, err := w.pool.Query(ctx, runsSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("read run history: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) {
		var r Run
		var stages, batches, where, notifications []byte
		if err := row.Scan(&r.ID, &r.Trigger, &r.StartedAt, &r.FinishedAt, &r.Outcome, &r.Error, &stages, &batches, &where,
			&r.Attempts, &notifications); err != nil {
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

// freshnessSQL is the newest source change loaded into any fact table:
// the largest last_updated_date + last_updated_time, taken as UTC (the
// source's last_updated is a timestamp without time zone, written in UTC).
// Facts keep every row version, so their newest version is the newest
// change loaded; dimensions keep no last_updated.
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

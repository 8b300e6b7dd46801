// Package daemon owns running tote unattended: the schedule (a fixed
// interval or a cron expression) and run-now trigger, one run at a time
// across processes (the warehouse's run lock), retries with exponential
// backoff and jitter, the run history, alerts on failed runs and stale
// data, and the HTTP server with /healthz, /readyz, /metrics and /runs.
//
// A run retries the whole pass: every stage carries on from what earlier
// attempts committed, so a retry redoes only the stage that failed and
// those after it (extract may also pick up changes made meanwhile). Only
// an error that trying again may cure is retried (tote.Retryable, the
// policy the Lambda functions follow too): a drifted source schema,
// another source, a corrupt lake object, a bad value in strict mode or a
// wrong password fails the run at once, with its alert, and the next
// scheduled run tries again.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/verify"
)

// Triggers, as the run history records them.
const (
	TriggerStartup  = "startup"
	TriggerSchedule = "schedule"
	TriggerHTTP     = "http"
)

// Skipped is the outcome, in metrics, of a run not made because another
// process held the warehouse's run lock; the history has no row for it.
// The other outcomes are pipeline's.
const Skipped = "skipped"

// Schedule says when the next run is due. cron.Schedule satisfies it.
type Schedule interface {
	Next(time.Time) time.Time
}

// Every is a schedule that runs at a fixed interval after each run ends.
type Every time.Duration

// Next returns t plus the interval.
func (e Every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// Config is what a daemon runs.
type Config struct {
	Parts    pipeline.Parts
	Schedule Schedule
	// Retries is how many times a failed run is retried before it fails;
	// a run whose error is not tote.Retryable is not.
	Retries int
	// Backoff is the delay before the first retry; it doubles for each
	// further one, up to MaxBackoff, and is jittered. Zero means 1s and 1m.
	Backoff, MaxBackoff time.Duration
	// LagThreshold is how far the warehouse may fall behind the source
	// (see pipeline.Freshness) before a stale-data alert is raised. Zero
	// disables it.
	LagThreshold time.Duration
	// VerifyEvery, if set, is how often the warehouse is compared with the
	// source (see package verify), between runs.
	VerifyEvery time.Duration
	// MaintainEvery, if set and Parts.Iceberg is not nil, is how often the
	// Iceberg tables are compacted and their old snapshots expired (see
	// iceberg.Publisher.Maintain, with Maintain's options), between runs.
	MaintainEvery time.Duration
	Maintain      iceberg.MaintainOptions
	// Strict fails a run on a value that cannot be transformed instead of
	// quarantining its row (see transform.Options).
	Strict bool
	// Extract is the extractions' options (the capture mode); its Logger
	// defaults to the daemon's.
	Extract extract.Options
	// Incidents alerts on failures and stale data; nil sends no alerts.
	Incidents *alert.Incidents
	Logger    *slog.Logger
	// Now is the clock the lag is measured with; nil means time.Now.
	Now func() time.Time
	// Dashboard, if set, is served at / (package web); nil serves only
	// the endpoints above.
	Dashboard http.Handler
	// Token, if set, is asked of requests to /runs (see Handler).
	Token string
	// ReadyTimeout bounds each part's check in /readyz. Default 5s.
	ReadyTimeout time.Duration
	// Slot, if set, is logical capture's replication slot: its health is
	// read from the source before and after each run (CheckSlot), shown in the
	// tote_slot_* metrics, and alerted on once per problem (lagging past
	// SlotLagThreshold, wal_status unreserved or lost, missing) with one
	// message when it is healthy again. Nil with capture by xmin.
	Slot *replication.Config
	// SlotLagThreshold is the unconfirmed WAL, in bytes, past which the
	// slot counts as lagging. Zero: no lag alert.
	SlotLagThreshold int64
}

// Daemon runs the pipeline on its schedule and serves its HTTP endpoints.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	trigger chan string
	metrics *metrics
	running sync.Mutex // one run at a time in this process; the run lock does it across processes

	mu         sync.Mutex
	deliveries []alert.Delivery // of the run in progress, for its record

	lakeSized time.Time // when the lake's size was last counted

	slotHealth     *replication.SlotHealth // as CheckSlot last read it; guarded by mu
	kept, keptRead time.Time               // the lake's last extraction's time, and when it was read; guarded by mu
}

// LastSlot returns the replication slot's health as CheckSlot last read
// it, nil if never (or no slot is watched).
func (d *Daemon) LastSlot() *replication.SlotHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.slotHealth
}

// lakeSizeEvery is how often the lake's size gauge is refreshed: counting
// lists every object, which grows with the lake's history.
const lakeSizeEvery = time.Hour

// delivered counts a failed delivery and keeps each for the run's record.
func (d *Daemon) delivered(dl alert.Delivery) {
	if dl.Error != "" {
		d.metrics.notifierFailures.WithLabelValues(dl.Notifier).Inc()
	}
	d.mu.Lock()
	d.deliveries = append(d.deliveries, dl)
	d.mu.Unlock()
}

// takeDeliveries returns the deliveries since the last call.
func (d *Daemon) takeDeliveries() []alert.Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.deliveries
	d.deliveries = nil
	return out
}

// New returns a daemon for cfg. It registers its metrics on a registry of
// its own, which Handler serves.
func New(cfg Config) *Daemon {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Every(5 * time.Minute)
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Incidents == nil {
		cfg.Incidents = &alert.Incidents{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 5 * time.Second
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, trigger: make(chan string, 1), metrics: newMetrics()}
	if cfg.Slot != nil {
		d.metrics.watchSlot()
	}
	cfg.Incidents.Delivered = d.delivered
	return d
}

// Trigger asks for a run now. It returns false if one is already queued.
func (d *Daemon) Trigger(trigger string) bool {
	select {
	case d.trigger <- trigger:
		return true
	default:
		return false
	}
}

// Serve serves HTTP on ln and runs the pipeline at startup and on the
// schedule, until ctx is cancelled. It starts whatever the state of the
// parts: a source, warehouse or lake that is down or does not answer
// fails the runs (each wait on it bounded, see package postgres and
// lake), which alert once and retry on the schedule, while /healthz says
// the daemon is alive and /readyz what is not ready. A run in progress
// when ctx is cancelled is abandoned at its current stage, which leaves
// nothing half-committed, and recorded as such. Serve returns nil after a
// clean shutdown.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.log.Info("serving", "addr", ln.Addr().String())
	// The run history is in the warehouse; each run migrates it too.
	if err := d.cfg.Parts.Warehouse.Migrate(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("cannot migrate the warehouse yet; each run tries again", "err", err)
	}

	d.loop(ctx)

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("daemon: http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("daemon: http: %w", err)
	}
	d.log.Info("stopped")
	return nil
}

func (d *Daemon) loop(ctx context.Context) {
	trigger := TriggerStartup
	var verifyAt <-chan time.Time
	if d.cfg.VerifyEvery > 0 {
		tick := time.NewTicker(d.cfg.VerifyEvery)
		defer tick.Stop()
		verifyAt = tick.C
	}
	var maintainAt <-chan time.Time
	if d.cfg.MaintainEvery > 0 && d.cfg.Parts.Iceberg != nil {
		tick := time.NewTicker(d.cfg.MaintainEvery)
		defer tick.Stop()
		maintainAt = tick.C
	}
	for {
		if _, err := d.RunOnce(ctx, trigger); err != nil && ctx.Err() == nil {
			d.ready(ctx) // which part failed, for the metrics
		}
		next := d.cfg.Schedule.Next(time.Now())
		d.log.Debug("next run", "at", next)
		t := time.NewTimer(time.Until(next))
	wait:
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			trigger = TriggerSchedule
		case trigger = <-d.trigger:
			t.Stop()
		case <-verifyAt:
			_, _ = d.VerifyOnce(ctx)
			goto wait
		case <-maintainAt:
			_, _ = d.MaintainOnce(ctx)
			goto wait
		}
	}
}

// RunOnce makes one run now: it takes the warehouse's run lock, runs the
// pipeline with retries, records the run and alerts. If another process
// holds the lock it returns an error wrapping pipeline.ErrRunInProgress
// and records nothing.
func (d *Daemon) RunOnce(ctx context.Context, trigger string) (pipeline.Record, error) {
	d.running.Lock()
	defer d.running.Unlock()
	d.takeDeliveries() // those of a run that could not start are in the log only
	rec, err := pipeline.Begin(ctx, d.cfg.Parts, trigger, d.log)
	if err != nil {
		if errors.Is(err, pipeline.ErrRunInProgress) {
			d.metrics.runs.WithLabelValues(Skipped).Inc()
			d.log.Info("skipping run: another process holds the warehouse's run lock", "trigger", trigger)
			return pipeline.Record{Outcome: Skipped}, err
		}
		d.metrics.runs.WithLabelValues(pipeline.Failure).Inc()
		d.log.Error("cannot start run", "trigger", trigger, "err", err)
		d.alertFailure(ctx, pipeline.Record{}, err)
		return pipeline.Record{}, err
	}
	log := rec.Logger()
	d.metrics.inProgress.Set(1)
	defer d.metrics.inProgress.Set(0)
	if d.cfg.Slot != nil {
		// Before the pass too: a lost or missing slot is replaced by the
		// extraction (a full one), and would otherwise go unseen.
		if _, err := d.CheckSlot(ctx); err != nil {
			log.Warn("cannot read the replication slot's health", "err", err)
		}
	}

	var quarantined, newColumns []string
	for attempt := 1; ; attempt++ {
		var res pipeline.Result
		res, err = rec.Pass(ctx, pipeline.Options{Strict: d.cfg.Strict, Extract: d.cfg.Extract})
		d.observeExtract(res)
		quarantined = append(quarantined, res.Quarantined()...)
		if res.Extract != nil {
			for _, c := range res.Extract.NewColumns {
				newColumns = append(newColumns, c.String())
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt > d.cfg.Retries {
			break
		}
		if !tote.Retryable(err) {
			log.Warn("run attempt failed; not retried: trying again cannot help", "stage", tote.Locate(err).Stage,
				"attempt", attempt, "kind", tote.KindOf(err), "err", err)
			break
		}
		delay := d.backoff(attempt)
		log.Warn("run attempt failed; retrying", "stage", tote.Locate(err).Stage, "attempt", attempt,
			"retry_in", delay.Round(time.Millisecond), "err", err)
		if !sleep(ctx, delay) {
			break
		}
	}
	err = postgres.Reword(err) // a connection that failed mid-run, in one line
	run, _ := rec.Finish(ctx, err)
	d.observe(run)
	// Alert even when shutdown cancelled ctx.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	switch run.Outcome {
	case pipeline.Success:
		d.metrics.up(nil)
		log.Info("run succeeded", "seconds", run.FinishedAt.Sub(run.StartedAt).Seconds(), "attempts", run.Attempts, "batches", len(run.Batches))
		d.metrics.lastSuccess.Set(float64(run.FinishedAt.Unix()))
		if aerr := d.cfg.Incidents.RunSucceeded(actx, run.ID, *run.FinishedAt); aerr != nil {
			log.Warn("recovery alert not fully delivered", "err", aerr)
		}
	case pipeline.Failure:
		log.Error("run failed", "stage", run.Where.Stage, "attempts", run.Attempts, "err", err)
		d.alertFailure(actx, run, err)
	case pipeline.Abandoned:
		log.Warn("run abandoned by shutdown", "stage", run.Where.Stage)
	}
	if len(quarantined) > 0 {
		d.metrics.quarantined.Add(float64(len(quarantined)))
		if aerr := d.cfg.Incidents.Quarantined(actx, run.ID, quarantined, time.Now()); aerr != nil {
			log.Warn("quarantine alert not fully delivered", "err", aerr)
		}
	}
	if aerr := d.cfg.Incidents.NewColumns(actx, run.ID, newColumns, time.Now()); aerr != nil {
		log.Warn("new column alert not fully delivered", "err", aerr)
	}
	d.checkFreshness(actx, log, run.ID)
	if d.cfg.Slot != nil {
		if _, err := d.CheckSlot(actx); err != nil {
			log.Warn("cannot read the replication slot's health", "err", err)
		}
	}
	d.recordDeliveries(actx, log, run.ID)
	return run, err
}

// recordDeliveries adds the alerts sent since the last call to run's record.
func (d *Daemon) recordDeliveries(ctx context.Context, log *slog.Logger, run int64) {
	var ns []pipeline.Notification
	for _, dl := range d.takeDeliveries() {
		ns = append(ns, pipeline.Notification{Notifier: dl.Notifier, Kind: string(dl.Kind), At: dl.At, Error: dl.Error})
	}
	if err := pipeline.RecordNotifications(ctx, d.cfg.Parts.Warehouse, run, ns); err != nil {
		log.Warn("cannot record the run's alerts", "err", err)
	}
}

func (d *Daemon) alertFailure(ctx context.Context, run pipeline.Record, err error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	a := alert.Alert{Run: run.ID, Where: tote.Locate(err), Error: postgres.Reword(err).Error(), Time: time.Now()}
	if aerr := d.cfg.Incidents.RunFailed(actx, a); aerr != nil {
		d.log.Warn("failure alert not fully delivered", "run", run.ID, "err", aerr)
	}
}

// checkFreshness updates the lag, newest change and lake size gauges and
// alerts when the warehouse is too far behind the source.
func (d *Daemon) checkFreshness(ctx context.Context, log *slog.Logger, run int64) {
	p := d.cfg.Parts
	now := d.cfg.Now()
	f, err := pipeline.ReadFreshness(ctx, p.Lake, p.Warehouse, now)
	switch {
	case err != nil:
		log.Warn("cannot read the warehouse's lag", "err", err)
	case f.Loaded():
		d.metrics.lag.Set(f.Lag.Seconds())
		if d.cfg.LagThreshold > 0 {
			if aerr := d.cfg.Incidents.Lag(ctx, run, f.Lag, d.cfg.LagThreshold, now); aerr != nil {
				log.Warn("lag alert not fully delivered", "err", aerr)
			}
		}
	}
	if !f.NewestChange.IsZero() {
		d.metrics.newestChange.Set(now.Sub(f.NewestChange).Seconds())
	}
	if p.Lake != nil && time.Since(d.lakeSized) >= lakeSizeEvery {
		if _, n, err := p.Lake.Size(ctx); err != nil {
			log.Warn("cannot read lake size", "err", err)
		} else {
			d.metrics.lakeBytes.Set(float64(n))
			d.lakeSized = time.Now()
		}
	}
}

// CheckSlot reads the health of logical capture's replication slot from
// the source, sets the tote_slot_* metrics and alerts on a problem (once
// per problem, once more when it is gone). Lag in time is measured from
// when the lake's last extraction read the source (its status). A source
// that does not answer is an error, not a slot problem: the runs alert on
// it.
func (d *Daemon) CheckSlot(ctx context.Context) (replication.SlotHealth, error) {
	if d.cfg.Slot == nil || d.cfg.Parts.Source == nil {
		return replication.SlotHealth{}, errors.New("no replication slot to check")
	}
	h, err := replication.Health(ctx, d.cfg.Parts.Source, *d.cfg.Slot, d.keptAt(ctx), d.cfg.SlotLagThreshold)
	if err != nil {
		return h, err
	}
	d.metrics.observeSlot(h)
	d.mu.Lock()
	was := ""
	if d.slotHealth != nil {
		was = d.slotHealth.Problem
	}
	d.slotHealth = &h
	d.mu.Unlock()
	// Logged when it changes: with logical capture, runs come every second.
	switch {
	case h.Problem != "" && h.Problem != was:
		d.log.Warn("replication slot problem", "slot", h.Slot, "problem", h.Problem, "lag_bytes", h.LagBytes, "wal_status", h.WALStatus)
	case h.Problem == "" && was != "":
		d.log.Info("replication slot healthy again", "slot", h.Slot, "was", was)
	}
	if aerr := d.cfg.Incidents.Slot(ctx, h.Slot, h.Problem, h.Describe(), d.cfg.Now()); aerr != nil {
		d.log.Warn("slot alert not fully delivered", "err", aerr)
	}
	return h, nil
}

// statusEvery is how often CheckSlot reads the last extraction's status
// from the lake: with logical capture runs come every second, and on S3
// each read is a request.
const statusEvery = 10 * time.Second

// keptAt is when the lake's last extraction read the source (zero if
// unknown), read from the lake at most every statusEvery.
func (d *Daemon) keptAt(ctx context.Context) time.Time {
	lk := d.cfg.Parts.Lake
	if lk == nil {
		return time.Time{}
	}
	d.mu.Lock()
	at, readAt := d.kept, d.keptRead
	d.mu.Unlock()
	if time.Since(readAt) < statusEvery {
		return at
	}
	var st extract.Status
	if _, err := lk.Status(ctx, extract.StatusName, &st); err != nil {
		d.log.Warn("cannot read the last extraction's status; the slot's lag in time is unknown", "err", err)
		return at
	}
	d.mu.Lock()
	d.kept, d.keptRead = st.ReadAt, time.Now()
	d.mu.Unlock()
	return st.ReadAt
}

// backoff is the jittered delay before retry n (from 1): the base doubled
// n-1 times, capped, then a uniform pick from its upper half.
func (d *Daemon) backoff(n int) time.Duration {
	b := d.cfg.Backoff
	for i := 1; i < n && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	return b/2 + rand.N(b/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// MaintainOnce compacts the Iceberg tables and expires their old
// snapshots now, between runs. A failure is logged; the tables stay as
// they were and the next schedule tries again.
func (d *Daemon) MaintainOnce(ctx context.Context) (iceberg.MaintainResult, error) {
	d.running.Lock()
	defer d.running.Unlock()
	start := time.Now()
	res, err := d.cfg.Parts.Iceberg.Maintain(ctx, d.cfg.Maintain)
	if err != nil {
		d.log.Warn("iceberg maintenance failed", "err", err)
		return res, err
	}
	d.log.Info("iceberg maintenance done", "seconds", time.Since(start).Seconds())
	return res, nil
}

// VerifyOnce compares the warehouse with the source now, between runs:
// it sets the verify metrics and alerts on a difference (once, then once
// more when they match again).
func (d *Daemon) VerifyOnce(ctx context.Context) (verify.Result, error) {
	d.running.Lock()
	defer d.running.Unlock()
	start := time.Now()
	res, err := verify.Run(ctx, d.cfg.Parts, verify.Options{Logger: d.log})
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		d.log.Warn("verify failed", "err", err)
		d.metrics.verifyErrors.Inc()
		return res, err
	}
	var summary []string
	for _, t := range res.Tables {
		d.metrics.verifyDifferences.WithLabelValues(t.Table).Set(float64(t.Differences()))
		if t.Differences() > 0 {
			summary = append(summary, fmt.Sprintf("%s: %d missing, %d extra, %d different (%s ids %v)",
				t.Table, len(t.Missing), len(t.Extra), len(t.Different), t.Source,
				slices.Concat(t.Missing, t.Extra, t.Different)[:min(10, t.Differences())]))
		}
	}
	d.metrics.verifySeconds.Set(time.Since(start).Seconds())
	d.metrics.verifiedAt.Set(float64(time.Now().Unix()))
	d.log.Info("verified the warehouse against the source", "differences", res.Differences(), "seconds", res.Elapsed.Seconds())
	if aerr := d.cfg.Incidents.Verified(actx, res.Differences(), summary, time.Now()); aerr != nil {
		d.log.Warn("verify alert not fully delivered", "err", aerr)
	}
	d.takeDeliveries() // not a run's: the log has them
	return res, nil
}

package awslambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/verify"
	"github.com/terrifictotes/tote/warehouse"
)

// LoadStatusName is the lake status object (see lake.PutStatus) in which
// the load function says how far the warehouse has loaded.
const LoadStatusName = "load"

// LoadStatus is what the last load run says: processed batch Seq and
// those before it were loaded as of At. It is advisory, like every status
// object: extract and transform read it only to decide whether the load
// has work (Output.New), and take its absence to mean that it has.
type LoadStatus struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
}

// lockedWarehouse opens the warehouse and takes its run lock
// (pipeline.LockRun) for a stage; when another holds the lock, the error
// says what the stage did not do and who may hold it.
func (h *Handler) lockedWarehouse(ctx context.Context, notDone, holders string) (*warehouse.Warehouse, func(), error) {
	wh, err := h.parts.openWarehouse(ctx)
	if err != nil {
		return nil, nil, err
	}
	release, err := pipeline.LockRun(ctx, wh)
	if errors.Is(err, pipeline.ErrRunInProgress) {
		return nil, nil, fmt.Errorf("%s: %w (%s)", notDone, err, holders)
	}
	return wh, release, err
}

// extract runs the extract stage.
func (h *Handler) extract(ctx context.Context, log *slog.Logger, start time.Time) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	src, err := h.parts.openSource(ctx)
	if err != nil {
		return Output{}, err
	}
	res, err := extract.Run(ctx, src, lk, extract.Options{Logger: log, Capture: h.cfg.Capture, Replication: h.cfg.Replication})
	if err != nil {
		return Output{}, err
	}
	out := Output{Rows: map[string]int64{}}
	for _, t := range res.Tables {
		out.add(t.Table, t.Rows, t.Deleted)
	}
	if res.Committed {
		out.Batches, out.New = []string{res.Batch}, true
		return out, nil
	}
	p := h.pending(ctx, lk, log, true)
	if p.any() {
		out.New, out.Pending = true, &p
		return out, nil
	}
	if res.Behind {
		// The warehouse holds the source as of the last extraction, not
		// this one; the next extraction will tell.
		return out, nil
	}
	// Nothing new and everything loaded: the warehouse holds the source
	// as of this extraction's snapshot, taken after start. The state
	// machine stops here, so the lag is published from here.
	lag := seconds(h.env.Now().Sub(start))
	out.LagSeconds = &lag
	return out, nil
}

// transform runs the transform stage.
func (h *Handler) transform(ctx context.Context, log *slog.Logger) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	res, err := transform.Run(ctx, lk, transform.Options{Logger: log, Strict: h.cfg.Strict})
	// The batches committed before a failure quarantined their rows all
	// the same: they are alerted either way, once, as tote serve does.
	var quarantined []string
	for _, b := range res.Batches {
		for _, r := range b.Rejects {
			quarantined = append(quarantined, r.String()+" (raw batch "+r.RawBatch+")")
		}
	}
	alerted := h.alertQuarantined(ctx, log, quarantined)
	if err != nil {
		return Output{}, err
	}
	out := Output{Rows: map[string]int64{}, Quarantined: quarantined, Alerted: alerted}
	for _, b := range res.Batches {
		out.Batches = append(out.Batches, b.Processed)
		for _, t := range b.Tables {
			out.add(t.Table, t.Rows, t.Deleted)
		}
	}
	out.New = len(res.Batches) > 0
	if !out.New {
		if p := h.pending(ctx, lk, log, false); p.any() {
			out.New, out.Pending = true, &p
		}
	}
	return out, nil
}

// load runs the load stage under the warehouse's run lock, then records
// the load status and the lag.
func (h *Handler) load(ctx context.Context, log *slog.Logger) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	// The lock tote run and tote serve take: an overlapping execution, or
	// a run from a terminal, is reported (RunInProgress) rather than
	// queued behind the load's own per-batch lock.
	wh, release, err := h.lockedWarehouse(ctx, "nothing loaded", "another execution, tote run or tote serve")
	if err != nil {
		return Output{}, err
	}
	defer release()
	res, err := wh.Load(ctx, lk)
	if err != nil {
		return Output{}, err
	}
	out := Output{Rows: map[string]int64{}, New: len(res.Batches) > 0}
	for _, b := range res.Batches {
		out.Batches = append(out.Batches, b.Batch)
		for _, t := range b.Tables {
			out.add(t.Table, t.Rows, t.Deleted)
		}
	}

	// What follows is reporting: a failure is logged, not the stage's.
	now := h.env.Now()
	if ledger, err := wh.Loaded(ctx); err != nil {
		log.Warn("could not read the load ledger; the load status is not updated", "err", err)
	} else {
		st := LoadStatus{At: now.UTC()}
		for _, e := range ledger {
			st.Seq = max(st.Seq, e.Seq)
		}
		if err := lk.PutStatus(ctx, LoadStatusName, st); err != nil {
			log.Warn("could not record the load status in the lake; extract will run transform and load every time until it can",
				"err", err)
		}
	}
	f, err := pipeline.ReadFreshness(ctx, lk, wh, now)
	if err != nil {
		log.Error("could not work out the lag; LagSeconds is not published", "err", err)
		return out, nil
	}
	lag := seconds(f.Lag)
	out.LagSeconds = &lag
	if f.Lag > h.cfg.LagThreshold {
		log.Warn("the warehouse is further behind the source than promised", "lag", f.Lag.Round(time.Second).String(),
			"threshold", h.cfg.LagThreshold.String(), "as_of", f.AsOf, "pending_raw_batches", f.PendingRaw)
	}
	return out, nil
}

// pending counts the batches the next stages have to do: raw batches not
// transformed (if raw), and processed batches not loaded as far as the
// load status says. What it cannot read it reports as Unknown.
func (h *Handler) pending(ctx context.Context, lk *lake.Lake, log *slog.Logger, raw bool) Pending {
	var p Pending
	unknown := func(what string, err error) Pending {
		p.Unknown = what + ": " + err.Error()
		log.Warn("could not tell whether the next stages have work; assuming they have", "what", what, "err", err)
		return p
	}
	proc, err := lk.Latest(ctx, lake.Processed)
	if err != nil {
		return unknown("processed batches", err)
	}
	var transformed uint64
	if proc != nil {
		st, err := transform.LoadState(*proc)
		if err != nil {
			return unknown("processed batches", err)
		}
		transformed = st.RawSeq
	}
	if raw {
		latest, err := lk.Latest(ctx, lake.Raw)
		if err != nil {
			return unknown("raw batches", err)
		}
		if latest != nil && latest.Seq > transformed {
			p.Raw = latest.Seq - transformed
		}
	}
	if proc == nil {
		return p
	}
	var st LoadStatus
	found, err := lk.Status(ctx, LoadStatusName, &st)
	switch {
	case err != nil:
		return unknown("load status", err)
	case !found:
		p.Processed = proc.Seq
	case proc.Seq > st.Seq:
		p.Processed = proc.Seq - st.Seq
	}
	return p
}

func (p Pending) any() bool { return p.Raw > 0 || p.Processed > 0 || p.Unknown != "" }

// alertQuarantined publishes one alert naming the rows the transform
// quarantined (alert.Quarantine, as tote serve sends after a run) to
// TOTE_ALERT_SNS_TOPIC, and reports whether it did. A failure to publish
// is logged, not the stage's: the rows are in the lake's rejects/ and, after
// the load, in tote.rejects (tote rejects ls), and failing the stage would
// not bring the alert back.
func (h *Handler) alertQuarantined(ctx context.Context, log *slog.Logger, rows []string) bool {
	if len(rows) == 0 {
		return false
	}
	if h.cfg.AlertTopic == "" {
		log.Warn("rows quarantined; no alert sent: TOTE_ALERT_SNS_TOPIC is not set", "rows", len(rows))
		return false
	}
	client, err := h.parts.sns()
	if err == nil {
		// Even when the stage ran out of time: the margin before the
		// function's deadline is for this kind of reporting.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertTimeout)
		defer cancel()
		a := alert.Alert{Kind: alert.Quarantine, Rows: rows, Environment: h.cfg.Environment, Time: h.env.Now()}
		err = alert.SNS{Client: client, Topic: h.cfg.AlertTopic}.Notify(actx, a)
	}
	if err != nil {
		log.Error("rows quarantined; the alert was not published", "rows", len(rows), "topic", h.cfg.AlertTopic, "err", err)
		return false
	}
	log.Info("rows quarantined; alert published", "rows", len(rows), "topic", h.cfg.AlertTopic)
	return true
}

// alertTimeout bounds publishing an alert, as the margin a stage keeps
// before the function's deadline does (at most 5s).
const alertTimeout = 5 * time.Second

// verify compares the warehouse with the source (tote verify), under the
// warehouse's run lock so that no load commits half-way through, and
// reports the rows that differ; the Differences metric and its alarm
// alert. It repairs nothing: tote verify --repair does, from a terminal.
func (h *Handler) verify(ctx context.Context, log *slog.Logger) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	src, err := h.parts.openSource(ctx)
	if err != nil {
		return Output{}, err
	}
	wh, release, err := h.lockedWarehouse(ctx, "nothing verified", "a load, tote run or tote serve")
	if err != nil {
		return Output{}, err
	}
	defer release()
	res, err := verify.Run(ctx, pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}, verify.Options{Logger: log})
	if err != nil {
		return Output{}, err
	}
	n := res.Differences()
	out := Output{Rows: map[string]int64{}, Differences: &n}
	for _, t := range res.Tables {
		out.Rows[t.Table] = t.Rows
		out.RowsTotal += t.Rows
		if t.Differences() > 0 {
			ids := slices.Concat(t.Missing, t.Extra, t.Different)
			out.Different = append(out.Different, fmt.Sprintf("%s: %d missing, %d extra, %d different (%s ids %v)",
				t.Table, len(t.Missing), len(t.Extra), len(t.Different), t.Source, ids[:min(10, len(ids))]))
		}
	}
	if n > 0 {
		log.Warn("the warehouse differs from the source; tote verify --repair sends the rows again",
			"differences", n, "tables", out.Different)
	} else {
		log.Info("the warehouse matches the source", "rows", out.RowsTotal)
	}
	return out, nil
}

// publish brings the star's Iceberg tables up to the loaded batches (see
// package iceberg); invoked with the trigger "maintain", it then compacts
// them and expires the snapshots older than Config.IcebergRetain.
func (h *Handler) publish(ctx context.Context, log *slog.Logger) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	wh, err := h.parts.openWarehouse(ctx)
	if err != nil {
		return Output{}, err
	}
	if h.parts.ice == nil {
		if h.parts.ice, err = iceberg.Open(ctx, wh.Pool(), lk, iceberg.Options{Catalog: h.cfg.IcebergCatalog, Logger: log}); err != nil {
			return Output{}, err
		}
		if h.parts.ice == nil {
			return Output{}, fmt.Errorf("publish: the lake %s is in memory: the Iceberg tables need an s3:// or file:// lake", lk.Name())
		}
	}
	res, err := h.parts.ice.Publish(ctx)
	if err != nil {
		return Output{}, err
	}
	out := Output{Rows: map[string]int64{}, New: len(res.Batches) > 0, Batches: res.Batches}
	for _, t := range res.Tables {
		if t.Rows > 0 {
			out.Rows[t.Table] += t.Rows
			out.RowsTotal += t.Rows
		}
	}
	if h.trigger == MaintainTrigger {
		mr, err := h.parts.ice.Maintain(ctx, iceberg.MaintainOptions{Retain: h.cfg.IcebergRetain})
		if err != nil {
			return Output{}, err
		}
		for _, t := range mr.Tables {
			log.Info("maintained iceberg table", "table", t.Table, "files_rewritten", t.FilesRewritten,
				"files_written", t.FilesWritten, "snapshots_expired", t.SnapshotsExpired)
		}
	}
	return out, nil
}

// clean deletes what failed invocations left in the lake: the files of
// batches never committed, in both zones, older than Config.CleanGrace.
func (h *Handler) clean(ctx context.Context, log *slog.Logger) (Output, error) {
	lk, err := h.parts.openLake(ctx)
	if err != nil {
		return Output{}, err
	}
	out := Output{Rows: map[string]int64{}}
	for _, zone := range []lake.Zone{lake.Raw, lake.Processed} {
		removed, err := lk.Clean(ctx, zone, h.cfg.CleanGrace)
		out.Removed += len(removed)
		if err != nil {
			return Output{}, err
		}
	}
	log.Info("cleaned the lake", "removed", out.Removed, "grace", h.cfg.CleanGrace.String())
	return out, nil
}

package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/replication"
)

type metrics struct {
	reg               *prometheus.Registry
	runs              *prometheus.CounterVec
	stageSeconds      *prometheus.HistogramVec
	rows              *prometheus.CounterVec
	deleted           *prometheus.CounterVec
	lastSuccess       prometheus.Gauge
	lag               prometheus.Gauge
	newestChange      prometheus.Gauge
	lakeBytes         prometheus.Gauge
	inProgress        prometheus.Gauge
	notifierFailures  *prometheus.CounterVec
	lateVersions      *prometheus.CounterVec
	quarantined       prometheus.Counter
	verifyDifferences *prometheus.GaugeVec
	verifyErrors      prometheus.Counter
	verifySeconds     prometheus.Gauge
	verifiedAt        prometheus.Gauge
	replayPaused      prometheus.Gauge
	replayDelay       prometheus.Gauge
	partUp            *prometheus.GaugeVec
	slot              *slotMetrics // nil unless logical capture's slot is watched
}

// slotMetrics are the gauges of logical capture's replication slot.
type slotMetrics struct {
	lagBytes, lagSeconds, retained, safeWAL, active prometheus.Gauge
	walStatus                                       *prometheus.GaugeVec
}

// slotStatuses are tote_slot_wal_status's labels: pg_replication_slots'
// wal_status values, and missing.
var slotStatuses = []string{"reserved", "extended", "unreserved", "lost", "missing"}

// watchSlot registers the slot's gauges.
func (m *metrics) watchSlot() {
	s := &slotMetrics{
		lagBytes: gauge("tote_slot_lag_bytes", "WAL the source has written since the position logical capture's replication slot last confirmed (current - confirmed_flush_lsn)."),
		lagSeconds: gauge("tote_slot_lag_seconds", "How long changes the lake lacks have waited in the slot: 0 when none, else the time since tote last kept a position "+
			"(with track_commit_timestamp on, 0 too when nothing has committed since)."),
		retained:  gauge("tote_slot_retained_bytes", "WAL the slot makes the source keep on disk (current - restart_lsn)."),
		safeWAL:   gauge("tote_slot_safe_wal_bytes", "WAL the source may still write before the slot is at risk of losing what it needs (safe_wal_size); -1 when unbounded (max_slot_wal_keep_size = -1)."),
		active:    gauge("tote_slot_active", "1 while a process streams the slot."),
		walStatus: gaugeVec("tote_slot_wal_status", "1 for the slot's wal_status (reserved, extended: fine; unreserved: at risk; lost: invalidated; missing: no slot), 0 for the others.", "status"),
	}
	m.reg.MustRegister(s.lagBytes, s.lagSeconds, s.retained, s.safeWAL, s.active, s.walStatus)
	for _, st := range slotStatuses {
		s.walStatus.WithLabelValues(st)
	}
	m.slot = s
}

// observeSlot sets the slot's gauges from its health.
func (m *metrics) observeSlot(h replication.SlotHealth) {
	s := m.slot
	if s == nil {
		return
	}
	s.lagBytes.Set(float64(h.LagBytes))
	s.lagSeconds.Set(h.Lag.Seconds())
	s.retained.Set(float64(h.RetainedBytes))
	safe := -1.0
	if h.SafeWALBytes != nil {
		safe = float64(*h.SafeWALBytes)
	}
	s.safeWAL.Set(safe)
	active := 0.0
	if h.Active {
		active = 1
	}
	s.active.Set(active)
	status := h.WALStatus
	if !h.Exists {
		status = "missing"
	}
	for _, st := range slotStatuses {
		v := 0.0
		if st == status {
			v = 1
		}
		s.walStatus.WithLabelValues(st).Set(v)
	}
}

func newMetrics() *metrics {
	m := &metrics{
		reg:  prometheus.NewRegistry(),
		runs: counterVec("tote_runs_total", "Pipeline runs by outcome (success, failure, abandoned, skipped).", "outcome"),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tote_stage_duration_seconds",
			Help:    "Time spent in each pipeline stage per run, over all attempts.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"stage"}),
		rows: counterVec("tote_rows_total", "Rows handled by each stage, per table.", "stage", "table"),
		deleted: counterVec("tote_rows_deleted_total", "Source rows deleted that each stage carried, per table: the extraction's tombstones (source tables), the transform's deletions "+
			"and the load's deletion versions and flagged dimension rows (star tables).", "stage", "table"),
		lastSuccess:      gauge("tote_last_success_timestamp_seconds", "Unix time at which the last successful run finished."),
		lag:              gauge("tote_lag_seconds", "How far the warehouse is behind the source: the time since the source was last read in a state the warehouse holds whole."),
		newestChange:     gauge("tote_newest_change_age_seconds", "Age of the newest source change loaded into a fact, by its last_updated stamp (not lag: a quiet source's is old)."),
		lakeBytes:        gauge("tote_lake_bytes", "Total size of the objects in the lake."),
		inProgress:       gauge("tote_run_in_progress", "1 while this daemon is running the pipeline."),
		notifierFailures: counterVec("tote_notifier_failures_total", "Alerts a notifier failed to deliver.", "notifier"),
		lateVersions: counterVec("tote_extract_late_versions_total", "Row versions extracted that were stamped more than a second before the previous extraction read the source: "+
			"transactions open across it, or writers whose clocks or time zones differ from the server's.", "table"),
		quarantined:       counter("tote_quarantined_rows_total", "Source row versions quarantined because a value could not be transformed."),
		verifyDifferences: gaugeVec("tote_verify_differences", "Rows that differ between the warehouse and the source, by star table, at the last verify.", "table"),
		verifyErrors:      counter("tote_verify_errors_total", "Verifies that could not compare (a database unreachable, say)."),
		verifySeconds:     gauge("tote_verify_duration_seconds", "How long the last verify took."),
		verifiedAt:        gauge("tote_verify_last_timestamp_seconds", "Unix time of the last verify that compared."),
		replayPaused:      gauge("tote_source_replay_paused", "1 if the last extraction read a hot standby whose WAL replay is paused."),
		replayDelay:       gauge("tote_source_replay_delay_seconds", "How far the hot standby last read trails the WAL it has received (0 when caught up, or a primary)."),
		partUp:            gaugeVec("tote_up", "1 if the part (source, warehouse, lake) answered when last checked (/readyz, a failed run) or used (a run that succeeded), else 0.", "part"),
	}
	m.reg.MustRegister(m.runs, m.stageSeconds, m.rows, m.deleted, m.lastSuccess, m.lag, m.newestChange, m.lakeBytes,
		m.inProgress, m.notifierFailures, m.lateVersions, m.quarantined, m.replayPaused, m.replayDelay,
		m.verifyDifferences, m.verifyErrors, m.verifySeconds, m.verifiedAt, m.partUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{pipeline.Success, pipeline.Failure, pipeline.Abandoned, Skipped} {
		m.runs.WithLabelValues(o)
	}
	return m
}

// gauge, counter, gaugeVec and counterVec make the daemon's metrics: a
// name, its help and (for the vectors) its labels.
func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// up sets tote_up: 0 for the parts with problems, 1 for the others.
func (m *metrics) up(problems map[string]string) {
	for _, part := range []string{partSource, partWarehouse, partLake} {
		v := 1.0
		if _, bad := problems[part]; bad {
			v = 0
		}
		m.partUp.WithLabelValues(part).Set(v)
	}
}

func (d *Daemon) observe(run pipeline.Record) {
	m := d.metrics
	m.runs.WithLabelValues(run.Outcome).Inc()
	for _, s := range run.Stages {
		m.stageSeconds.WithLabelValues(s.Stage).Observe(s.Elapsed.Seconds())
		for table, n := range s.Tables {
			m.rows.WithLabelValues(s.Stage, table).Add(float64(n))
		}
		for table, n := range s.Deleted {
			m.deleted.WithLabelValues(s.Stage, table).Add(float64(n))
		}
	}
}

// observeExtract records what a pass's extraction saw of the source.
func (d *Daemon) observeExtract(res pipeline.Result) {
	er := res.Extract
	if er == nil {
		return
	}
	m := d.metrics
	for _, t := range er.Tables {
		if t.Late > 0 {
			m.lateVersions.WithLabelValues(t.Table).Add(float64(t.Late))
		}
	}
	paused := 0.0
	if er.Source.ReplayPaused {
		paused = 1
	}
	m.replayPaused.Set(paused)
	m.replayDelay.Set(er.Source.ReplayDelay.Seconds())
}

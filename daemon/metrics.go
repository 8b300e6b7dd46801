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
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_slot_lag_bytes",
			Help: "WAL the source has written since the position logical capture's replication slot last confirmed (current - confirmed_flush_lsn)."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_slot_lag_seconds",
			Help: "How long changes the lake lacks have waited in the slot: 0 when none, else the time since tote last kept a position " +
				"(with track_commit_timestamp on, 0 too when nothing has committed since)."}),
		retained: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_slot_retained_bytes",
			Help: "WAL the slot makes the source keep on disk (current - restart_lsn)."}),
		safeWAL: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_slot_safe_wal_bytes",
			Help: "WAL the source may still write before the slot is at risk of losing what it needs (safe_wal_size); -1 when unbounded (max_slot_wal_keep_size = -1)."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_slot_active",
			Help: "1 while a process streams the slot."}),
		walStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tote_slot_wal_status",
			Help: "1 for the slot's wal_status (reserved, extended: fine; unreserved: at risk; lost: invalidated; missing: no slot), 0 for the others."}, []string{"status"}),
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
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_runs_total",
			Help: "Pipeline runs by outcome (success, failure, abandoned, skipped)."}, []string{"outcome"}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tote_stage_duration_seconds",
			Help:    "Time spent in each pipeline stage per run, over all attempts.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"stage"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_rows_total",
			Help: "Rows handled by each stage, per table."}, []string{"stage", "table"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_rows_deleted_total",
			Help: "Source rows deleted that each stage carried, per table: the extraction's tombstones (source tables), the transform's deletions " +
				"and the load's deletion versions and flagged dimension rows (star tables)."}, []string{"stage", "table"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful run finished."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_lag_seconds",
			Help: "How far the warehouse is behind the source: the time since the source was last read in a state the warehouse holds whole."}),
		newestChange: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_newest_change_age_seconds",
			Help: "Age of the newest source change loaded into a fact, by its last_updated stamp (not lag: a quiet source's is old)."}),
		lakeBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_lake_bytes",
			Help: "Total size of the objects in the lake."}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_run_in_progress",
			Help: "1 while this daemon is running the pipeline."}),
		notifierFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_notifier_failures_total",
			Help: "Alerts a notifier failed to deliver."}, []string{"notifier"}),
		lateVersions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_extract_late_versions_total",
			Help: "Row versions extracted that were stamped more than a second before the previous extraction read the source: " +
				"transactions open across it, or writers whose clocks or time zones differ from the server's."}, []string{"table"}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{Name: "tote_quarantined_rows_total",
			Help: "Source row versions quarantined because a value could not be transformed."}),
		verifyDifferences: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tote_verify_differences",
			Help: "Rows that differ between the warehouse and the source, by star table, at the last verify."}, []string{"table"}),
		verifyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tote_verify_errors_total",
			Help: "Verifies that could not compare (a database unreachable, say)."}),
		verifySeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_verify_duration_seconds",
			Help: "How long the last verify took."}),
		verifiedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_verify_last_timestamp_seconds",
			Help: "Unix time of the last verify that compared."}),
		replayPaused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_source_replay_paused",
			Help: "1 if the last extraction read a hot standby whose WAL replay is paused."}),
		replayDelay: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_source_replay_delay_seconds",
			Help: "How far the hot standby last read trails the WAL it has received (0 when caught up, or a primary)."}),
		partUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tote_up",
			Help: "1 if the part (source, warehouse, lake) answered when last checked (/readyz, a failed run) or used (a run that succeeded), else 0."}, []string{"part"}),
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

package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/warehouse"
)

type metrics struct {
	reg              *prometheus.Registry
	runs             *prometheus.CounterVec
	stageSeconds     *prometheus.HistogramVec
	rows             *prometheus.CounterVec
	lastSuccess      prometheus.Gauge
	freshness        prometheus.Gauge
	lakeBytes        prometheus.Gauge
	inProgress       prometheus.Gauge
	notifierFailures *prometheus.CounterVec
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
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful run finished."}),
		freshness: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_freshness_seconds",
			Help: "Age of the newest source change loaded into the warehouse."}),
		lakeBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_lake_bytes",
			Help: "Total size of the objects in the lake."}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tote_run_in_progress",
			Help: "1 while this daemon is running the pipeline."}),
		notifierFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tote_notifier_failures_total",
			Help: "Alerts a notifier failed to deliver."}, []string{"notifier"}),
	}
	m.reg.MustRegister(m.runs, m.stageSeconds, m.rows, m.lastSuccess, m.freshness, m.lakeBytes,
		m.inProgress, m.notifierFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{pipeline.Success, pipeline.Failure, pipeline.Abandoned, Skipped} {
		m.runs.WithLabelValues(o)
	}
	return m
}

func (d *Daemon) observe(run warehouse.Run) {
	m := d.metrics
	m.runs.WithLabelValues(run.Outcome).Inc()
	for _, s := range run.Stages {
		m.stageSeconds.WithLabelValues(s.Stage).Observe(s.Elapsed.Seconds())
		for table, n := range s.Tables {
			m.rows.WithLabelValues(s.Stage, table).Add(float64(n))
		}
	}
}

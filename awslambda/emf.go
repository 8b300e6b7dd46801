package awslambda

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/terrifictotes/tote"
)

// Namespace is the CloudWatch namespace of the functions' metrics.
const Namespace = "Tote"

// emfMetric is one metric of an Embedded Metric Format document.
type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// emfLine is one Embedded Metric Format document: CloudWatch Logs turns
// the line into metric data points, with no API call and no permission
// beyond writing the log. Fields that are not metrics or dimensions stay
// in the log, searchable with Logs Insights.
func emfLine(at time.Time, dims map[string]string, metrics []emfMetric, values map[string]any) ([]byte, error) {
	names := make([]string, 0, len(dims))
	doc := map[string]any{}
	for k, v := range dims {
		names = append(names, k)
		doc[k] = v
	}
	slices.Sort(names)
	for k, v := range values {
		doc[k] = v
	}
	doc["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{names},
			"Metrics":    metrics,
		}},
	}
	b, err := json.Marshal(doc)
	return append(b, '\n'), err
}

// dims returns the dimensions of a metric of stage: Stage, and
// Environment when the function has one (TOTE_ENVIRONMENT, which the
// Terraform always sets), so that environments sharing an account and
// region have metrics and alarms of their own.
func (h *Handler) dims(stage string) map[string]string {
	d := map[string]string{"Stage": stage}
	if h.cfg.Environment != "" {
		d["Environment"] = h.cfg.Environment
	}
	return d
}

// putMetrics prints a successful invocation's metrics: Rows, Deleted,
// StageSeconds and Batches by Stage (and Environment), with the rows and
// deletions per table as plain fields (a metric per table would cost more
// than the rest of the deployment: docs/aws.md); and LagSeconds, always
// with Stage=load whichever stage measured it.
func (h *Handler) putMetrics(out Output, start time.Time) {
	stage := string(out.Stage)
	id := h.reqID.get()
	docs := []struct {
		at      time.Time
		dims    map[string]string
		metrics []emfMetric
		values  map[string]any
	}{{start, h.dims(stage),
		[]emfMetric{{"Rows", "Count"}, {"Deleted", "Count"}, {"StageSeconds", "Seconds"}, {"Batches", "Count"}},
		map[string]any{"Rows": out.RowsTotal, "Deleted": out.DeletedTotal, "StageSeconds": out.Seconds,
			"Batches": len(out.Batches) + out.BatchesOmitted, "Tables": out.Rows, "DeletedTables": out.Deleted, "RequestId": id}}}
	if out.Differences != nil {
		// Verify's finding, which the verify alarm watches.
		docs[0].metrics = append(docs[0].metrics, emfMetric{"Differences", "Count"})
		docs[0].values["Differences"] = *out.Differences
	}
	if out.LagSeconds != nil {
		docs = append(docs, docs[0])
		docs[1].at, docs[1].dims = h.env.Now(), h.dims(string(tote.Load))
		docs[1].metrics = []emfMetric{{"LagSeconds", "Seconds"}}
		docs[1].values = map[string]any{"LagSeconds": *out.LagSeconds, "ReportedBy": stage, "RequestId": id}
	}
	for _, d := range docs {
		line, err := emfLine(d.at, d.dims, d.metrics, d.values)
		if err == nil {
			_, err = h.env.Stdout.Write(line)
		}
		if err != nil {
			h.log.Error("could not print the metrics", "err", err)
			return
		}
	}
}

package awslambda

import (
	"github.com/terrifictotes/tote"
)

// Output is what an invocation returns, and the next state's input. It
// stays well under Step Functions' 256 KiB: long lists are cut, saying how
// many entries were left out.
type Output struct {
	Stage   tote.Stage `json:"stage"`
	Trigger string     `json:"trigger,omitempty"` // the event's, carried on
	// Batches are the batches the stage committed (extract, transform) or
	// loaded (load), oldest first.
	Batches        []string `json:"batches"`
	BatchesOmitted int      `json:"batches_omitted,omitempty"`
	// Rows are the rows the stage wrote per table (source tables for
	// extract, star tables for transform and load), and RowsTotal their sum.
	Rows      map[string]int64 `json:"rows"`
	RowsTotal int64            `json:"rows_total"`
	// Deleted are the source rows deleted that the stage carried, per
	// table as Rows (extract: tombstones; transform: rows of the
	// deletions files; load: deletion versions and flagged dimension
	// rows), and DeletedTotal their sum; none when nothing was deleted.
	Deleted      map[string]int64 `json:"deleted,omitempty"`
	DeletedTotal int64            `json:"deleted_total,omitempty"`
	Seconds      float64          `json:"seconds"`
	// New says whether there is anything for the next stages: for extract,
	// a batch committed now or raw batches not yet transformed or processed
	// batches not yet loaded; for transform, a batch committed or processed
	// batches not yet loaded; for load, a batch loaded (information only).
	New bool `json:"new"`
	// Pending says why New is true when the stage committed nothing.
	Pending *Pending `json:"pending,omitempty"`
	// LagSeconds is how far the warehouse trails the source, when the
	// stage knows: load always, extract when everything is loaded.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// Quarantined names the rows the transform quarantined: table, id,
	// column, value and reason.
	Quarantined        []string `json:"quarantined,omitempty"`
	QuarantinedOmitted int      `json:"quarantined_omitted,omitempty"`
	// Alerted says that the transform published the alert naming its
	// quarantined rows to TOTE_ALERT_SNS_TOPIC.
	Alerted bool `json:"alerted,omitempty"`
	// Differences is what the verify function found: the rows that
	// differ between the warehouse and the source, and Different the
	// tables with differences, one line each (table, counts, some ids).
	Differences *int     `json:"differences,omitempty"`
	Different   []string `json:"different,omitempty"`
	// Removed counts the objects the clean function deleted (see Clean);
	// its log names them.
	Removed int    `json:"removed,omitempty"`
	Version string `json:"version"`
}

// Pending counts the batches waiting for the next stages.
type Pending struct {
	// Raw batches not yet transformed, and processed batches not yet
	// loaded as far as the load status says (all of them when it says
	// nothing).
	Raw       uint64 `json:"raw,omitempty"`
	Processed uint64 `json:"processed,omitempty"`
	// Unknown is set when the lake could not say; New is then true, to
	// be safe: the next stages do nothing if there is nothing.
	Unknown string `json:"unknown,omitempty"`
}

// Limits on the Output's lists: a few hundred bytes an entry at most, so
// the whole stays far below 256 KiB.
const (
	maxBatches     = 100
	maxQuarantined = 50
	maxEntry       = 500 // bytes of one quarantined entry
)

// add counts a stage's rows and deletions of table (Rows is made by the
// stage; Deleted only when there are some).
func (o *Output) add(table string, rows, deleted int64) {
	if rows > 0 {
		o.Rows[table] += rows
		o.RowsTotal += rows
	}
	o.deleted(table, deleted)
}

// deleted adds n deletions of table.
func (o *Output) deleted(table string, n int64) {
	if n == 0 {
		return
	}
	if o.Deleted == nil {
		o.Deleted = map[string]int64{}
	}
	o.Deleted[table] += n
	o.DeletedTotal += n
}

// cap cuts the long lists.
func (o *Output) cap() {
	if n := len(o.Batches); n > maxBatches {
		// The newest say where the stage got to; the count says the rest.
		o.BatchesOmitted += n - maxBatches
		o.Batches = o.Batches[n-maxBatches:]
	}
	if o.Batches == nil {
		o.Batches = []string{}
	}
	if o.Rows == nil {
		o.Rows = map[string]int64{}
	}
	if n := len(o.Quarantined); n > maxQuarantined {
		o.QuarantinedOmitted += n - maxQuarantined
		o.Quarantined = o.Quarantined[:maxQuarantined]
	}
	for i, q := range o.Quarantined {
		o.Quarantined[i] = truncate(q, maxEntry)
	}
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not in the middle of a rune
		cut--
	}
	return s[:cut] + "…"
}

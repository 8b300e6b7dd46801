package extract

import (
	"fmt"
	"strings"
)

// HeldDeletion is one table's deletions that an extraction held back.
type HeldDeletion struct {
	Table string `json:"table"`
	// Deleted is how many of the table's Live ids (as the lake holds
	// them) the source no longer holds.
	Deleted int64 `json:"deleted"`
	Live    int64 `json:"live"`
}

// emptied says the source holds none of the table's rows.
func (h HeldDeletion) emptied() bool { return h.Deleted == h.Live }

// MassDeletionError reports deletions held back: a batch that would delete
// more than Options.MaxDeleteFraction of a table's live rows, or all of
// them (a TRUNCATE, a restore, the wrong database). Nothing was committed;
// an operator accepts them with Options.AcceptDeletes (tote extract
// --accept-deletes TABLE). Retrying does not help, so it is not Retryable.
type MassDeletionError struct {
	Batch  string // the raw batch that was not committed
	Tables []HeldDeletion
}

func (e *MassDeletionError) Error() string {
	var b strings.Builder
	b.WriteString("held back the deletion of ")
	for i, h := range e.Tables {
		if i > 0 {
			b.WriteString("; and of ")
		}
		fmt.Fprintf(&b, "%d of the %d rows of %s", h.Deleted, h.Live, h.Table)
		if h.emptied() {
			b.WriteString(" (the table is empty in the source: a TRUNCATE, a restore, the wrong database?)")
		} else {
			fmt.Fprintf(&b, " (%.0f%%)", 100*float64(h.Deleted)/float64(h.Live))
		}
	}
	b.WriteString(": nothing was committed. If the deletions are meant, accept them: tote extract --accept-deletes " + e.names())
	return b.String()
}

// Retryable is false: the same source gives the same deletions until an
// operator accepts them.
func (e *MassDeletionError) Retryable() bool { return false }

// names lists the tables, as --accept-deletes takes them.
func (e *MassDeletionError) names() string {
	names := make([]string, len(e.Tables))
	for i, h := range e.Tables {
		names[i] = h.Table
	}
	return strings.Join(names, ",")
}

// massDeletion reports whether the table's deletions are to be held back:
// more than maxFraction of its live ids, or all of them.
func massDeletion(r *tableRead, maxFraction float64) (HeldDeletion, bool) {
	if r.plan.live == nil {
		return HeldDeletion{}, false
	}
	h := HeldDeletion{Table: r.table.Name, Deleted: int64(len(r.deleted)), Live: int64(r.plan.live.GetCardinality())}
	emptied := r.next != nil && r.next.IsEmpty() && h.Live > 0
	return h, emptied || float64(h.Deleted) > maxFraction*float64(h.Live)
}

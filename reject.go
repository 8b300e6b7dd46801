package tote

import (
	"errors"
	"time"
)

// Reject is a source row version the transform quarantined: a value in it
// could not be transformed. The rest of its batch goes on; the raw zone
// keeps the version as it was, and a later version of the row that
// transforms resolves the reject. The transform finds it (the source
// fields); the warehouse records it in tote.rejects with the processed
// batch that quarantined it, when, and what resolved it (zero until then).
type Reject struct {
	Table      string    `json:"table"` // the source table
	SourceID   int64     `json:"source_id"`
	Version    time.Time `json:"version,omitzero"` // its last_updated
	SourceXmin int64     `json:"source_xmin"`
	Column     string    `json:"column,omitempty"`
	Value      *string   `json:"value,omitempty"`
	Reason     string    `json:"reason"`
	RawBatch   string    `json:"raw_batch"` // the raw batch that holds the version

	// As tote.rejects holds it.
	ID         int64      `json:"id,omitempty"`
	Batch      string     `json:"batch,omitempty"` // the processed batch that quarantined it
	FoundAt    time.Time  `json:"found_at,omitzero"`
	ResolvedBy string     `json:"resolved_batch,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// String names the row, the column and the value, as an error would.
func (r Reject) String() string {
	e := Error{Where: Where{Table: r.Table, ID: r.SourceID, Column: r.Column, Value: r.Value}, Err: errors.New(r.Reason)}
	return e.Error()
}

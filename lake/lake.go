// Package lake owns the data lake: where tote keeps every batch it extracts
// and transforms, over any object store (a local directory, S3 or memory).
// It is the durable record of the pipeline: the warehouse can be rebuilt
// from it at any time.
//
// # Layout
//
// A lake URL names a bucket and a prefix: file://DIR, s3://BUCKET/PREFIX or
// mem://. Under the prefix:
//
//	raw/<table>/<batch-id>.parquet            rows of one table in one raw batch
//	processed/<table>/<batch-id>.parquet      rows of one star table in one processed batch
//	manifests/raw/<seq>.json                  the manifest of raw batch number seq
//	manifests/processed/<seq>.json            the manifest of processed batch number seq
//	rejects/<batch-id>.parquet                rows processed batch batch-id quarantined
//	status/<name>.json                        where a stage stands (advisory, overwritten; see PutStatus)
//
// seq is the batch's sequence number in its zone, written as 12 digits so
// that names sort in order. A batch id is that number and the batch's UTC
// start time, "000000000042-20261123T204512.123Z": it sorts by sequence and
// says when the batch was made.
//
// # Commit
//
// A batch's data files are written first; its manifest, written last, is
// the commit point. The manifest lists every file with its table, row
// count, byte size and SHA-256, plus what the stage that wrote it needs to
// carry on (extraction watermarks and source snapshot, or the raw batches a
// processed batch consumed) and the tool version. Manifests are created
// with a conditional write that fails if the object exists, so two writers
// that both try to commit batch seq cannot both succeed: the loser gets
// ErrConflict and its files are left for Clean.
//
// Readers list manifests, never data files, so a batch without a manifest
// (a crash before commit, or a lost race) is invisible. Committed objects
// are never rewritten. Clean deletes data files that no manifest lists and
// that are older than a grace period (so a batch being written is spared).
//
// Every file read back is checked against its manifest's size and SHA-256:
// a truncated or corrupt object is an error naming the batch and file.
//
// The package knows nothing of Parquet, totesys or the star schema; it
// stores bytes and manifests.
package lake

import (
	"encoding/json"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/sum"
)

// Zone is one area of the lake.
type Zone string

// The lake's zones.
const (
	Raw       Zone = "raw"       // extracted source rows, as they were
	Processed Zone = "processed" // the star schema, ready to load
	// Rejects holds the rows a processed batch quarantined (values that
	// cannot be transformed), one file per batch, committed with it: the
	// file of table RejectsTable in a processed batch. It has no manifests
	// of its own.
	Rejects Zone = "rejects"
)

// RejectsTable is the table name under which a processed batch lists its
// rejects file.
const RejectsTable = "rejects"

// ErrConflict is returned by Commit when another writer has already
// committed a batch with the same sequence number. It is tote.Busy: the
// other writer got there first, and nothing was doubled.
var ErrConflict = tote.Sentinel(tote.Busy, "lake: another batch was committed with this sequence number")

// ErrCorrupt is returned when a file read back does not match its manifest,
// or a manifest cannot be decoded. It is tote.Fatal: reading it again
// reads the same bytes.
var ErrCorrupt = tote.Sentinel(tote.Fatal, "lake: object does not match its manifest")

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// Manifest describes one committed batch.
type Manifest struct {
	Format    int       `json:"format"`
	Zone      Zone      `json:"zone"`
	Seq       uint64    `json:"seq"`
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Tool      string    `json:"tool_version"`
	Files     []File    `json:"files"`
	// Corrective marks a batch that sends rows again to repair what a
	// loader holds of them (see tote verify): loaders overwrite their copy
	// instead of keeping the one they have.
	Corrective bool `json:"corrective,omitempty"`
	// Full marks a raw batch that holds every row of the source as of its
	// snapshot (tote extract --full), not only what is new: a loader adds
	// the versions it lacks and recognises those it holds.
	Full bool `json:"full,omitempty"`
	// State is what the writing stage needs to carry on from this batch
	// (extraction watermarks and source snapshot; consumed raw batches).
	// The lake stores it and gives it back; the stage owns its shape.
	State json.RawMessage `json:"state,omitempty"`
}

// File is one data file of a batch.
type File struct {
	Table  string `json:"table"`
	Path   string `json:"path"` // key under the lake's prefix
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // hex
	// KeyOrdered says the rows are in strictly increasing order of the
	// star table's key (set by the transform, which sees every row it
	// writes): a loader may copy such a file straight into an empty table.
	KeyOrdered bool `json:"key_ordered,omitempty"`
}

// Rows is the number of rows in all of the batch's files.
func (m Manifest) Rows() int64 {
	return sum.Of(m.Files, func(f File) int64 { return f.Rows })
}

// Bytes is the size of all of the batch's files.
func (m Manifest) Bytes() int64 {
	return sum.Of(m.Files, func(f File) int64 { return f.Bytes })
}

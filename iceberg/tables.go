package iceberg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/terrifictotes/tote/star"
)

// TableInfo describes one star table's Iceberg table.
type TableInfo struct {
	Table string `json:"table"`
	// Identifier is the table's name in the catalog: namespace.table.
	Identifier string `json:"identifier"`
	// Location is empty if the table is not created yet.
	Location  string         `json:"location,omitempty"`
	Snapshots []SnapshotInfo `json:"snapshots,omitempty"`
}

// SnapshotInfo is one snapshot of a table, oldest first.
type SnapshotInfo struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Operation string    `json:"operation"`
	// Batch is the newest batch it holds (tote.batch); empty for a
	// maintenance snapshot, Maintenance saying which.
	Batch       string `json:"batch,omitempty"`
	BatchesFrom string `json:"batches_from,omitempty"`
	Maintenance string `json:"maintenance,omitempty"`
	// Rows is the table's rows in the snapshot, Added those it added.
	Rows    int64 `json:"rows"`
	Added   int64 `json:"added"`
	Current bool  `json:"current,omitempty"`
}

// Tables lists the star's Iceberg tables and their snapshots (those that
// expiry kept), which say the batches they hold.
func (p *Publisher) Tables(ctx context.Context) ([]TableInfo, error) {
	var out []TableInfo
	for _, t := range star.Tables {
		info := TableInfo{Table: t.Name, Identifier: p.namespace + "." + t.Name}
		tbl, err := p.Table(ctx, t.Name)
		if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
			out = append(out, info)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("iceberg table %s: %w", info.Identifier, err)
		}
		info.Location = tbl.Location()
		info.Snapshots = snapshots(tbl)
		out = append(out, info)
	}
	return out, nil
}

func snapshots(tbl *table.Table) []SnapshotInfo {
	snaps := slices.Clone(tbl.Metadata().Snapshots())
	slices.SortFunc(snaps, func(a, b table.Snapshot) int { return int(a.SequenceNumber - b.SequenceNumber) })
	var current int64
	if c := tbl.CurrentSnapshot(); c != nil {
		current = c.SnapshotID
	}
	out := make([]SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		si := SnapshotInfo{ID: s.SnapshotID, Time: time.UnixMilli(s.TimestampMs).UTC(), Current: s.SnapshotID == current}
		if s.Summary != nil {
			props := s.Summary.Properties
			si.Operation = string(s.Summary.Operation)
			si.Batch = props.Get(SummaryBatch, "")
			si.BatchesFrom = props.Get("tote.batches-from", "")
			si.Maintenance = props.Get(SummaryMaintenance, "")
			si.Rows = props.GetInt64("total-records", 0)
			si.Added = props.GetInt64("added-records", 0)
		}
		out = append(out, si)
	}
	return out
}

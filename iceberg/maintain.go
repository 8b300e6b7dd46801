package iceberg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"github.com/terrifictotes/tote/star"
)

// MaintainOptions controls Maintain. The zero value compacts with
// iceberg-go's defaults and expires nothing younger than a week.
type MaintainOptions struct {
	// Retain is how long a snapshot is kept after a newer one replaces
	// it: time travel reaches back this far (default 7 days; negative
	// keeps every snapshot).
	Retain time.Duration
	// RetainLast is how many snapshots of each table are kept whatever
	// their age (default 1, the current one).
	RetainLast int
	// MinInputFiles is how many small files a partition needs before they
	// are rewritten into fewer (default 5, iceberg-go's).
	MinInputFiles uint
	// TargetFileSize is the size compaction aims for (default 128 MiB).
	TargetFileSize int64
}

// DefaultRetain is MaintainOptions.Retain's default.
const DefaultRetain = 7 * 24 * time.Hour

// MaintainResult says what Maintain did to each table.
type MaintainResult struct {
	Tables []MaintainedTable `json:"tables"`
}

// MaintainedTable is what Maintain did to one table.
type MaintainedTable struct {
	Table            string `json:"table"`
	FilesRewritten   int    `json:"files_rewritten"`
	FilesWritten     int    `json:"files_written"`
	SnapshotsExpired int    `json:"snapshots_expired"`
}

// Maintain compacts each table's small data files into fewer (a replace
// snapshot that carries tote's summary keys on, so publishing carries on
// from it) and expires the snapshots older than the retention, with the
// files only they used. It takes turns with Publish.
func (p *Publisher) Maintain(ctx context.Context, opts MaintainOptions) (MaintainResult, error) {
	var res MaintainResult
	if opts.Retain == 0 {
		opts.Retain = DefaultRetain
	}
	if opts.RetainLast < 1 {
		opts.RetainLast = 1
	}
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = 128 << 20
	if opts.TargetFileSize > 0 {
		cfg.TargetFileSizeBytes = opts.TargetFileSize
	}
	cfg.MinFileSizeBytes = cfg.TargetFileSizeBytes * 3 / 4
	cfg.MaxFileSizeBytes = cfg.TargetFileSizeBytes * 9 / 5
	if opts.MinInputFiles > 0 {
		cfg.MinInputFiles = opts.MinInputFiles
	}

	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("maintain iceberg tables: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, publishLock); err != nil {
		return res, fmt.Errorf("maintain iceberg tables: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, publishLock); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	for _, t := range star.Tables {
		tbl, err := p.Table(ctx, t.Name)
		if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
			continue // nothing published yet
		}
		if err != nil {
			return res, fmt.Errorf("maintain iceberg table %s: %w", t.Name, err)
		}
		mt := MaintainedTable{Table: t.Name}
		if tbl.CurrentSnapshot() != nil {
			if err := p.compact(ctx, tbl, cfg, &mt); err != nil {
				return res, fmt.Errorf("compact iceberg table %s: %w", t.Name, err)
			}
			if opts.Retain > 0 {
				if err := expire(ctx, tbl, opts, &mt); err != nil {
					return res, fmt.Errorf("expire snapshots of iceberg table %s: %w", t.Name, err)
				}
			}
		}
		res.Tables = append(res.Tables, mt)
	}
	return res, nil
}

// compact rewrites the table's small files per partition, as iceberg-go's
// bin-packing planner groups them.
func (p *Publisher) compact(ctx context.Context, tbl *table.Table, cfg compaction.Config, mt *MaintainedTable) error {
	plan, err := compaction.Analyze(ctx, tbl, cfg)
	if err != nil {
		return err
	}
	if len(plan.Groups) == 0 {
		return nil
	}
	groups := make([]table.CompactionTaskGroup, len(plan.Groups))
	for i, g := range plan.Groups {
		groups[i] = table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
	}
	// The summary keys publishing reads carry on.
	props := iceberg.Properties{SummaryMaintenance: "compact"}
	cur := tbl.CurrentSnapshot().Summary.Properties
	for _, k := range []string{SummarySeq, SummaryMaxKey} {
		if v, ok := cur[k]; ok {
			props[k] = v
		}
	}
	r, err := tbl.RewriteDataFiles(ctx, groups, table.RewriteDataFilesOptions{SnapshotProps: props})
	if err != nil {
		return err
	}
	mt.FilesRewritten, mt.FilesWritten = r.RemovedDataFiles, r.AddedDataFiles
	if r.Table != nil {
		*tbl = *r.Table
	}
	p.log.Info("compacted iceberg table", "table", tbl.Identifier(), "files_rewritten", r.RemovedDataFiles, "files_written", r.AddedDataFiles)
	return nil
}

// expire removes the snapshots older than the retention (keeping the
// newest RetainLast) and the files no snapshot kept uses.
func expire(ctx context.Context, tbl *table.Table, opts MaintainOptions, mt *MaintainedTable) error {
	before := len(tbl.Metadata().Snapshots())
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(table.WithOlderThan(opts.Retain), table.WithRetainLast(opts.RetainLast)); err != nil {
		return err
	}
	committed, err := txn.Commit(ctx)
	if err != nil {
		return err
	}
	mt.SnapshotsExpired = before - len(committed.Metadata().Snapshots())
	*tbl = *committed
	return nil
}

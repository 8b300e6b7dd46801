package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
)

const (
	// A reject already recorded (a corrective batch, an adopted lake) is
	// not recorded again.
	insertRejectSQL = `INSERT INTO tote.rejects (batch_id, raw_batch, source_table, source_id, version, source_xmin,
       column_name, value, reason)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
WHERE NOT EXISTS (SELECT FROM tote.rejects r WHERE r.source_table = $3 AND r.source_id = $4
                  AND r.version IS NOT DISTINCT FROM $5 AND r.source_xmin = $6 AND r.column_name IS NOT DISTINCT FROM $7)`
	resolveRejectSQL = `UPDATE tote.rejects SET resolved_batch = $1, resolved_at = now()
WHERE source_table = $2 AND source_id = $3 AND resolved_batch IS NULL`
	rejectsSQL = `SELECT id, batch_id, raw_batch, source_table, source_id, version, source_xmin, coalesce(column_name, ''),
       value, reason, found_at, coalesce(resolved_batch, ''), resolved_at
FROM tote.rejects WHERE $1 OR resolved_batch IS NULL ORDER BY id DESC LIMIT $2`
)

// Rejects returns the quarantined rows as tote.rejects holds them, newest
// first: the open ones, or all if all is set; none if the warehouse has not
// been migrated.
func (w *Warehouse) Rejects(ctx context.Context, all bool, limit int) ([]tote.Reject, error) {
	if ok, err := w.migrated(ctx); !ok || err != nil {
		return nil, err
	}
	rows, err := w.pool.Query(ctx, rejectsSQL, all, limit)
	if err != nil {
		return nil, fmt.Errorf("read rejects: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tote.Reject, error) {
		var x tote.Reject
		var version *time.Time
		err := r.Scan(&x.ID, &x.Batch, &x.RawBatch, &x.Table, &x.SourceID, &version, &x.SourceXmin, &x.Column,
			&x.Value, &x.Reason, &x.FoundAt, &x.ResolvedBy, &x.ResolvedAt)
		if version != nil {
			x.Version = *version
		}
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read rejects: %w", err)
	}
	return out, nil
}

// loadRejects records batch m's rejects file f in tote.rejects, in tx: the
// rows it quarantined, and the earlier rejects it resolved. It returns how
// many of each.
func loadRejects(ctx context.Context, tx pgx.Tx, lk *lake.Lake, m lake.Manifest, f lake.File) (rejected, resolved int64, err error) {
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	cols, err := matchSchema(star.Rejects, r.Schema())
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", f.Path, err)
	}
	leaf := map[string]int{}
	for _, c := range cols {
		leaf[c.Name] = c.leaf
	}
	text := func(row parquet.Row, name string) *string {
		v := row[leaf[name]]
		if v.IsNull() {
			return nil
		}
		s := string(v.ByteArray())
		return &s
	}
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.Read(buf)
		if errors.Is(err, io.EOF) {
			return rejected, resolved, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, row := range buf[:n] {
			kind, table, rawBatch := *text(row, "kind"), *text(row, "source_table"), *text(row, "raw_batch")
			id := row[leaf["source_id"]].Int64()
			switch kind {
			case star.Rejected:
				var version *time.Time
				if v := row[leaf["version"]]; !v.IsNull() {
					t := time.UnixMicro(v.Int64()).UTC()
					version = &t
				}
				reason := text(row, "reason")
				if reason == nil {
					return 0, 0, fmt.Errorf("%s: a reject of %s %d without a reason", f.Path, table, id)
				}
				if _, err := tx.Exec(ctx, insertRejectSQL, m.ID, rawBatch, table, id, version, row[leaf["source_xmin"]].Int64(),
					text(row, "column_name"), text(row, "value"), *reason); err != nil {
					return 0, 0, fmt.Errorf("record reject of %s %d: %w", table, id, err)
				}
				rejected++
			case star.Resolved:
				if _, err := tx.Exec(ctx, resolveRejectSQL, m.ID, table, id); err != nil {
					return 0, 0, fmt.Errorf("resolve reject of %s %d: %w", table, id, err)
				}
				resolved++
			default:
				return 0, 0, fmt.Errorf("%s: %w: a row of kind %q", f.Path, lake.ErrCorrupt, kind)
			}
		}
	}
}

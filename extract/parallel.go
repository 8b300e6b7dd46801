package extract

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/totesys"
)

// tableRead is one table's part of an extraction: what to read, and what
// came of it.
type tableRead struct {
	table totesys.Table
	plan  *tablePlan
	// carry is the columns beyond the model that the table's file carries.
	carry  []Carried
	result TableResult
	state  TableState
	// next is the table's set of live ids at this snapshot, if it differs
	// from the last (plan.live); deleted the ids gone since, or to
	// tombstone (Correct).
	next    *roaring.Bitmap
	deleted []int32
}

// readTables reads the tables, each into its file of batch. The tables are
// shared out between tx, the extraction's transaction, and up to
// opts.Readers-1 more connections that import tx's snapshot
// (pg_export_snapshot), so that every table is still read in one instant of
// the source; a source that cannot export its snapshot is read on tx alone.
// Reads filtered by age(xmin) stay on tx, whose age() base the filter was
// worked out against.
func readTables(ctx context.Context, pool *pgxpool.Pool, tx pgx.Tx, batch *lake.BatchWriter, reads []tableRead,
	opts Options, p *plan, prog *progress) error {
	readers := opts.Readers
	if readers <= 0 {
		readers = min(runtime.GOMAXPROCS(0), 4)
	}
	correcting, toRead := false, 0
	for _, r := range reads {
		correcting = correcting || r.plan.correct
		if !r.plan.skip {
			toRead++
		}
	}
	if !p.first && p.xids == "" || correcting || toRead < 2 {
		readers = 1
	}
	if err := tuneFiltered(ctx, tx, p); err != nil {
		return err
	}
	// The largest tables first, so that they do not come last.
	order := make([]int, len(reads))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return reads[order[a]].plan.weight > reads[order[b]].plan.weight })

	work := make(chan int, len(reads))
	for _, i := range order {
		work <- i
	}
	close(work)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := func(q pgx.Tx) {
		for i := range work {
			if ctx.Err() != nil {
				return
			}
			r := &reads[i]
			if err := readTable(ctx, q, batch, r, prog); err != nil {
				cancel(tote.At(err, tote.Where{Table: r.table.Name}))
				return
			}
		}
	}

	var wg sync.WaitGroup
	if readers > 1 {
		// A failure here aborts tx (a subtransaction cannot export), so it
		// fails the extraction; PostgreSQL 15 exports on a standby too.
		var id string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&id); err != nil {
			return fmt.Errorf("export the snapshot to more readers: %w", err)
		}
		for range readers - 1 {
			q, release, err := importSnapshot(ctx, pool, id)
			if err == nil {
				err = tuneFiltered(ctx, q, p)
			}
			if err != nil {
				if release != nil {
					release()
				}
				cancel(err)
				break
			}
			wg.Go(func() {
				defer release()
				run(q)
			})
		}
	}
	run(tx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// importSnapshot opens a connection of its own (not the pool's: extractions
// sharing a pool would wait on each other's readers) and begins a read-only
// transaction on it, in the exported snapshot id.
func importSnapshot(ctx context.Context, pool *pgxpool.Pool, id string) (pgx.Tx, func(), error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, nil, fmt.Errorf("connect a second reader: %w", err)
	}
	closeConn := func() { _ = conn.Close(context.WithoutCancel(ctx)) }
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		closeConn()
		return nil, nil, fmt.Errorf("begin a second reader: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+id+"'"); err != nil { // id: the server's own
		closeConn()
		return nil, nil, fmt.Errorf("import the extraction's snapshot: %w", err)
	}
	return tx, closeConn, nil
}

// tuneFiltered tunes the planner for an incremental read. JIT
// compilation, which the counts by range of ids would trigger, costs more
// than it saves on queries that touch each row once. And for a read
// filtered on an xid list, handing rows from parallel workers to the
// leader costs little: few rows pass the filter, but the planner, which
// has no statistics on xmin, thinks all of them do, and would scan a large
// table alone.
func tuneFiltered(ctx context.Context, q pgx.Tx, p *plan) error {
	if p.first {
		return nil
	}
	sql := `SET LOCAL jit = off`
	if p.xids != "" {
		sql += `; SET LOCAL parallel_tuple_cost = 0.001`
	}
	if _, err := q.Exec(ctx, sql); err != nil {
		return fmt.Errorf("tune the read: %w", err)
	}
	return nil
}

// minPartPages is the fewest pages (8 kB) of a table worth counting in a
// part of its own (see countFresh).
const minPartPages = 512

// scanParts returns how many parts of a table one query can count at once:
// the leader and the parallel workers it may have, if the server scans a
// range of pages by itself (a TID range scan, PostgreSQL 14); else 1.
func scanParts(ctx context.Context, tx pgx.Tx) (int, error) {
	var version, workers int
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_version_num')::int,
		current_setting('max_parallel_workers_per_gather')::int`).Scan(&version, &workers); err != nil {
		return 0, fmt.Errorf("read the server's settings: %w", err)
	}
	if version < 140000 || workers < 1 {
		return 1, nil
	}
	return workers + 1, nil
}

// tableSizes returns each totesys table's size in pages, as the catalog
// last counted it.
func tableSizes(ctx context.Context, tx pgx.Tx) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `SELECT relname::text, relpages::bigint FROM pg_class
WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') AND relname = ANY($1)`, totesys.TableNames())
	if err != nil {
		return nil, fmt.Errorf("read table sizes: %w", err)
	}
	out := map[string]int64{}
	var name string
	var pages int64
	_, err = pgx.ForEachRow(rows, []any{&name, &pages}, func() error { out[name] = pages; return nil })
	if err != nil {
		return nil, fmt.Errorf("read table sizes: %w", err)
	}
	return out, nil
}

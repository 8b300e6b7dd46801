// Package verify owns comparing the warehouse with the source without
// copying whole tables: for every dimension, and the current version of
// every fact (its current view: the newest version, unless that records a
// deletion), it computes the star row from the source in SQL rendered
// from the model (star.Tables), as the transform makes it, and compares
// checksums over ranges of source ids on both sides, narrowing the ranges
// that differ down to the rows (as data-diff tools do). It reports rows
// missing from the warehouse, rows the warehouse has live that the source
// no longer does, and rows that differ; and it can send the missing and
// differing rows through the pipeline again, and tombstones for the rows
// the source no longer has, as a corrective batch (see extract.Correct).
// A deleted row the warehouse carries as deleted (a fact's deletion
// version, a dimension's flag) is not a difference.
//
// A busy source raises no false alarm: a row written by a transaction at
// or after the horizon of the newest extraction the warehouse holds whole
// is in flight (the pipeline has not had its chance yet), and it is left
// out on both sides; so is a row that extraction held live and the source
// no longer has (deleted since: the next extraction tombstones it), and
// rows the transform quarantined (they are in tote.rejects). The source
// side is read in one snapshot.
//
// It does not compare dim_date, which is made from the facts.
package verify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
)

// Options controls Run.
type Options struct {
	Logger *slog.Logger
	// Leaf is the size of an id range whose rows are fetched and compared
	// one by one, rather than split further; zero means 256.
	Leaf int64
}

// TableResult is what Run found in one star table.
type TableResult struct {
	Table  string `json:"table"`
	Source string `json:"source_table"` // the source table whose ids it compares
	Rows   int64  `json:"rows"`         // compared (in the source, less those left out)
	// Missing rows are in the source and not in the warehouse, Extra rows
	// the other way round (live in the warehouse), and Different rows in
	// both with other values; by source id.
	Missing   []int64 `json:"missing,omitempty"`
	Extra     []int64 `json:"extra,omitempty"`
	Different []int64 `json:"different,omitempty"`
	// Left out of the comparison: in flight (written, or deleted, since
	// the extraction the warehouse holds), or quarantined.
	InFlight    int `json:"in_flight"`
	Quarantined int `json:"quarantined"`
	Queries     int `json:"queries"` // range checksums and fetches made on both sides
}

// Differences is the number of rows that differ.
func (t TableResult) Differences() int { return len(t.Missing) + len(t.Extra) + len(t.Different) }

// Result is what Run found.
type Result struct {
	Tables  []TableResult `json:"tables"`
	Horizon uint64        `json:"horizon"` // the xid from which source rows were in flight
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Differences is the number of rows that differ, in all tables.
func (r Result) Differences() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Differences()
	}
	return n
}

// Run compares the warehouse with the source. Nothing is loaded yet is an
// error: there is nothing to compare.
func Run(ctx context.Context, p pipeline.Parts, opts Options) (Result, error) {
	start := time.Now()
	if opts.Leaf <= 0 {
		opts.Leaf = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := pipeline.ReadFreshness(ctx, p.Lake, p.Warehouse, start)
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	if !f.Loaded() {
		return Result{}, fmt.Errorf("verify: nothing is loaded in the warehouse yet")
	}
	rejects, err := p.Warehouse.Rejects(ctx, false, 1<<30)
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	src, err := p.Source.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Result{}, fmt.Errorf("verify: source: %w", err)
	}
	defer src.Rollback(context.WithoutCancel(ctx))
	maxAge, base, err := extract.InFlight(ctx, src, f.LoadedXid)
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	fl := flight{maxAge: maxAge, base: base}
	if fl.taken, fl.live, err = takenAt(ctx, p, f.LoadedRaw); err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	cs, err := checks()
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	res := Result{Horizon: f.LoadedXid}
	for _, c := range cs {
		tr, err := c.run(ctx, src, p.Warehouse, fl, quarantined(rejects, c.source), opts.Leaf)
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", c.table, err)
		}
		res.Tables = append(res.Tables, tr)
		log.Debug("verified table", "table", c.table, "rows", tr.Rows, "differences", tr.Differences(), "queries", tr.Queries)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// flight says which source rows are in flight: written by a transaction at
// or after the horizon of the newest extraction the warehouse holds (age at
// most maxAge), unless that extraction lists them as taken; or live at that
// extraction and gone from the source.
type flight struct {
	maxAge int64
	base   uint64                       // the xid age() counts from
	taken  map[string]map[[2]int64]bool // by source table: (id, xid) extracted; nil for a format-1 state
	live   map[string]*roaring.Bitmap   // by source table: the ids live at that extraction, where the lake has them
}

// deletedSince reports whether table's row id, which the source does not
// have, was live at the newest extraction the warehouse holds: the next
// extraction tombstones it.
func (f flight) deletedSince(table string, id int64) bool {
	s := f.live[table]
	return s != nil && id == int64(int32(id)) && s.Contains(uint32(int32(id)))
}

// inFlight reports whether table's row id, whose xmin has age age, is in flight.
func (f flight) inFlight(table string, id, age int64) bool {
	if age > f.maxAge {
		return false
	}
	if f.taken == nil {
		return true
	}
	return !f.taken[table][[2]int64{id, int64(f.base) - age}]
}

// takenAt returns the versions raw batch seq's state lists as taken, by
// table, nil if its state does not list them by xid; and the ids live as
// of that extraction, by table, where the lake holds them.
func takenAt(ctx context.Context, p pipeline.Parts, seq uint64) (map[string]map[[2]int64]bool, map[string]*roaring.Bitmap, error) {
	m, err := p.Lake.Batch(ctx, lake.Raw, strconv.FormatUint(seq, 10))
	if err != nil {
		return nil, nil, err
	}
	s, err := extract.LoadState(m)
	if err != nil || s.Format < 2 {
		return nil, nil, err
	}
	out := map[string]map[[2]int64]bool{}
	for table, ts := range s.Tables {
		out[table] = map[[2]int64]bool{}
		for _, v := range ts.Taken {
			out[table][v] = true
		}
	}
	live, err := extract.LiveIDs(ctx, p.Lake, s)
	if err != nil {
		return nil, nil, err
	}
	return out, live, nil
}

// quarantined returns the ids of table's rows with open rejects.
func quarantined(rejects []tote.Reject, table string) []int64 {
	var ids []int64
	for _, r := range rejects {
		if r.Table == table {
			ids = append(ids, r.SourceID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Repair sends the missing and different rows of res through the pipeline
// again, and tombstones for the rows the warehouse has live that the
// source does not: a corrective raw batch with their current versions and
// the tombstones, transformed and loaded like any other (facts already
// there take its values; a deletion adds a fact's deletion version, flags
// a dimension's row). It returns the pass's result; nothing to repair is
// no batch.
func Repair(ctx context.Context, p pipeline.Parts, res Result, log *slog.Logger) (pipeline.Result, error) {
	c := extract.Corrections{Rows: map[string][]int64{}, Deleted: map[string][]int64{}}
	for _, t := range res.Tables {
		c.Rows[t.Source] = append(c.Rows[t.Source], t.Missing...)
		c.Rows[t.Source] = append(c.Rows[t.Source], t.Different...)
		c.Deleted[t.Source] = append(c.Deleted[t.Source], t.Extra...)
	}
	n := 0
	for _, ids := range []map[string][]int64{c.Rows, c.Deleted} {
		for table, list := range ids {
			slices.Sort(list)
			if ids[table] = slices.Compact(list); len(ids[table]) == 0 {
				delete(ids, table)
			}
			n += len(ids[table])
		}
	}
	if n == 0 {
		return pipeline.Result{}, nil
	}
	return pipeline.Correct(ctx, p, c, pipeline.Options{Logger: log})
}

// warehousePool is what the checks read of the warehouse.
type warehousePool interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ warehousePool = (*pgxpool.Pool)(nil)

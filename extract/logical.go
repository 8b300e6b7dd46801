package extract

// # Capture by logical replication
//
// With Options.Capture = CaptureLogical, an extraction reads the source's
// changes from a logical replication slot (package replication) instead of
// a pass over every table, so that its cost follows the changes, not the
// source's size. The batches it writes are the same as xmin's: one file per
// table of row versions with tote_xid, the transaction's 64-bit id; the
// tombstones; and the sets of live ids, kept up to date from the inserts and
// deletes. Transform and load see nothing new.
//
// Handoff. The first logical extraction of a lake (a new one, or one that
// xmin extractions wrote) creates the slot with an exported snapshot and
// reads a full batch in it (Options.Full's batch, with the existing
// parallel readers): every row, versions the warehouse lacks added, rows the
// lake holds live that the source lacks tombstoned. The slot then streams
// exactly the transactions that snapshot does not see, from its consistent
// point, recorded in the batch's state (State.Capture, State.LSN). A slot
// found missing or invalidated (wal_status lost) is replaced the same way:
// a full batch, nothing skipped silently.
//
// Exactly once. The changes of each source transaction go into one batch,
// whole; a batch holds the transactions whose commits end after the last
// batch's State.LSN, up to its own State.LSN. The slot is told that a
// position is kept (replication.Conn.Confirm) only after the batch's
// manifest is committed. A crash before that replays the transactions from
// the slot, and those at or before the manifest's LSN are skipped, so a
// replay adds nothing twice.
//
// Within a batch, a row keeps its last version (as xmin's snapshot would
// see it); a row deleted in the batch leaves a tombstone if the lake held it
// live, and no version; a TRUNCATE deletes every live row of its tables.
// Deletions beyond Options.MaxDeleteFraction of a table are held back as in
// xmin mode (*MassDeletionError), the slot not confirmed, until accepted.
//
// A value stored out of line (TOAST) that an update left unchanged is not
// sent by the server; it is taken from the row's last version: in the batch,
// else the newest raw batch of the lake that holds the row (the handoff's
// full batch holds every row, so the search ends there at the latest).
//
// Switching back to xmin: the first xmin extraction after logical ones
// reads a full batch in its own snapshot (the logical batches record no xid
// horizon an xmin read could carry on from), which loses and doubles
// nothing; the slot is left to `tote capture drop`.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/totesys"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Capture modes (Options.Capture).
const (
	CaptureXmin    = "xmin"
	CaptureLogical = "logical"
)

// CheckCapture checks a capture mode's name.
func CheckCapture(mode string) error {
	switch mode {
	case "", CaptureXmin, CaptureLogical:
		return nil
	}
	return fmt.Errorf("capture %q: use xmin or logical", mode)
}

// drainWait is how long a drain waits for the server between checks of
// where it has decoded to.
const drainWait = 50 * time.Millisecond

// runLogical is Run for CaptureLogical: a handoff if the lake has no
// logical state or the slot is gone, else the transactions committed up to
// the WAL position current at its start, in one batch.
func runLogical(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, opts Options) (_ Result, err error) {
	defer func() { err = tote.At(err, tote.Where{Stage: tote.Extract}) }()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	conn, err := replication.Connect(ctx, &pool.Config().ConnConfig.Config, opts.Replication)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	prev, latest, err := latestState(ctx, lk)
	if err != nil {
		return Result{}, err
	}
	handoff := prev == nil || prev.Capture != CaptureLogical || opts.Full
	_, err = conn.Slot(ctx)
	if perr := checkPublication(ctx, conn); perr != nil {
		// The slot streams no change to a table the publication lacks:
		// what it missed is gone from the stream, so the slot is dropped
		// and, once the table is added, the next extraction re-reads the
		// source in full.
		if err == nil {
			if derr := conn.DropSlot(ctx); derr != nil {
				return Result{}, errors.Join(perr, derr)
			}
			return Result{}, fmt.Errorf("%w; dropped the replication slot %s: once the publication is complete, the next extraction "+
				"re-reads the source in full", perr, conn.Config().SlotName)
		}
		return Result{}, perr
	}
	switch {
	case errors.Is(err, replication.ErrNoSlot):
		if !handoff {
			log.Error("the replication slot is gone: a full extraction re-reads the source, nothing skipped", "slot", conn.Config().SlotName)
			handoff = true
		}
	case errors.Is(err, replication.ErrSlotInvalidated):
		log.Error("the replication slot is invalidated (it lost WAL it needed): dropping it, and a full extraction re-reads the source, nothing skipped",
			"slot", conn.Config().SlotName, "err", err)
		if err := conn.DropSlot(ctx); err != nil {
			return Result{}, err
		}
		handoff = true
	case err != nil:
		return Result{}, err
	case handoff:
		// A slot that no committed batch started from (a crashed handoff,
		// an earlier logical period): its position means nothing now.
		if err := conn.DropSlot(ctx); err != nil {
			return Result{}, err
		}
	}
	if handoff {
		return handOff(ctx, pool, lk, conn, opts, log)
	}
	if err := checkIdentity(prev, Source{SystemID: conn.SystemID, Database: conn.Database}, false); err != nil {
		return Result{}, err
	}
	s := &streamer{pool: pool, lk: lk, conn: conn, opts: opts, log: log, prev: prev, latest: latest}
	return s.drain(ctx)
}

// checkPublication refuses a publication that lacks a totesys table.
func checkPublication(ctx context.Context, conn *replication.Conn) error {
	published, err := conn.PublishedTables(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, t := range totesys.Tables {
		if !slices.Contains(published, t.Name) {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("publication %s lacks table(s) %v, whose changes the replication slot would not stream: add them (tote capture setup --apply)",
			conn.Config().Publication, missing)
	}
	return nil
}

// latestState returns the state of the lake's latest raw batch (nil, nil
// for a new lake).
func latestState(ctx context.Context, lk *lake.Lake) (*State, *lake.Manifest, error) {
	latest, err := lk.Latest(ctx, lake.Raw)
	if err != nil || latest == nil {
		return nil, nil, err
	}
	s, err := LoadState(*latest)
	if err != nil {
		return nil, nil, err
	}
	return &s, latest, nil
}

// handOff creates the slot and reads a full batch in its snapshot.
func handOff(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, conn *replication.Conn, opts Options, log *slog.Logger) (Result, error) {
	snap, consistent, err := conn.CreateSlot(ctx)
	if err != nil {
		return Result{}, err
	}
	log.Info("created the replication slot; reading the source in its snapshot", "slot", conn.Config().SlotName, "consistent_point", consistent.String())
	res, err := run(ctx, pool, lk, opts, job{kind: full, snapshot: snap, lsn: consistent})
	if err != nil {
		// Nothing committed starts from this slot: drop it rather than
		// let it hold WAL (the next run creates another).
		if derr := conn.DropSlot(context.WithoutCancel(ctx)); derr != nil {
			log.Warn("could not drop the replication slot of a failed handoff; the next logical extraction will", "err", derr)
		}
		return Result{}, err
	}
	res.Capture, res.LSN = CaptureLogical, consistent.String()
	return res, nil
}

// streamer turns the slot's transactions into raw batches.
type streamer struct {
	pool   *pgxpool.Pool
	lk     *lake.Lake
	conn   *replication.Conn
	opts   Options
	log    *slog.Logger
	prev   *State
	latest *lake.Manifest
}

// drain streams the transactions that end up to the WAL position current
// at its start into one batch, commits it and confirms it to the slot.
func (s *streamer) drain(ctx context.Context) (Result, error) {
	start := time.Now()
	from, err := replication.ParseLSN(s.prev.LSN)
	if err != nil {
		return Result{}, tote.At(fmt.Errorf("extraction state: lsn %q: %w", s.prev.LSN, err), tote.Where{Batch: s.latest.ID})
	}
	target, err := s.conn.CurrentLSN(ctx)
	if err != nil {
		return Result{}, err
	}
	readAt := time.Now().UTC()
	if err := s.conn.Start(ctx, from); err != nil {
		return Result{}, err
	}
	// The write position can be ahead of what the server decodes: it
	// decodes what is flushed, and a record written after the last commit
	// (an abort, another session's unfinished transaction) may wait for
	// the WAL writer, or for what comes next, to be flushed. Every commit
	// written before the start is flushed within three wal_writer_delay,
	// so from then on the flush position, once reached, also ends the
	// drain.
	var writerDelay time.Duration
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('wal_writer_delay')::interval`).Scan(&writerDelay); err != nil {
		return Result{}, fmt.Errorf("read wal_writer_delay: %w", err)
	}
	settled := time.Now().Add(3 * writerDelay)
	var txs []*replication.Tx
	for !s.conn.Reached(target) {
		if time.Now().After(settled) {
			var flushed string
			if err := s.pool.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn()::text`).Scan(&flushed); err != nil {
				return Result{}, fmt.Errorf("read the source's WAL position: %w", err)
			}
			if f, err := replication.ParseLSN(flushed); err == nil && s.conn.Reached(f) {
				break
			}
		}
		tx, err := s.conn.Next(ctx, drainWait)
		if err != nil {
			return Result{}, err
		}
		if tx == nil || tx.EndLSN <= from {
			continue // replayed: already in the lake
		}
		txs = append(txs, tx)
	}
	res, err := s.commit(ctx, txs, readAt, start)
	if err != nil {
		return res, err
	}
	// Kept: the slot may let the WAL go. (A failure here only means the
	// next run replays what is kept, and skips it.)
	if err := s.conn.Confirm(ctx, s.conn.Received()); err != nil {
		s.log.Warn("could not confirm the position to the replication slot; the next extraction replays and skips it", "err", err)
	}
	return res, nil
}

// commit writes txs as the next raw batch and commits it; with none, it
// only records the extraction's status.
func (s *streamer) commit(ctx context.Context, txs []*replication.Tx, readAt, start time.Time) (Result, error) {
	seq := s.latest.Seq + 1
	res := Result{Seq: seq, Snapshot: s.prev.Snapshot, Source: s.prev.Source, Capture: CaptureLogical, LSN: s.prev.LSN}
	if len(txs) == 0 {
		res.Elapsed = time.Since(start)
		putStatus(ctx, s.lk, s.log, Status{ReadAt: readAt, Seq: s.latest.Seq, Batch: s.latest.ID, Source: Primary})
		return res, nil
	}
	b, err := s.build(ctx, txs)
	if err != nil {
		return Result{}, err
	}
	if b.empty() {
		// Only tables beside totesys's, or a row written and deleted
		// again: nothing to keep (the slot is confirmed all the same).
		res.Elapsed = time.Since(start)
		putStatus(ctx, s.lk, s.log, Status{ReadAt: readAt, Seq: s.latest.Seq, Batch: s.latest.ID, Source: Primary})
		return res, nil
	}
	last := txs[len(txs)-1]
	next := *s.prev
	next.Format, next.Capture, next.LSN = stateFormat, CaptureLogical, last.EndLSN.String()
	next.SourceTime, next.ReadAt = b.sourceTime, readAt
	next.Source.LSN, next.Source.Role = last.EndLSN.String(), Primary
	next.Tables = maps.Clone(s.prev.Tables)
	res.LSN, res.Source = next.LSN, next.Source

	batch := s.lk.NewBatch(lake.Raw, seq, start)
	committed := false
	defer func() {
		if !committed {
			if err := batch.Abort(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("could not remove the files of an uncommitted batch; a later clean will", "batch", batch.ID(), "error", err)
			}
		}
	}()
	var held []HeldDeletion
	accepted := map[string]bool{}
	for _, t := range s.opts.AcceptDeletes {
		accepted[t] = true
	}
	deleted := map[string][]totesys.Tombstone{}
	sets := map[string]*roaring.Bitmap{}
	for _, table := range totesys.Tables {
		tb := b.tables[table.Name]
		if tb == nil {
			continue
		}
		tr := TableResult{Table: table.Name, Deleted: int64(len(tb.deleted))}
		ts := next.Tables[table.Name]
		ts.Taken = nil
		if len(tb.rows) > 0 {
			n, bytes, watermark, err := writeVersions(ctx, batch, table, tb.rows)
			if err != nil {
				return Result{}, tote.At(err, tote.Where{Batch: batch.ID(), Table: table.Name})
			}
			tr.Rows, tr.Bytes = n, bytes
			if watermark.After(ts.Watermark) {
				ts.Watermark = watermark
			}
		}
		if len(tb.deleted) > 0 {
			live := int64(tb.startLive)
			if tb.truncated || float64(len(tb.deleted)) > s.opts.MaxDeleteFraction*float64(live) {
				h := HeldDeletion{Table: table.Name, Deleted: int64(len(tb.deleted)), Live: live}
				if accepted[table.Name] {
					s.log.Warn("applying deletions accepted by the operator", "table", h.Table, "deleted", h.Deleted, "live", h.Live)
				} else {
					held = append(held, h)
				}
			}
			for _, id := range tb.deleted {
				deleted[table.Name] = append(deleted[table.Name], totesys.Tombstone{Table: table.Name, ID: id, SeenAt: b.sourceTime})
			}
		}
		if tb.setChanged {
			sets[table.Name] = tb.live
			ts.IDs = seq
		}
		next.Tables[table.Name] = ts
		res.Tables = append(res.Tables, tr)
	}
	if len(held) > 0 {
		return Result{}, tote.At(&MassDeletionError{Batch: batch.ID(), Tables: held}, tote.Where{Batch: batch.ID()})
	}
	if len(deleted) > 0 {
		if res.DeletedBytes, err = writeTombstoneRows(ctx, batch, deleted); err != nil {
			return Result{}, tote.At(err, tote.Where{Batch: batch.ID()})
		}
	}
	if res.IDSetBytes, err = writeIDSets(ctx, batch, sets); err != nil {
		return Result{}, tote.At(err, tote.Where{Batch: batch.ID()})
	}
	if s.opts.beforeCommit != nil {
		s.opts.beforeCommit()
	}
	m, err := commit(ctx, batch, seq, next)
	if err != nil {
		return Result{}, err
	}
	committed = true
	if s.opts.afterCommit != nil {
		s.opts.afterCommit()
	}
	s.prev, s.latest = &next, &m
	res.Batch, res.Committed = m.ID, true
	res.Elapsed = time.Since(start)
	putStatus(ctx, s.lk, s.log, Status{ReadAt: readAt, Seq: m.Seq, Batch: m.ID, Source: Primary})
	return res, nil
}

// tableBuild is one table's part of a batch being built from transactions.
type tableBuild struct {
	rows       map[int32]parquet.Row // the last version of each row written in the batch
	live       *roaring.Bitmap       // the live ids, as of the batch's last transaction
	startLive  uint64                // how many were live before the batch
	startSet   *roaring.Bitmap       // which
	deleted    []int32               // set at the end: tombstones (live before, gone after)
	setChanged bool
	truncated  bool
}

// built is a batch's content.
type built struct {
	tables     map[string]*tableBuild
	sourceTime time.Time // the source's clock (localtimestamp) when the batch was built
}

// empty says the batch would hold nothing.
func (b *built) empty() bool {
	for _, tb := range b.tables {
		if len(tb.rows) > 0 || len(tb.deleted) > 0 || tb.setChanged {
			return false
		}
	}
	return true
}

// build applies txs, in commit order, to the live ids the lake holds.
func (s *streamer) build(ctx context.Context, txs []*replication.Tx) (*built, error) {
	// The transactions' 32-bit ids are widened against the source's next
	// xid: each committed before it.
	var xmaxText string
	b := &built{tables: map[string]*tableBuild{}}
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text, localtimestamp`).Scan(&xmaxText, &b.sourceTime); err != nil {
		return nil, fmt.Errorf("read the source's transaction id: %w", err)
	}
	var xmax uint64
	if _, err := fmt.Sscan(xmaxText, &xmax); err != nil {
		return nil, fmt.Errorf("read the source's transaction id %q: %w", xmaxText, err)
	}
	live, err := loadIDSets(ctx, s.lk, s.prev)
	if err != nil {
		return nil, err
	}
	table := func(name string) *tableBuild {
		tb := b.tables[name]
		if tb == nil {
			set := live[name]
			if set == nil {
				set = roaring.New()
			}
			tb = &tableBuild{rows: map[int32]parquet.Row{}, live: set.Clone(), startSet: set, startLive: set.GetCardinality()}
			b.tables[name] = tb
		}
		return tb
	}
	type unchanged struct {
		table string
		id    int32
	}
	var toFill []unchanged
	for _, tx := range txs {
		xid := widenBelow(tx.Xid, xmax)
		for _, ch := range tx.Changes {
			if ch.Op == replication.Truncate {
				for _, name := range ch.Tables {
					t, err := totesys.Lookup(name)
					if err != nil {
						continue // not a totesys table
					}
					tb := table(t.Name)
					tb.truncated = true
					clear(tb.rows)
					tb.live.Clear()
					tb.setChanged = true
				}
				continue
			}
			t, err := totesys.Lookup(ch.Table)
			if err != nil {
				continue // a table published beside totesys's
			}
			tb := table(t.Name)
			keyVal, ok := ch.Value(t.Key())
			if !ok || keyVal == nil {
				return nil, tote.At(fmt.Errorf("a %s without the key %s in the replication stream (is the replica identity the primary key?)", ch.Op, t.Key()),
					tote.Where{Table: t.Name})
			}
			id, err := int4(keyVal)
			if err != nil {
				return nil, tote.At(err, tote.Where{Table: t.Name, Column: t.Key()})
			}
			switch ch.Op {
			case replication.Delete:
				delete(tb.rows, id)
				tb.live.Remove(member(id))
				tb.setChanged = true
			case replication.Insert, replication.Update:
				row, hasUnchanged, err := versionRow(t, ch, xid, tb.rows[id])
				if err != nil {
					return nil, tote.At(err, tote.Where{Table: t.Name, ID: int64(id)})
				}
				tb.rows[id] = row
				if hasUnchanged {
					toFill = append(toFill, unchanged{t.Name, id})
				}
				if !tb.live.Contains(member(id)) {
					tb.live.Add(member(id))
					tb.setChanged = true
				}
			}
		}
	}
	// Unchanged out-of-line values not in the batch: from the lake.
	byTable := map[string]map[int32]bool{}
	for _, u := range toFill {
		if row := b.tables[u.table].rows[u.id]; row != nil && hasMissing(row) {
			if byTable[u.table] == nil {
				byTable[u.table] = map[int32]bool{}
			}
			byTable[u.table][u.id] = true
		}
	}
	for name, ids := range byTable {
		t, _ := totesys.Lookup(name)
		found, err := lastVersions(ctx, s.lk, t, ids)
		if err != nil {
			return nil, err
		}
		for id := range ids {
			old, ok := found[id]
			if !ok {
				return nil, tote.At(errors.New("an update left a value stored out of line (TOAST) unchanged, and the lake holds no version of the row to take it from"),
					tote.Where{Table: name, ID: int64(id)})
			}
			fillMissing(b.tables[name].rows[id], old)
		}
	}
	for _, tb := range b.tables {
		tb.deleted = setMembers(roaring.AndNot(tb.startSet, tb.live))
		// A row deleted and written again in the batch is a new version, not a deletion.
		if tb.setChanged && tb.live.Equals(tb.startSet) && !tb.truncated {
			tb.setChanged = false
		}
	}
	return b, nil
}

// missing marks, in a row being built, a value still to be filled from the
// row's last version (an unchanged TOAST value). Parquet rows carry a
// column index and levels; a value with repetition level 1 cannot occur in
// the raw files (no repeated columns), so it serves as the mark.
func missingValue(leaf int) parquet.Value { return parquet.NullValue().Level(1, 0, leaf) }

func isMissing(v parquet.Value) bool { return v.RepetitionLevel() == 1 }

func hasMissing(row parquet.Row) bool { return slices.ContainsFunc(row, isMissing) }

// fillMissing copies into row the values of old (the row's last version)
// that row lacks.
func fillMissing(row, old parquet.Row) {
	for i, v := range row {
		if isMissing(v) {
			row[i] = old[i]
		}
	}
}

// versionRow builds the raw row of a change's new version, with tote_xid
// xid. An unchanged TOAST value is taken from prior (the row's version
// earlier in the batch) if there is one, else marked missing.
func versionRow(t totesys.Table, ch replication.Change, xid int64, prior parquet.Row) (parquet.Row, bool, error) {
	schema := t.Schema()
	cols := columns(t, schema)
	row := make(parquet.Row, len(cols)+1)
	hasUnchanged := false
	for _, c := range cols {
		i := slices.Index(ch.Columns, c.model.Name)
		if i < 0 {
			return nil, false, tote.At(errors.New("the column is not in the replication stream (dropped or renamed in the source?)"),
				tote.Where{Column: c.model.Name})
		}
		if ch.Unchanged != nil && ch.Unchanged[i] {
			if prior != nil && !isMissing(prior[c.leaf]) {
				row[c.leaf] = prior[c.leaf]
			} else {
				row[c.leaf] = missingValue(c.leaf)
				hasUnchanged = true
			}
			continue
		}
		var arena []byte
		val, err := decode(c.model, ch.Values[i], &arena)
		if err != nil {
			return nil, false, tote.At(err, tote.Where{Column: c.model.Name})
		}
		if val.IsNull() {
			row[c.leaf] = val.Level(0, 0, c.leaf)
		} else {
			row[c.leaf] = val.Level(0, c.def, c.leaf)
		}
	}
	xidLeaf, _ := schema.Lookup(totesys.XidColumn)
	row[xidLeaf.ColumnIndex] = parquet.Int64Value(xid).Level(0, 0, xidLeaf.ColumnIndex)
	return row, hasUnchanged, nil
}

// writeVersions writes a table's row versions to its file of batch, by
// id, and returns how many, the file's size and the newest last_updated.
func writeVersions(ctx context.Context, batch *lake.BatchWriter, t totesys.Table, rows map[int32]parquet.Row) (int64, int64, time.Time, error) {
	schema := t.Schema()
	lu, _ := schema.Lookup(totesys.LastUpdated)
	w := lakefile.NewWriter(batch, t.Name, schema)
	defer w.Abandon()
	ids := slices.Sorted(maps.Keys(rows))
	var newest int64
	chunk := make([]parquet.Row, 0, min(len(ids), chunkRows))
	for i, id := range ids {
		row := rows[id]
		newest = max(newest, row[lu.ColumnIndex].Int64())
		chunk = append(chunk, row)
		if len(chunk) == chunkRows || i == len(ids)-1 {
			if err := w.Write(ctx, chunk); err != nil {
				return 0, 0, time.Time{}, err
			}
			chunk = chunk[:0]
		}
	}
	if err := w.Close(); err != nil {
		return 0, 0, time.Time{}, err
	}
	return w.Rows(), w.Bytes(), time.UnixMicro(newest).UTC(), nil
}

// writeTombstoneRows writes the batch's DeletedTable file, in the model's
// table order then by id, and returns its size.
func writeTombstoneRows(ctx context.Context, batch *lake.BatchWriter, deleted map[string][]totesys.Tombstone) (int64, error) {
	w := lakefile.NewWriter(batch, DeletedTable, totesys.DeletedSchema)
	defer w.Abandon()
	for _, t := range totesys.Tables {
		ts := slices.Clone(deleted[t.Name])
		slices.SortFunc(ts, func(a, b totesys.Tombstone) int { return int(a.ID) - int(b.ID) })
		rows := make([]parquet.Row, len(ts))
		for i, tomb := range ts {
			rows[i] = tomb.Row()
		}
		if err := w.Write(ctx, rows); err != nil {
			return 0, err
		}
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Bytes(), nil
}

// lastVersions finds the newest version the lake's raw zone holds of each
// of the rows ids of table t: from the newest batch back, each batch's file
// of the table read once, until every row is found.
func lastVersions(ctx context.Context, lk *lake.Lake, t totesys.Table, ids map[int32]bool) (map[int32]parquet.Row, error) {
	ms, err := lk.Batches(ctx, lake.Raw)
	if err != nil {
		return nil, err
	}
	schema := t.Schema()
	out := map[int32]parquet.Row{}
	for i := len(ms) - 1; i >= 0 && len(out) < len(ids); i-- {
		m := ms[i]
		j := slices.IndexFunc(m.Files, func(f lake.File) bool { return f.Table == t.Name })
		if j < 0 {
			continue
		}
		r, err := lakefile.Open(ctx, lk, m, m.Files[j])
		if err != nil {
			return nil, tote.At(err, tote.Where{Batch: m.ID, Table: t.Name})
		}
		// Map the file's columns onto the model's (a file of an early
		// release lacks tote_xid).
		fileCols := make([]int, len(schema.Fields()))
		for k, f := range schema.Fields() {
			fileCols[k] = -1
			if leaf, ok := r.Schema().Lookup(f.Name()); ok {
				fileCols[k] = leaf.ColumnIndex
			}
		}
		fileKey, _ := r.Schema().Lookup(t.Key())
		found := map[int32]parquet.Row{}
		buf := make([]parquet.Row, 256)
		for {
			n, rerr := r.Read(buf)
			for _, row := range buf[:n] {
				id := row[fileKey.ColumnIndex].Int32()
				if !ids[id] {
					continue
				}
				if _, done := out[id]; done {
					continue
				}
				v := make(parquet.Row, len(fileCols))
				for k, fc := range fileCols {
					leaf, _ := schema.Lookup(schema.Fields()[k].Name())
					if fc < 0 {
						v[leaf.ColumnIndex] = parquet.Int64Value(0).Level(0, 0, leaf.ColumnIndex)
						continue
					}
					v[leaf.ColumnIndex] = row[fc].Clone().Level(0, row[fc].DefinitionLevel(), leaf.ColumnIndex)
				}
				found[id] = v // a later row of the same file is a later version
			}
			if rerr != nil {
				if errors.Is(rerr, io.EOF) {
					break
				}
				r.Close()
				return nil, tote.At(fmt.Errorf("%s: %w", r.Path(), rerr), tote.Where{Batch: m.ID, Table: t.Name})
			}
		}
		r.Close()
		maps.Copy(out, found)
	}
	return out, nil
}

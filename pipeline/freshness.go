package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

// Freshness says how far the warehouse is behind the source.
type Freshness struct {
	// AsOf is when the source was last read in a state the warehouse holds
	// whole: the snapshot of the newest extraction whose batches are all
	// loaded (by tote's clock), or the time an extraction found nothing
	// beyond them. Zero if nothing is loaded.
	AsOf time.Time `json:"as_of,omitzero"`
	// Lag is the time since AsOf: how stale the warehouse may be. A quiet
	// source is not stale: extractions that find nothing new move AsOf on.
	Lag time.Duration `json:"lag_ns"`
	// LoadedRaw is the newest raw batch whose rows are all loaded (through
	// its processed batch), and PendingRaw the raw batches committed after it.
	LoadedRaw  uint64 `json:"loaded_raw_seq"`
	PendingRaw uint64 `json:"pending_raw_batches"`
	// LoadedXid is that raw batch's xid horizon: every source row version
	// written by a transaction below it is in the warehouse (or superseded,
	// or quarantined).
	LoadedXid uint64 `json:"loaded_xid"`
	// NewestChange is the newest last_updated loaded into a fact: the age of
	// the data by the source's own stamps, which is not lag (a quiet
	// source's newest change is old).
	NewestChange time.Time `json:"newest_change,omitzero"`
}

// Loaded reports whether anything is loaded.
func (f Freshness) Loaded() bool { return !f.AsOf.IsZero() }

// ReadFreshness works out how far the warehouse is behind the source from
// the warehouse's ledger, the lake's manifests and the last extraction's
// status (see extract.Status). Without the lake (lk nil) it gives only what
// the warehouse knows: the newest change loaded.
func ReadFreshness(ctx context.Context, lk *lake.Lake, wh *warehouse.Warehouse, now time.Time) (Freshness, error) {
	var f Freshness
	newest, ok, err := wh.NewestChange(ctx)
	if err != nil {
		return f, err
	}
	if ok {
		f.NewestChange = newest
	}
	if lk == nil {
		return f, nil
	}
	processed, ok, err := loadedThrough(ctx, wh)
	if err != nil || !ok {
		return f, err
	}
	pm, err := lk.Batch(ctx, lake.Processed, strconv.FormatUint(processed, 10))
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	ps, err := transform.LoadState(pm)
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	f.LoadedRaw = ps.RawSeq
	rm, err := lk.Batch(ctx, lake.Raw, strconv.FormatUint(ps.RawSeq, 10))
	if errors.Is(err, fs.ErrNotExist) {
		return f, fmt.Errorf("freshness: raw batch %d, which processed batch %s was made from, is not in the lake", ps.RawSeq, pm.ID)
	}
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	rs, err := extract.LoadState(rm)
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	f.AsOf, f.LoadedXid = rs.ReadAt, rs.XidFrom()
	if f.AsOf.IsZero() { // manifests of tote's first releases
		f.AsOf = rm.CreatedAt
	}
	var st extract.Status
	found, err := lk.Status(ctx, extract.StatusName, &st)
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	latest, err := lk.Latest(ctx, lake.Raw)
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	if latest != nil && latest.Seq > f.LoadedRaw {
		f.PendingRaw = latest.Seq - f.LoadedRaw
	}
	if found && st.Seq <= f.LoadedRaw && st.ReadAt.After(f.AsOf) {
		f.AsOf = st.ReadAt
	}
	f.Lag = max(now.Sub(f.AsOf), 0)
	return f, nil
}

// loadedThrough returns the newest processed batch loaded with every batch
// before it, and false if none is.
func loadedThrough(ctx context.Context, wh *warehouse.Warehouse) (uint64, bool, error) {
	ledger, err := wh.Loaded(ctx)
	if err != nil {
		return 0, false, err
	}
	var n uint64
	for _, e := range ledger { // in sequence order
		if e.Seq != n+1 {
			break
		}
		n = e.Seq
	}
	return n, n > 0, nil
}

package extract

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
)

// stateFormat is the format of State this package writes: 2, transaction
// ids. Format 1 (no "format" field) is the last_updated horizon it replaced.
const stateFormat = 2

// State is what an extraction records in its manifest for the next one.
type State struct {
	Format int `json:"format,omitempty"`
	// Snapshot is the source snapshot the batch was read in (pg_current_snapshot()).
	Snapshot string `json:"snapshot"`
	// SourceTime is the source's clock (localtimestamp) in that snapshot.
	SourceTime time.Time `json:"source_time"`
	// ReadAt is tote's clock when the snapshot was taken: the source was
	// in this state at ReadAt, for measuring the warehouse's lag.
	ReadAt time.Time `json:"read_at,omitzero"`
	// XidHorizon is the snapshot's xmin as a 64-bit xid: the next
	// extraction reads the versions written by transactions from this id on.
	XidHorizon uint64 `json:"xid_horizon,omitempty"`
	// Source is what was read.
	Source Source `json:"source,omitzero"`
	// MovedFrom, on the batch that accepted a moved source (see
	// MoveSource), is the source the lake belonged to before.
	MovedFrom *Source `json:"moved_from,omitempty"`
	// Tables holds, per table, the newest last_updated extracted so far and
	// the versions at or above XidHorizon already extracted.
	Tables map[string]TableState `json:"tables"`

	// Horizon and HorizonFrom are format 1's: the next extraction read
	// every row stamped at or after Horizon.
	Horizon     time.Time `json:"horizon,omitzero"`
	HorizonFrom string    `json:"horizon_from,omitempty"`

	// Capture is CaptureLogical for a batch of logical capture (its
	// handoff included); empty for xmin's, as earlier releases wrote them.
	Capture string `json:"capture,omitempty"`
	// LSN, for logical capture, is the end of the last source transaction
	// the lake holds: the slot's transactions that end after it are the
	// next batch's (see logical.go).
	LSN string `json:"lsn,omitempty"`
}

// TableState is one table's part of State.
type TableState struct {
	// Watermark is the newest last_updated extracted from the table so far
	// (by the source's stamps: information, not a cursor).
	Watermark time.Time `json:"watermark,omitzero"`
	// Taken lists the versions extracted whose transaction id is at or
	// above the horizon, as [id, 64-bit xid] (format 1: [id, last_updated
	// in Unix microseconds]).
	Taken [][2]int64 `json:"taken,omitempty"`
	// IDs is the raw batch (its sequence number) whose IDsTable file holds
	// the ids live in the table at this state's snapshot; 0 when the lake
	// holds none yet (a lake written before tote kept them: the next
	// extraction reads them).
	IDs uint64 `json:"ids,omitempty"`
	// Carried names the columns beyond the model that the table's raw
	// files carry, as text, from this batch on (see Carried).
	Carried []string `json:"carried,omitempty"`

	lateIDs []int64 // a few ids of late versions, for the warning
}

// Roles of a source.
const (
	Primary = "primary"
	Standby = "standby" // a hot standby, in recovery
)

// Source says what an extraction read.
type Source struct {
	Role string `json:"role"` // Primary or Standby
	// SystemID is the cluster's system identifier (pg_control_system) and
	// Database the database's name: which source the lake belongs to.
	SystemID string `json:"system_id,omitempty"`
	Database string `json:"database,omitempty"`
	// LSN is the WAL position the source had reached after the snapshot
	// (the insert position of a primary, the replay position of a
	// standby): the next extraction's source must have reached it before
	// its snapshot, or it is behind.
	LSN string `json:"lsn"`
	// For a standby: whether replay is paused, when the last transaction
	// it replayed committed on the primary, and how long ago that was
	// when it has received WAL it has not replayed yet (0 when caught up).
	ReplayPaused bool          `json:"replay_paused,omitempty"`
	LastReplayed time.Time     `json:"last_replayed,omitzero"`
	ReplayDelay  time.Duration `json:"replay_delay_ns,omitempty"`
}

func (s Source) lsn() uint64 {
	n, _ := parseLSN(s.LSN)
	return n
}

// LoadState decodes the extraction state recorded in a raw manifest.
func LoadState(m lake.Manifest) (State, error) {
	var s State
	if err := decodeState(m.State, &s); err != nil {
		return State{}, tote.At(fmt.Errorf("extraction state: %w", err), tote.Where{Batch: m.ID})
	}
	return s, nil
}

func decodeState(raw json.RawMessage, s *State) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	if err := json.Unmarshal(raw, s); err != nil {
		return err
	}
	if s.Tables == nil {
		return errors.New("no tables")
	}
	if s.Format == 0 {
		s.Format = 1
	}
	if s.Format > stateFormat {
		return fmt.Errorf("format %d is newer than this tote knows (%d): upgrade tote", s.Format, stateFormat)
	}
	return nil
}

// plan is what an extraction reads and skips, worked out from the
// previous state and the new snapshot.
type plan struct {
	first   bool   // no previous extraction: read everything
	horizon uint64 // read the versions with xid >= horizon
	maxAge  int64  // that is, with age(xmin) <= maxAge
	ageBase uint64 // the xid age() counts from
	next    uint64 // the new snapshot's xmin: versions from it on are listed as taken
	xmax    uint64 // the new snapshot's xmax
	// xids lists the 32-bit xids from horizon up to xmax, as an xid[]
	// literal, when there are few enough to look each row's xmin up in a
	// hash: cheaper than age(), and free of the transaction's own age base,
	// so that other connections in the same snapshot can use it. Empty
	// otherwise (age(xmin) <= maxAge is the filter then).
	xids string
	prev *State
	// noRows reads without writing rows (MoveSource).
	noRows bool
}

// newPlan works out the read that follows prev (nil for the first).
func newPlan(prev *State, snap snapshot) (*plan, error) {
	p := &plan{prev: prev, ageBase: snap.ageBase, next: snap.xmin, xmax: snap.xmax}
	if prev == nil {
		p.first = true
		return p, nil
	}
	switch prev.Format {
	case 1:
		// The last_updated design recorded the snapshot it read, whose
		// xmin is the horizon; its own rule says which of the versions
		// above it it took.
		xmin, err := snapshotXmin(prev.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("previous extraction's snapshot %q: %w", prev.Snapshot, err)
		}
		p.horizon = xmin
	default:
		p.horizon = prev.XidHorizon
	}
	if p.horizon > snap.ageBase {
		return nil, fmt.Errorf("the source's transaction ids (next %d) are behind the last extraction's horizon (%d): "+
			"this lake was made from another source, or the source was restored from a dump", snap.ageBase, p.horizon)
	}
	if snap.ageBase-p.horizon >= 1<<31-1 {
		return nil, fmt.Errorf("the last extraction's horizon (transaction %d) is more than 2^31 transactions old (next %d): "+
			"too old to compare with age(xmin); extract into a new lake", p.horizon, snap.ageBase)
	}
	p.maxAge = int64(snap.ageBase - p.horizon)
	p.xids = xidList(p.horizon, snap.xmax)
	return p, nil
}

// maxListed is the most xids a plan lists (see plan.xids).
const maxListed = 1 << 17

// xidList returns the xids from lo up to hi (64-bit) as an xid[] literal of
// their 32-bit values, less the special ones; empty if there are more than
// maxListed.
func xidList(lo, hi uint64) string {
	if hi <= lo || hi-lo > maxListed {
		return ""
	}
	var b strings.Builder
	b.WriteString("'{")
	for x := lo; x < hi; x++ {
		if uint32(x) < 3 {
			continue
		}
		if b.Len() > 2 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uint32(x)), 10))
	}
	b.WriteString("}'::xid[]")
	return b.String()
}

// tablePlan is a plan for one table.
type tablePlan struct {
	skip   bool  // read nothing: the snapshot has not changed
	weight int64 // the table's size in pages, to read the largest first
	parts  int   // count rows in this many parts of the table at once (see countFresh)
	first  bool
	xmax   uint64
	xids   string
	noRows bool
	// live is the set of ids live in the table at the last extraction; nil
	// when the lake holds none.
	live *roaring.Bitmap
	// correct reads only the rows ids, and tombstones those of gone that
	// the source no longer holds (Correct).
	correct  bool
	ids      []int64
	gone     []int64
	horizon  uint64 // Correct: the last extraction's horizon (see inFlight)
	maxAge   int64
	ageBase  uint64
	next     uint64
	taken    map[[2]int64]bool // format 2: (id, xid) already extracted
	oldTaken map[[2]int64]bool // format 1: (id, last_updated µs) already extracted
	oldSince int64             // format 1: last_updated µs from which versions were not yet taken
	late     int64             // source clock (µs) of the previous read, less a second
	prev     TableState
}

func (p *plan) forTable(name string) *tablePlan {
	tp := &tablePlan{first: p.first, maxAge: p.maxAge, ageBase: p.ageBase, next: p.next, noRows: p.noRows,
		xmax: p.xmax, xids: p.xids, horizon: p.horizon}
	if p.prev == nil {
		return tp
	}
	tp.prev = p.prev.Tables[name]
	tp.late = p.prev.SourceTime.Add(-time.Second).UnixMicro()
	if p.prev.Format == 1 {
		tp.oldTaken = map[[2]int64]bool{}
		for _, v := range tp.prev.Taken {
			tp.oldTaken[v] = true
		}
		tp.oldSince = p.prev.Horizon.UnixMicro()
		return tp
	}
	tp.taken = make(map[[2]int64]bool, len(tp.prev.Taken))
	for _, v := range tp.prev.Taken {
		tp.taken[v] = true
	}
	return tp
}

// alreadyTaken reports whether an earlier extraction took the version
// (id, xid) stamped lu.
func (tp *tablePlan) alreadyTaken(id, xid, lu int64) bool {
	switch {
	case tp.first:
		return false
	case tp.oldTaken != nil:
		return lu < tp.oldSince || tp.oldTaken[[2]int64{id, lu}]
	}
	return tp.taken[[2]int64{id, xid}]
}

// inFlight reports whether a correction leaves the version (id, xid) to
// the next extraction: written at or after the last extraction's horizon
// and not taken by it. A version the last extraction took is in the
// warehouse's reach, however young: a transaction open elsewhere on the
// cluster (another database's) holds every snapshot's xmin, so the
// horizon alone would call long-loaded rows in flight and repair nothing.
func (tp *tablePlan) inFlight(id, xid int64) bool {
	return xid >= int64(tp.horizon) && !tp.taken[[2]int64{id, xid}]
}

// IdentityError reports a source that is not the one the lake was
// extracted from.
type IdentityError struct {
	Lake, Source Source
}

// ErrorKind is tote.Fatal: the source stays another until a person acts
// (tote lake move-source, or another lake).
func (e *IdentityError) ErrorKind() tote.Kind { return tote.Fatal }

func (e *IdentityError) Error() string {
	return fmt.Sprintf("this lake was extracted from database %q of PostgreSQL system %s, and this source is database %q of system %s: "+
		"nothing was extracted. If the source has moved (dump and restore, a new cluster) and holds what the lake does, accept it with "+
		"tote lake move-source, then check with tote verify; otherwise give the lake's source, or another lake",
		e.Lake.Database, e.Lake.SystemID, e.Source.Database, e.Source.SystemID)
}

// checkIdentity compares the source with the one the lake's last batch was
// read from (which a standby or a promoted standby shares: it has the
// primary's system identifier). For a move, it must differ.
func checkIdentity(prev *State, s Source, moving bool) error {
	if prev == nil || prev.Source.SystemID == "" {
		return nil // a new lake, or one of tote's first releases: nothing recorded
	}
	same := prev.Source.SystemID == s.SystemID && prev.Source.Database == s.Database
	switch {
	case moving && same:
		return fmt.Errorf("the lake already belongs to this source (database %q of system %s): nothing to move", s.Database, s.SystemID)
	case !moving && !same:
		return &IdentityError{Lake: prev.Source, Source: s}
	}
	return nil
}

// XidFrom is the 64-bit xid from which the next extraction reads: the
// XidHorizon, or for format 1 the xmin of the snapshot it read.
func (s State) XidFrom() uint64 {
	if s.XidHorizon != 0 {
		return s.XidHorizon
	}
	x, _ := snapshotXmin(s.Snapshot)
	return x
}

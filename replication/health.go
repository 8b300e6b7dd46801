package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// Slot problems, from the least to the most serious (SlotHealth.Problem).
const (
	ProblemNone       = ""
	ProblemLag        = "lag"        // more WAL unconfirmed than the threshold
	ProblemUnreserved = "unreserved" // past max_slot_wal_keep_size: the WAL it needs may go at the next checkpoint
	ProblemLost       = "lost"       // the WAL it needs is gone: the slot is invalidated
	ProblemMissing    = "missing"    // no such slot (dropped, or never made)
)

// Ways SlotHealth.Lag is measured.
const (
	LagByCommitTimestamp = "commit timestamp" // track_commit_timestamp is on
	LagByLastConfirmed   = "last confirmed"   // the time tote last kept a position, from the lake
	LagUnknown           = "unknown"          // WAL waits, and the lake says nothing of when tote last kept a position
)

// SlotHealth is a replication slot's state, as the server reports it, and
// how far behind the source it is.
type SlotHealth struct {
	Slot   string `json:"slot"`
	Exists bool   `json:"exists"`
	// Active says a process streams the slot now (a tote serve, a run).
	Active bool `json:"active"`
	// WALStatus is pg_replication_slots.wal_status: reserved, extended
	// (both fine), unreserved (past max_slot_wal_keep_size: at risk) or lost.
	WALStatus string `json:"wal_status,omitempty"`
	// SafeWALBytes is how much more WAL the server may write before the
	// slot is at risk of losing what it needs (safe_wal_size); nil when
	// nothing bounds it (max_slot_wal_keep_size = -1, the default): then
	// the WAL the slot holds grows until the disk is full.
	SafeWALBytes *int64 `json:"safe_wal_bytes,omitempty"`
	// CurrentLSN is the source's WAL position now; ConfirmedLSN the slot's
	// confirmed_flush_lsn (everything before it is kept in the lake);
	// RestartLSN the oldest WAL the slot holds.
	CurrentLSN   string `json:"current_lsn,omitempty"`
	ConfirmedLSN string `json:"confirmed_lsn,omitempty"`
	RestartLSN   string `json:"restart_lsn,omitempty"`
	// LagBytes is the WAL written since the confirmed position
	// (current − confirmed_flush_lsn); RetainedBytes the WAL the slot makes
	// the server keep (current − restart_lsn).
	LagBytes      int64 `json:"lag_bytes"`
	RetainedBytes int64 `json:"retained_bytes"`
	// Lag is how long the changes the lake lacks have waited: zero when
	// nothing is unconfirmed, or when (track_commit_timestamp on) nothing
	// has committed since tote last kept a position; otherwise the time
	// since tote last kept one. LagFrom says which measure was used.
	Lag     time.Duration `json:"lag_ns"`
	LagFrom string        `json:"lag_from"`
	// Problem is the most serious of the Problem* conditions; empty when
	// the slot is healthy.
	Problem   string    `json:"problem,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// Err returns ErrNoSlot for a missing slot, ErrSlotInvalidated for a lost
// one, else nil: the caller falls back to a full re-extraction on either.
func (h SlotHealth) Err() error {
	switch {
	case !h.Exists:
		return fmt.Errorf("%s: %w", h.Slot, ErrNoSlot)
	case h.WALStatus == "lost":
		return fmt.Errorf("%s: %w (wal_status lost: the server removed WAL it had not decoded, past max_slot_wal_keep_size)", h.Slot, ErrSlotInvalidated)
	}
	return nil
}

// Describe is the problem in words, for an alert or a status line.
func (h SlotHealth) Describe() string {
	switch h.Problem {
	case ProblemMissing:
		return fmt.Sprintf("replication slot %s does not exist: the next logical extraction makes a new one and reads every table again (a full extraction)", h.Slot)
	case ProblemLost:
		return fmt.Sprintf("replication slot %s is lost: the server removed WAL it had not decoded (max_slot_wal_keep_size); "+
			"the next logical extraction drops it, makes a new one and reads every table again (a full extraction)", h.Slot)
	case ProblemUnreserved:
		return fmt.Sprintf("replication slot %s is past max_slot_wal_keep_size (wal_status unreserved): the WAL it needs may be removed "+
			"at the next checkpoint; %s of WAL unconfirmed", h.Slot, Bytes(h.LagBytes))
	case ProblemLag:
		return fmt.Sprintf("replication slot %s has %s of WAL unconfirmed (%s behind, by %s), holding %s on the source's disk",
			h.Slot, Bytes(h.LagBytes), h.Lag.Round(time.Second), h.LagFrom, Bytes(h.RetainedBytes))
	}
	return fmt.Sprintf("replication slot %s is healthy", h.Slot)
}

// healthSQL reads the slot and where the server's WAL is now (on a
// standby, PostgreSQL 16+, how far it has replayed).
const healthSQL = `
SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
       current_setting('track_commit_timestamp')::bool,
       s.slot_name IS NOT NULL, coalesce(s.active, false), coalesce(s.wal_status, ''), s.safe_wal_size,
       coalesce(s.confirmed_flush_lsn::text, ''), coalesce(s.restart_lsn::text, ''),
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                                s.confirmed_flush_lsn), 0)::bigint,
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                                s.restart_lsn), 0)::bigint
FROM (SELECT 1) AS one
LEFT JOIN pg_replication_slots s ON s.slot_name = $1`

// Health reads the health of cfg's slot from the source db. keptAt is when
// tote last kept a position (the lake's last extraction; zero if unknown);
// lagThreshold, if above zero, is the unconfirmed WAL in bytes beyond
// which the slot counts as lagging. A slot that does not exist is not an
// error: Exists is false (see Err).
func Health(ctx context.Context, db DB, cfg Config, keptAt time.Time, lagThreshold int64) (SlotHealth, error) {
	cfg = cfg.WithDefaults()
	h := SlotHealth{Slot: cfg.SlotName, CheckedAt: time.Now().UTC()}
	var commitTS bool
	err := db.QueryRow(ctx, healthSQL, cfg.SlotName).Scan(&h.CurrentLSN, &commitTS, &h.Exists, &h.Active, &h.WALStatus,
		&h.SafeWALBytes, &h.ConfirmedLSN, &h.RestartLSN, &h.LagBytes, &h.RetainedBytes)
	if err != nil {
		return SlotHealth{}, fmt.Errorf("replication slot %s: read its health: %w", cfg.SlotName, err)
	}
	h.LagBytes, h.RetainedBytes = max(h.LagBytes, 0), max(h.RetainedBytes, 0)

	switch {
	case h.LagBytes == 0 || !h.Exists:
		h.LagFrom = LagByLastConfirmed
	case commitTS:
		h.LagFrom = LagByCommitTimestamp
		var newest *time.Time
		if err := db.QueryRow(ctx, `SELECT (pg_last_committed_xact()).timestamp`).Scan(&newest); err != nil {
			return SlotHealth{}, fmt.Errorf("replication slot %s: read the newest commit's time: %w", cfg.SlotName, err)
		}
		// Nothing committed since tote last kept a position: the WAL
		// ahead holds no change the lake lacks.
		if newest != nil && (keptAt.IsZero() || newest.After(keptAt)) {
			h.Lag = lagSince(keptAt, *newest, h.CheckedAt)
		}
	case keptAt.IsZero():
		h.LagFrom = LagUnknown
	default:
		h.LagFrom = LagByLastConfirmed
		h.Lag = max(h.CheckedAt.Sub(keptAt), 0)
	}

	switch {
	case !h.Exists:
		h.Problem = ProblemMissing
	case h.WALStatus == "lost":
		h.Problem = ProblemLost
	case h.WALStatus == "unreserved":
		h.Problem = ProblemUnreserved
	case lagThreshold > 0 && h.LagBytes > lagThreshold:
		h.Problem = ProblemLag
	}
	return h, nil
}

// lagSince is how long the changes after keptAt have waited, given the
// newest commit: since keptAt if known, else since that commit (a lower
// bound).
func lagSince(keptAt, newest, now time.Time) time.Duration {
	if keptAt.IsZero() {
		return max(now.Sub(newest), 0)
	}
	return max(now.Sub(keptAt), 0)
}

// Confirmer is a stream that can tell the server what is kept (*Conn).
type Confirmer interface {
	// Received is the position up to which the server has sent every
	// transaction (or, on a quiet source, told in a keepalive that it has
	// decoded up to).
	Received() pglogrepl.LSN
	// Confirm tells the server everything up to lsn is kept.
	Confirm(ctx context.Context, lsn pglogrepl.LSN) error
}

// Heartbeat keeps a quiet source's WAL from piling up behind the slot:
// when the stream has nothing left to keep (pending is false: every
// transaction it returned is committed to the lake), it confirms the
// position the server has decoded up to, which on a source whose own
// database is quiet (while others write, or checkpoints run) moves on
// with no transaction for tote at all. Without it the slot's confirmed
// position stays at tote's last transaction, and the server keeps every
// segment since. It returns the position confirmed, or 0 if pending.
func Heartbeat(ctx context.Context, c Confirmer, pending bool) (pglogrepl.LSN, error) {
	if pending {
		return 0, nil
	}
	lsn := c.Received()
	if lsn == 0 {
		return 0, nil
	}
	if err := c.Confirm(ctx, lsn); err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	return lsn, nil
}

// Bytes formats n as a size in bytes, kB, MB or GB (powers of 1024).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"kB", "MB", "GB", "TB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// ParseBytes reads a size such as 512MB, 1GB, 64kB or 1048576 (bytes).
func ParseBytes(s string) (int64, error) {
	var n float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g%s", &n, &unit); err != nil {
		if _, err := fmt.Sscanf(s, "%g", &n); err != nil {
			return 0, fmt.Errorf("size %q: want a number of bytes, or one with kB, MB, GB or TB", s)
		}
	}
	mult := map[string]float64{"": 1, "B": 1, "kB": 1 << 10, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	if mult == 0 || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, or one with kB, MB, GB or TB", s)
	}
	return int64(n * mult), nil
}

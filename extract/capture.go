package extract

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// snapshot is the source snapshot an extraction reads, and where the source
// stood when it was taken.
type snapshot struct {
	text       string    // pg_current_snapshot(), "xmin:xmax:xip,..."
	xmin       uint64    // the snapshot's xmin as a 64-bit xid: the next horizon
	xmax       uint64    // and its xmax: every row it sees was written below it
	ageBase    uint64    // the 64-bit xid that age() counts from in this transaction
	sourceTime time.Time // localtimestamp: the source's clock
	readAt     time.Time // tote's clock right after the snapshot was taken
	lsnBefore  uint64    // the source's WAL position before the snapshot was taken
	source     Source
}

// before is where the source stands before the snapshot is taken.
type before struct {
	standby bool
	lsn     uint64
}

// sourceBefore reads, outside the snapshot's transaction, whether the
// source is a standby and its WAL position: the snapshot taken next is at
// least that new. A primary's position is its insert position, which
// covers every commit record written, even those not yet flushed.
func sourceBefore(ctx context.Context, conn *pgx.Conn) (before, error) {
	var b before
	var lsn string
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&b.standby); err != nil {
		return b, fmt.Errorf("read source role: %w", err)
	}
	q := `SELECT pg_current_wal_insert_lsn()::text`
	if b.standby {
		q = `SELECT coalesce(pg_last_wal_replay_lsn(), '0/0')::text`
	}
	if err := conn.QueryRow(ctx, q).Scan(&lsn); err != nil {
		return b, fmt.Errorf("read source WAL position: %w", err)
	}
	var err error
	if b.lsn, err = parseLSN(lsn); err != nil {
		return b, fmt.Errorf("source WAL position %q: %w", lsn, err)
	}
	return b, nil
}

// snapshotSQL is the transaction's first statement: it fixes the snapshot
// every later statement reads, and age()'s base, which the first call of
// age() in a transaction fixes: '3'::xid is the first normal xid, so
// age('3') tells the base's low 32 bits.
const snapshotSQL = `
SELECT pg_current_snapshot()::text,
       pg_snapshot_xmin(pg_current_snapshot())::text,
       pg_snapshot_xmax(pg_current_snapshot())::text,
       localtimestamp,
       age('3'::xid),
       (SELECT system_identifier::text FROM pg_control_system()),
       current_database()`

const primarySQL = `SELECT pg_current_wal_insert_lsn()::text`

const standbySQL = `
SELECT coalesce(pg_last_wal_replay_lsn(), '0/0')::text, pg_is_wal_replay_paused(),
       pg_last_xact_replay_timestamp(),
       CASE WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
            THEN clock_timestamp() - pg_last_xact_replay_timestamp() END`

// takeSnapshot takes the snapshot in tx, a new REPEATABLE READ transaction,
// and reads where the source stands.
func takeSnapshot(ctx context.Context, tx pgx.Tx, b before) (snapshot, error) {
	s := snapshot{lsnBefore: b.lsn}
	var xminText, xmaxText string
	var age int64
	if err := tx.QueryRow(ctx, snapshotSQL).Scan(&s.text, &xminText, &xmaxText, &s.sourceTime, &age,
		&s.source.SystemID, &s.source.Database); err != nil {
		return s, fmt.Errorf("take snapshot: %w", err)
	}
	s.readAt = time.Now().UTC()
	xmin, err1 := strconv.ParseUint(xminText, 10, 64)
	xmax, err2 := strconv.ParseUint(xmaxText, 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("take snapshot: unexpected snapshot %q", s.text)
	}
	s.xmin, s.xmax = xmin, xmax
	s.ageBase = widen(uint32(3+age), xmax)

	if !b.standby {
		s.source.Role = Primary
		if err := tx.QueryRow(ctx, primarySQL).Scan(&s.source.LSN); err != nil {
			return s, fmt.Errorf("read source WAL position: %w", err)
		}
		return s, nil
	}
	s.source.Role = Standby
	var last *time.Time
	var delay *time.Duration
	if err := tx.QueryRow(ctx, standbySQL).Scan(&s.source.LSN, &s.source.ReplayPaused, &last, &delay); err != nil {
		return s, fmt.Errorf("read standby's replay: %w", err)
	}
	if last != nil {
		s.source.LastReplayed = last.UTC()
	}
	if delay != nil {
		s.source.ReplayDelay = *delay
	}
	return s, nil
}

// widen returns the 64-bit xid whose low 32 bits are x and which is the
// nearest at or after ref, a 64-bit xid known to be at most 2^31 before it.
func widen(x uint32, ref uint64) uint64 {
	return ref + uint64(x-uint32(ref))
}

// widenBelow returns the 64-bit xid whose low 32 bits are x and which is
// the nearest below xmax, a snapshot's: the xid of a row the snapshot sees.
// The special xids (frozen, bootstrap: below 3) are 0, older than any.
func widenBelow(x uint32, xmax uint64) int64 {
	if x < 3 {
		return 0
	}
	return int64(xmax - uint64(uint32(xmax)-x))
}

// snapshotXmin returns the xmin of a pg_snapshot's text, "xmin:xmax:xip,...".
func snapshotXmin(snap string) (uint64, error) {
	xmin, _, ok := strings.Cut(snap, ":")
	if !ok {
		return 0, fmt.Errorf("not a snapshot")
	}
	return strconv.ParseUint(xmin, 10, 64)
}

// parseLSN reads a pg_lsn's text, "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("not a WAL position")
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, err
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, err
	}
	return h<<32 | l, nil
}

// InFlight returns the age(xmin) at or under which a row of the source, read
// in tx, was written by a transaction at or after horizon (a 64-bit xid, a
// state's XidHorizon): the rows a reader of the lake up to that state may
// not hold yet, unless the state lists them as taken; and the 64-bit xid
// that age() counts from (a row's xid is base - age(xmin)). tx must be a
// transaction of its own (age() counts from the transaction's first use of
// it).
func InFlight(ctx context.Context, tx pgx.Tx, horizon uint64) (maxAge int64, base uint64, err error) {
	var xmax string
	var age int64
	if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text, age('3'::xid)`).Scan(&xmax, &age); err != nil {
		return 0, 0, fmt.Errorf("read the source's transaction ids: %w", err)
	}
	ref, err := strconv.ParseUint(xmax, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read the source's transaction ids: %q", xmax)
	}
	base = widen(uint32(3+age), ref)
	switch {
	case horizon > base:
		return 0, 0, fmt.Errorf("the source's transaction ids (next %d) are behind the lake's horizon (%d): is it the lake's source?", base, horizon)
	case base-horizon >= 1<<31-1:
		return 0, 0, fmt.Errorf("the lake's horizon (transaction %d) is more than 2^31 transactions old (next %d)", horizon, base)
	}
	return int64(base - horizon), base, nil
}

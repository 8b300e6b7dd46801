// Package replication talks to a PostgreSQL logical replication slot with
// the pgoutput plugin (through github.com/jackc/pglogrepl over a pgconn
// replication connection, replication=database) and turns the WAL into row
// changes grouped by source transaction.
//
// It owns:
//   - the slot's names: Config{SlotName, Publication}, defaults
//     DefaultSlotName ("tote") and DefaultPublication ("tote"), checked by
//     Config.Validate (lower-case letters, digits and _: the replication
//     protocol cannot quote them);
//   - the connection: Connect opens a replication connection with a normal
//     connection's settings, refuses a server whose wal_level is not
//     logical and a standby older than PostgreSQL 16 (logical decoding on
//     a standby needs 16), and identifies the source (SystemID, Database);
//   - the slot: Slot (its state, or ErrNoSlot / ErrSlotInvalidated when
//     wal_status is lost), CreateSlot (with an exported snapshot: its name
//     and the slot's consistent point, so that the first batch is read in
//     that snapshot and streaming starts where it ends), DropSlot, and
//     PublishedTables (or ErrNoPublication);
//   - streaming: Start (pgoutput, proto_version 1, binary values), then Next
//     returns whole transactions (Tx: xid, commit and end LSN, commit time,
//     Changes: table, Op, the row's values in PostgreSQL's binary format,
//     which columns were unchanged TOAST), CurrentLSN and Reached tell a
//     drain when it is done; another session on the slot is ErrSlotBusy;
//   - confirming: Confirm sends the standby status update for an LSN. The
//     caller calls it only after the batch holding everything up to that LSN
//     is committed (its manifest written): that is what makes capture exactly
//     once, since a crash replays from the slot's confirmed position.
//
// It does not own: what a batch is, the lake, the manifests or the
// extraction state (package extract turns Tx values into raw batches and
// records the LSN reached); the owner's setup (setup.go: publication,
// replica identity, a role with REPLICATION; `tote capture setup` / `drop`)
// and the slot's health (health.go: lag in bytes and seconds, wal_status,
// safe_wal_size, heartbeats), which live in this package but are written
// against the same Config and names.
package replication

import "errors"

// Default names of the slot and the publication tote uses.
const (
	DefaultSlotName    = "tote"
	DefaultPublication = "tote"
)

// Config names the slot and publication a logical capture uses.
type Config struct {
	// SlotName is the logical replication slot (default DefaultSlotName).
	SlotName string
	// Publication is the publication of the totesys tables the slot
	// decodes (default DefaultPublication).
	Publication string
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.SlotName == "" {
		c.SlotName = DefaultSlotName
	}
	if c.Publication == "" {
		c.Publication = DefaultPublication
	}
	return c
}

// ErrNoSlot is returned when the slot does not exist (never created, or
// dropped): the caller falls back to creating it with a full re-extraction.
var ErrNoSlot = errors.New("replication slot does not exist")

// ErrSlotInvalidated is returned when the slot has lost WAL it needs
// (wal_status "lost", e.g. past max_slot_wal_keep_size): the caller drops
// it and falls back to a full re-extraction.
var ErrSlotInvalidated = errors.New("replication slot is invalidated")

package replication

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/terrifictotes/tote"
)

// LSN is a WAL position.
type LSN = pglogrepl.LSN

// ParseLSN reads a WAL position's text, "16/B374D848".
func ParseLSN(s string) (LSN, error) { return pglogrepl.ParseLSN(s) }

// statusInterval is how often a streaming connection tells the server where
// it stands (wal_sender_timeout is 60 s by default).
const statusInterval = 10 * time.Second

var validName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate checks that the names are ones PostgreSQL takes unquoted (the
// replication protocol's commands cannot quote a slot's name).
func (c Config) Validate() error {
	c = c.WithDefaults()
	if !validName.MatchString(c.SlotName) {
		return fmt.Errorf("replication slot name %q: use lower-case letters, digits and _ (at most 63)", c.SlotName)
	}
	if !validName.MatchString(c.Publication) {
		return fmt.Errorf("publication name %q: use lower-case letters, digits and _ (at most 63)", c.Publication)
	}
	return nil
}

// Op is what a change did to a row.
type Op byte

// The operations pgoutput reports.
const (
	Insert   Op = 'I'
	Update   Op = 'U'
	Delete   Op = 'D'
	Truncate Op = 'T'
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	}
	return fmt.Sprintf("op %q", byte(o))
}

// Change is one row change of a transaction.
type Change struct {
	// Table is the table's name (its schema is not kept: tote reads one).
	Table string
	Op    Op
	// Columns names the table's columns in the order of Values.
	Columns []string
	// Values are the row's values in PostgreSQL's binary format (as a
	// binary COPY or query result has them), nil for NULL: the new row for
	// Insert and Update, the old row's key for Delete (the other columns
	// NULL).
	Values [][]byte
	// Unchanged marks the values the server did not send because they are
	// stored out of line (TOAST) and the update left them unchanged: their
	// Values are nil, and are not NULL. Nil when there are none.
	Unchanged []bool
	// Tables, for Truncate, lists every table the statement emptied (Table
	// is the first).
	Tables []string
}

// Value returns the value of column name, and whether the change has it.
func (c Change) Value(name string) ([]byte, bool) {
	for i, n := range c.Columns {
		if n == name {
			return c.Values[i], true
		}
	}
	return nil, false
}

// Tx is one committed source transaction's changes to the published tables.
type Tx struct {
	Xid        uint32 // the transaction's id, 32 bits as pgoutput sends it
	CommitLSN  LSN    // where its commit record is
	EndLSN     LSN    // where the commit record ends: confirm this once the transaction is kept
	CommitTime time.Time
	Changes    []Change
}

// Slot describes the replication slot, as pg_replication_slots has it.
type Slot struct {
	Name         string
	Plugin       string
	Database     string
	ConfirmedLSN LSN    // confirmed_flush_lsn: streaming resumes after it
	WALStatus    string // reserved, extended, unreserved, lost
}

// Conn is a replication connection (replication=database) to the source.
// It is not safe for concurrent use.
type Conn struct {
	conn *pgconn.PgConn
	cfg  Config
	// SystemID and Database identify the source (IDENTIFY_SYSTEM).
	SystemID string
	Database string

	streaming  bool
	rels       map[uint32]*pglogrepl.RelationMessage
	tx         *Tx // the transaction being received
	received   LSN // every transaction that committed before this has been received
	confirmed  LSN // the position last confirmed
	lastStatus time.Time
}

// Connect opens a replication connection with the settings of source (a
// normal connection's config: it is copied), checks that the server can
// decode logical replication, and identifies it.
func Connect(ctx context.Context, source *pgconn.Config, cfg Config) (*Conn, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc := source.Copy()
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open a replication connection: %w", err)
	}
	c := &Conn{conn: conn, cfg: cfg, rels: map[uint32]*pglogrepl.RelationMessage{}}
	if err := c.check(ctx); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Conn) Close(ctx context.Context) error { return c.conn.Close(ctx) }

// Config returns the names the connection uses.
func (c *Conn) Config() Config { return c.cfg }

// check refuses a server that cannot decode: wal_level below logical, or
// a standby older than PostgreSQL 16.
func (c *Conn) check(ctx context.Context) error {
	rows, err := c.query(ctx, `SELECT current_setting('wal_level'), current_setting('server_version_num'), pg_is_in_recovery()::text`)
	if err != nil {
		return fmt.Errorf("read the source's settings: %w", err)
	}
	level, version, recovery := rows[0][0], rows[0][1], rows[0][2]
	v, _ := strconv.Atoi(version)
	if recovery == "true" && v < 160000 {
		return fmt.Errorf("the source is a standby: logical decoding on a standby needs PostgreSQL 16 or later; this server is %d "+
			"(capture from the primary, or use --capture xmin, which reads a standby)", v/10000)
	}
	if level != "logical" {
		return fmt.Errorf("the source's wal_level is %s: logical capture needs wal_level = logical (a restart of the server; see tote capture setup)", level)
	}
	id, err := pglogrepl.IdentifySystem(ctx, c.conn)
	if err != nil {
		return fmt.Errorf("identify the source: %w", err)
	}
	c.SystemID, c.Database = id.SystemID, id.DBName
	return nil
}

// query runs one SQL statement of ours on the replication connection
// (simple protocol: no parameters) and returns its rows as text.
func (c *Conn) query(ctx context.Context, sql string) ([][]string, error) {
	res, err := c.conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range res {
		for _, row := range r.Rows {
			vals := make([]string, len(row))
			for i, v := range row {
				vals[i] = string(v)
			}
			out = append(out, vals)
		}
	}
	return out, nil
}

// quote makes s a string literal (names are checked by Validate; this is
// belt and braces).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Slot returns the slot's state, or ErrNoSlot, or ErrSlotInvalidated (with
// the slot) when it has lost WAL it needs.
func (c *Conn) Slot(ctx context.Context) (Slot, error) {
	rows, err := c.query(ctx, `SELECT slot_name, coalesce(plugin, ''), coalesce(database, ''),
coalesce(confirmed_flush_lsn::text, '0/0'), coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = `+quote(c.cfg.SlotName))
	if err != nil {
		return Slot{}, fmt.Errorf("read replication slot %s: %w", c.cfg.SlotName, err)
	}
	if len(rows) == 0 {
		return Slot{}, fmt.Errorf("%s: %w", c.cfg.SlotName, ErrNoSlot)
	}
	r := rows[0]
	s := Slot{Name: r[0], Plugin: r[1], Database: r[2], WALStatus: r[4]}
	if s.ConfirmedLSN, err = pglogrepl.ParseLSN(r[3]); err != nil {
		return Slot{}, fmt.Errorf("replication slot %s: confirmed position %q: %w", s.Name, r[3], err)
	}
	switch {
	case s.Plugin != "pgoutput":
		return s, fmt.Errorf("replication slot %s uses plugin %q, not pgoutput: not tote's; give another name (--slot) or drop it", s.Name, s.Plugin)
	case s.Database != c.Database:
		return s, fmt.Errorf("replication slot %s decodes database %q, not %q: give another name (--slot)", s.Name, s.Database, c.Database)
	case s.WALStatus == "lost":
		return s, fmt.Errorf("%s: %w (wal_status lost: the server removed WAL it had not decoded, past max_slot_wal_keep_size)", s.Name, ErrSlotInvalidated)
	}
	return s, nil
}

// CreateSlot creates the slot with an exported snapshot. It returns the
// snapshot's name, which a transaction on another connection imports (SET
// TRANSACTION SNAPSHOT) to read the source as of the slot's consistent
// point, and that point: streaming from it delivers exactly the
// transactions the snapshot does not see. The snapshot lasts until the
// next command on c (Start).
func (c *Conn) CreateSlot(ctx context.Context) (snapshot string, consistent LSN, err error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, c.conn, c.cfg.SlotName, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return "", 0, fmt.Errorf("create replication slot %s: %w", c.cfg.SlotName, err)
	}
	if consistent, err = pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
		return "", 0, fmt.Errorf("create replication slot %s: consistent point %q: %w", c.cfg.SlotName, res.ConsistentPoint, err)
	}
	return res.SnapshotName, consistent, nil
}

// DropSlot drops the slot, if it exists (waiting for another session
// that streams from it to end).
func (c *Conn) DropSlot(ctx context.Context) error {
	err := pglogrepl.DropReplicationSlot(ctx, c.conn, c.cfg.SlotName, pglogrepl.DropReplicationSlotOptions{Wait: true})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42704" { // undefined_object
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop replication slot %s: %w", c.cfg.SlotName, err)
	}
	return nil
}

// CurrentLSN returns the server's current WAL write position
// (pg_current_wal_lsn): every transaction whose commit has been written
// ends at or before it; that is every committed one, but for asynchronous
// commits (synchronous_commit off) the WAL writer has not written yet. See
// Reached.
func (c *Conn) CurrentLSN(ctx context.Context) (LSN, error) {
	rows, err := c.query(ctx, `SELECT pg_current_wal_lsn()::text`)
	if err != nil {
		return 0, fmt.Errorf("read the source's WAL position: %w", err)
	}
	return pglogrepl.ParseLSN(rows[0][0])
}

// Start starts streaming the slot's changes from after position from (the
// server starts at the slot's confirmed position if that is later), in
// pgoutput's binary format.
func (c *Conn) Start(ctx context.Context, from LSN) error {
	err := pglogrepl.StartReplication(ctx, c.conn, c.cfg.SlotName, from, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quote(c.cfg.Publication),
			"binary 'true'"},
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55006" { // object_in_use: another session streams from it
		return fmt.Errorf("start streaming from replication slot %s: %w (%s)", c.cfg.SlotName, ErrSlotBusy, pe.Message)
	}
	if err != nil {
		return fmt.Errorf("start streaming from replication slot %s: %w", c.cfg.SlotName, err)
	}
	c.streaming, c.received, c.confirmed, c.lastStatus = true, from, from, time.Now()
	return nil
}

// Reached reports whether every transaction that ends at or before lsn (a
// CurrentLSN) has been returned by Next. An insert position just past a
// page boundary (after the page's header) is reached at the boundary,
// where the last record ended.
func (c *Conn) Reached(lsn LSN) bool {
	const page, maxHeader = 8192, 40 // XLOG_BLCKSZ and the long page header's size
	if off := uint64(lsn) % page; off <= maxHeader {
		lsn -= LSN(off)
	}
	return c.received >= lsn
}

// Received returns the position up to which every committed transaction
// has been returned by Next (when no transaction is being received).
func (c *Conn) Received() LSN { return c.received }

// Confirm tells the server that everything up to lsn is kept, so that the
// slot may release the WAL before it. Call it only once what Next returned
// up to lsn is committed in the lake: a crash before that replays it.
func (c *Conn) Confirm(ctx context.Context, lsn LSN) error {
	if lsn > c.confirmed {
		c.confirmed = lsn
	}
	return c.sendStatus(ctx, false)
}

func (c *Conn) sendStatus(ctx context.Context, reply bool) error {
	c.lastStatus = time.Now()
	err := pglogrepl.SendStandbyStatusUpdate(ctx, c.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: max(c.received, c.confirmed), WALFlushPosition: max(c.confirmed, 1),
		WALApplyPosition: max(c.confirmed, 1), ReplyRequested: reply})
	if err != nil {
		return fmt.Errorf("send status to replication slot %s: %w", c.cfg.SlotName, err)
	}
	return nil
}

// Next returns the next transaction to commit on the source, or nil when
// none has come within wait (then Received says how far the server has
// decoded). A transaction whose end is at or before the position Start was
// given is not returned.
func (c *Conn) Next(ctx context.Context, wait time.Duration) (*Tx, error) {
	if !c.streaming {
		return nil, errors.New("replication: Next before Start")
	}
	deadline := time.Now().Add(wait)
	asked := false
	for {
		if time.Since(c.lastStatus) >= statusInterval {
			if err := c.sendStatus(ctx, false); err != nil {
				return nil, err
			}
		}
		// A transaction being received is received whole, whatever wait.
		until := c.lastStatus.Add(statusInterval)
		if c.tx == nil {
			until = earliest(until, deadline)
			if !asked {
				// Ask the server where it stands, so that a quiet source
				// still tells how far it has decoded.
				asked = true
				if err := c.sendStatus(ctx, true); err != nil {
					return nil, err
				}
			}
		}
		rctx, cancel := context.WithDeadline(ctx, until)
		msg, err := c.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if pgconn.Timeout(err) {
				if !time.Now().Before(deadline) && c.tx == nil {
					return nil, nil
				}
				continue
			}
			return nil, fmt.Errorf("stream from replication slot %s: %w", c.cfg.SlotName, err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return nil, fmt.Errorf("stream from replication slot %s: %w", c.cfg.SlotName, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			tx, err := c.handle(ctx, m.Data)
			if err != nil {
				return nil, err
			}
			if tx != nil {
				return tx, nil
			}
		default:
			return nil, fmt.Errorf("stream from replication slot %s: unexpected message %T", c.cfg.SlotName, msg)
		}
		if !time.Now().Before(deadline) && c.tx == nil {
			return nil, nil
		}
	}
}

// handle takes one CopyData message; it returns a transaction when one
// has been received whole.
func (c *Conn) handle(ctx context.Context, data []byte) (*Tx, error) {
	if len(data) == 0 {
		return nil, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return nil, fmt.Errorf("replication keepalive: %w", err)
		}
		if c.tx == nil && k.ServerWALEnd > c.received {
			c.received = k.ServerWALEnd
		}
		if k.ReplyRequested {
			return nil, c.sendStatus(ctx, false)
		}
		return nil, nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return nil, fmt.Errorf("replication data: %w", err)
		}
		return c.decode(x.WALData)
	}
	return nil, nil
}

// decode takes one pgoutput message.
func (c *Conn) decode(data []byte) (*Tx, error) {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("decode pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		c.rels[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		c.tx = &Tx{Xid: m.Xid, CommitLSN: m.FinalLSN, CommitTime: m.CommitTime}
	case *pglogrepl.CommitMessage:
		tx := c.tx
		c.tx = nil
		if tx == nil {
			return nil, fmt.Errorf("pgoutput: a commit at %s without its begin", m.CommitLSN)
		}
		tx.CommitLSN, tx.EndLSN, tx.CommitTime = m.CommitLSN, m.TransactionEndLSN, m.CommitTime
		if tx.EndLSN > c.received {
			c.received = tx.EndLSN
		}
		return tx, nil
	case *pglogrepl.InsertMessage:
		return nil, c.add(m.RelationID, Insert, m.Tuple)
	case *pglogrepl.UpdateMessage:
		if m.OldTuple != nil {
			// The key changed (or the replica identity is FULL): the old
			// row is gone, then the new one is written.
			if err := c.add(m.RelationID, Delete, m.OldTuple); err != nil {
				return nil, err
			}
		}
		return nil, c.add(m.RelationID, Update, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return nil, c.add(m.RelationID, Delete, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		if c.tx == nil {
			return nil, errors.New("pgoutput: a truncate outside a transaction")
		}
		ch := Change{Op: Truncate}
		for _, id := range m.RelationIDs {
			rel, ok := c.rels[id]
			if !ok {
				return nil, fmt.Errorf("pgoutput: truncate of relation %d, which was never described", id)
			}
			ch.Tables = append(ch.Tables, rel.RelationName)
		}
		if len(ch.Tables) > 0 {
			ch.Table = ch.Tables[0]
		}
		c.tx.Changes = append(c.tx.Changes, ch)
	}
	return nil, nil
}

// add appends a row change to the transaction being received, its values
// copied (the message's buffer is reused).
func (c *Conn) add(relID uint32, op Op, tuple *pglogrepl.TupleData) error {
	if c.tx == nil {
		return fmt.Errorf("pgoutput: a %s outside a transaction", op)
	}
	rel, ok := c.rels[relID]
	if !ok {
		return fmt.Errorf("pgoutput: a %s in relation %d, which was never described", op, relID)
	}
	if tuple == nil {
		return fmt.Errorf("pgoutput: a %s in %s without its row", op, rel.RelationName)
	}
	if len(tuple.Columns) != len(rel.Columns) {
		return fmt.Errorf("pgoutput: a %s in %s with %d values for %d columns", op, rel.RelationName, len(tuple.Columns), len(rel.Columns))
	}
	ch := Change{Table: rel.RelationName, Op: op, Columns: make([]string, len(rel.Columns)), Values: make([][]byte, len(rel.Columns))}
	for i, col := range rel.Columns {
		ch.Columns[i] = col.Name
		v := tuple.Columns[i]
		switch v.DataType {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			if ch.Unchanged == nil {
				ch.Unchanged = make([]bool, len(rel.Columns))
			}
			ch.Unchanged[i] = true
		case pglogrepl.TupleDataTypeBinary:
			ch.Values[i] = append(make([]byte, 0, len(v.Data)), v.Data...)
		default:
			return fmt.Errorf("pgoutput: %s.%s sent as %q, not binary", rel.RelationName, col.Name, v.DataType)
		}
	}
	c.tx.Changes = append(c.tx.Changes, ch)
	return nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ErrSlotBusy is returned when another session streams from the slot
// (another extraction): tote.Busy, the next run carries on.
var ErrSlotBusy = tote.Sentinel(tote.Busy, "another session is streaming from the replication slot")

// ErrNoPublication is returned when the publication does not exist.
var ErrNoPublication = errors.New("publication does not exist")

// PublishedTables returns the names of the tables the publication
// publishes (pg_publication_tables), or ErrNoPublication.
func (c *Conn) PublishedTables(ctx context.Context) ([]string, error) {
	rows, err := c.query(ctx, `SELECT (SELECT count(*) FROM pg_publication WHERE pubname = `+quote(c.cfg.Publication)+`)::text, coalesce(
  (SELECT string_agg(tablename::text, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = `+quote(c.cfg.Publication)+`), '')`)
	if err != nil {
		return nil, fmt.Errorf("read publication %s: %w", c.cfg.Publication, err)
	}
	if rows[0][0] == "0" {
		return nil, fmt.Errorf("%s: %w (create it: tote capture setup)", c.cfg.Publication, ErrNoPublication)
	}
	if rows[0][1] == "" {
		return nil, nil
	}
	return strings.Split(rows[0][1], ","), nil
}

package replication_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/replication"
)

// busyDatabase makes another database on c for writing WAL the slot has
// nothing to decode of.
func busyDatabase(t *testing.T, c *pgcluster.Cluster) *pgxpool.Pool {
	t.Helper()
	u, err := postgres.CreateDatabase(context.Background(), c.URL(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t, u)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE filler (id bigint, pad text)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// writeWAL writes about mb megabytes of WAL in db, then checkpoints (which
// also logs the running transactions, which lets a slot move on).
func writeWAL(t *testing.T, db *pgxpool.Pool, mb int) {
	t.Helper()
	sql := fmt.Sprintf(`INSERT INTO filler SELECT g, repeat('x', 900) FROM generate_series(1, %d) g; CHECKPOINT`, mb*1200)
	if _, err := db.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func health(t *testing.T, pool *pgxpool.Pool, keptAt time.Time, threshold int64) replication.SlotHealth {
	t.Helper()
	h, err := replication.Health(context.Background(), pool, replication.Config{}, keptAt, threshold)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := logicalSource(t, pgcluster.Options{})
	busy := busyDatabase(t, c)

	h := health(t, pool, time.Time{}, 0)
	if h.Exists || h.Problem != replication.ProblemMissing || !errors.Is(h.Err(), replication.ErrNoSlot) ||
		!strings.Contains(h.Describe(), "does not exist") {
		t.Fatalf("no slot: %+v %v", h, h.Err())
	}

	if _, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	h = health(t, pool, time.Time{}, 0)
	if !h.Exists || h.Active || h.WALStatus != "reserved" || h.SafeWALBytes != nil || h.Problem != "" || h.Err() != nil || h.LagBytes != 0 {
		t.Fatalf("new slot: %+v", h)
	}

	writeWAL(t, busy, 2)
	keptAt := time.Now().Add(-time.Minute)
	h = health(t, pool, keptAt, 0)
	if h.LagBytes < 2_000_000 || h.RetainedBytes < h.LagBytes || h.LagFrom != replication.LagByLastConfirmed || h.Lag < time.Minute || h.Problem != "" {
		t.Errorf("after 2 MB of WAL: %+v", h)
	}
	if h = health(t, pool, keptAt, 1<<20); h.Problem != replication.ProblemLag || !strings.Contains(h.Describe(), "of WAL unconfirmed") {
		t.Errorf("over a 1 MB threshold: %+v (%s)", h, h.Describe())
	}
	if h = health(t, pool, time.Time{}, 0); h.LagFrom != replication.LagUnknown || h.Lag != 0 {
		t.Errorf("kept when, unknown: %+v", h)
	}
}

func TestHealthWithCommitTimestamps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := logicalSource(t, pgcluster.Options{Settings: map[string]string{"track_commit_timestamp": "on"}})
	busy := busyDatabase(t, c)
	if _, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	writeWAL(t, busy, 1)
	// Everything committed before tote last kept a position: the WAL
	// ahead holds nothing the lake lacks.
	h := health(t, pool, time.Now().Add(time.Second), 0)
	if h.LagFrom != replication.LagByCommitTimestamp || h.LagBytes == 0 || h.Lag != 0 {
		t.Errorf("nothing committed since kept: %+v", h)
	}
	// A commit since: lagging since tote last kept a position.
	h = health(t, pool, time.Now().Add(-time.Hour), 0)
	if h.LagFrom != replication.LagByCommitTimestamp || h.Lag < time.Hour {
		t.Errorf("a commit since kept: %+v", h)
	}
}

func TestHealthSeesALostSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := logicalSource(t, pgcluster.Options{Settings: map[string]string{"max_slot_wal_keep_size": "1MB"}})
	busy := busyDatabase(t, c)
	if _, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	h := health(t, pool, time.Time{}, 0)
	if h.SafeWALBytes == nil || *h.SafeWALBytes <= 0 || h.WALStatus != "reserved" {
		t.Fatalf("bounded slot: %+v", h)
	}
	if s, err := replication.Plan(ctx, pool, replication.Config{}, replication.SetupOptions{}); err != nil ||
		!slices.Contains(s.InPlace, "max_slot_wal_keep_size = 1MB: a slot left behind is lost rather than fill the disk") {
		t.Errorf("setup on a bounded server: %v %q", err, s.InPlace)
	}
	seen := []string{h.WALStatus}
	for i := 0; i < 20 && h.WALStatus != "lost"; i++ {
		writeWAL(t, busy, 8)
		if _, err := busy.Exec(ctx, `SELECT pg_switch_wal(); CHECKPOINT`); err != nil {
			t.Fatal(err)
		}
		h = health(t, pool, time.Time{}, 0)
		seen = append(seen, h.WALStatus)
	}
	t.Logf("wal_status went %s", strings.Join(seen, ", "))
	if h.WALStatus != "lost" || h.Problem != replication.ProblemLost || !errors.Is(h.Err(), replication.ErrSlotInvalidated) ||
		!strings.Contains(h.Describe(), "full extraction") {
		t.Fatalf("after writing past max_slot_wal_keep_size: %+v, %v", h, h.Err())
	}
}

// stream is a bare pgoutput stream over pglogrepl, standing in for the
// streaming side: it receives, and remembers the position the server's
// keepalives report it has decoded up to.
type stream struct {
	conn     *pgconn.PgConn
	received pglogrepl.LSN
}

func (s *stream) Received() pglogrepl.LSN { return s.received }

func (s *stream) Confirm(ctx context.Context, lsn pglogrepl.LSN) error {
	return pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn})
}

// receive reads what the server sends for a while.
func (s *stream) receive(t *testing.T, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		msg, err := s.conn.ReceiveMessage(ctx)
		cancel()
		if pgconn.Timeout(err) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 {
			t.Fatalf("unexpected message %T", msg)
		}
		switch cd.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			s.received = max(s.received, k.ServerWALEnd)
		case pglogrepl.XLogDataByteID:
			t.Fatal("the quiet database sent a change")
		}
	}
}

func TestHeartbeatReleasesAQuietSourcesWAL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := logicalSource(t, pgcluster.Options{})
	busy := busyDatabase(t, c)
	s, err := replication.Plan(ctx, pool, replication.Config{}, replication.SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := replication.Apply(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	start := health(t, pool, time.Time{}, 0)

	// Another database writes; the slot's own is quiet. Streaming alone
	// (no heartbeat) keeps every byte of it.
	cfg, err := pgconn.ParseConfig(c.DatabaseURL("totesys") + "&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := pglogrepl.StartReplication(ctx, conn, "tote", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'tote'"}}); err != nil {
		t.Fatal(err)
	}
	st := &stream{conn: conn}
	writeWAL(t, busy, 4)
	st.receive(t, time.Second)
	before := health(t, pool, time.Time{}, 0)
	if before.RestartLSN != start.RestartLSN || before.ConfirmedLSN != start.ConfirmedLSN || before.RetainedBytes < 4_000_000 {
		t.Fatalf("without a heartbeat the slot moved, or kept little: %+v, then %+v", start, before)
	}

	// Pending: nothing is confirmed.
	if lsn, err := replication.Heartbeat(ctx, st, true); err != nil || lsn != 0 {
		t.Fatalf("pending heartbeat: %s, %v", lsn, err)
	}
	// Heartbeats while the other database goes on writing: the slot lets go.
	after := before
	for i := 0; i < 30 && after.RestartLSN == start.RestartLSN; i++ {
		if _, err := replication.Heartbeat(ctx, st, false); err != nil {
			t.Fatal(err)
		}
		writeWAL(t, busy, 1)
		st.receive(t, 500*time.Millisecond)
		after = health(t, pool, time.Time{}, 0)
	}
	if after.RestartLSN == start.RestartLSN || after.RetainedBytes >= before.RetainedBytes {
		t.Fatalf("after heartbeats the slot still holds its WAL: before %+v, after %+v", before, after)
	}
	t.Logf("WAL the slot holds: %s before heartbeats, %s after (%.2f×); unconfirmed %s then %s",
		replication.Bytes(before.RetainedBytes), replication.Bytes(after.RetainedBytes),
		float64(after.RetainedBytes)/float64(before.RetainedBytes), replication.Bytes(before.LagBytes), replication.Bytes(after.LagBytes))
}

func TestBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		n    int64
		text string
	}{{"512", 512, "512 bytes"}, {"64kB", 64 << 10, "64.0 kB"}, {"1.5MB", 3 << 19, "1.5 MB"}, {"1GB", 1 << 30, "1.0 GB"}} {
		n, err := replication.ParseBytes(c.s)
		if err != nil || n != c.n || replication.Bytes(n) != c.text {
			t.Errorf("%s: %d %q %v", c.s, n, replication.Bytes(n), err)
		}
	}
	for _, bad := range []string{"", "many", "1XB", "-1MB"} {
		if _, err := replication.ParseBytes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

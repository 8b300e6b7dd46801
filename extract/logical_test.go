package extract_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
)

// logicalSettings are a throwaway server's settings for logical capture,
// with synchronous commits as PostgreSQL's default has them: a drain
// takes what was written when it started (an asynchronous commit may come
// in the next one).
var logicalSettings = map[string]string{"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10",
	"synchronous_commit": "on"}

// logicalSource is a seeded database of its own on c, with a publication
// "tote" of every totesys table; it returns a pool and the database's URL.
func logicalSource(t *testing.T, c *pgcluster.Cluster, template string) (*pgxpool.Pool, string) {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(t.Name()))
	name = name[max(0, len(name)-50):]
	pool := pgtest.Pool(t, c.URL())
	execSQL(t, pool, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template))
	url := c.DatabaseURL(name)
	src := pgtest.Pool(t, url)
	execSQL(t, src, `CREATE PUBLICATION tote FOR TABLE `+strings.Join(totesys.TableNames(), ", "))
	return src, url
}

// logicalCluster starts a server for logical capture with a seeded
// template database, "seeded".
func logicalCluster(t *testing.T, settings map[string]string) *pgcluster.Cluster {
	t.Helper()
	ctx := context.Background()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: settings})
	url, err := postgres.CreateDatabase(ctx, c.URL(), "seeded")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Generate(ctx, pool, seed.Options{Scale: 1, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return c
}

// logical runs a logical extraction with slot slot.
func logical(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake, slot string, accept ...string) extract.Result {
	t.Helper()
	res, err := logicalErr(pool, lk, slot, accept...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logical extract: batch %q rows=%d deleted=%d full=%v lsn=%s", res.Batch, res.Rows(), res.Deleted(), res.Full, res.LSN)
	return res
}

func logicalErr(pool *pgxpool.Pool, lk *lake.Lake, slot string, accept ...string) (extract.Result, error) {
	return extract.Run(context.Background(), pool, lk, extract.Options{Capture: extract.CaptureLogical,
		Replication: replication.Config{SlotName: slot}, AcceptDeletes: accept})
}

// lakeRows renders the rows the lake holds live after its last batch, by
// table and id: each row's last version, less the rows tombstoned since.
func lakeRows(t *testing.T, lk *lake.Lake) map[string]map[int32]string {
	t.Helper()
	ctx := context.Background()
	batches, err := lk.Batches(ctx, lake.Raw)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]string{}
	for _, tb := range totesys.Tables {
		out[tb.Name] = map[int32]string{}
	}
	for _, m := range batches {
		for _, f := range m.Files {
			if totesys.ExtractionFile(f.Table) {
				continue
			}
			tb, _ := totesys.Lookup(f.Table)
			rows, _ := laketest.ReadFile(t, lk, m, f)
			for _, r := range rows {
				vals := make([]string, len(tb.Columns))
				for i, c := range tb.Columns {
					vals[i] = render(c, r[c.Name])
				}
				out[f.Table][r[tb.Key()].Int32()] = strings.Join(vals, "|")
			}
		}
		tombs, err := extract.ReadTombstones(ctx, lk, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, tomb := range tombs {
			delete(out[tomb.Table], tomb.ID)
		}
	}
	return out
}

// equalsSource checks that the rows the lake holds live are the source's,
// value for value (the source read by a full extraction into a lake of its
// own), and that its sets of live ids are the source's.
func equalsSource(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake) {
	t.Helper()
	fresh := laketest.Mem(t)
	run(t, pool, fresh)
	want, got := lakeRows(t, fresh), lakeRows(t, lk)
	for _, tb := range totesys.Tables {
		w, g := want[tb.Name], got[tb.Name]
		bad := 0
		for id, v := range w {
			if g[id] != v {
				if bad < 3 {
					t.Errorf("%s %d: lake %q, source %q", tb.Name, id, g[id], v)
				}
				bad++
			}
		}
		for id := range g {
			if _, ok := w[id]; !ok {
				if bad < 3 {
					t.Errorf("%s %d: in the lake, not in the source", tb.Name, id)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d rows differ (%d in the source, %d in the lake)", tb.Name, bad, len(w), len(g))
		}
	}
	liveMatchesSource(t, pool, lk)
}

// writer runs the simulation (with deletions) until stopped.
func writer(t *testing.T, pool *pgxpool.Pool, seed uint64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := simulate.Run(ctx, pool, simulate.Options{Rate: 300, Seed: seed, Deletions: 0.05})
		if err != nil && ctx.Err() == nil {
			t.Errorf("writer: %v", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

func slotExists(t *testing.T, pool *pgxpool.Pool, slot string) bool {
	t.Helper()
	return queryInt(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot) == 1
}

func TestLogicalCapture(t *testing.T) {
	t.Parallel()
	c := logicalCluster(t, logicalSettings)

	// A lake xmin extractions wrote switches to logical capture under a
	// concurrent writer, and back, and again: equal to the source after
	// each, every version once.
	t.Run("switch modes under a writer", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk := laketest.Mem(t)
		const slot = "tote_switch"
		run(t, pool, lk)
		stop := writer(t, pool, 1)
		time.Sleep(300 * time.Millisecond)
		run(t, pool, lk) // xmin, under the writer
		res := logical(t, pool, lk, slot)
		if !res.Full || res.Capture != extract.CaptureLogical {
			t.Errorf("the handoff: full=%v capture=%q, want a full batch of logical capture", res.Full, res.Capture)
		}
		for range 3 {
			time.Sleep(300 * time.Millisecond)
			logical(t, pool, lk, slot)
		}
		stop()
		res = logical(t, pool, lk, slot)
		if res.Full {
			t.Error("a drain after the handoff read a full batch")
		}
		equalsSource(t, pool, lk)

		// Back to xmin: a full batch in its own snapshot, then incremental.
		stop = writer(t, pool, 2)
		time.Sleep(300 * time.Millisecond)
		if res := run(t, pool, lk); !res.Full {
			t.Error("the first xmin extraction after logical ones was not full")
		}
		time.Sleep(300 * time.Millisecond)
		if res := run(t, pool, lk); res.Full {
			t.Error("the second xmin extraction was full")
		}
		// And to logical again: the old slot is replaced by a new handoff.
		if res := logical(t, pool, lk, slot); !res.Full {
			t.Error("logical after xmin: no handoff")
		}
		time.Sleep(300 * time.Millisecond)
		stop()
		logical(t, pool, lk, slot)
		equalsSource(t, pool, lk)
	})

	// A lake of the release before deletions (no sets of live ids) switches
	// too: the handoff's full batch builds the sets.
	t.Run("a lake of an earlier release", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk, dir := laketest.File(t)
		const slot = "tote_old"
		run(t, pool, lk)
		execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 1`)
		run(t, pool, lk)
		fixture.LakeBeforeDeletions(t, dir)
		if res := logical(t, pool, lk, slot); !res.Full {
			t.Error("no handoff")
		}
		execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 2; DELETE FROM payment WHERE payment_id = 10`)
		logical(t, pool, lk, slot)
		equalsSource(t, pool, lk)
	})

	// A new lake, logical from the start, under a writer: every version
	// the source holds is in the lake once, and nothing else.
	t.Run("exactly once from a new lake", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk := laketest.Mem(t)
		const slot = "tote_new"
		stop := writer(t, pool, 3)
		time.Sleep(200 * time.Millisecond)
		logical(t, pool, lk, slot)
		for range 3 {
			time.Sleep(300 * time.Millisecond)
			logical(t, pool, lk, slot)
		}
		stop()
		logical(t, pool, lk, slot)
		if res := logical(t, pool, lk, slot); res.Committed {
			t.Errorf("a drain with nothing new committed batch %s", res.Batch)
		}
		exactlyOnce(t, pool, lk, allVersions(t, lk))
		equalsSource(t, pool, lk)
	})

	t.Run("deletes and truncate held then accepted", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk := laketest.Mem(t)
		const slot = "tote_del"
		logical(t, pool, lk, slot)
		execSQL(t, pool, `DELETE FROM payment WHERE payment_id IN (5, 6)`)
		execSQL(t, pool, `INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Brief', '/tmp', 'brief.json', now())`)
		execSQL(t, pool, `DELETE FROM design WHERE design_name = 'Brief'`) // inserted and deleted: no trace
		res := logical(t, pool, lk, slot)
		m := latest(t, lk)
		got := tombstones(t, lk, m, time.Time{})
		if !slices.Equal(got["payment"], []int64{5, 6}) || len(got) != 1 || res.Deleted() != 2 {
			t.Errorf("tombstones %v, deleted %d; want payments 5 and 6", got, res.Deleted())
		}
		equalsSource(t, pool, lk)

		// A changed key: the old id is deleted, the new one written.
		execSQL(t, pool, `INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Keyed', '/tmp', 'k.json', now())`)
		logical(t, pool, lk, slot)
		execSQL(t, pool, `UPDATE design SET design_id = design_id + 100000, last_updated = now() WHERE design_name = 'Keyed'`)
		logical(t, pool, lk, slot)
		equalsSource(t, pool, lk)

		// Another session streaming from the slot: Busy, nothing committed.
		rc, err := replication.Connect(context.Background(), &pool.Config().ConnConfig.Config, replication.Config{SlotName: slot})
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Start(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		_, err = logicalErr(pool, lk, slot)
		if !errors.Is(err, replication.ErrSlotBusy) || tote.KindOf(err) != tote.Busy {
			t.Errorf("err = %v (kind %v), want ErrSlotBusy, Busy", err, tote.KindOf(err))
		}
		_ = rc.Close(context.Background())
		for deadline := time.Now().Add(30 * time.Second); queryInt(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot) > 0; {
			if time.Now().After(deadline) {
				t.Fatal("the other session's slot stays active")
			}
			time.Sleep(20 * time.Millisecond)
		}

		m = latest(t, lk)
		payments := sourceIDs(t, pool, "payment").GetCardinality()
		execSQL(t, pool, `TRUNCATE payment`)
		execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 1`)
		for range 2 {
			_, err := logicalErr(pool, lk, slot)
			var held *extract.MassDeletionError
			if !errors.As(err, &held) {
				t.Fatalf("err = %v, want a MassDeletionError", err)
			}
			if len(held.Tables) != 1 || held.Tables[0] != (extract.HeldDeletion{Table: "payment", Deleted: int64(payments), Live: int64(payments)}) {
				t.Errorf("held %+v", held.Tables)
			}
			if !strings.Contains(err.Error(), "tote extract --accept-deletes payment") {
				t.Errorf("message: %v", err)
			}
			if n := latest(t, lk).Seq; n != m.Seq {
				t.Errorf("a held batch committed %d", n)
			}
		}
		res = logical(t, pool, lk, slot, "payment")
		if f := files(latest(t, lk)); f["currency"] != 1 || res.Deleted() != int64(payments) {
			t.Errorf("accepted batch: files %v, %d deleted; want the held currency change too", f, res.Deleted())
		}
		equalsSource(t, pool, lk)
	})

	// A value stored out of line (TOAST) that an update leaves unchanged
	// is not sent; the lake gets it from the row's last version, in the
	// same batch or an earlier one.
	t.Run("unchanged TOAST values", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk := laketest.Mem(t)
		const slot = "tote_toast"
		logical(t, pool, lk, slot)
		big := `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 400) g)` // 12.8 kB, hardly compressible
		execSQL(t, pool, `UPDATE design SET file_location = `+big+`, last_updated = now() WHERE design_id IN (1, 2)`)
		logical(t, pool, lk, slot)
		execSQL(t, pool, `UPDATE design SET design_name = 'Renamed', last_updated = now() WHERE design_id = 1`) // from the lake
		execSQL(t, pool, `UPDATE design SET file_location = `+big+`, last_updated = now() WHERE design_id = 3`)
		execSQL(t, pool, `UPDATE design SET design_name = 'Renamed', last_updated = now() WHERE design_id = 3`) // from the batch
		logical(t, pool, lk, slot)
		var toast string
		if err := pool.QueryRow(context.Background(), `SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'design'`).Scan(&toast); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, pool, `SELECT count(DISTINCT chunk_id) FROM `+toast); n < 2 {
			t.Fatalf("%d values stored out of line (TOAST): the test proves nothing", n)
		}
		rows := lakeRows(t, lk)["design"]
		for _, id := range []int32{1, 3} {
			if !strings.Contains(rows[id], "Renamed") || len(rows[id]) < 12000 {
				t.Errorf("design %d: %.80q… (%d bytes)", id, rows[id], len(rows[id]))
			}
		}
		equalsSource(t, pool, lk)
	})

	// A publication that lacks a table is refused, the slot dropped; once
	// the table is added, the source is re-read in full, nothing lost.
	t.Run("a table added to the publication", func(t *testing.T) {
		pool, _ := logicalSource(t, c, "seeded")
		lk := laketest.Mem(t)
		const slot = "tote_pub"
		execSQL(t, pool, `ALTER PUBLICATION tote DROP TABLE currency`)
		_, err := logicalErr(pool, lk, slot)
		if err == nil || !strings.Contains(err.Error(), "publication tote lacks table(s) [currency]") {
			t.Fatalf("err = %v, want the publication's missing table named", err)
		}
		if slotExists(t, pool, slot) {
			t.Error("a refused handoff left its slot")
		}
		execSQL(t, pool, `ALTER PUBLICATION tote ADD TABLE currency`)
		logical(t, pool, lk, slot)
		execSQL(t, pool, `ALTER PUBLICATION tote DROP TABLE currency`)
		execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 1`) // not streamed
		if _, err := logicalErr(pool, lk, slot); err == nil || !strings.Contains(err.Error(), "dropped the replication slot") {
			t.Fatalf("err = %v, want the slot dropped", err)
		}
		execSQL(t, pool, `ALTER PUBLICATION tote ADD TABLE currency`)
		if res := logical(t, pool, lk, slot); !res.Full {
			t.Error("no full re-read after the slot was dropped")
		}
		// A table published beside totesys's is not tote's: no batch.
		execSQL(t, pool, `CREATE TABLE other (x int PRIMARY KEY); ALTER PUBLICATION tote ADD TABLE other; INSERT INTO other VALUES (1)`)
		if res := logical(t, pool, lk, slot); res.Committed {
			t.Errorf("a change to a table beside totesys's committed batch %s", res.Batch)
		}
		equalsSource(t, pool, lk)
	})

	// Killed just before and just after a batch's manifest is committed,
	// while a writer runs: the next extraction loses and doubles nothing.
	t.Run("killed around the commit", func(t *testing.T) {
		pool, url := logicalSource(t, c, "seeded")
		dir := t.TempDir()
		lakeURL := "file://" + dir
		const slot = "tote_kill"
		ctx := context.Background()
		lk, err := lake.Open(ctx, lakeURL, lake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer lk.Close()
		logical(t, pool, lk, slot)
		for i, at := range []string{"before", "after", "after", "before"} {
			if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 50, Seed: uint64(10 + i), Deletions: 0.1}); err != nil {
				t.Fatal(err)
			}
			before := latest(t, lk).Seq
			cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^$")
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) } // a stack dump
			cmd.Env = append(os.Environ(), "TOTE_EXTRACT_CHILD_SOURCE="+url, "TOTE_EXTRACT_CHILD_LAKE="+lakeURL,
				"TOTE_EXTRACT_CHILD_CAPTURE=logical", "TOTE_EXTRACT_CHILD_SLOT="+slot, "TOTE_EXTRACT_CHILD_KILL_AT="+at)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child %d: %v, want it killed %s the commit: %s", i, err, at, out)
			}
			after := latest(t, lk).Seq
			if (at == "after") != (after == before+1) {
				t.Errorf("killed %s the commit: batches %d → %d", at, before, after)
			}
		}
		res := logical(t, pool, lk, slot)
		if !res.Committed {
			t.Error("the run after a kill before the commit committed nothing")
		}
		if res := logical(t, pool, lk, slot); res.Committed {
			t.Errorf("a replay committed batch %s", res.Batch)
		}
		exactlyOnce(t, pool, lk, allVersions(t, lk))
		equalsSource(t, pool, lk)
	})
}

// A slot that lost WAL it needed (max_slot_wal_keep_size) is dropped and
// the source re-read in full: nothing skipped.
func TestLogicalSlotInvalidated(t *testing.T) {
	t.Parallel()
	settings := maps.Clone(logicalSettings)
	settings["max_slot_wal_keep_size"] = "1MB"
	c := logicalCluster(t, settings)
	pool, _ := logicalSource(t, c, "seeded")
	lk := laketest.Mem(t)
	const slot = "tote_lost"
	logical(t, pool, lk, slot)
	execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 1`)
	execSQL(t, pool, `CREATE TABLE filler (x text)`)
	for range 4 {
		execSQL(t, pool, `INSERT INTO filler SELECT md5(g::text) FROM generate_series(1, 20000) g; SELECT pg_switch_wal()`)
	}
	execSQL(t, pool, `CHECKPOINT`)
	var status string
	if err := pool.QueryRow(context.Background(), `SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "lost" {
		t.Fatalf("wal_status %q: the test did not invalidate the slot", status)
	}
	if res := logical(t, pool, lk, slot); !res.Full {
		t.Error("an invalidated slot was not replaced by a full re-read")
	}
	execSQL(t, pool, `UPDATE currency SET last_updated = now() WHERE currency_id = 2`)
	if res := logical(t, pool, lk, slot); res.Full || res.Rows() != 1 {
		t.Errorf("after the re-read: full=%v rows=%d, want the one change", res.Full, res.Rows())
	}
	equalsSource(t, pool, lk)
}

// A standby of PostgreSQL 15 cannot decode: a clear error.
func TestLogicalRefusesAStandbyBefore16(t *testing.T) {
	t.Parallel()
	c := logicalCluster(t, logicalSettings)
	standby, err := c.StartStandby(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	pool := pgtest.Pool(t, standby.DatabaseURL("seeded"))
	var version int
	if err := pool.QueryRow(context.Background(), `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version >= 160000 {
		t.Skip("PostgreSQL 16 can decode on a standby")
	}
	_, err = logicalErr(pool, laketest.Mem(t), "tote")
	if err == nil || !strings.Contains(err.Error(), "logical decoding on a standby needs PostgreSQL 16 or later; this server is 15") {
		t.Errorf("err = %v", err)
	}
}

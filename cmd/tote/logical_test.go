package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// --capture takes xmin or logical; logical refuses a server whose
// wal_level is not logical, saying so.
func TestCaptureFlag(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOTE_SOURCE_URL": seededSource(t), "TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_LOG_LEVEL": "warn"}
	if code, _, errOut := runTote(t, env, "extract", "--capture", "wal"); code != 2 || !strings.Contains(errOut, `--capture: capture "wal": use xmin or logical`) {
		t.Errorf("--capture wal: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runTote(t, env, "extract", "--capture", "logical", "--slot", "Bad-Name"); code != 2 || !strings.Contains(errOut, `replication slot name "Bad-Name"`) {
		t.Errorf("--slot Bad-Name: exit %d: %s", code, errOut)
	}
	var level string
	if err := pgtest.Pool(t, env["TOTE_SOURCE_URL"]).QueryRow(context.Background(), `SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level == "logical" {
		return
	}
	env["TOTE_CAPTURE"] = "logical"
	code, _, errOut := runTote(t, env, "extract")
	if code != 1 || !strings.Contains(errOut, "the source's wal_level is "+level+": logical capture needs wal_level = logical") {
		t.Errorf("TOTE_CAPTURE=logical on wal_level %s: exit %d: %s", level, code, errOut)
	}
}

// tote run --capture logical: a handoff, then the changes streamed, to the
// warehouse.
func TestRunLogical(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: map[string]string{"wal_level": "logical", "synchronous_commit": "on"}})
	source, err := postgres.CreateDatabase(ctx, c.URL(), "totesys")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runTote(t, map[string]string{}, "seed", "--source", source, "--log-level", "warn"); code != 0 {
		t.Fatalf("seed: %s", errOut)
	}
	execSQL(t, source, `CREATE PUBLICATION tote FOR TABLE `+strings.Join(totesys.TableNames(), ", "))
	environ := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_WAREHOUSE_URL": pgtest.NewDB(t), "TOTE_LAKE_URL": "file://" + t.TempDir(),
		"TOTE_LOG_LEVEL": "warn", "TOTE_CAPTURE": "logical"}
	code, out, errOut := runTote(t, environ, "run", "--json")
	if code != 0 || !strings.Contains(out, `"full":true,"capture":"logical"`) {
		t.Fatalf("first run: exit %d:\n%s%s", code, out, errOut)
	}
	execSQL(t, source, `UPDATE currency SET last_updated = now() WHERE currency_id = 1; DELETE FROM payment WHERE payment_id = 5`)
	code, out, errOut = runTote(t, environ, "extract")
	if code != 0 || !strings.Contains(out, "extract: logical capture, streamed from the replication slot") {
		t.Fatalf("extract: exit %d:\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runTote(t, environ, "extract"); code != 0 || !strings.Contains(out, "nothing new in the source") {
		t.Errorf("extract with nothing new: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, environ, "run")
	if code != 0 {
		t.Fatalf("second run: exit %d:\n%s%s", code, out, errOut)
	}
	wh := pgtest.Pool(t, environ["TOTE_WAREHOUSE_URL"])
	deletedIn := func(id int) bool {
		var deleted bool
		err := wh.QueryRow(ctx, `SELECT is_deleted FROM fact_payment WHERE payment_id = $1 ORDER BY payment_record_id DESC LIMIT 1`, id).Scan(&deleted)
		if err != nil {
			t.Fatal(err)
		}
		return deleted
	}
	if !deletedIn(5) {
		t.Errorf("the streamed deletion of payment 5 is not in the warehouse\n%s", out)
	}

	// tote serve --capture logical runs every second: a deletion reaches
	// the warehouse within seconds.
	addr := freeAddr(t)
	var stdout, stderr syncBuf
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return environ[k] }}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- run(sctx, []string{"serve", "--addr", addr, "--log-format", "json"}, e) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, stderr.String())
		}
	}()
	execSQL(t, source, `DELETE FROM payment WHERE payment_id = 6`)
	start := time.Now()
	for !deletedIn(6) {
		if time.Since(start) > time.Minute {
			t.Fatalf("the deletion of payment 6 did not reach the warehouse under serve:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("commit to warehouse under serve --capture logical: %s", time.Since(start).Round(time.Millisecond))
}

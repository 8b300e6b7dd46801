package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// totesysSchema creates the (empty) totesys tables in the database at url.
func totesysSchema(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := totesys.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

func TestCaptureSetupWithoutLogicalWAL(t *testing.T) {
	t.Parallel()
	source := pgtest.NewDB(t)
	var level string
	if err := pgtest.Pool(t, source).QueryRow(context.Background(), `SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level == "logical" {
		t.Skip("the test server has wal_level = logical")
	}
	totesysSchema(t, source)
	env := map[string]string{"TOTE_SOURCE_URL": source}

	// Printing: the restart first, then the statements; exit 0, since
	// they make the source ready.
	code, out, errOut := runTote(t, env, "capture", "setup", "--publication", "tote_cli_wal")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"wal_level " + level, "needs a server restart", "ALTER SYSTEM SET wal_level = logical;",
		"rds.logical_replication = 1", "-- then restart PostgreSQL", `CREATE PUBLICATION "tote_cli_wal" FOR TABLE`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "ALTER SYSTEM") > strings.Index(out, "CREATE PUBLICATION") {
		t.Errorf("the restart should come first:\n%s", out)
	}

	// Applying: refused, one line, nothing done.
	code, out, errOut = runTote(t, env, "capture", "setup", "--apply", "--publication", "tote_cli_wal")
	if code != 1 || !strings.Contains(errOut, "wal_level = logical, which take effect only at a restart") ||
		!strings.Contains(errOut, "nothing was applied") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("apply: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	var pubs int
	if err := pgtest.Pool(t, source).QueryRow(context.Background(), `SELECT count(*) FROM pg_publication WHERE pubname = 'tote_cli_wal'`).Scan(&pubs); err != nil || pubs != 0 {
		t.Errorf("a refused apply made the publication (%d, %v)", pubs, err)
	}
}

func TestCaptureSetupApplyAndDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: map[string]string{"wal_level": "logical"}})
	source, err := postgres.CreateDatabase(ctx, c.URL(), "totesys")
	if err != nil {
		t.Fatal(err)
	}
	totesysSchema(t, source)
	env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_CAPTURE_ROLE_PASSWORD": "do-not-print-me"}

	code, out, errOut := runTote(t, env, "capture", "setup", "--apply", "--role", "tote_cdc")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"applied 6 statements", "wal_level = logical", "publication tote: the 11 totesys tables",
		"role tote_cdc: LOGIN REPLICATION", "ready: the source can be captured with --capture logical"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "do-not-print-me") {
		t.Error("the role's password is printed")
	}
	// Again: nothing to do.
	code, out, _ = runTote(t, env, "capture", "setup", "--apply", "--role", "tote_cdc", "--json")
	var res struct {
		Applied int  `json:"applied"`
		Ready   bool `json:"ready"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.Applied != 1 || !res.Ready {
		// The password is set again (it is given): the one statement.
		t.Errorf("second apply: exit %d, %+v, %v\n%s", code, res, err, out)
	}
	delete(env, "TOTE_CAPTURE_ROLE_PASSWORD")
	code, out, _ = runTote(t, env, "capture", "setup", "--role", "tote_cdc")
	if code != 0 || strings.Contains(out, "to run on the source") || !strings.Contains(out, "ready:") {
		t.Errorf("third check: exit %d\n%s", code, out)
	}

	// A table without a key is refused by name, exit 1.
	execSQL(t, source, `ALTER TABLE design DROP CONSTRAINT design_pkey CASCADE`)
	code, out, errOut = runTote(t, env, "capture", "setup")
	if code != 1 || !strings.Contains(out, "refused: table design has no primary key and no replica identity") ||
		!strings.Contains(errOut, "1 tables cannot be captured as they are (design)") {
		t.Errorf("no key: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	// Drop: no slot, then a slot, then its publication.
	code, out, _ = runTote(t, env, "capture", "drop")
	if code != 0 || out != "no slot tote: nothing to drop\n" {
		t.Errorf("drop without a slot: exit %d %q", code, out)
	}
	execSQL(t, source, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`)
	code, out, _ = runTote(t, env, "capture", "drop", "--drop-publication")
	if code != 0 || !strings.Contains(out, "dropped slot tote") || !strings.Contains(out, "dropped publication tote") {
		t.Errorf("drop: exit %d %q", code, out)
	}
	var slots, pubs int
	if err := pgtest.Pool(t, source).QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)`).Scan(&slots, &pubs); err != nil || slots+pubs != 0 {
		t.Errorf("after drop: %d slots, %d publications (%v)", slots, pubs, err)
	}
	// A slot that is not tote's kind is left alone.
	execSQL(t, source, `SELECT pg_create_physical_replication_slot('tote')`)
	code, _, errOut = runTote(t, env, "capture", "drop")
	if code != 1 || !strings.Contains(errOut, "slot tote is a physical slot") {
		t.Errorf("physical slot: exit %d %q", code, errOut)
	}
}

func TestStatusShowsTheSlot(t *testing.T) {
	t.Parallel()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: map[string]string{"wal_level": "logical", "max_slot_wal_keep_size": "64MB"}})
	env := map[string]string{"TOTE_WAREHOUSE_URL": fixture.Warehouse().NewDB(t), "TOTE_LAKE_URL": "file://" + t.TempDir()}

	code, _, errOut := runTote(t, env, "status", "--capture", "logical")
	if code != 2 || !strings.Contains(errOut, "--capture logical needs the source") {
		t.Errorf("no source: exit %d %q", code, errOut)
	}
	code, _, errOut = runTote(t, env, "status", "--capture", "wal")
	if code != 2 || !strings.Contains(errOut, `--capture "wal": want xmin or logical`) {
		t.Errorf("bad mode: exit %d %q", code, errOut)
	}
	// By xmin, the source is not even opened: an unreachable one is fine.
	env["TOTE_SOURCE_URL"] = "postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
	if code, out, errOut := runTote(t, env, "status"); code != 0 || strings.Contains(out, "slot") {
		t.Errorf("xmin status: exit %d\n%s%s", code, out, errOut)
	}

	env["TOTE_SOURCE_URL"] = c.URL()
	env["TOTE_CAPTURE"] = "logical"
	code, out, errOut := runTote(t, env, "status")
	if code != 0 || !strings.Contains(out, "slot tote: MISSING: replication slot tote does not exist") {
		t.Errorf("no slot: exit %d\n%s%s", code, out, errOut)
	}
	execSQL(t, c.URL(), `SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`)
	code, out, errOut = runTote(t, env, "status")
	if code != 0 || !strings.Contains(out, "slot tote: idle, wal_status reserved, lag 0 bytes (0s, by last confirmed), holds ") ||
		!strings.Contains(out, "safe_wal_size ") || strings.Contains(out, "unbounded") || strings.Contains(out, "PROBLEM") {
		t.Errorf("slot: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runTote(t, env, "status", "--json")
	var st struct {
		Slot *struct {
			Exists       bool   `json:"exists"`
			WALStatus    string `json:"wal_status"`
			SafeWALBytes *int64 `json:"safe_wal_bytes"`
		} `json:"slot"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Slot == nil || !st.Slot.Exists ||
		st.Slot.WALStatus != "reserved" || st.Slot.SafeWALBytes == nil {
		t.Errorf("--json: exit %d %v\n%s", code, err, out)
	}
}

func TestServeSlotFlags(t *testing.T) {
	t.Parallel()
	db := "postgres://postgres@127.0.0.1:1/x"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--capture", "wal"}, `--capture "wal": want xmin or logical`},
		{[]string{"--capture", "logical", "--slot-lag-threshold", "lots"}, `--slot-lag-threshold: size "lots"`},
	} {
		args := append([]string{"serve", "--source", db, "--warehouse", db}, c.args...)
		code, _, errOut := runTote(t, nil, args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d %q", c.args, code, errOut)
		}
	}
	for _, args := range [][]string{{"capture"}, {"capture", "frob"}} {
		if code, _, _ := runTote(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	if code, _, errOut := runTote(t, nil, "capture", "setup", "--source", db, "--role-password", "x"); code != 2 || !strings.Contains(errOut, "--role-password needs --role") {
		t.Errorf("password without role: exit %d %q", code, errOut)
	}
}

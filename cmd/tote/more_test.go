package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// After a run that quarantines a bad value, tote rejects ls lists it,
// tote dashboard refresh brings the summaries up to the loaded batch, and
// tote verify names the id of a row changed behind the pipeline's back.
// Once the source is fixed, the reject is resolved: gone from rejects ls,
// shown by rejects ls --all with the batch that resolved it.
func TestRejectsRefreshVerify(t *testing.T) {
	t.Parallel()
	env, source, wh := runEnv(t, "error")
	execSQL(t, source, `UPDATE sales_order SET agreed_delivery_date = 'soon', last_updated = now() WHERE sales_order_id = 7`)
	if code, out, errOut := runTote(t, env, "run"); code != 0 {
		t.Fatalf("run with a bad date: exit %d:\n%s%s", code, out, errOut)
	}

	code, out, errOut := runTote(t, env, "rejects", "ls")
	if code != 0 || !strings.Contains(out, "sales_order") || !strings.Contains(out, `"soon"`) ||
		!strings.Contains(out, "agreed_delivery_date") || !strings.Contains(out, "1 open reject (as of ") {
		t.Errorf("rejects ls: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "rejects", "ls", "--json")
	var listed []struct {
		Table      string  `json:"table"`
		SourceID   int64   `json:"source_id"`
		Value      *string `json:"value"`
		ResolvedBy string  `json:"resolved_batch"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 ||
		listed[0].SourceID != 7 || listed[0].Value == nil || *listed[0].Value != "soon" || listed[0].ResolvedBy != "" {
		t.Errorf("rejects ls --json: exit %d (%v): %+v\n%s%s", code, err, listed, out, errOut)
	}
	if code, out, errOut := runTote(t, env, "rejects"); code != 2 || out != "" || !strings.Contains(errOut, "Usage: tote rejects ls") {
		t.Errorf("rejects without ls: exit %d, want 2:\n%s%s", code, out, errOut)
	}
	if code, out, _ := runTote(t, env, "rejects", "--help"); code != 0 || !strings.Contains(out, "list the quarantined rows") {
		t.Errorf("rejects --help: exit %d:\n%s", code, out)
	}

	code, out, errOut = runTote(t, env, "dashboard", "refresh")
	if code != 0 || !strings.Contains(out, "dashboard summaries as of batch 1 (") {
		t.Errorf("dashboard refresh: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "dashboard", "refresh", "--json")
	var refreshed map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &refreshed); code != 0 || err != nil || refreshed["summaries"] == nil || refreshed["seconds"] == nil {
		t.Errorf("dashboard refresh --json: exit %d (%v):\n%s%s", code, err, out, errOut)
	}
	if code, _, errOut := runTote(t, env, "dashboard", "refresh", "extra"); code != 2 {
		t.Errorf("dashboard refresh extra: exit %d, want 2: %s", code, errOut)
	}

	// A design renamed in the warehouse alone: verify names it, exits 1.
	var design int64
	conn, err := pgx.Connect(context.Background(), wh)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(context.Background(), `SELECT min(design_id) FROM dim_design`).Scan(&design)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, wh, fmt.Sprintf(`UPDATE dim_design SET design_name = 'Tampered' WHERE design_id = %d`, design))
	code, out, errOut = runTote(t, env, "verify")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("dim_design: different: design ids [%d]", design)) ||
		!strings.Contains(out, "1 row differs") || !strings.Contains(errOut, "tote verify: 1 row differs between the warehouse and the source") {
		t.Errorf("verify after a tampered design: exit %d, want 1:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "verify", "--json")
	if code != 1 || !json.Valid([]byte(out)) || !strings.Contains(out, "dim_design") || !strings.Contains(errOut, "1 row differs") {
		t.Errorf("verify --json after a tampered design: exit %d, want 1:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "verify", "--repair")
	if code != 0 || !strings.Contains(out, "repair: sent 1 row again and 0 tombstones in corrective batch") || !strings.Contains(out, ": 0 rows differ") {
		t.Errorf("verify --repair: exit %d:\n%s%s", code, out, errOut)
	}

	execSQL(t, source, `UPDATE sales_order SET agreed_delivery_date = '2026-12-24', last_updated = now() WHERE sales_order_id = 7`)
	if code, out, errOut := runTote(t, env, "run"); code != 0 {
		t.Fatalf("run after the fix: exit %d:\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runTote(t, env, "rejects", "ls"); code != 0 || strings.Contains(out, `"soon"`) || !strings.Contains(out, "0 open rejects (as of ") {
		t.Errorf("rejects ls after the fix: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "rejects", "ls", "--all")
	if code != 0 || !strings.Contains(out, `"soon"`) || !strings.Contains(out, "1 open or resolved reject (as of ") {
		t.Errorf("rejects ls --all after the fix: exit %d:\n%s%s", code, out, errOut)
	}
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"soon"`) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) == 0 || !strings.HasPrefix(f[len(f)-1], "0000000000") || f[len(f)-1] == f[len(f)-2] {
		t.Errorf("rejects ls --all: the reject's row does not end in the batch that resolved it: %q", row)
	}
}

// TOTE_CPUPROFILE and TOTE_MEMPROFILE write profiles of the whole command;
// a profile that cannot be written is said on stderr and the command runs.
func TestProfiles(t *testing.T) {
	if f := flag.Lookup("test.cpuprofile"); f != nil && f.Value.String() != "" {
		t.Skip("go test -cpuprofile holds the process's one CPU profile")
	}
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	var stderr strings.Builder
	environ := map[string]string{"TOTE_CPUPROFILE": cpu, "TOTE_MEMPROFILE": mem}
	stop := startProfiles(func(k string) string { return environ[k] }, &stderr)
	if code, out, _ := runTote(t, nil, "version"); code != 0 || out == "" {
		t.Errorf("version while profiling: exit %d: %q", code, out)
	}
	stop()
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		// A profile is gzipped protobuf.
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s: not a profile (%v): %d bytes", filepath.Base(p), err, len(b))
		}
	}

	stderr.Reset()
	nowhere := filepath.Join(dir, "no", "such", "dir")
	environ = map[string]string{"TOTE_CPUPROFILE": filepath.Join(nowhere, "cpu"), "TOTE_MEMPROFILE": filepath.Join(nowhere, "mem")}
	stop = startProfiles(func(k string) string { return environ[k] }, &stderr)
	stop()
	if s := stderr.String(); !strings.Contains(s, "tote: cpu profile: ") || !strings.Contains(s, "tote: heap profile: ") {
		t.Errorf("unwritable profiles: stderr %q", s)
	}
}

// A run with the Iceberg tables off leaves them uncreated; tote iceberg
// publish then brings them up to the loaded batch, once, and tables lists
// the snapshot; the subcommand's own mistakes exit 2.
func TestIcebergPublishLater(t *testing.T) {
	t.Parallel()
	env, _, _ := runEnv(t, "error")
	if code, out, errOut := runTote(t, env, "run", "--iceberg-catalog", "off"); code != 0 {
		t.Fatalf("run --iceberg-catalog off: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut := runTote(t, env, "iceberg", "tables")
	if code != 0 || !strings.Contains(out, "tote.fact_sales_order") || !strings.Contains(out, "(not created yet)") {
		t.Errorf("iceberg tables before publishing: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "iceberg", "publish")
	if code != 0 || !strings.Contains(out, "publish: 1 batch to the Iceberg tables, ") {
		t.Errorf("iceberg publish: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "iceberg", "publish", "--json")
	var res struct {
		Batches []json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Batches) != 0 {
		t.Errorf("iceberg publish --json with nothing new: exit %d (%v):\n%s%s", code, err, out, errOut)
	}
	code, out, errOut = runTote(t, env, "iceberg", "tables")
	if code != 0 || strings.Contains(out, "(not created yet)") || !strings.Contains(out, "current") {
		t.Errorf("iceberg tables after publishing: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "iceberg", "tables", "--json")
	var tables []json.RawMessage
	if err := json.Unmarshal([]byte(out), &tables); code != 0 || err != nil || len(tables) == 0 {
		t.Errorf("iceberg tables --json: exit %d (%v):\n%s%s", code, err, out, errOut)
	}
	code, out, errOut = runTote(t, env, "iceberg", "maintain", "--json")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, "fact_sales_order") {
		t.Errorf("iceberg maintain --json: exit %d:\n%s%s", code, out, errOut)
	}

	for _, c := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"iceberg"}, 2, "Usage: tote iceberg tables|publish|maintain"},
		{[]string{"iceberg", "--help"}, 0, "tables     list the star's Iceberg tables"},
		{[]string{"iceberg", "bogus"}, 2, `unknown subcommand "bogus"`},
		{[]string{"iceberg", "publish", "--iceberg-catalog", "off"}, 2, "the Iceberg tables are off"},
		{[]string{"iceberg", "tables", "--iceberg-catalog", "off"}, 2, "the Iceberg tables are off"},
		{[]string{"iceberg", "maintain", "--iceberg-catalog", "off"}, 2, "the Iceberg tables are off"},
	} {
		code, out, errOut := runTote(t, env, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
}

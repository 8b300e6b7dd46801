package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/star"
)

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// starRows counts the rows of every star table in the warehouse at url.
func starRows(t *testing.T, url string) int64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var total int64
	for _, st := range star.Tables {
		var n int64
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+st.Name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func TestRunLoadRebuild(t *testing.T) {
	t.Parallel()
	env, source, wh := runEnv(t, "warn")

	code, out, errOut := runTote(t, env, "run", "--json")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	var res pipeline.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Stages) != 4 || res.Load == nil || res.Load.Rows() < 50_000 {
		t.Fatalf("run --json: %v\n%s", err, out)
	}
	// The run published the star to its Iceberg tables (on by default).
	if res.Publish == nil || len(res.Publish.Batches) != 1 || res.Publish.Rows() != starRows(t, wh) {
		t.Errorf("run --json: publish %+v, want every row of the warehouse, %d", res.Publish, starRows(t, wh))
	}
	code, out, errOut = runTote(t, env, "iceberg", "tables")
	if code != 0 || !strings.Contains(out, "tote.fact_sales_order") || !strings.Contains(out, res.Load.Batches[0].Batch) {
		t.Errorf("iceberg tables: exit %d: %s %s", code, out, errOut)
	}
	if code, _, errOut = runTote(t, env, "run", "--iceberg-catalog", "hive://x"); code != 2 || !strings.Contains(errOut, "--iceberg-catalog") {
		t.Errorf("run --iceberg-catalog hive://x: exit %d: %s", code, errOut)
	}
	execSQL(t, source, `UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 1`)
	code, out, _ = runTote(t, env, "run")
	if code != 0 || !strings.Contains(out, "run complete") || !strings.Contains(out, "extract") {
		t.Errorf("second run: exit %d:\n%s", code, out)
	}
	for _, cmd := range []string{"transform", "load"} {
		code, out, errOut = runTote(t, env, cmd)
		if code != 0 || !strings.Contains(out, cmd+": 0 ") {
			t.Errorf("%s with nothing new: exit %d: %q %s", cmd, code, out, errOut)
		}
	}
	code, out, errOut = runTote(t, env, "iceberg", "maintain")
	if code != 0 || !strings.Contains(out, "fact_payment") {
		t.Errorf("iceberg maintain: exit %d: %s %s", code, out, errOut)
	}
	fresh := pgtest.NewDB(t)
	code, out, errOut = runTote(t, env, "rebuild", "--warehouse", fresh)
	if code != 0 || !strings.Contains(out, "rebuild: 2 processed batches") {
		t.Errorf("rebuild: exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = runTote(t, env, "rebuild")
	if code != 1 || !strings.Contains(errOut, "rebuild") {
		t.Errorf("rebuild into a loaded warehouse: exit %d: %s", code, errOut)
	}
}

func TestRunBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		source string // SQL run on the source before the pass
		wh     string // SQL run on the warehouse before the pass
		want   []string
	}{
		{"conflicting warehouse table", "", `CREATE TABLE fact_sales_order (sales_record_id int, foo text)`,
			[]string{"load:", "fact_sales_order"}},
		{"unparseable text date (strict)", `UPDATE sales_order SET agreed_delivery_date = 'soon', last_updated = now() WHERE sales_order_id = 7`, "",
			[]string{"transform raw batch 000000000001-", "sales_order 7", `agreed_delivery_date "soon"`}},
		{"unknown currency code (strict)", `INSERT INTO currency (currency_code, last_updated) VALUES ('XYZ', now())`, "",
			[]string{"transform raw batch 000000000001-", "currency 4", `"XYZ" is not an ISO 4217 currency code`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			source, wh := seededSource(t), pgtest.NewDB(t)
			if c.source != "" {
				execSQL(t, source, c.source)
			}
			if c.wh != "" {
				execSQL(t, wh, c.wh)
			}
			env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_WAREHOUSE_URL": wh,
				"TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_LOG_LEVEL": "error"}
			code, out, errOut := runTote(t, env, "run", "--strict")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(out, "run failed") {
				t.Errorf("stdout does not say the run failed:\n%s", out)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("want one line of error, got:\n%s", errOut)
			}
		})
	}
}

// A deleted row reaches the warehouse through tote run, which says so, as
// do tote status and tote verify (clean); a row the warehouse has that the
// source does not, tote verify --repair tombstones.
func TestRunCarriesDeletions(t *testing.T) {
	t.Parallel()
	env, source, wh := runEnv(t, "warn")
	if code, _, errOut := runTote(t, env, "run"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	execSQL(t, source, `DELETE FROM payment WHERE payment_id <= 5`)
	code, out, errOut := runTote(t, env, "run")
	if code != 0 || !strings.Contains(out, "load") || !strings.Contains(out, ", 5 deleted") {
		t.Errorf("run after deleting 5 payments: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTote(t, env, "status", "--limit", "1")
	if code != 0 || !strings.Contains(out, "batches, 5 deletions") {
		t.Errorf("status: exit %d:\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runTote(t, env, "verify"); code != 0 || !strings.Contains(out, ": 0 rows differ") {
		t.Errorf("verify after the deletions: exit %d:\n%s%s", code, out, errOut)
	}

	// A design the warehouse has and the source does not, as if the lake
	// had missed its deletion.
	execSQL(t, wh, `INSERT INTO dim_design VALUES (999999, 'Ghost', '/nowhere', 'ghost.json')`)
	code, out, errOut = runTote(t, env, "verify", "--repair")
	if code != 0 || !strings.Contains(out, "repair: sent 0 rows again and 1 tombstone in corrective batch") || !strings.Contains(out, ": 0 rows differ") {
		t.Errorf("verify --repair: exit %d:\n%s%s", code, out, errOut)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
)

// A lake refuses a source other than the one it was extracted from, saying
// how to proceed; a move is accepted with tote lake move-source, and
// extraction carries on from the new source's changes only.
func TestLakeBelongsToItsSource(t *testing.T) {
	t.Parallel()
	a, moved := seededSource(t), seededSource(t) // the same rows, in two databases
	lake := "file://" + t.TempDir()
	env := map[string]string{"TOTE_LAKE_URL": lake, "TOTE_LOG_LEVEL": "error"}
	if code, _, errOut := runTote(t, env, "extract", "--source", a); code != 0 {
		t.Fatalf("extract: %s", errOut)
	}
	code, _, errOut := runTote(t, env, "extract", "--source", moved)
	if code != 1 || !strings.Contains(errOut, "this lake was extracted from database") || !strings.Contains(errOut, "tote lake move-source") {
		t.Fatalf("extract from another source: exit %d: %s", code, errOut)
	}
	// Another database, with other rows, is refused; --force accepts it.
	other := fixture.Source(1, 12).NewDB(t)
	code, _, errOut = runTote(t, env, "lake", "move-source", "--source", other)
	if code != 1 || !strings.Contains(errOut, "the new source does not hold the rows the lake has: of ") ||
		!strings.Contains(errOut, "If it is, accept it with --force") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("move-source to another database: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runTote(t, env, "lake", "move-source", "--source", moved); code != 0 || !strings.Contains(out, "now follows") {
		t.Fatalf("move-source: exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runTote(t, env, "lake", "move-source", "--source", moved); code != 1 || !strings.Contains(errOut, "already belongs") {
		t.Errorf("a second move-source: exit %d: %s", code, errOut)
	}
	execSQL(t, moved, `UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 1`)
	code, out, errOut := runTote(t, env, "extract", "--source", moved, "--json")
	var res extract.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Rows() != 1 {
		t.Errorf("extract after the move: exit %d, %d rows, want the one change: %s%s", code, res.Rows(), out, errOut)
	}
}

// A warehouse loaded from one lake refuses another, unless told to adopt
// it; the rows it holds are recognised, not doubled. rebuild refuses a
// warehouse with tote's tables unless --replace.
func TestWarehouseFollowsOneLake(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_WAREHOUSE_URL": wh, "TOTE_LOG_LEVEL": "error"}
	first, second := "file://"+t.TempDir(), "file://"+t.TempDir()
	for _, lake := range []string{first, second} {
		if code, _, errOut := runTote(t, env, "extract", "--lake", lake); code != 0 {
			t.Fatal(errOut)
		}
		if code, _, errOut := runTote(t, env, "transform", "--lake", lake); code != 0 {
			t.Fatal(errOut)
		}
	}
	if code, _, errOut := runTote(t, env, "load", "--lake", first); code != 0 {
		t.Fatal(errOut)
	}
	code, _, errOut := runTote(t, env, "load", "--lake", second)
	if code != 1 || !strings.Contains(errOut, "--adopt-lake") {
		t.Fatalf("load from another lake: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runTote(t, env, "load", "--lake", second, "--adopt-lake"); code != 0 {
		t.Fatalf("load --adopt-lake: exit %d: %s", code, errOut)
	}
	code, out, errOut := runTote(t, env, "verify", "--lake", second)
	if code != 0 || !strings.Contains(out, "0 rows differ") {
		t.Errorf("verify after adopting: exit %d: %s%s", code, out, errOut)
	}
	facts := func(wh string) string {
		var n string
		conn := pgtest.Pool(t, wh)
		if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM fact_sales_order) + (SELECT count(*) FROM fact_payment)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := facts(wh)
	if code, _, errOut := runTote(t, env, "load", "--lake", first); code != 1 {
		t.Errorf("load from the first lake after adopting the second: exit %d: %s", code, errOut)
	}

	// rebuild: refused on a warehouse that holds tote's tables; --replace drops them.
	code, _, errOut = runTote(t, env, "rebuild", "--lake", second)
	if code != 1 || !strings.Contains(errOut, "--replace") {
		t.Errorf("rebuild into a loaded warehouse: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runTote(t, env, "rebuild", "--lake", second, "--replace"); code != 0 || !strings.Contains(out, "rebuild: 1 processed batch,") {
		t.Fatalf("rebuild --replace: exit %d: %s%s", code, out, errOut)
	}
	if m := facts(wh); m != n {
		t.Errorf("facts after adopting the lake %s, after rebuilding from it %s: want the same", n, m)
	}
}

package transform_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
)

// deletions reads a processed batch's deletions file as "table id date
// time" lines, in file order.
func deletions(t *testing.T, lk *lake.Lake, m lake.Manifest) []string {
	t.Helper()
	var out []string
	for _, f := range m.Files {
		if f.Table != star.Deletions.Name {
			continue
		}
		rows, schema := laketest.ReadFile(t, lk, m, f)
		if got, want := fmt.Sprint(schema), fmt.Sprint(star.Deletions.Schema()); got != want {
			t.Errorf("%s: schema\n%s\nwant\n%s", f.Path, got, want)
		}
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s %d %s %s", r["star_table"].ByteArray(), r["id"].Int32(),
				startest.Value(star.Column{Type: star.Date}, r["seen_date"]), startest.Value(star.Column{Type: star.Time}, r["seen_time"])))
		}
	}
	return out
}

// stateRow returns the row State keeps of table's id, or nil.
func stateRow(s transform.State, table, key string, id int32) transform.Row {
	for _, r := range s.Rows(table) {
		if r[key] == id {
			return r
		}
	}
	return nil
}

// A raw batch's tombstones become a deletions row for each star table made
// from the deleted row's table, seen when the extraction saw them, with
// the day in the calendar for a fact's. The rows State keeps are marked
// deleted and keep their values: a deleted department's staff are left as
// they were, a staff member who joins it later gets its last values, and
// a deleted staff member is not made again when their department is
// renamed, until inserted again.
func TestDeletionsReachTheProcessedZone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, lk := extracted(t)
	transformRun(t, lk)

	var dept, gone, kept, staffGone int32
	if err := pool.QueryRow(ctx, `SELECT department_id, min(staff_id), max(staff_id) FROM staff
		GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1`).Scan(&dept, &staffGone, &kept); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT department_id FROM department WHERE department_id <> $1 ORDER BY 1 LIMIT 1`, dept).Scan(&gone); err != nil {
		t.Fatal(err)
	}
	var goneName string
	if err := pool.QueryRow(ctx, `SELECT department_name FROM department WHERE department_id = $1`, gone).Scan(&goneName); err != nil {
		t.Fatal(err)
	}
	// totesys restricts deleting a department that has staff; a source
	// without that key does not.
	exec(t, pool, `ALTER TABLE staff DROP CONSTRAINT staff_department_id_fkey`)
	exec(t, pool, `DELETE FROM staff WHERE staff_id = $1`, staffGone)
	exec(t, pool, `DELETE FROM department WHERE department_id = $1`, gone)
	exec(t, pool, `DELETE FROM payment WHERE payment_id IN (7, 3)`)
	exec(t, pool, `DELETE FROM design WHERE design_id = 2`)
	extractRun(t, pool, lk)
	raw := latest(t, lk, lake.Raw)
	rs, err := extract.LoadState(raw)
	if err != nil {
		t.Fatal(err)
	}
	res := transformRun(t, lk)
	m := latest(t, lk, lake.Processed)
	seen := rs.SourceTime.Format("2006-01-02 15:04:05.000000")
	want := []string{
		fmt.Sprintf("dim_staff %d %s", staffGone, seen),
		"dim_design 2 " + seen,
		"fact_payment 3 " + seen,
		"fact_payment 7 " + seen,
	}
	if got := deletions(t, lk, m); !slices.Equal(got, want) {
		t.Errorf("deletions\n%v\nwant\n%v", got, want)
	}
	if got := res.Deleted(); got != 4 {
		t.Errorf("the result counts %d deletions, want 4", got)
	}
	if tables(m)[0] == "dim_staff" || fileRows(m, "dim_staff") != 0 {
		t.Errorf("the deletions made dim_staff rows: %v", tables(m))
	}
	day := rs.SourceTime.Format("2006-01-02")
	var days []string
	for _, r := range readTable(t, lk, m, "dim_date") {
		days = append(days, startest.Day(r["date_id"].Int32()))
	}
	if !slices.Contains(days, day) {
		t.Errorf("the calendar of the batch lacks %s, the day the payments' deletion was seen: %v", day, days)
	}
	state, err := transform.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	if r := stateRow(state, "staff", "staff_id", staffGone); r == nil || r["tote_deleted"] != true || r["department_id"] != dept {
		t.Errorf("state's deleted staff member: %v", r)
	}
	if r := stateRow(state, "department", "department_id", gone); r == nil || r["tote_deleted"] != true || r["department_name"] != goneName {
		t.Errorf("state's deleted department: %v", r)
	}

	// The department of the deleted staff member is renamed, and someone
	// joins the deleted department.
	exec(t, pool, `UPDATE department SET department_name = 'Renamed', last_updated = now() WHERE department_id = $1`, dept)
	var joiner int32
	if err := pool.QueryRow(ctx, `INSERT INTO staff (first_name, last_name, department_id, email_address, last_updated)
		VALUES ('New', 'Joiner', $1, 'new.joiner@terrifictotes.com', now()) RETURNING staff_id`, gone).Scan(&joiner); err != nil {
		t.Fatal(err)
	}
	extractRun(t, pool, lk)
	transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	got := texts(readTable(t, lk, m, "dim_staff"), "staff_id", "department_name")
	var wantStaff []string
	rows, err := pool.Query(ctx, `SELECT staff_id FROM staff WHERE department_id = $1 ORDER BY 1`, dept)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int32
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		wantStaff = append(wantStaff, fmt.Sprintf("%d/Renamed", id))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	wantStaff = append(wantStaff, fmt.Sprintf("%d/%s", joiner, goneName))
	slices.Sort(wantStaff)
	if !slices.Equal(got, wantStaff) || slices.Contains(got, fmt.Sprintf("%d/Renamed", staffGone)) {
		t.Errorf("dim_staff after the rename and the joiner: %v, want %v (not the deleted %d)", got, wantStaff, staffGone)
	}

	// Inserted again with the same id: made again, and no longer marked.
	exec(t, pool, `INSERT INTO staff (staff_id, first_name, last_name, department_id, email_address, last_updated)
		VALUES ($1, 'Back', 'Again', $2, 'back@terrifictotes.com', now())`, staffGone, dept)
	extractRun(t, pool, lk)
	transformRun(t, lk)
	m = latest(t, lk, lake.Processed)
	if got := texts(readTable(t, lk, m, "dim_staff"), "staff_id", "first_name", "department_name"); !slices.Equal(got, []string{fmt.Sprintf("%d/Back/Renamed", staffGone)}) {
		t.Errorf("dim_staff after the staff member came back: %v", got)
	}
	for _, r := range readTable(t, lk, m, "dim_staff") {
		if r[star.IsDeleted].Boolean() {
			t.Error("a row made from a source row has is_deleted true")
		}
	}
	state, _ = transform.LoadState(m)
	if r := stateRow(state, "staff", "staff_id", staffGone); r == nil || r["tote_deleted"] != nil {
		t.Errorf("state's staff member inserted again: %v", r)
	}
}

// A raw tombstones file that names a table the model does not have fails
// its batch, naming the file and the table, and nothing is committed.
func TestBadTombstones(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lk := laketest.Mem(t)
	b := lk.NewBatch(lake.Raw, 1, time.Now())
	w := lakefile.NewWriter(b, totesys.DeletedFile, totesys.DeletedSchema)
	if err := w.Write(ctx, []parquet.Row{totesys.Tombstone{Table: "paymnet", ID: 7, SeenAt: time.Now()}.Row()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := b.Commit(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = transform.Run(ctx, lk, transform.Options{})
	if err == nil || !strings.Contains(err.Error(), "transform raw batch "+m.ID+": raw/tote_deleted/") ||
		!strings.Contains(err.Error(), `tombstone 1: totesys: no table "paymnet"`) {
		t.Errorf("transforming a tombstone of no table: %v", err)
	}
	if p, _ := lk.Latest(ctx, lake.Processed); p != nil {
		t.Errorf("processed batch %s committed", p.ID)
	}
}

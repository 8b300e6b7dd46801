package extract_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/s3test"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
)

func TestMain(m *testing.M) {
	if source := os.Getenv("TOTE_EXTRACT_CHILD_SOURCE"); source != "" {
		os.Exit(child(source, os.Getenv("TOTE_EXTRACT_CHILD_LAKE"), os.Getenv("TOTE_EXTRACT_CHILD_KILL_AT_STATUS") != ""))
	}
	pgtest.Main(m)
}

// statusMarker is what a child prints as it kills itself while writing a
// status object, before the object's name.
const statusMarker = "killed while writing status "

// child runs one extraction in a process of its own, for the crash tests
// to kill; with killAtStatus it kills itself as the first status object
// it writes is about to replace the old one.
func child(source, lakeURL string, killAtStatus bool) int {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, source)
	if err != nil {
		return 3
	}
	defer pool.Close()
	lk, err := lake.Open(ctx, lakeURL, lake.Options{})
	if err != nil {
		return 3
	}
	defer lk.Close()
	if killAtStatus {
		lk.BeforeStatusReplace = func(name string) {
			fmt.Fprintln(os.Stderr, statusMarker+name)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL cannot be caught: this never returns
		}
	}
	opts := extract.Options{Capture: os.Getenv("TOTE_EXTRACT_CHILD_CAPTURE")}
	opts.Replication.SlotName = os.Getenv("TOTE_EXTRACT_CHILD_SLOT")
	kill := func(at string) func() {
		if os.Getenv("TOTE_EXTRACT_CHILD_KILL_AT") != at {
			return nil
		}
		return func() {
			fmt.Fprintln(os.Stderr, "killed "+at+" the commit")
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	extract.SetCommitHooks(&opts, kill("before"), kill("after"))
	if _, err := extract.Run(ctx, pool, lk, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// version is one row version: its table, id and last_updated.
type version struct {
	table string
	id    int64
	lu    int64 // Unix microseconds
}

// seeded returns a source of the test's own, seeded at scale with seed 11,
// and its URL.
func seeded(t *testing.T, scale int) (*pgxpool.Pool, string) {
	t.Helper()
	url := fixture.Source(scale, 11).NewDB(t)
	return pgtest.Pool(t, url), url
}

// extracted returns a source seeded at scale 1 and its URL (seeded), and
// a new lake in memory holding its first extraction: where most tests
// start.
func extracted(t *testing.T) (*pgxpool.Pool, string, *lake.Lake) {
	t.Helper()
	pool, url := seeded(t, 1)
	lk := laketest.Mem(t)
	run(t, pool, lk)
	return pool, url, lk
}

func run(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake) extract.Result {
	t.Helper()
	res, err := extract.Run(context.Background(), pool, lk, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// begin opens a transaction on a connection of its own to the source at
// url, to hold open across extractions; the connection closes when the
// test ends.
func begin(t *testing.T, url string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// sourceVersions returns every row version the source holds now.
func sourceVersions(t *testing.T, pool *pgxpool.Pool) map[version]bool {
	t.Helper()
	out := map[version]bool{}
	for _, table := range totesys.Tables {
		rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT %s, last_updated FROM %s", table.Key(), table.Name))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var lu time.Time
			if err := rows.Scan(&id, &lu); err != nil {
				t.Fatal(err)
			}
			out[version{table.Name, id, lu.UnixMicro()}] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// batchVersions reads the row versions of one committed batch, counting repeats.
func batchVersions(t *testing.T, lk *lake.Lake, m lake.Manifest) map[version]int {
	t.Helper()
	out := map[version]int{}
	for _, f := range m.Files {
		if totesys.ExtractionFile(f.Table) {
			continue
		}
		rows, _ := laketest.ReadFile(t, lk, m, f)
		table, _ := totesys.Lookup(f.Table)
		for _, r := range rows {
			out[version{f.Table, int64(r[table.Key()].Int32()), r[totesys.LastUpdated].Int64()}]++
		}
	}
	return out
}

// allVersions reads every committed raw batch.
func allVersions(t *testing.T, lk *lake.Lake) map[version]int {
	t.Helper()
	batches, err := lk.Batches(context.Background(), lake.Raw)
	if err != nil {
		t.Fatal(err)
	}
	out := map[version]int{}
	for _, m := range batches {
		for v, n := range batchVersions(t, lk, m) {
			out[v] += n
		}
	}
	return out
}

// exactlyOnce checks that the lake holds every version the source has, once.
func exactlyOnce(t *testing.T, pool *pgxpool.Pool, lk *lake.Lake, extracted map[version]int) {
	t.Helper()
	want := sourceVersions(t, pool)
	missing, dup := 0, 0
	for v := range want {
		if extracted[v] == 0 {
			if missing < 5 {
				t.Errorf("missing from the lake: %+v", v)
			}
			missing++
		}
	}
	for v, n := range extracted {
		if n > 1 {
			if dup < 5 {
				t.Errorf("extracted %d times: %+v", n, v)
			}
			dup++
		}
	}
	// The lake also holds versions the source has since superseded: that is
	// the history the facts keep.
	if missing+dup > 0 {
		t.Fatalf("%d versions missing, %d duplicated", missing, dup)
	}
}

func TestFirstExtractionKeepsEveryValueExactly(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, 1)
	lk := laketest.Mem(t)
	res := run(t, pool, lk)
	if !res.Committed || res.Seq != 1 {
		t.Fatalf("result %+v", res)
	}
	counts := map[string]int64{}
	for _, tr := range res.Tables {
		counts[tr.Table] = tr.Rows
	}
	if counts["payment"] != 16600 || counts["sales_order"]+counts["purchase_order"] != 16600 || counts["address"] != 30 {
		t.Errorf("counts %v", counts)
	}
	m, err := lk.Latest(context.Background(), lake.Raw)
	if err != nil || m == nil {
		t.Fatal(m, err)
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))

	// Every value of two tables with every column type, compared with the source.
	for _, f := range m.Files {
		if f.Table != "payment" && f.Table != "address" {
			continue
		}
		table, _ := totesys.Lookup(f.Table)
		got := map[string]string{}
		records, _ := laketest.ReadFile(t, lk, *m, f)
		for _, r := range records {
			var parts []string
			for _, c := range table.Columns {
				parts = append(parts, render(c, r[c.Name]))
			}
			got[parts[0]] = strings.Join(parts, "|")
		}
		var exprs []string
		for _, c := range table.Columns {
			switch c.Type {
			case totesys.Timestamp:
				exprs = append(exprs, fmt.Sprintf(`coalesce(to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US'), 'NULL')`, c.Name))
			case totesys.Boolean:
				exprs = append(exprs, fmt.Sprintf(`CASE WHEN %s THEN 'true' ELSE 'false' END`, c.Name))
			default:
				exprs = append(exprs, fmt.Sprintf(`coalesce(%s::text, 'NULL')`, c.Name))
			}
		}
		rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT %s::text, concat_ws('|', %s) FROM %s", table.Key(), strings.Join(exprs, ", "), table.Name))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id, want string
			if err := rows.Scan(&id, &want); err != nil {
				t.Fatal(err)
			}
			if got[id] != want {
				t.Errorf("%s %s:\n lake   %s\n source %s", table.Name, id, got[id], want)
			}
			n++
		}
		if n != len(got) {
			t.Errorf("%s: source has %d rows, lake %d", table.Name, n, len(got))
		}
	}
}

// render formats a raw Parquet value the way the test's SQL renders the source's.
func render(c totesys.Column, v parquet.Value) string {
	if v.IsNull() {
		return "NULL"
	}
	switch c.Type {
	case totesys.Integer:
		return fmt.Sprint(v.Int32())
	case totesys.Money:
		return laketest.Money(v.Int64())
	case totesys.Boolean:
		return fmt.Sprint(v.Boolean())
	case totesys.Timestamp:
		return time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05.000000")
	}
	return string(v.ByteArray())
}

func TestIncrementalTakesExactlyTheNewVersions(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)
	before := sourceVersions(t, pool)

	stats, err := simulate.Run(context.Background(), pool, simulate.Options{Rate: 100_000, Events: 600, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, pool, lk)
	if !res.Committed || res.Seq != 2 {
		t.Fatalf("second extraction: %+v", res)
	}
	m, _ := lk.Latest(context.Background(), lake.Raw)
	got := batchVersions(t, lk, *m)
	after := sourceVersions(t, pool)
	want := map[version]bool{}
	for v := range after {
		if !before[v] {
			want[v] = true
		}
	}
	if len(want) < stats.Total() {
		t.Fatalf("only %d new versions for %d events", len(want), stats.Total())
	}
	for v := range want {
		if got[v] != 1 {
			t.Errorf("new version %+v extracted %d times", v, got[v])
		}
	}
	for v := range got {
		if !want[v] {
			t.Errorf("batch 2 holds %+v, which batch 1 had", v)
		}
	}

	// Nothing changed: no batch.
	res = run(t, pool, lk)
	if res.Committed || res.Rows() != 0 {
		t.Errorf("no-change extraction committed %+v", res)
	}
	batches, _ := lk.Batches(context.Background(), lake.Raw)
	if len(batches) != 2 {
		t.Errorf("%d batches after a no-change run, want 2", len(batches))
	}
}

// The cursor-boundary bug: a transaction stamps its rows with its start
// time, stays open across an extraction while later-stamped rows are
// committed and extracted, then commits. Its rows must still arrive, once.
func TestOpenTransactionAcrossExtraction(t *testing.T) {
	t.Parallel()
	pool, url, lk := extracted(t)
	ctx := context.Background()

	tx := begin(t, url)
	var latePayment int64
	var openXid uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&openXid); err != nil {
		t.Fatal(err)
	}
	lateSale, stamp := insertSale(t, tx, 5000)
	if err := tx.QueryRow(ctx, `UPDATE payment SET paid = true, last_updated = now()
		WHERE payment_id = (SELECT min(payment_id) FROM payment WHERE NOT paid) RETURNING payment_id`).Scan(&latePayment); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)

	// Later-stamped changes commit and are extracted while tx stays open.
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 100, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	res := run(t, pool, lk)
	m2, _ := lk.Latest(ctx, lake.Raw)
	state, err := extract.LoadState(*m2)
	if err != nil {
		t.Fatal(err)
	}
	if !state.Tables["sales_order"].Watermark.After(stamp) {
		t.Fatalf("batch 2's sales watermark %v is not past the open transaction's stamp %v: the test would not catch the bug",
			state.Tables["sales_order"].Watermark, stamp)
	}
	if state.Format != 2 || state.XidHorizon > openXid {
		t.Errorf("state format %d, xid horizon %d: want 2 and at most the open transaction's id %d", state.Format, state.XidHorizon, openXid)
	}
	for v := range batchVersions(t, lk, *m2) {
		if v.table == "sales_order" && v.id == lateSale {
			t.Fatal("batch 2 holds a row of a transaction that had not committed")
		}
	}
	_ = res

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res = run(t, pool, lk)
	if !res.Committed {
		t.Fatal("the late transaction's rows were not extracted")
	}
	m3, _ := lk.Latest(ctx, lake.Raw)
	got := batchVersions(t, lk, *m3)
	foundSale, foundPayment := false, false
	for v := range got {
		foundSale = foundSale || (v.table == "sales_order" && v.id == lateSale)
		foundPayment = foundPayment || (v.table == "payment" && v.id == latePayment && v.lu == stamp.UnixMicro())
	}
	if !foundSale || !foundPayment {
		t.Errorf("batch 3 lacks the late sale (%v) or payment update (%v)", foundSale, foundPayment)
	}
	if res.Rows() > 10 {
		t.Errorf("batch 3 holds %d versions; want only the late transaction's (and its neighbours' overlap deduplicated)", res.Rows())
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// A role with nothing but SELECT extracts exactly once: transaction ids
// need no view of other sessions.
func TestUnprivilegedRoleIsExact(t *testing.T) {
	t.Parallel()
	pool, url := seeded(t, 1)
	ctx := context.Background()
	role := fmt.Sprintf("tote_reader_%d", time.Now().UnixNano()%1e9)
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP OWNED BY "+role)
		pool.Exec(context.Background(), "DROP ROLE "+role)
	})
	cfg, _ := pgxpool.ParseConfig(url)
	cfg.ConnConfig.User = role
	reader, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	lk := laketest.Mem(t)
	run(t, reader, lk)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 200, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	run(t, reader, lk)
	m, _ := lk.Latest(ctx, lake.Raw)
	if state, _ := extract.LoadState(*m); state.Format != 2 || state.XidHorizon == 0 {
		t.Errorf("state format %d, xid horizon %d", state.Format, state.XidHorizon)
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

func TestDriftStopsTheBatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sql, want string
	}{
		{"renamed column", `ALTER TABLE staff RENAME COLUMN email_address TO email`,
			"staff.email_address: column dropped (was text NOT NULL), or renamed to email"},
		{"nullable mapped column", `ALTER TABLE address ALTER COLUMN phone DROP NOT NULL`,
			"address.phone: type changed from text NOT NULL to text NULL"},
		{"dropped column", `ALTER TABLE address DROP COLUMN phone`, "address.phone: column dropped (was text NOT NULL)"},
		{"changed type", `ALTER TABLE payment ALTER COLUMN payment_amount TYPE numeric(12,4)`,
			"payment.payment_amount: type changed from numeric(10,2) NOT NULL to numeric(12,4) NOT NULL"},
		{"missing table", `DROP TABLE design`, "design: table is missing"},
		{"table without columns", `DROP TABLE design; CREATE TABLE design ()`, "design.design_id: column dropped (was integer NOT NULL)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, _, lk := extracted(t)
			if _, err := pool.Exec(context.Background(), c.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(context.Background(), `UPDATE currency SET last_updated = now()`); err != nil {
				t.Fatal(err)
			}
			_, err := extract.Run(context.Background(), pool, lk, extract.Options{})
			var drift *extract.DriftError
			if !errors.As(err, &drift) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was committed") ||
				!strings.Contains(err.Error(), "Put the columns back as the model has them, or run a release of tote whose model") {
				t.Fatalf("err = %v\nwant a DriftError containing %q", err, c.want)
			}
			if batches, _ := lk.Batches(context.Background(), lake.Raw); len(batches) != 1 {
				t.Errorf("%d batches after drift, want 1", len(batches))
			}
		})
	}
}

// A column the model lacks does not stop extraction: the raw zone carries
// it as text from the batch that first sees it, which reports it once,
// and commits even without rows; a NOT NULL column with a default too.
func TestNewColumnIsCarried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _, lk := extracted(t)
	for _, sql := range []string{
		`ALTER TABLE sales_order ADD COLUMN discount numeric(5,2)`,
		`ALTER TABLE staff ADD COLUMN "Badge No" text NOT NULL DEFAULT 'B-1'`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	res := run(t, pool, lk)
	want := []extract.Carried{{Table: "staff", Column: "Badge No", Type: "text NOT NULL"},
		{Table: "sales_order", Column: "discount", Type: "numeric(5,2) NULL"}}
	if !res.Committed || !slices.Equal(res.NewColumns, want) || res.Rows() != 0 {
		t.Fatalf("extraction after two columns were added: committed %v, %d rows, new columns %v; want a batch without rows reporting %v",
			res.Committed, res.Rows(), res.NewColumns, want)
	}
	if _, err := pool.Exec(ctx, `UPDATE sales_order SET discount = 12.5, last_updated = now() WHERE sales_order_id IN (1, 2);
		UPDATE sales_order SET last_updated = now() WHERE sales_order_id = 3`); err != nil {
		t.Fatal(err)
	}
	res = run(t, pool, lk)
	if !res.Committed || res.Rows() != 3 || len(res.NewColumns) != 0 {
		t.Fatalf("next extraction: committed %v, %d rows, new columns %v; want 3 rows and none reported again", res.Committed, res.Rows(), res.NewColumns)
	}
	m, err := lk.Batch(ctx, lake.Raw, res.Batch)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for _, f := range m.Files {
		if f.Table != "sales_order" {
			continue
		}
		rows, _ := laketest.ReadFile(t, lk, m, f)
		for _, r := range rows {
			v := r["discount"]
			got[r["sales_order_id"].Int32()] = map[bool]string{true: "NULL", false: v.String()}[v.IsNull()]
		}
	}
	if want := map[int32]string{1: "12.50", 2: "12.50", 3: "NULL"}; !maps.Equal(got, want) {
		t.Errorf("the raw file carries discount as %v, want %v", got, want)
	}
	// Nothing new since: nothing committed, nothing reported.
	if res := run(t, pool, lk); res.Committed || len(res.NewColumns) != 0 {
		t.Errorf("an extraction with nothing new: committed %v, new columns %v", res.Committed, res.NewColumns)
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

func TestCorruptManifestStopsExtraction(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, 1)
	lk, dir := laketest.File(t)
	run(t, pool, lk)
	path := dir + "/manifests/raw/000000000001.json"
	if err := os.WriteFile(path, []byte(`{"format": 1, "zone": "raw", "seq": 1, "id": "0000`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := extract.Run(context.Background(), pool, lk, extract.Options{})
	if !errors.Is(err, lake.ErrCorrupt) || !strings.Contains(err.Error(), "manifests/raw/000000000001.json") {
		t.Fatalf("err = %v, want ErrCorrupt naming the manifest", err)
	}
	if _, err := os.Stat(dir + "/manifests/raw/000000000002.json"); !os.IsNotExist(err) {
		t.Error("a batch was committed on top of a corrupt manifest")
	}
}

func TestConcurrentExtractionsCommitOnce(t *testing.T) {
	t.Parallel()
	pool, _, lk := extracted(t)
	if _, err := simulate.Run(context.Background(), pool, simulate.Options{Rate: 100_000, Events: 200, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = extract.Run(context.Background(), pool, lk, extract.Options{})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, lake.ErrConflict) || !strings.Contains(err.Error(), "another extraction committed raw batch 2 first"):
			t.Errorf("loser's error: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d extractions committed batch 2, want exactly 1", wins)
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

func TestExtractToS3(t *testing.T) {
	srv := s3test.Start(t)
	pool, _ := seeded(t, 1)
	ctx := context.Background()
	lk, err := lake.Open(ctx, srv.URL("tote/lake"), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	run(t, pool, lk)
	if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 150, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if res := run(t, pool, lk); !res.Committed {
		t.Fatal("second extraction to S3 committed nothing")
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

func TestExtractFromRealSnapshot(t *testing.T) {
	t.Parallel()
	dir := pgtest.SnapshotDir(t)
	url := pgtest.NewDB(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.LoadSnapshot(context.Background(), pool, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	lk := laketest.Mem(t)
	res := run(t, pool, lk)
	if res.Rows() != 30+20+3+8+473+15836+4+4649+11187+20+15836 {
		t.Errorf("extracted %d rows from the snapshot", res.Rows())
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// Kill extractions at points spread over a batch: the lake must hold only
// whole batches, and the next run must carry on with nothing lost or doubled.
func TestCrashedExtractionsLeaveOnlyWholeBatches(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs and kills extractions in child processes")
	}
	pool, url := seeded(t, 3)
	dir := t.TempDir()
	lakeURL := "file://" + dir
	ctx := context.Background()
	killed := 0
	for i, delay := range []time.Duration{0, 5, 15, 30, 60, 100, 150, 250, 400, 600, 900} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TOTE_EXTRACT_CHILD_SOURCE="+url, "TOTE_EXTRACT_CHILD_LAKE="+lakeURL)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			killed++
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if err != nil && exit.ExitCode() == 1 {
			t.Fatalf("child %d failed on its own: %s", i, stderr.String())
		}
		// The source keeps moving between attempts.
		if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 100_000, Events: 50, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if killed == 0 {
		t.Fatal("no child was killed")
	}
	lk, err := lake.Open(ctx, lakeURL, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	// Every committed batch reads back whole (sizes and checksums verified).
	before := allVersions(t, lk)
	run(t, pool, lk)
	exactlyOnce(t, pool, lk, allVersions(t, lk))
	if len(allVersions(t, lk)) <= len(before) {
		t.Error("the run after the crashes extracted nothing")
	}
	// Files of killed batches are orphans: invisible, and cleaned away.
	removed, err := lk.Clean(ctx, lake.Raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := lk.Batches(ctx, lake.Raw)
	t.Logf("%d children killed, %d batches committed, %d orphaned files cleaned", killed, len(batches), len(removed))
	if len(removed) == 0 {
		t.Error("no kill landed inside a batch: the test proved nothing about half-written batches")
	}
	listed := map[string]bool{}
	for _, m := range batches {
		for _, f := range m.Files {
			listed[f.Path] = true
		}
	}
	err = filepath.WalkDir(filepath.Join(dir, "raw"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !listed[filepath.ToSlash(rel)] {
			t.Errorf("after clean, %s is in the lake but in no manifest", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, pool, lk, allVersions(t, lk))
}

// An extraction killed while it writes a status object (the newest batch
// number, after its commit) leaves the object's temporary file; lake clean
// spares it for the grace period, then removes it, and leaves no
// temporary file of any kind.
func TestKilledWhileWritingStatus(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills an extraction in a child process")
	}
	_, url := seeded(t, 1)
	dir := t.TempDir()
	lakeURL := "file://" + dir
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TOTE_EXTRACT_CHILD_SOURCE="+url, "TOTE_EXTRACT_CHILD_LAKE="+lakeURL, "TOTE_EXTRACT_CHILD_KILL_AT_STATUS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v (stderr: %s)", err, stderr.String())
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v (stderr: %s)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), statusMarker) {
		t.Fatalf("child was not killed writing a status object: %s", stderr.String())
	}
	temps := func() []string {
		t.Helper()
		var out []string
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".tmp") || strings.HasPrefix(d.Name(), ".")) {
				rel, _ := filepath.Rel(dir, path)
				out = append(out, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	left := temps()
	if len(left) != 1 || !strings.HasPrefix(left[0], "status/") {
		t.Fatalf("temporary files after the crash: %q, want the status object's", left)
	}

	lk, err := lake.Open(t.Context(), lakeURL, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if removed, err := lk.Clean(t.Context(), lake.Raw, time.Hour); err != nil || len(removed) != 0 {
		t.Errorf("clean within the grace period removed %q (%v), want nothing", removed, err)
	}
	removed, err := lk.Clean(t.Context(), lake.Raw, 0)
	if err != nil || !slices.Equal(removed, left) {
		t.Errorf("clean removed %q (%v), want %q", removed, err, left)
	}
	if left := temps(); len(left) != 0 {
		t.Errorf("temporary files after clean: %q", left)
	}
	// The batch committed before the kill is whole, and the hint it did
	// not update only costs a longer listing.
	if m, err := lk.Latest(t.Context(), lake.Raw); err != nil || m == nil || m.Seq != 1 {
		t.Errorf("latest raw batch after the crash: %+v, %v", m, err)
	}
}

package pipeline_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/startest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, p *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := p.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRows fails unless got and want hold the same rows, each once.
func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if slices.Equal(got, want) {
		return
	}
	gotSet := map[string]int{}
	for _, g := range got {
		gotSet[g]++
	}
	wantSet := map[string]int{}
	for _, w := range want {
		wantSet[w]++
	}
	shown := 0
	for w := range wantSet {
		if gotSet[w] != wantSet[w] && shown < 5 {
			t.Errorf("%s: want %s ×%d, warehouse has ×%d", what, w, wantSet[w], gotSet[w])
			shown++
		}
	}
	for g := range gotSet {
		if wantSet[g] == 0 && shown < 10 {
			t.Errorf("%s: warehouse has unexpected %s", what, g)
			shown++
		}
	}
	t.Errorf("%s: warehouse has %d rows, want %d", what, len(got), len(want))
}

// capture records the fact versions the source shows now, as the oracle
// renders them.
func capture(t *testing.T, src *pgxpool.Pool, versions map[string]map[string]bool) {
	t.Helper()
	for _, table := range star.Tables {
		if table.Kind != star.Fact {
			continue
		}
		if versions[table.Name] == nil {
			versions[table.Name] = map[string]bool{}
		}
		for _, r := range startest.Expected(t, src, table, "") {
			versions[table.Name][r] = true
		}
	}
}

// compare checks that the warehouse holds the star schema computed from
// the source, independently of the pipeline (see startest): each
// dimension's rows, the fact versions captured, and the calendar of the
// days they refer to.
func compare(t *testing.T, src, wh *pgxpool.Pool, versions map[string]map[string]bool) {
	t.Helper()
	for _, table := range star.Tables {
		var want []string
		switch {
		case table.Source == "":
			want = slices.Collect(maps.Values(startest.Calendar(t, wh, startest.ReferencedDays(t, wh))))
		case table.Kind == star.Fact:
			want = slices.Collect(maps.Keys(versions[table.Name]))
		default:
			want = slices.Collect(maps.Values(startest.Expected(t, src, table, "")))
		}
		sameRows(t, table.Name, startest.Warehouse(t, wh, table), want)
	}
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// From an empty warehouse: the first pass migrates it.
	srcURL, whURL := fixture.Source(1, 31).NewDB(t), pgtest.NewDB(t)
	src, wh := pgtest.Pool(t, srcURL), pgtest.Pool(t, whURL)
	lk, err := lake.Open(ctx, "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	parts := pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}
	versions := map[string]map[string]bool{}

	capture(t, src, versions)
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)

	// The business moves on: every kind of change, including the ones
	// dimensions must follow through their joins.
	for _, sql := range []string{
		`UPDATE department SET department_name = 'Logistics', last_updated = now() WHERE department_id = 4`,
		`UPDATE address SET phone = '0113 000000', city = 'Leeds', last_updated = now()
		 WHERE address_id = (SELECT legal_address_id FROM counterparty ORDER BY counterparty_id LIMIT 1)`,
		`UPDATE counterparty SET legal_address_id = 30, last_updated = now() WHERE counterparty_id = 5`,
		`UPDATE staff SET department_id = 4, last_updated = now() WHERE staff_id = 3`,
		`INSERT INTO currency (currency_code, last_updated) VALUES ('CHF', now())`,
	} {
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 800, Seed: 13}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)

	// More changes, then a pass with nothing new: nothing changes.
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 100_000, Events: 300, Seed: 14}); err != nil {
		t.Fatal(err)
	}
	capture(t, src, versions)
	for range 2 {
		if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	compare(t, src, wh, versions)

	// The business figures agree with the source.
	got, err := warehouse.New(wh, nil).SalesByMonth(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var gotRows []string
	for _, m := range got {
		gotRows = append(gotRows, fmt.Sprintf("(%s,%s,%d,%d,%s)", m.Month, m.Currency, m.Orders, m.Units, m.Value))
	}
	sameRows(t, "sales by month", gotRows, query(t, src, `
		WITH months AS (SELECT DISTINCT date_trunc('month', created_at) m FROM sales_order ORDER BY m DESC LIMIT 3)
		SELECT ROW(mon, code, n, units, value)::text FROM (
		  SELECT to_char(date_trunc('month', s.created_at), 'YYYY-MM') AS mon, c.currency_code AS code, count(*) AS n,
		         sum(s.units_sold) AS units, sum(s.units_sold * s.unit_price) AS value
		  FROM sales_order s JOIN currency c USING (currency_id)
		  WHERE date_trunc('month', s.created_at) IN (SELECT m FROM months) GROUP BY 1, 2) x`))

	// A warehouse rebuilt from the lake alone matches row for row, surrogate keys too.
	rebuilt := pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := warehouse.New(rebuilt, nil).Rebuild(ctx, lk, false); err != nil {
		t.Fatal(err)
	}
	for _, table := range star.Tables {
		q := fmt.Sprintf("SELECT t::text FROM %s t", table.Name)
		sameRows(t, "rebuilt "+table.Name, query(t, rebuilt, q), query(t, wh, q))
	}
}

func TestEndToEndOnTheRealSnapshot(t *testing.T) {
	t.Parallel()
	dir := pgtest.SnapshotDir(t)
	ctx := context.Background()
	src, wh := pgtest.Pool(t, pgtest.NewDB(t)), pgtest.Pool(t, pgtest.NewDB(t))
	if _, err := seed.LoadSnapshot(ctx, src, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	lk := laketest.Mem(t)
	versions := map[string]map[string]bool{}
	capture(t, src, versions)
	res, err := pipeline.Run(ctx, pipeline.Parts{Source: src, Warehouse: warehouse.New(wh, nil), Lake: lk}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, src, wh, versions)
	var summary []string
	for _, s := range res.Stages {
		summary = append(summary, s.String())
	}
	t.Log("\n" + strings.Join(summary, "\n"))
}

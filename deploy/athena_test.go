package deploy_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var update = flag.Bool("update", false, "rewrite deploy/terraform/modules/tote/athena_views.json from the star model")

// athenaViewsFile holds, by view name, the CREATE VIEW of each fact's
// current versions for Athena, which the module saves as named queries.
const athenaViewsFile = "terraform/modules/tote/athena_views.json"

// athenaViews renders, from the model, the Athena (Trino) equivalent of the
// warehouse's <fact>_current views (warehouse/views.go): of each source
// id's versions the one with the largest surrogate key, left out if it
// records a deletion. The warehouse writes it as NOT EXISTS over an index;
// Athena does not decorrelate a subquery correlated by an inequality, and
// scans the table either way, so here it is a window: row_number() over
// the id's versions, newest first.
func athenaViews() map[string]string {
	views := map[string]string{}
	for _, t := range star.Tables {
		if t.Kind != star.Fact {
			continue
		}
		cols := append([]string{t.Surrogate}, t.ColumnNames()...)
		views[t.CurrentView()] = fmt.Sprintf(`CREATE OR REPLACE VIEW %[1]s AS
SELECT %[2]s
FROM (
  SELECT f.*, row_number() OVER (PARTITION BY f.%[4]s ORDER BY f.%[5]s DESC) AS newest
  FROM %[3]s f
) v
WHERE newest = 1 AND NOT %[6]s`, t.CurrentView(), strings.Join(cols, ", "), t.Name, t.ID(), t.Surrogate, star.IsDeleted)
	}
	return views
}

// TestAthenaViews checks that the Athena views the module saves are the
// model's: a new fact or column is one edit to star/ and
// `go test ./deploy/ -run TestAthenaViews -update`. It also checks that
// docs/aws.md shows one of them as it is.
func TestAthenaViews(t *testing.T) {
	t.Parallel()
	want := athenaViews()
	if len(want) == 0 {
		t.Fatal("the model has no facts")
	}
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(athenaViewsFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(athenaViewsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(b) {
		t.Errorf("%s is not what the star model renders; run go test ./deploy/ -run TestAthenaViews -update", athenaViewsFile)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "aws.md"))
	if err != nil {
		t.Fatal(err)
	}
	if v := want["fact_sales_order_current"]; !strings.Contains(string(doc), v) {
		t.Errorf("docs/aws.md does not show fact_sales_order_current as rendered:\n%s", v)
	}
	for name, v := range want {
		for _, w := range []string{"CREATE OR REPLACE VIEW " + name + " AS", "row_number() OVER (PARTITION BY", "WHERE newest = 1 AND NOT is_deleted"} {
			if !strings.Contains(v, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, v)
			}
		}
	}
}

// TestAthenaViewsMatchTheWarehouse runs the Athena views' SQL, which is
// plain SQL (a window function, no Trino-only syntax), on PostgreSQL over a
// warehouse the pipeline loaded with updated and deleted rows, and finds
// each equal, row for row, to the warehouse's own <fact>_current view. No
// Athena here: this checks the logic, not Trino's acceptance of it.
func TestAthenaViewsMatchTheWarehouse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	source := pgtest.Pool(t, fixture.Source(1, 7).NewDB(t))
	whURL := fixture.Warehouse().NewDB(t)
	wh, err := warehouse.Open(ctx, whURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wh.Close)
	lk := laketest.Mem(t)
	parts := pipeline.Parts{Source: source, Warehouse: wh, Lake: lk}
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	// New versions of rows, and deletions: what the views must see through.
	if _, err := simulate.Run(ctx, source, simulate.Options{Rate: 1e6, Events: 400, Seed: 3, Deletions: 0.25}); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(ctx, parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t, whURL)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA athena`); err != nil {
		t.Fatal(err)
	}
	rows := func(q string) []string {
		t.Helper()
		r, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	var versions, deleted int
	for _, tb := range star.Tables {
		if tb.Kind != star.Fact {
			continue
		}
		name := tb.CurrentView()
		ddl := athenaViews()[name]
		pg := strings.Replace(ddl, "CREATE OR REPLACE VIEW "+name, "CREATE VIEW athena."+name, 1)
		if _, err := pool.Exec(ctx, pg); err != nil {
			t.Fatalf("%s on PostgreSQL: %v\n%s", name, err, pg)
		}
		got := rows(`SELECT to_jsonb(v)::text FROM athena.` + pgx.Identifier{name}.Sanitize() + ` v ORDER BY 1`)
		want := rows(`SELECT to_jsonb(v)::text FROM public.` + pgx.Identifier{name}.Sanitize() + ` v ORDER BY 1`)
		if len(got) != len(want) || len(want) == 0 {
			t.Errorf("%s: %d rows from Athena's view, %d from the warehouse's", name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: row %d is\n%s\nwant\n%s", name, i, got[i], want[i])
				break
			}
		}
		var v, d int
		t0 := pgx.Identifier{tb.Name}.Sanitize()
		if err := pool.QueryRow(ctx, `SELECT count(*) - count(DISTINCT `+pgx.Identifier{tb.ID()}.Sanitize()+`), count(*) FILTER (WHERE `+star.IsDeleted+`) FROM `+t0).Scan(&v, &d); err != nil {
			t.Fatal(err)
		}
		versions, deleted = versions+v, deleted+d
	}
	// Else the comparison proved nothing the plain tables would not.
	if versions == 0 || deleted == 0 {
		t.Errorf("the facts hold %d superseded versions and %d deletion versions; want some of each", versions, deleted)
	}
	t.Logf("facts: %d superseded versions, %d deletion versions", versions, deleted)
}

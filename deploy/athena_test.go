package deploy_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrifictotes/tote/star"
)

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
)
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

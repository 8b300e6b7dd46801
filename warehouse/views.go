package warehouse

import (
	"fmt"
	"strings"

	"github.com/terrifictotes/tote/star"
)

// Each fact has a view of its current versions (star.Table.CurrentView):
// the newest version of every source id, deleted ids left out, which is
// what a figure counts (a sum over the fact itself counts every version of
// an order). The newest version of an id is the one with the largest
// surrogate key: the load numbers each batch's new versions after the
// largest there is, and a corrective batch updates versions in place, so
// surrogate order is the order versions became visible, whatever their
// stamps. The views are rendered from the model and kept as a migration
// group of the warehouse's own (currentViews), applied after its
// migrations: a model that changes makes them again. (Their comments,
// for BI tools, come with the star tables'.)
//
// A version is current when no version of its id has a larger surrogate
// key: written as NOT EXISTS rather than DISTINCT ON, so that a query's
// conditions on the view (a period, a currency) filter the fact before the
// newest versions are picked, through the index on (id, surrogate) that
// migration 0012 makes.

// currentViews is the migration group of the facts' current views.
var currentViews = renderViews()

func renderViews() Group {
	var create, drop []string
	for _, t := range star.Tables {
		if t.Kind != star.Fact {
			continue
		}
		cols := []string{"f." + ident(t.Surrogate)}
		for _, c := range t.Columns {
			cols = append(cols, "f."+ident(c.Name))
		}
		view, id, key := ident(t.CurrentView()), ident(t.ID()), ident(t.Surrogate)
		create = append(create, fmt.Sprintf(`CREATE VIEW %[1]s AS
SELECT %[2]s
FROM %[3]s f
WHERE NOT f.%[4]s
  AND NOT EXISTS (SELECT FROM %[3]s n WHERE n.%[5]s = f.%[5]s AND n.%[6]s > f.%[6]s);`,
			view, strings.Join(cols, ", "), ident(t.Name), ident(star.IsDeleted), id, key))
		drop = append(drop, view)
	}
	return Group{
		Name:       "current_views",
		Migrations: []Migration{{Version: 1, Name: "0001_current_views", SQL: strings.Join(create, "\n\n")}},
		Reset:      "DROP VIEW IF EXISTS " + strings.Join(drop, ", "),
	}
}

package warehouse

import (
	_ "embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/star"
)

//go:embed load.sql
var loadSQLText string

// ordinalColumn holds a staged row's position in its file: the last row of
// an entity wins.
const ordinalColumn = "tote_ordinal"

// tableSQL holds the statements that load one star table.
type tableSQL struct {
	table     string // the star table, quoted
	stage     string // name of the staging table
	create    string // creates the staging table
	merge     string // dimension upsert or fact insert
	correct   string // a fact's: overwrite the versions a corrective batch sends again
	empty     string // whether the table is empty
	first     string // merge into an empty table
	keys      string // a fact's unique constraints: name, definition
	sequence  string // a fact's: moves the surrogate's sequence on
	copyNames []string
	// straightNames are the columns of a straight copy into the empty
	// table: a fact's surrogate, then the model's columns.
	straightNames []string
}

// loadSQL is the statements of each star table, by name.
var loadSQL = renderLoadSQL()

func renderLoadSQL() map[string]tableSQL {
	tmpl := template.Must(template.New("load.sql").Funcs(template.FuncMap{
		// list joins columns with ", ", each after prefix.
		"list": func(prefix string, cols []string) string {
			out := make([]string, len(cols))
			for i, c := range cols {
				out[i] = prefix + c
			}
			return strings.Join(out, ", ")
		},
		// assign sets each column from EXCLUDED.
		"assign": func(cols []string) string {
			out := make([]string, len(cols))
			for i, c := range cols {
				out[i] = c + " = EXCLUDED." + c
			}
			return strings.Join(out, ", ")
		},
		// same is true when rows a and b agree on cols.
		"same": func(a, b string, cols []string) string {
			out := make([]string, len(cols))
			for i, c := range cols {
				out[i] = a + "." + c + " = " + b + "." + c
			}
			return strings.Join(out, " AND ")
		},
	}).Parse(loadSQLText))

	out := make(map[string]tableSQL, len(star.Tables))
	for _, t := range star.Tables {
		stage := "tote_stage_" + t.Name
		data := map[string]any{
			"Table":         ident(t.Name),
			"Stage":         ident(stage),
			"Surrogate":     "",
			"SurrogateName": t.Surrogate,
			"Columns":       idents(t.ColumnNames()),
			"Key":           idents(t.Key),
		}
		var other []string
		for _, c := range t.Columns {
			isKey := false
			for _, k := range t.Key {
				isKey = isKey || k == c.Name
			}
			if !isKey {
				other = append(other, c.Name)
			}
		}
		data["Other"] = idents(other)
		var correct []string
		for _, c := range other {
			if c != star.BatchID {
				correct = append(correct, c)
			}
		}
		data["Correct"] = idents(correct)
		if t.Kind == star.Fact {
			data["Surrogate"] = ident(t.Surrogate)
		}
		render := func(name string) string {
			var b strings.Builder
			if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
				panic(fmt.Sprintf("warehouse: render %s for %s: %v", name, t.Name, err))
			}
			return b.String()
		}
		ts := tableSQL{
			table:     ident(t.Name),
			stage:     stage,
			create:    render("stage"),
			empty:     render("empty"),
			copyNames: append(t.ColumnNames(), ordinalColumn),

			straightNames: t.ColumnNames(),
		}
		if t.Kind == star.Fact {
			ts.merge = render("fact")
			ts.correct = render("factCorrect")
			ts.first = render("factFirst")
			ts.keys = render("uniqueKeys")
			ts.sequence = render("sequence")
			ts.straightNames = append([]string{t.Surrogate}, ts.straightNames...)
		} else {
			ts.merge = render("dimension")
			ts.first = render("dimensionFirst")
		}
		out[t.Name] = ts
	}
	return out
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func idents(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = ident(n)
	}
	return out
}

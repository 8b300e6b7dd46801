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
	deleted   string // a fact's deletion versions, a dimension's flags ($1 the table, $2 the batch)
	full      string // a fact's insert from a full batch
	back      string // a fact's: rows of a full or corrective batch back after their deletion
	copyNames []string
	// straightNames are the columns of a straight copy into the empty
	// table: a fact's surrogate, then the model's columns.
	straightNames []string
}

// loadSQL is the statements of each star table, by name.
var loadSQL = renderLoadSQL()

// loadTemplate is load.sql, parsed.
var loadTemplate = template.Must(template.New("load.sql").Funcs(template.FuncMap{
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
	// join joins expressions with ", ".
	"join": func(exprs []string) string { return strings.Join(exprs, ", ") },
}).Parse(loadSQLText))

// render renders template name of load.sql over data.
func render(name string, data any) string {
	var b strings.Builder
	if err := loadTemplate.ExecuteTemplate(&b, name, data); err != nil {
		panic(fmt.Sprintf("warehouse: render %s: %v", name, err))
	}
	return b.String()
}

func renderLoadSQL() map[string]tableSQL {

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
		data["DeletedStage"] = deletedStage
		data["Deleted"] = ident(star.IsDeleted)
		if t.Kind == star.Fact {
			data["Surrogate"] = ident(t.Surrogate)
			data["ID"] = ident(t.ID())
			data["Deletion"], data["Back"] = deletionColumns(t), backColumns(t)
			var compare []string
			for _, c := range t.Columns {
				if c.Conv != star.Xmin && c.Conv != star.Batch {
					compare = append(compare, c.Name)
				}
			}
			data["Compare"] = idents(compare)
		}
		render := func(name string) string { return render(name, data) }
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
			ts.deleted = render("factDeleted")
			ts.full = render("factFull")
			ts.back = render("factBack")
			ts.straightNames = append([]string{t.Surrogate}, ts.straightNames...)
		} else {
			ts.merge = render("dimension")
			ts.first = render("dimensionFirst")
			if _, ok := t.Column(star.IsDeleted); ok {
				ts.deleted = render("dimensionDeleted")
			}
		}
		out[t.Name] = ts
	}
	return out
}

// deletedStage is the staging table of a batch's deletions file.
const deletedStage = "tote_stage_deleted"

// deletedStageSQL creates deletedStage.
var deletedStageSQL = render("deletedStage", map[string]string{"DeletedStage": deletedStage})

// deletionColumns are the values of fact t's deletion version, column by
// column (factDeleted): those of the newest version f, but for the stamp
// (when the deletion d was seen), where it came from (no transaction:
// source_xmin 0, which no transaction id is, so that the version key
// stays unique; this batch, $2) and is_deleted.
func deletionColumns(t star.Table) []string {
	var out []string
	for _, c := range t.Columns {
		switch {
		case c.Conv == star.Xmin:
			out = append(out, "0")
		case c.Conv == star.Batch:
			out = append(out, "$2::"+string(c.Type))
		case c.Conv == star.Deleted:
			out = append(out, "true")
		case c.Name == star.LastUpdatedDate:
			out = append(out, "d.seen_date")
		case c.Name == star.LastUpdatedTime:
			out = append(out, "d.seen_time")
		default:
			out = append(out, "f."+ident(c.Name))
		}
	}
	return out
}

// backColumns are the values of a row of fact t back after its deletion
// (factBack): the staged row s, its source_xmin raised by 2^32 for each
// version of the id with its stamps and 32-bit xmin.
func backColumns(t star.Table) []string {
	var out []string
	for _, c := range t.Columns {
		if c.Conv != star.Xmin {
			out = append(out, "s."+ident(c.Name))
			continue
		}
		x, id := ident(c.Name), ident(t.ID())
		d, tm := ident(star.LastUpdatedDate), ident(star.LastUpdatedTime)
		out = append(out, fmt.Sprintf("s.%[1]s + 4294967296 * (SELECT count(*) FROM %[2]s v WHERE v.%[3]s = s.%[3]s AND v.%[4]s = s.%[4]s "+
			"AND v.%[5]s = s.%[5]s AND v.%[1]s %% 4294967296 = s.%[1]s)", x, ident(t.Name), id, d, tm))
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

package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/totesys"
)

// DriftError reports source tables whose columns differ from the totesys
// model in a way the star schema depends on: a table or a model column
// missing, a model column of another type or nullability. A column the
// model lacks is no drift: extraction carries it (see Result.NewColumns).
type DriftError struct {
	Changes []string // one per difference, e.g. "address.phone: column dropped (was text NOT NULL)"
}

// ErrorKind is tote.Fatal: the schema stays drifted until a person acts.
func (e *DriftError) ErrorKind() tote.Kind { return tote.Fatal }

func (e *DriftError) Error() string {
	return "the source schema has drifted from the totesys model in columns the star schema reads, nothing was committed: " +
		strings.Join(e.Changes, "; ") +
		". Put the columns back as the model has them, or run a release of tote whose model (totesys/) follows the change; " +
		"a new column alone does not stop extraction"
}

// Carried is a source column the totesys model lacks, which extraction
// carries into the raw zone as its text form: the star schema does not
// read it, and a later release may.
type Carried struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	// Type is the column's type as PostgreSQL names it, "NULL" or "NOT
	// NULL" added.
	Type string `json:"type"`
}

func (c Carried) String() string { return c.Table + "." + c.Column + " " + c.Type }

// checkDrift compares every source table with the model. It returns the
// columns the model lacks, by table, to be carried; any other difference
// is a DriftError.
func checkDrift(ctx context.Context, tx pgx.Tx) (map[string][]Carried, error) {
	var changes []string
	carried := map[string][]Carried{}
	all, err := totesys.InspectAll(ctx, tx, totesys.TableNames())
	if err != nil {
		return nil, err
	}
	for _, table := range totesys.Tables {
		cols := all[table.Name]
		if len(cols) == 0 {
			exists, err := tableExists(ctx, tx, table.Name)
			switch {
			case err != nil:
				return nil, fmt.Errorf("inspect %s: %w", table.Name, err)
			case !exists:
				changes = append(changes, fmt.Sprintf("%s: table is missing", table.Name))
				continue
			}
			// There, without a column: every model column is dropped.
		}
		ch, extra := diff(table, cols)
		changes = append(changes, ch...)
		if len(extra) > 0 {
			carried[table.Name] = extra
		}
	}
	if len(changes) > 0 {
		return nil, &DriftError{Changes: changes}
	}
	return carried, nil
}

func tableExists(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass(quote_ident($1)) IS NOT NULL`, name).Scan(&ok)
	return ok, err
}

// diff lists how the columns found differ from the model's in what the
// star depends on, and the columns the model lacks.
func diff(table totesys.Table, found []totesys.Column) (changes []string, extra []Carried) {
	have := map[string]totesys.Column{}
	for _, c := range found {
		have[c.Name] = c
	}
	for _, got := range found {
		if _, ok := table.Column(got.Name); !ok && got.Name != totesys.XidColumn {
			extra = append(extra, Carried{Table: table.Name, Column: got.Name, Type: describe(got)})
		}
	}
	for _, want := range table.Columns {
		got, ok := have[want.Name]
		switch {
		case !ok:
			msg := fmt.Sprintf("%s.%s: column dropped (was %s)", table.Name, want.Name, describe(want))
			// A rename shows as a dropped column and a new one.
			var like []string
			for _, e := range extra {
				if e.Type == describe(want) {
					like = append(like, e.Column)
				}
			}
			if len(like) == 1 {
				msg += fmt.Sprintf(", or renamed to %s", like[0])
			}
			changes = append(changes, msg)
		case got.Type != want.Type || got.Nullable != want.Nullable:
			changes = append(changes, fmt.Sprintf("%s.%s: type changed from %s to %s", table.Name, want.Name, describe(want), describe(got)))
		}
	}
	return changes, extra
}

func describe(c totesys.Column) string {
	if c.Nullable {
		return string(c.Type) + " NULL"
	}
	return string(c.Type) + " NOT NULL"
}

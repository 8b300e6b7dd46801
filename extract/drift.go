package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/totesys"
)

// DriftError reports source tables whose columns differ from the totesys model.
type DriftError struct {
	Changes []string // one per difference, e.g. "sales_order.discount: new column numeric"
}

// ErrorKind is tote.Fatal: the schema stays drifted until a person acts.
func (e *DriftError) ErrorKind() tote.Kind { return tote.Fatal }

func (e *DriftError) Error() string {
	return "the source schema has drifted from the totesys model, nothing was committed: " + strings.Join(e.Changes, "; ")
}

// checkDrift compares every source table with the model.
func checkDrift(ctx context.Context, tx pgx.Tx) error {
	var changes []string
	for _, table := range totesys.Tables {
		cols, err := totesys.Inspect(ctx, tx, table.Name)
		if err != nil {
			exists, existsErr := tableExists(ctx, tx, table.Name)
			if existsErr == nil && !exists {
				changes = append(changes, fmt.Sprintf("%s: table is missing", table.Name))
				continue
			}
			return err
		}
		changes = append(changes, diff(table, cols)...)
	}
	if len(changes) > 0 {
		return &DriftError{Changes: changes}
	}
	return nil
}

func tableExists(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass(quote_ident($1)) IS NOT NULL`, name).Scan(&ok)
	return ok, err
}

// diff lists how the columns found differ from the model's.
func diff(table totesys.Table, found []totesys.Column) []string {
	var changes []string
	have := map[string]totesys.Column{}
	for _, c := range found {
		have[c.Name] = c
	}
	for _, want := range table.Columns {
		got, ok := have[want.Name]
		switch {
		case !ok:
			changes = append(changes, fmt.Sprintf("%s.%s: column dropped (was %s)", table.Name, want.Name, describe(want)))
		case got.Type != want.Type || got.Nullable != want.Nullable:
			changes = append(changes, fmt.Sprintf("%s.%s: type changed from %s to %s", table.Name, want.Name, describe(want), describe(got)))
		}
	}
	for _, got := range found {
		if _, ok := table.Column(got.Name); !ok {
			changes = append(changes, fmt.Sprintf("%s.%s: new column %s", table.Name, got.Name, describe(got)))
		}
	}
	return changes
}

func describe(c totesys.Column) string {
	if c.Nullable {
		return string(c.Type) + " NULL"
	}
	return string(c.Type) + " NOT NULL"
}

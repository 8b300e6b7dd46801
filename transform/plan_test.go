package transform

import (
	"testing"

	"github.com/terrifictotes/tote/star"
)

// Every star table can be made as the model says: a plan for each table
// made from a source, and every calendar column is a part of a day this
// package knows.
func TestEveryTableHasAPlan(t *testing.T) {
	t.Parallel()
	for _, table := range star.Tables {
		if table.Source == "" {
			for _, c := range table.Columns {
				if _, ok := dateRow(0).part(c.Name); !ok || c.Conv != star.Calendar {
					t.Errorf("%s.%s: not a calendar part", table.Name, c.Name)
				}
			}
			continue
		}
		if _, err := newPlan(newOutput(nil, table), ""); err != nil {
			t.Errorf("%s: %v", table.Name, err)
		}
	}
}

package totesys

import (
	"strings"
	"testing"
)

func TestModelShape(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, table := range Tables {
		if n := len(table.Columns); table.Columns[n-2].Name != CreatedAt || table.Columns[n-1].Name != LastUpdated {
			t.Errorf("%s does not end with created_at, last_updated", table.Name)
		}
		if table.Key() != table.Name+"_id" || table.Columns[0].Type != Integer {
			t.Errorf("%s: key %s is not <table>_id integer", table.Name, table.Key())
		}
		for _, fk := range table.ForeignKeys {
			if !seen[fk.Table] {
				t.Errorf("%s references %s, which does not come before it", table.Name, fk.Table)
			}
			if _, ok := table.Column(fk.Column); !ok {
				t.Errorf("%s: foreign key column %s missing", table.Name, fk.Column)
			}
		}
		seen[table.Name] = true
	}
	if len(Tables) != 11 {
		t.Errorf("%d tables, want 11", len(Tables))
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	if tab, err := Lookup("payment"); err != nil || tab.Key() != "payment_id" {
		t.Errorf("Lookup(payment) = %v, %v", tab.Name, err)
	}
	if _, err := Lookup(MigrationsTable); err == nil || !strings.Contains(err.Error(), MigrationsTable) {
		t.Errorf("Lookup(_prisma_migrations) = %v, want an error naming it", err)
	}
}

func TestKeyStatementsCoverEveryTable(t *testing.T) {
	t.Parallel()
	groups := KeyStatements()
	tables := map[string]int{}
	for _, g := range groups {
		for _, s := range g {
			tables[strings.Fields(s)[2]]++
		}
	}
	for _, table := range Tables {
		if want := 1 + len(table.Unique); tables[table.Name] != want {
			t.Errorf("%s has %d key statements, want %d", table.Name, tables[table.Name], want)
		}
	}
	if tables[MigrationsTable] != 1 {
		t.Errorf("_prisma_migrations has no primary key statement")
	}
}

func TestEveryTypeHasALakeKind(t *testing.T) {
	t.Parallel()
	for _, tbl := range Tables {
		for _, c := range tbl.Columns {
			if _, ok := lakeKinds[c.Type]; !ok {
				t.Errorf("%s.%s: type %s has no lake kind", tbl.Name, c.Name, c.Type)
			}
		}
	}
}

package star

import "testing"

func TestModel(t *testing.T) {
	if len(Tables) != 11 {
		t.Fatalf("%d tables, want 11", len(Tables))
	}
	seenFact := false
	for _, table := range Tables {
		if table.Kind == Fact {
			seenFact = true
			if table.Surrogate == "" || len(table.Key) != 4 {
				t.Errorf("%s: fact without a surrogate or version key", table.Name)
			}
		} else if seenFact {
			t.Errorf("%s: dimension listed after a fact", table.Name)
		}
		for _, k := range table.Key {
			if _, ok := table.Column(k); !ok {
				t.Errorf("%s: key column %s missing", table.Name, k)
			}
		}
		schema := table.Schema()
		if got := len(schema.Columns()); got != len(table.Columns) {
			t.Errorf("%s: Parquet schema has %d columns, model %d", table.Name, got, len(table.Columns))
		}
	}
	if _, err := Lookup("fact_sales_order"); err != nil {
		t.Error(err)
	}
	if _, err := Lookup("sales"); err == nil {
		t.Error("Lookup(sales) succeeded")
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

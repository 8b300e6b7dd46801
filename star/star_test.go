package star

import (
	"slices"
	"testing"

	"github.com/terrifictotes/tote/totesys"
)

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

// Every column's source exists in the totesys model and its conversion fits
// the two types; every join follows a source column to the joined table;
// every reference names a dimension. The transform, verify and the
// warehouse all interpret these, so a mistake here is a mistake everywhere.
func TestMappingFitsTheSourceModel(t *testing.T) {
	t.Parallel()
	fits := func(conv Conversion, in totesys.Type, out Type) bool {
		switch conv {
		case Copy:
			return in == totesys.Integer && out == Integer || in == totesys.Money && out == Money ||
				in == totesys.Boolean && out == Boolean ||
				out == Text && (in == totesys.Text || in == totesys.PaymentTypeName || in == totesys.TransactionType)
		case DateOf:
			return in == totesys.Timestamp && out == Date
		case TimeOf:
			return in == totesys.Timestamp && out == Time
		case ParseDate:
			return in == totesys.Text && out == Date
		case CurrencyName:
			return in == totesys.Text && out == Text
		}
		return false
	}
	for _, tbl := range Tables {
		if tbl.Source == "" {
			for _, c := range tbl.Columns {
				if c.From != "" || c.Conv != Calendar {
					t.Errorf("%s.%s: a table without a source has calendar columns only", tbl.Name, c.Name)
				}
			}
			continue
		}
		src, err := totesys.Lookup(tbl.Source)
		if err != nil {
			t.Errorf("%s: %v", tbl.Name, err)
			continue
		}
		joined := map[string]bool{tbl.Source: true}
		for _, j := range tbl.Joins {
			on, ok := src.Column(j.On)
			if _, err := totesys.Lookup(j.Table); err != nil || !ok || on.Type != totesys.Integer {
				t.Errorf("%s: join %s on %s.%s: not an integer column of the source, or no such table", tbl.Name, j.Table, src.Name, j.On)
			}
			joined[j.Table] = true
		}
		if tbl.ID() != tbl.Columns[0].Name || tbl.Columns[0].From != src.Key() {
			t.Errorf("%s: the first column must be the source's key %s, is made from %q", tbl.Name, src.Key(), tbl.Columns[0].From)
		}
		for _, c := range tbl.Columns {
			if c.Comment == "" {
				t.Errorf("%s.%s: no comment", tbl.Name, c.Name)
			}
			if c.References != "" {
				if d, err := Lookup(c.References); err != nil || d.Kind != Dimension {
					t.Errorf("%s.%s: references %q, not a dimension", tbl.Name, c.Name, c.References)
				}
			}
			switch c.Conv {
			case Xmin, Batch, Calendar, Deleted:
				if c.From != "" {
					t.Errorf("%s.%s: %s takes no source column, has %q", tbl.Name, c.Name, c.Conv, c.From)
				}
				continue
			}
			table, name := c.FromTable(tbl.Source)
			if !joined[table] {
				t.Errorf("%s.%s: made from %s, which the table neither reads nor joins", tbl.Name, c.Name, table)
				continue
			}
			st, _ := totesys.Lookup(table)
			in, ok := st.Column(name)
			if !ok {
				t.Errorf("%s.%s: no source column %s.%s", tbl.Name, c.Name, table, name)
				continue
			}
			if !fits(c.Conv, in.Type, c.Type) {
				t.Errorf("%s.%s (%s) cannot be made from %s.%s (%s) by %s", tbl.Name, c.Name, c.Type, table, name, in.Type, c.Conv)
			}
			if in.Nullable && !c.Nullable {
				t.Errorf("%s.%s is NOT NULL, made from nullable %s.%s", tbl.Name, c.Name, table, name)
			}
		}
		if tbl.Comment == "" {
			t.Errorf("%s: no comment", tbl.Name)
		}
	}
}

// The tables a transform keeps from batch to batch are exactly those on
// either side of a join, and the columns the star reads of a table are
// exactly those its tables are made from and join on.
func TestJoinSources(t *testing.T) {
	t.Parallel()
	want := map[string]bool{}
	read := map[string]map[string]bool{}
	reads := func(table, column string) {
		if read[table] == nil {
			read[table] = map[string]bool{}
		}
		read[table][column] = true
	}
	for _, tbl := range Tables {
		for _, j := range tbl.Joins {
			want[tbl.Source], want[j.Table] = true, true
			reads(tbl.Source, j.On)
		}
		for _, c := range tbl.Columns {
			if c.From != "" {
				reads(c.FromTable(tbl.Source))
			}
		}
	}
	got := JoinSources()
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("JoinSources() = %v, want the %d tables on either side of a join", got, len(want))
	}
	for _, table := range got {
		if !want[table] {
			t.Errorf("JoinSources() has %s, which is on no side of a join", table)
		}
	}
	for _, source := range append(totesys.TableNames(), "no_such_table") {
		cols := ColumnsRead(source)
		if len(cols) != len(read[source]) {
			t.Errorf("ColumnsRead(%s) = %v, want the %d columns read", source, cols, len(read[source]))
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if !read[source][c] || seen[c] {
				t.Errorf("ColumnsRead(%s) has %s, which no table reads, or twice", source, c)
			}
			seen[c] = true
		}
	}
	if !slices.Contains(ColumnsRead("staff"), "department_id") {
		t.Error("the columns read of staff lack department_id, on which dim_staff joins department")
	}
}

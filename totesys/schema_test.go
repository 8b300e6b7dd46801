package totesys_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/totesys"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// The DDL and the Go model are two writings of one schema: they must agree
// column for column, type for type, and key for key.
func TestCreateMatchesModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	if err := totesys.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	all, err := totesys.InspectAll(ctx, conn, append(totesys.TableNames(), "no_such_table"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(totesys.Tables) {
		t.Errorf("InspectAll found %d tables, want %d (not no_such_table)", len(all), len(totesys.Tables))
	}
	for _, table := range totesys.Tables {
		got, err := totesys.Inspect(ctx, conn, table.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, table.Columns) {
			t.Errorf("%s: database has\n%v\nmodel has\n%v", table.Name, got, table.Columns)
		}
		if !slices.Equal(all[table.Name], got) {
			t.Errorf("%s: InspectAll has\n%v\nInspect has\n%v", table.Name, all[table.Name], got)
		}
	}

	rows, err := conn.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.contype::text, a.attname, CASE WHEN c.confrelid = 0 THEN '' ELSE c.confrelid::regclass::text END
		FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		WHERE c.connamespace = 'public'::regnamespace AND c.conrelid::regclass::text <> '_prisma_migrations'
		ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	type constraint struct{ Table, Kind, Column, Ref string }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[constraint])
	if err != nil {
		t.Fatal(err)
	}
	var want []constraint
	for _, table := range totesys.Tables {
		want = append(want, constraint{table.Name, "p", table.Key(), ""})
		for _, u := range table.Unique {
			want = append(want, constraint{table.Name, "u", u, ""})
		}
		for _, fk := range table.ForeignKeys {
			want = append(want, constraint{table.Name, "f", fk.Column, fk.Table})
		}
	}
	slices.SortFunc(want, func(a, b constraint) int {
		return cmpStrings(a.Table+" "+a.Kind+" "+a.Column, b.Table+" "+b.Kind+" "+b.Column)
	})
	if !slices.Equal(got, want) {
		t.Errorf("constraints:\n got %v\nwant %v", got, want)
	}

	existing, err := totesys.Existing(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(totesys.TableNames(), totesys.MigrationsTable); !slices.Equal(existing, want) {
		t.Errorf("Existing = %v, want %v", existing, want)
	}
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDropRemovesEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	if err := totesys.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := totesys.Drop(ctx, conn); err != nil {
		t.Fatal(err)
	}
	existing, err := totesys.Existing(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(existing) != 0 {
		t.Errorf("after Drop, tables remain: %v", existing)
	}
	// The enums went too, so the schema can be created again.
	if err := totesys.Create(ctx, conn); err != nil {
		t.Fatalf("create after drop: %v", err)
	}
}

func TestInspectMissingTable(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	_, err := totesys.Inspect(context.Background(), conn, "sales_order")
	if err == nil || err.Error() != `inspect sales_order: table "sales_order" does not exist in the source` {
		t.Fatalf("err = %v", err)
	}
}

func TestResetSequencesContinuesAfterLargestID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	if err := totesys.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO currency (currency_id, currency_code, last_updated) VALUES (7, 'GBP', now())`); err != nil {
		t.Fatal(err)
	}
	if err := totesys.ResetSequences(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := conn.QueryRow(ctx, `INSERT INTO currency (currency_code, last_updated) VALUES ('USD', now()) RETURNING currency_id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 8 {
		t.Errorf("next currency id = %d, want 8", id)
	}
}

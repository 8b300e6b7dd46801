package warehouse_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

func migrate(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	if err := warehouse.New(db, nil).Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func execSQL(t *testing.T, db *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// The migrations and star.Tables are two writings of one schema: they must
// agree column for column, type for type, and key for key.
func TestMigrateMatchesModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	migrate(t, db)

	type column struct {
		Name, Type string
		Nullable   bool
	}
	for _, table := range star.Tables {
		rows, err := db.Query(ctx, `
			SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
			FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum`, "public."+table.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
		if err != nil {
			t.Fatal(err)
		}
		var want []column
		if table.Kind == star.Fact {
			want = append(want, column{table.Surrogate, "integer", false})
		}
		for _, c := range table.Columns {
			want = append(want, column{c.Name, string(c.Type), c.Nullable})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: database has\n%v\nmodel has\n%v", table.Name, got, want)
		}
		if table.Kind == star.Fact {
			var seq *string
			if err := db.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, $2)`, table.Name, table.Surrogate).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			if seq == nil {
				t.Errorf("%s.%s is not serial", table.Name, table.Surrogate)
			}
		}
	}

	// Keys, and a foreign key from every column that references a
	// dimension (star.Column.References) to the dimension's key, validated.
	rows, err := db.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.contype::text,
		       array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
		             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
		       coalesce(c.confrelid::regclass::text || ' ' || (SELECT string_agg(a.attname, ',') FROM pg_attribute a
		                WHERE a.attrelid = c.confrelid AND a.attnum = ANY(c.confkey)), ''),
		       c.convalidated
		FROM pg_constraint c
		WHERE c.connamespace = 'public'::regnamespace AND c.contype IN ('p', 'u', 'f')`)
	if err != nil {
		t.Fatal(err)
	}
	type constraint struct {
		Table, Kind string
		Columns     []string
		References  string
		Validated   bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[constraint])
	if err != nil {
		t.Fatal(err)
	}
	var want []constraint
	for _, table := range star.Tables {
		if table.Kind == star.Fact {
			want = append(want, constraint{table.Name, "p", []string{table.Surrogate}, "", true},
				constraint{table.Name, "u", table.Key, "", true})
		} else {
			want = append(want, constraint{table.Name, "p", table.Key, "", true})
		}
		for _, c := range table.References() {
			dim, err := star.Lookup(c.References)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, constraint{table.Name, "f", []string{c.Name}, dim.Name + " " + dim.Key[0], true})
		}
	}
	order := func(a, b constraint) int {
		return strings.Compare(a.Table+" "+a.Kind+" "+strings.Join(a.Columns, ","), b.Table+" "+b.Kind+" "+strings.Join(b.Columns, ","))
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.EqualFunc(got, want, func(a, b constraint) bool {
		return a.Table == b.Table && a.Kind == b.Kind && slices.Equal(a.Columns, b.Columns) &&
			a.References == b.References && a.Validated == b.Validated
	}) {
		t.Errorf("constraints:\n got %v\nwant %v", got, want)
	}

	if err := warehouse.New(db, nil).Check(ctx); err != nil {
		t.Errorf("Check after Migrate: %v", err)
	}
}

// schemaState is what a migration could change: the relations of the
// public and tote schemas and the recorded migrations.
func schemaState(t *testing.T, db *pgxpool.Pool) []string {
	t.Helper()
	return pgtest.Texts(t, db, `
		SELECT n.nspname || '.' || c.relname || ' ' || c.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('public', 'tote')
		UNION ALL
		SELECT 'migration ' || version || ' ' || name || ' ' || applied_at::text FROM tote.schema_migrations
		ORDER BY 1`)
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	db, _ := newWarehouse(t)
	migrate(t, db)
	before := schemaState(t, db)
	if !slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, "public.fact_payment ") }) {
		t.Fatal("no fact_payment after Migrate")
	}
	migrate(t, db)
	if after := schemaState(t, db); !slices.Equal(before, after) {
		t.Errorf("second Migrate changed the schema:\nbefore %v\nafter  %v", before, after)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM tote.schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Errorf("%d migrations recorded, want %d", n, len(files))
	}
}

func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	db, url := newWarehouse(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		// Separate pools, as separate processes would have.
		p, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		wg.Go(func() { errs[i] = warehouse.New(p, nil).Migrate(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if err := warehouse.New(db, nil).Check(context.Background()); err != nil {
		t.Error(err)
	}
}

// starTablesPresent lists the star tables in the public schema.
func starTablesPresent(t *testing.T, db *pgxpool.Pool) []string {
	t.Helper()
	var present []string
	for _, table := range star.Tables {
		var ok bool
		if err := db.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, "public."+table.Name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			present = append(present, table.Name)
		}
	}
	return present
}

func TestMigrateRefusesConflictingTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	execSQL(t, db, `CREATE TABLE fact_sales_order (sales_record_id int, foo text)`)
	err := warehouse.New(db, nil).Migrate(ctx)
	if err == nil {
		t.Fatal("Migrate accepted a conflicting fact_sales_order")
	}
	t.Log(err)
	for _, want := range []string{
		"table fact_sales_order already exists and does not match the model",
		"column sales_record_id: expected integer NOT NULL DEFAULT nextval() (serial), found integer",
		"missing columns: sales_order_id (integer NOT NULL), created_date (date NOT NULL), ",
		"unit_price (numeric(10,2) NOT NULL)",
		"columns not in the model: foo (text)",
		"no primary key (expected PRIMARY KEY (sales_record_id))",
		"nothing was changed",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if got := starTablesPresent(t, db); !slices.Equal(got, []string{"fact_sales_order"}) {
		t.Errorf("star tables after the failed migration: %v", got)
	}
	var tote bool
	if err := db.QueryRow(ctx, `SELECT to_regnamespace('tote') IS NOT NULL`).Scan(&tote); err != nil {
		t.Fatal(err)
	}
	if tote {
		t.Error("the failed migration left schema tote behind")
	}
	var cols int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'fact_sales_order'`).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != 2 {
		t.Errorf("fact_sales_order has %d columns after the failed migration, want its 2", cols)
	}
}

// A table made by hand exactly as the model says is adopted, rows and all.
func TestMigrateAdoptsMatchingTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	execSQL(t, db, `CREATE TABLE dim_currency (currency_id integer PRIMARY KEY, currency_code text NOT NULL, currency_name text NOT NULL);
		INSERT INTO dim_currency VALUES (1, 'GBP', 'Pound Sterling')`)
	migrate(t, db)
	if got := dump(t, db, "dim_currency"); !slices.Equal(got, []string{render("dim_currency", 0, row{"currency_id": 1, "currency_code": "GBP", "currency_name": "Pound Sterling"})}) {
		t.Errorf("dim_currency after Migrate: %v", got)
	}
	if err := warehouse.New(db, nil).Check(ctx); err != nil {
		t.Error(err)
	}
}

// Check catches a star table changed after it was created, and so does
// Load, which checks before it loads.
func TestCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	migrate(t, db)
	execSQL(t, db, `ALTER TABLE dim_currency ALTER COLUMN currency_id TYPE bigint;
		ALTER TABLE fact_payment ALTER COLUMN paid DROP NOT NULL;
		ALTER TABLE fact_sales_order DROP CONSTRAINT fact_sales_order_version_key;
		DROP TABLE dim_payment_type CASCADE`)
	err := warehouse.New(db, nil).Check(ctx)
	if err == nil {
		t.Fatal("Check passed an altered warehouse")
	}
	t.Log(err)
	for _, want := range []string{
		"warehouse table dim_currency does not match the model: column currency_id: expected integer NOT NULL, found bigint NOT NULL",
		"warehouse table fact_payment does not match the model: column paid: expected boolean NOT NULL, found boolean",
		"warehouse table fact_sales_order does not match the model: no unique key on the row version (expected UNIQUE (sales_order_id, last_updated_date, last_updated_time, source_xmin))",
		"warehouse table dim_payment_type is missing",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if _, err := warehouse.New(db, nil).Load(ctx, memLake(t)); err == nil || !strings.Contains(err.Error(), "dim_currency") {
		t.Errorf("Load on an altered warehouse: %v", err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	db, _ := newWarehouse(t)
	migrate(t, db)
	execSQL(t, db, `INSERT INTO tote.schema_migrations (version, name) VALUES (99, '0099_future.sql')`)
	err := warehouse.New(db, nil).Migrate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this tote knows") {
		t.Errorf("Migrate on a newer schema: %v", err)
	}
}

// A migration group keeps its own line of versions: it is refused on a
// warehouse not migrated yet, applied once, refused when it changed unless
// it can be reset (derived), reset and applied again then, and refused
// when the warehouse has a newer version of it.
func TestMigrateGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := newWarehouse(t)
	w := warehouse.New(db, nil)
	g := warehouse.Group{Name: "things", Migrations: []warehouse.Migration{
		{Version: 1, Name: "0001_things", SQL: `CREATE TABLE tote.things (n integer); INSERT INTO tote.things VALUES (1)`},
	}}
	if err := w.MigrateGroup(ctx, g); err == nil || !strings.Contains(err.Error(), "migrate things: the warehouse has not been migrated by this version of tote: load it once") {
		t.Errorf("a group before the warehouse is migrated: %v", err)
	}
	migrate(t, db)
	for range 2 {
		if err := w.MigrateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	count := func() string {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM tote.things`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return strings.Repeat("x", n)
	}
	if got := count(); got != "x" {
		t.Errorf("applied twice: %d rows", len(got))
	}

	changed := g
	changed.Migrations = []warehouse.Migration{{Version: 1, Name: "0001_things", SQL: g.Migrations[0].SQL + `; INSERT INTO tote.things VALUES (2)`}}
	if err := w.MigrateGroup(ctx, changed); err == nil || !strings.Contains(err.Error(), "migration 0001_things was applied with other text than this tote has") {
		t.Errorf("a changed migration: %v", err)
	}
	changed.Reset = `DROP TABLE tote.things`
	if err := w.MigrateGroup(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != "xx" {
		t.Errorf("reset and applied again: %d rows, want 2", len(got))
	}

	execSQL(t, db, `INSERT INTO tote.group_migrations (grp, version, name, checksum) VALUES ('things', 2, '0002_future', '')`)
	if err := w.MigrateGroup(ctx, changed); err == nil || !strings.Contains(err.Error(), "migrate things: the warehouse has its version 2, newer than this tote knows: upgrade tote") {
		t.Errorf("a newer group: %v", err)
	}
}

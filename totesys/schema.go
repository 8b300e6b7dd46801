package totesys

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	//go:embed schema.sql
	schemaSQL string
	//go:embed keys.sql
	keysSQL string
	//go:embed foreign_keys.sql
	foreignKeysSQL string
)

// DB is what the schema functions need of a connection, a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CreateTables creates the enums and every table, without keys: KeyStatements
// and AddForeignKeys add those.
func CreateTables(ctx context.Context, db DB) error {
	if _, err := db.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create totesys tables: %w", err)
	}
	return nil
}

// KeyStatements returns the statements that add the primary and unique
// keys, grouped by table: statements of different groups may run at once.
func KeyStatements() [][]string {
	var groups [][]string
	index := map[string]int{}
	for _, line := range strings.Split(keysSQL, "\n") {
		if !strings.HasPrefix(line, "ALTER TABLE ") {
			continue
		}
		table := strings.Fields(line)[2]
		i, ok := index[table]
		if !ok {
			i = len(groups)
			index[table] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], line)
	}
	return groups
}

// AddKeys adds the primary and unique keys, one after another.
func AddKeys(ctx context.Context, db DB) error {
	if _, err := db.Exec(ctx, keysSQL); err != nil {
		return fmt.Errorf("add totesys keys: %w", err)
	}
	return nil
}

// AddForeignKeys adds the foreign keys, checking the rows already present.
func AddForeignKeys(ctx context.Context, db DB) error {
	if _, err := db.Exec(ctx, foreignKeysSQL); err != nil {
		return fmt.Errorf("add totesys foreign keys: %w", err)
	}
	return nil
}

// Create creates the complete totesys schema in db.
func Create(ctx context.Context, db DB) error {
	if err := CreateTables(ctx, db); err != nil {
		return err
	}
	if err := AddKeys(ctx, db); err != nil {
		return err
	}
	return AddForeignKeys(ctx, db)
}

// Existing returns the totesys tables (business tables and
// _prisma_migrations) present in db's public schema, in model order.
func Existing(ctx context.Context, db DB) ([]string, error) {
	names := append(TableNames(), MigrationsTable)
	rows, err := db.Query(ctx,
		`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v') AND c.relname = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("list totesys tables: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list totesys tables: %w", err)
	}
	present := make(map[string]bool, len(found))
	for _, n := range found {
		present[n] = true
	}
	var out []string
	for _, n := range names {
		if present[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Drop removes every totesys table and enum from db, with their rows.
func Drop(ctx context.Context, db DB) error {
	names := append(TableNames(), MigrationsTable)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pgx.Identifier{n}.Sanitize()
	}
	sql := "DROP TABLE IF EXISTS " + strings.Join(quoted, ", ") + " CASCADE;" +
		` DROP TYPE IF EXISTS "PaymentTypeName", "TransactionType" CASCADE`
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop totesys schema: %w", err)
	}
	return nil
}

// ResetSequences moves every table's id sequence past the largest id, so
// rows inserted by the application after a bulk load get fresh ids.
func ResetSequences(ctx context.Context, db DB) error {
	for _, t := range Tables {
		sql := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), coalesce(max(%s), 0) + 1, false) FROM %s`,
			t.Name, t.Key(), pgx.Identifier{t.Key()}.Sanitize(), pgx.Identifier{t.Name}.Sanitize())
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("reset sequence of %s: %w", t.Name, err)
		}
	}
	return nil
}

// inspectSQL reads the columns of the tables named $1, table by table, in
// order.
const inspectSQL = `
SELECT c.relname::text, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`

// inspect runs inspectSQL over names.
func inspect(ctx context.Context, db DB, names []string) (map[string][]Column, error) {
	rows, err := db.Query(ctx, inspectSQL, names)
	if err != nil {
		return nil, err
	}
	found := map[string][]Column{}
	var table string
	var c Column
	_, err = pgx.ForEachRow(rows, []any{&table, &c.Name, &c.Type, &c.Nullable}, func() error {
		found[table] = append(found[table], c)
		return nil
	})
	return found, err
}

// InspectAll reads the columns of the named tables as the database has
// them, in one query (Inspect's, table by table, is a round trip each): a
// table that does not exist, or has no columns, is not in the map.
func InspectAll(ctx context.Context, db DB, names []string) (map[string][]Column, error) {
	found, err := inspect(ctx, db, names)
	if err != nil {
		return nil, fmt.Errorf("inspect the source tables: %w", err)
	}
	return found, nil
}

// Inspect reads the columns of the named table as the database has them.
// It returns an error if the table does not exist.
func Inspect(ctx context.Context, db DB, name string) ([]Column, error) {
	found, err := inspect(ctx, db, []string{name})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	cols := found[name]
	if len(cols) == 0 {
		return nil, fmt.Errorf("inspect %s: table %q does not exist in the source", name, name)
	}
	return cols, nil
}

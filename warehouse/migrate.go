package warehouse

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/star"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string // the file name
	sql     string
}

// migrations are the schema changes in version order.
var migrations = parseMigrations(migrationFiles)

// starMigration is the version that creates the star tables: before it
// runs, tables of the same names that are already there are compared with
// the model.
const starMigration = 1

// Advisory lock keys: "totemigr" and "toteload" in ASCII.
const (
	migrateLock int64 = 0x746f74656d696772
	loadLock    int64 = 0x746f74656c6f6164
)

// bootstrapSQL creates where applied migrations are recorded.
const bootstrapSQL = `
CREATE SCHEMA IF NOT EXISTS tote;
CREATE TABLE IF NOT EXISTS tote.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

func parseMigrations(fsys fs.FS) []migration {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		digits, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(digits)
		if !ok || err != nil || version <= 0 {
			panic(fmt.Sprintf("warehouse: migration %s is not named NNNN_name.sql", name))
		}
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: version, name: base, sql: string(sql)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			panic(fmt.Sprintf("warehouse: migrations %s and %s have the same number", ms[i-1].name, ms[i].name))
		}
	}
	return ms
}

// Migrate brings the warehouse's schema up to date: it applies the
// migrations not yet recorded in tote.schema_migrations, in order, each in
// a transaction of its own, then the facts' current views (views.go),
// Checks the star tables, and gives them the foreign keys and comments the
// model says (bi.go). Concurrent calls are safe (they take turns); calling
// it again does nothing.
func (w *Warehouse) Migrate(ctx context.Context) error {
	for {
		done, err := w.migrateNext(ctx)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	if err := w.MigrateGroup(ctx, currentViews); err != nil {
		return err
	}
	if err := w.Check(ctx); err != nil {
		return err
	}
	return w.applyModel(ctx)
}

// migrateNext applies the first missing migration and reports whether
// there was none.
func (w *Warehouse) migrateNext(ctx context.Context) (done bool, err error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate warehouse: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return false, fmt.Errorf("migrate warehouse: lock: %w", err)
	}
	// Look before creating: CREATE SCHEMA IF NOT EXISTS needs the CREATE
	// privilege on the database even when the schema is there.
	version, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("migrate %w", err)
	}
	if version == 0 {
		if _, err := tx.Exec(ctx, bootstrapSQL); err != nil {
			return false, fmt.Errorf("migrate warehouse: create tote.schema_migrations: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT version FROM tote.schema_migrations ORDER BY version`)
	if err != nil {
		return false, fmt.Errorf("migrate warehouse: read tote.schema_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return false, fmt.Errorf("migrate warehouse: read tote.schema_migrations: %w", err)
	}
	known := migrations[len(migrations)-1].version
	if len(applied) > 0 && int(applied[len(applied)-1]) > known {
		return false, fmt.Errorf("migrate warehouse: it has schema version %d, newer than this tote knows (%d): upgrade tote",
			applied[len(applied)-1], known)
	}

	var next *migration
	for i := range migrations {
		if !slices.Contains(applied, int32(migrations[i].version)) {
			next = &migrations[i]
			break
		}
	}
	if next == nil {
		return true, tx.Commit(ctx)
	}
	if next.version == starMigration {
		if err := checkExisting(ctx, tx); err != nil {
			return false, fmt.Errorf("migrate warehouse %s: %w (nothing was changed)", next.name, err)
		}
	}
	if _, err := tx.Exec(ctx, next.sql); err != nil {
		return false, fmt.Errorf("migrate warehouse %s: %w", next.name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tote.schema_migrations (version, name) VALUES ($1, $2)`,
		next.version, next.name); err != nil {
		return false, fmt.Errorf("migrate warehouse %s: record it: %w", next.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrate warehouse %s: commit: %w", next.name, err)
	}
	return false, nil
}

// Group is a line of migrations of its own, for a part that keeps objects
// of its own in the warehouse (the dashboard's summaries, package web):
// applied by MigrateGroup under the same lock as the warehouse's
// migrations, and recorded by group name and version in
// tote.group_migrations (migration 0011) with a checksum of each.
type Group struct {
	// Name identifies the group; its versions are its own.
	Name string
	// Migrations are the group's schema changes, numbered from 1.
	Migrations []Migration
	// Reset, if set, makes the group derived: its objects are built from
	// other data and can be made again. When an applied migration's text
	// differs from the one given (the model it is rendered from changed),
	// Reset is run and every migration applied again, in the same
	// transaction. Without Reset such a difference is an error.
	Reset string
}

// Migration is one numbered schema change of a Group.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

func (m Migration) checksum() string {
	sum := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(sum[:])
}

// MigrateGroup brings group g's objects up to date in one transaction, under
// the migration lock: the migrations it lacks are applied in order (all of
// them again after g.Reset if one applied differs). The warehouse must have
// every migration of its own this tote knows: MigrateGroup does not migrate
// it (a reader such as the dashboard must not move the schema on under an
// older loader), and says to load it once.
func (w *Warehouse) MigrateGroup(ctx context.Context, g Group) error {
	ok, err := w.migrated(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("migrate %s: the warehouse has not been migrated by this version of tote: "+
			"load it once with it (tote load, tote run or tote serve), which migrates it", g.Name)
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", g.Name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("migrate %s: lock: %w", g.Name, err)
	}
	rows, err := tx.Query(ctx, `SELECT version, checksum FROM tote.group_migrations WHERE grp = $1 ORDER BY version`, g.Name)
	if err != nil {
		return fmt.Errorf("migrate %s: read tote.group_migrations: %w", g.Name, err)
	}
	applied := map[int]string{}
	var version int
	var sum string
	if _, err := pgx.ForEachRow(rows, []any{&version, &sum}, func() error { applied[version] = sum; return nil }); err != nil {
		return fmt.Errorf("migrate %s: read tote.group_migrations: %w", g.Name, err)
	}
	known := map[int]Migration{}
	for _, m := range g.Migrations {
		known[m.Version] = m
	}
	changed := ""
	for v, sum := range applied {
		m, ok := known[v]
		switch {
		case !ok:
			return fmt.Errorf("migrate %s: the warehouse has its version %d, newer than this tote knows: upgrade tote", g.Name, v)
		case sum != m.checksum():
			changed = m.Name
		}
	}
	if changed != "" {
		if g.Reset == "" {
			return fmt.Errorf("migrate %s: migration %s was applied with other text than this tote has", g.Name, changed)
		}
		if _, err := tx.Exec(ctx, g.Reset); err != nil {
			return fmt.Errorf("migrate %s: reset: %w", g.Name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tote.group_migrations WHERE grp = $1`, g.Name); err != nil {
			return fmt.Errorf("migrate %s: reset: %w", g.Name, err)
		}
		w.log.Info("migration group reset: its definition changed", "group", g.Name, "migration", changed)
		clear(applied)
	}
	for _, m := range g.Migrations {
		if _, done := applied[m.Version]; done {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate %s %s: %w", g.Name, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tote.group_migrations (grp, version, name, checksum) VALUES ($1, $2, $3, $4)`,
			g.Name, m.Version, m.Name, m.checksum()); err != nil {
			return fmt.Errorf("migrate %s %s: record it: %w", g.Name, m.Name, err)
		}
		w.log.Info("migrated", "group", g.Name, "migration", m.Name)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", g.Name, err)
	}
	return nil
}

// Check verifies that every star table is in the warehouse exactly as the
// model defines it: columns, types, nullability and keys. The error names
// each table that differs and each difference, expected against found.
func (w *Warehouse) Check(ctx context.Context) error {
	found, err := inspect(ctx, w.pool)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range star.Tables {
		got := found[t.Name]
		if got == nil {
			errs = append(errs, fmt.Errorf("warehouse table %s is missing", t.Name))
			continue
		}
		if d := differences(t, got); len(d) > 0 {
			errs = append(errs, fmt.Errorf("warehouse table %s does not match the model: %s", t.Name, strings.Join(d, "; ")))
		}
	}
	return errors.Join(errs...)
}

// checkExisting compares the star tables already in the warehouse, before
// migration 0001 creates the others, with the model.
func checkExisting(ctx context.Context, q querier) error {
	found, err := inspect(ctx, q)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range star.Tables {
		if got := found[t.Name]; got != nil {
			// Migration 0012 adds is_deleted to a table that lacks it.
			t.Columns = slices.DeleteFunc(slices.Clone(t.Columns), func(c star.Column) bool {
				return c.Conv == star.Deleted && !slices.ContainsFunc(got.columns, func(g dbColumn) bool { return g.name == c.Name })
			})
			if d := differences(t, got); len(d) > 0 {
				errs = append(errs, fmt.Errorf("table %s already exists and does not match the model: %s", t.Name, strings.Join(d, "; ")))
			}
		}
	}
	return errors.Join(errs...)
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// dbTable is a star table as the warehouse has it.
type dbTable struct {
	kind    string // pg_class.relkind: "r" or "p" for a table
	columns []dbColumn
	primary []string   // primary key columns
	unique  [][]string // columns of the other unique keys
}

type dbColumn struct {
	name     string
	typ      string // format_type
	nullable bool
	serial   bool // defaults to nextval() or is an identity column
}

func (c dbColumn) String() string {
	s := c.typ
	if !c.nullable {
		s += " NOT NULL"
	}
	if c.serial {
		s += " DEFAULT nextval() (serial)"
	}
	return s
}

// The warehouse's star tables are those of the connection's current schema.
const (
	relationsSQL = `
SELECT c.relname, c.relkind::text FROM pg_class c
WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()) AND c.relname = ANY($1)`

	columnsSQL = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false)
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()) AND c.relname = ANY($1)
ORDER BY c.relname, a.attnum`

	// Unique indexes that can stand behind ON CONFLICT: whole-table, on
	// plain columns, valid. Primary key and UNIQUE constraints have one.
	keysSQL = `
SELECT c.relname, i.indisprimary,
       array(SELECT a.attname
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()) AND c.relname = ANY($1)
  AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY c.relname, i.indexrelid`
)

// inspect reads the star tables present in the warehouse.
func inspect(ctx context.Context, q querier) (map[string]*dbTable, error) {
	names := make([]string, len(star.Tables))
	for i, t := range star.Tables {
		names[i] = t.Name
	}
	found := map[string]*dbTable{}
	rows, err := q.Query(ctx, relationsSQL, names)
	if err != nil {
		return nil, fmt.Errorf("inspect warehouse tables: %w", err)
	}
	var name, kind string
	if _, err := pgx.ForEachRow(rows, []any{&name, &kind}, func() error {
		found[name] = &dbTable{kind: kind}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("inspect warehouse tables: %w", err)
	}

	rows, err = q.Query(ctx, columnsSQL, names)
	if err != nil {
		return nil, fmt.Errorf("inspect warehouse columns: %w", err)
	}
	var c dbColumn
	if _, err := pgx.ForEachRow(rows, []any{&name, &c.name, &c.typ, &c.nullable, &c.serial}, func() error {
		if t := found[name]; t != nil {
			t.columns = append(t.columns, c)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("inspect warehouse columns: %w", err)
	}

	rows, err = q.Query(ctx, keysSQL, names)
	if err != nil {
		return nil, fmt.Errorf("inspect warehouse keys: %w", err)
	}
	var primary bool
	var cols []string
	if _, err := pgx.ForEachRow(rows, []any{&name, &primary, &cols}, func() error {
		t := found[name]
		switch {
		case t == nil:
		case primary:
			t.primary = slices.Clone(cols)
		default:
			t.unique = append(t.unique, slices.Clone(cols))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("inspect warehouse keys: %w", err)
	}
	return found, nil
}

// expectedColumns are the columns of t in the warehouse: a fact's
// surrogate key, then the model's columns.
func expectedColumns(t star.Table) []dbColumn {
	var cols []dbColumn
	if t.Kind == star.Fact {
		cols = append(cols, dbColumn{name: t.Surrogate, typ: string(star.Integer), serial: true})
	}
	for _, c := range t.Columns {
		cols = append(cols, dbColumn{name: c.Name, typ: string(c.Type), nullable: c.Nullable})
	}
	return cols
}

// differences lists how got differs from the model's table t, one phrase
// per difference.
func differences(t star.Table, got *dbTable) []string {
	if got.kind != "r" && got.kind != "p" {
		return []string{fmt.Sprintf("it is a %s, not a table", relkindName(got.kind))}
	}
	var d, missing, extra []string
	want := expectedColumns(t)
	for _, w := range want {
		i := slices.IndexFunc(got.columns, func(c dbColumn) bool { return c.name == w.name })
		if i < 0 {
			missing = append(missing, fmt.Sprintf("%s (%s)", w.name, w))
			continue
		}
		g := got.columns[i]
		if !w.serial {
			g.serial = false // a default does not matter elsewhere
		}
		if g != w {
			d = append(d, fmt.Sprintf("column %s: expected %s, found %s", w.name, w, g))
		}
	}
	for _, g := range got.columns {
		if !slices.ContainsFunc(want, func(c dbColumn) bool { return c.name == g.name }) {
			g.serial = false
			extra = append(extra, fmt.Sprintf("%s (%s)", g.name, g))
		}
	}
	if len(missing) > 0 {
		d = append(d, "missing columns: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		d = append(d, "columns not in the model: "+strings.Join(extra, ", "))
	}

	wantPK := t.Key
	if t.Kind == star.Fact {
		wantPK = []string{t.Surrogate}
	}
	switch {
	case got.primary == nil:
		d = append(d, fmt.Sprintf("no primary key (expected PRIMARY KEY (%s))", strings.Join(wantPK, ", ")))
	case !slices.Equal(got.primary, wantPK):
		d = append(d, fmt.Sprintf("primary key: expected (%s), found (%s)", strings.Join(wantPK, ", "), strings.Join(got.primary, ", ")))
	}
	if t.Kind == star.Fact && !slices.ContainsFunc(got.unique, func(u []string) bool { return sameSet(u, t.Key) }) {
		d = append(d, fmt.Sprintf("no unique key on the row version (expected UNIQUE (%s))", strings.Join(t.Key, ", ")))
	}
	return d
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

func relkindName(kind string) string {
	switch kind {
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	case "S":
		return "sequence"
	case "i", "I":
		return "index"
	}
	return "relation of kind " + kind
}

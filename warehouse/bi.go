package warehouse

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/terrifictotes/tote/star"
)

// What the warehouse keeps for BI tools (Tableau, QuickSight, Metabase),
// beyond the star tables' rows, all of it derived from the model:
//
//   - a foreign key from each fact column that references a dimension
//     (star.Column.References) to that dimension's key, validated, so that
//     a BI tool joins by them (Metabase reads them from the catalog);
//   - a placeholder row in a dimension for every key a fact refers to that
//     the dimension does not have (its row was quarantined, or never came:
//     totesys has no foreign key from sales_order to design), so that the
//     fact is loaded and the foreign key holds; its text columns read
//     Unknown until the real row replaces it, and tote.placeholders lists
//     it (the calendar's placeholders are whole days, not listed). They
//     are made only when a foreign key refuses a batch's facts
//     (keepForeignKeys), which is rare: finding them costs a pass over
//     the new rows;
//   - a comment on every star table and column, and on the facts' views of
//     current versions, from the model (star.Table.Comment,
//     star.Column.Comment);
//   - GrantReader: read access to all of that, and nothing of tote's own.
//
// The migrator applies the foreign keys and comments after the migrations
// (applyModel), comparing the catalog with the model, so that a comment
// edited in the model follows without a migration. The load keeps the
// foreign keys true: docs/decisions/0013-warehouse-for-bi.md.

// Unknown is the text of a placeholder dimension row's text columns (its
// nullable ones are NULL).
const Unknown = "(unknown)"

// surrogateComment is the comment of every fact's surrogate key, which the
// model does not list among its columns.
const surrogateComment = "The warehouse's key for this version: numbered in the order versions were loaded, the same in a warehouse rebuilt from the lake."

// currentViewComment is the comment of fact t's current view.
func currentViewComment(t star.Table) string {
	return fmt.Sprintf("The current state of every %s: its newest version in %s, deleted ones left out. Count and sum from here.",
		strings.ReplaceAll(t.Source, "_", " "), t.Name)
}

// calendarParts are the SQL expressions of the calendar table's columns
// (star.Calendar, by name) for a day %[1]s, as the transform makes them:
// a placeholder day is a whole day (tests compare it with the transform).
var calendarParts = map[string]string{
	"year":        "extract(year FROM %[1]s)::integer",
	"month":       "extract(month FROM %[1]s)::integer",
	"day":         "extract(day FROM %[1]s)::integer",
	"day_of_week": "extract(isodow FROM %[1]s)::integer",
	"day_name":    "to_char(%[1]s, 'FMDay')",
	"month_name":  "to_char(%[1]s, 'FMMonth')",
	"quarter":     "extract(quarter FROM %[1]s)::integer",
}

//go:embed bi.sql
var biSQLText string

// foreignKey is one fact column's foreign key to its dimension.
type foreignKey struct {
	fact, column, dim, key string
	name                   string // the constraint's name, as PostgreSQL would make it
	add                    string // the statement that adds it
}

// biTableSQL holds one star table's statements of this file.
type biTableSQL struct {
	// A fact's: its foreign keys, the query listing them, and the
	// placeholders its new rows need: those in its staging table, or all
	// of the table's, of batch $1 or of each row's own.
	foreignKeys                         []foreignKey
	listForeignKeys                     string
	placeholdersStaged, placeholdersAll string
	placeholdersOwn                     string
	// A dimension's, if its placeholders are recorded: marks them
	// resolved by the staged rows.
	resolve string
}

var biSQL = renderBISQL()

func renderBISQL() map[string]biTableSQL {
	tmpl := template.Must(template.New("bi.sql").Funcs(template.FuncMap{
		"list": func(prefix string, cols []string) string {
			out := make([]string, len(cols))
			for i, c := range cols {
				out[i] = prefix + c
			}
			return strings.Join(out, ", ")
		},
	}).Parse(biSQLText))
	render := func(name string, data any) string {
		var b strings.Builder
		if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
			panic(fmt.Sprintf("warehouse: render %s: %v", name, err))
		}
		return b.String()
	}

	type ref struct{ Alias, Column, Dim, Key string }
	type dim struct {
		Alias, Table, Name, Key string
		Columns, Values, Refs   []string
		model                   star.Table
	}
	out := map[string]biTableSQL{}
	for _, t := range star.Tables {
		var s biTableSQL
		if t.Kind == star.Dimension {
			if recorded(t) {
				s.resolve = render("resolve", map[string]string{
					"Stage": ident("tote_stage_" + t.Name), "Name": literal(t.Name), "Key": ident(t.Key[0])})
			}
			out[t.Name] = s
			continue
		}
		var refs []ref
		var dims []*dim
		for _, c := range t.References() {
			d := mustLookup(c.References)
			fk := foreignKey{fact: t.Name, column: c.Name, dim: d.Name, key: d.Key[0], name: t.Name + "_" + c.Name + "_fkey"}
			if len(fk.name) > 63 {
				panic(fmt.Sprintf("warehouse: foreign key name %s is longer than PostgreSQL's 63 bytes", fk.name))
			}
			fk.add = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
				ident(t.Name), ident(fk.name), ident(c.Name), ident(d.Name), ident(fk.key))
			s.foreignKeys = append(s.foreignKeys, fk)

			r := ref{Alias: fmt.Sprintf("r%d", len(refs)+1), Column: ident(c.Name), Dim: ident(d.Name), Key: ident(fk.key)}
			refs = append(refs, r)
			i := slices.IndexFunc(dims, func(x *dim) bool { return x.model.Name == d.Name })
			if i < 0 {
				dims = append(dims, &dim{Alias: fmt.Sprintf("d%d", len(dims)+1), Table: ident(d.Name), Name: literal(d.Name),
					Key: ident(fk.key), Columns: idents(d.ColumnNames()), Values: placeholderValues(d), model: d})
				i = len(dims) - 1
			}
			dims[i].Refs = append(dims[i].Refs, r.Alias)
		}
		var rec []*dim
		for _, d := range dims {
			if recorded(d.model) {
				rec = append(rec, d)
			}
		}
		data := map[string]any{"Fact": ident(t.Name), "FactName": literal(t.Name), "Refs": refs, "Dims": dims, "Recorded": rec}
		s.listForeignKeys = render("foreignKeys", data)
		data["Source"], data["Batch"] = ident("tote_stage_"+t.Name), "$1::text"
		s.placeholdersStaged = render("placeholders", data)
		data["Source"] = ident(t.Name)
		s.placeholdersAll = render("placeholders", data)
		data["Batch"] = "f." + ident(star.BatchID)
		s.placeholdersOwn = render("placeholders", data)
		out[t.Name] = s
	}
	return out
}

// recorded reports whether dimension t's placeholders are listed in
// tote.placeholders: all but the calendar's, which are whole days.
func recorded(t star.Table) bool { return t.Source != "" }

func mustLookup(name string) star.Table {
	t, err := star.Lookup(name)
	if err != nil {
		panic(err)
	}
	return t
}

// placeholderValues are the values of dimension d's columns in a
// placeholder row for key w.id.
func placeholderValues(d star.Table) []string {
	var out []string
	for _, c := range d.Columns {
		var v string
		switch {
		case c.Name == d.Key[0]:
			v = "w.id"
		case d.Source == "" && c.Conv == star.Calendar:
			part, ok := calendarParts[c.Name]
			if !ok {
				panic(fmt.Sprintf("warehouse: %s.%s: no SQL for that part of a day", d.Name, c.Name))
			}
			v = fmt.Sprintf(part, "w.id")
		case c.Nullable:
			v = "NULL"
		case c.Type == star.Text:
			v = literal(Unknown)
		case c.Type == star.Boolean:
			v = "false"
		default:
			panic(fmt.Sprintf("warehouse: %s.%s: no placeholder value for a %s NOT NULL column", d.Name, c.Name, c.Type))
		}
		out = append(out, v)
	}
	return out
}

var plainText = regexp.MustCompile(`^[a-zA-Z0-9_ ()]*$`)

// literal quotes s, a name of the model or a constant of this package,
// as an SQL string; it refuses anything else.
func literal(s string) string {
	if !plainText.MatchString(s) {
		panic(fmt.Sprintf("warehouse: %q is not a name to quote", s))
	}
	return "'" + s + "'"
}

// placeholders makes the placeholder dimension rows that fact t's new rows
// of batch need: those staged, or, after a first load into the empty
// table, all of its rows. Without a batch, they are all of the table's
// rows, each of its own batch (an upgrade). It logs the keys it made up
// and returns how many.
func (w *Warehouse) placeholders(ctx context.Context, q querier, t star.Table, staged bool, batch string) (int, error) {
	s := biSQL[t.Name]
	sql, args := s.placeholdersOwn, []any{}
	switch {
	case staged:
		sql, args = s.placeholdersStaged, []any{batch}
	case batch != "":
		sql, args = s.placeholdersAll, []any{batch}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("placeholders: %w", err)
	}
	var dim string
	var ids []string
	n := 0
	if _, err := pgx.ForEachRow(rows, []any{&dim, &ids}, func() error {
		if len(ids) > 0 {
			n += len(ids)
			shown := ids
			if len(shown) > 20 {
				shown = shown[:20]
			}
			w.log.Warn("facts refer to dimension rows the warehouse does not have: placeholder rows made, "+
				"flagged "+Unknown+" until the real rows come (tote.placeholders)",
				"fact", t.Name, "dimension", dim, "keys", len(ids), "first", strings.Join(shown, ","))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("placeholders: %w", err)
	}
	return n, nil
}

// keepForeignKeys runs write, which writes fact t's new rows of batch
// (staged, or in the table after a first load) or adds its foreign keys
// back, in a savepoint. If a foreign key refuses it, a fact refers to a
// dimension row the warehouse lacks: it rolls back to the savepoint, makes
// the placeholders, and runs write again. The placeholders cost a pass
// over the new rows, paid only when one is missing.
func (w *Warehouse) keepForeignKeys(ctx context.Context, tx pgx.Tx, t star.Table, staged bool, batch string, write func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err = write(sp)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
	}
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != foreignKeyViolation {
		return err
	}
	w.log.Debug("a foreign key refused a fact: placeholders", "fact", t.Name, "error", err)
	if _, err := w.placeholders(ctx, tx, t, staged, batch); err != nil {
		return err
	}
	return write(tx)
}

// checkForeignKeys checks the foreign keys that a first load of batch
// added back unchecked (NOT VALID), by fact: VALIDATE CONSTRAINT, after
// the batch committed, so that the load's transaction does not wait on
// them (they cost a pass over the fact each). It takes only SHARE UPDATE
// EXCLUSIVE on the fact, which readers and the next load's inserts do not
// wait on, but which two checks of one table do: the facts are checked at
// once, each on a connection of its own, and each one's keys one after
// another. A key the rows break (a dimension row missing) gets its
// placeholders, as in the load (keepForeignKeys), and is checked again.
func (w *Warehouse) checkForeignKeys(ctx context.Context, batch string, unchecked map[string][]string) error {
	if len(unchecked) == 0 {
		return nil
	}
	start := time.Now()
	errs := make([]error, len(star.Tables))
	var wg sync.WaitGroup
	for i, t := range star.Tables {
		names := unchecked[t.Name]
		if len(names) == 0 {
			continue
		}
		wg.Go(func() { errs[i] = w.checkFact(ctx, t, batch, names) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.log.Debug("checked the facts' foreign keys", "batch", batch, "seconds", time.Since(start).Seconds())
	return nil
}

// checkFact validates fact t's foreign keys names, in a transaction.
func (w *Warehouse) checkFact(ctx context.Context, t star.Table, batch string, names []string) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check the foreign keys of %s: %w", t.Name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := w.keepForeignKeys(ctx, tx, t, false, batch, func(tx pgx.Tx) error { return validateKeys(ctx, tx, t, names) }); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("check the foreign keys of %s: %w", t.Name, err)
	}
	return nil
}

// validateKeys checks fact t's foreign keys names (VALIDATE CONSTRAINT).
func validateKeys(ctx context.Context, tx pgx.Tx, t star.Table, names []string) error {
	for _, name := range names {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+ident(t.Name)+" VALIDATE CONSTRAINT "+ident(name)); err != nil {
			return fmt.Errorf("check %s: %w", name, err)
		}
	}
	return nil
}

// PostgreSQL's SQLSTATEs for a row a foreign key refuses, and for a lack
// of privilege.
const (
	foreignKeyViolation   = "23503"
	insufficientPrivilege = "42501"
)

// isDenied reports whether err is PostgreSQL's refusal for lack of a
// privilege.
func isDenied(err error) bool {
	pe := (*pgconn.PgError)(nil)
	return errors.As(err, &pe) && pe.Code == insufficientPrivilege
}

// resolvePlaceholders marks the placeholders of dimension t that its
// staged rows replace as resolved by batch.
func resolvePlaceholders(ctx context.Context, tx pgx.Tx, t star.Table, batch string) error {
	sql := biSQL[t.Name].resolve
	if sql == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, sql, batch); err != nil {
		return fmt.Errorf("resolve placeholders: %w", err)
	}
	return nil
}

// dropForeignKeys drops fact t's foreign keys and returns them for
// addForeignKeysUnchecked to add back, in the same transaction.
func dropForeignKeys(ctx context.Context, tx pgx.Tx, t star.Table) ([]uniqueKey, error) {
	s := biSQL[t.Name]
	if s.listForeignKeys == "" {
		return nil, nil
	}
	rows, err := tx.Query(ctx, s.listForeignKeys)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (uniqueKey, error) {
		var k uniqueKey
		return k, r.Scan(&k.name, &k.def, &k.constraint)
	})
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	for _, k := range keys {
		if _, err := tx.Exec(ctx, k.drop(ident(t.Name))); err != nil {
			return nil, fmt.Errorf("drop %s: %w", k.name, err)
		}
	}
	return keys, nil
}

const (
	// foreignKeysSQL lists the single-column foreign keys of the named
	// tables of the current schema: table, column, referenced table,
	// constraint, whether it is checked (not NOT VALID).
	foreignKeysSQL = `
SELECT t.relname::text, a.attname::text, r.relname::text, k.conname::text, k.convalidated
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND t.relname = ANY($1)
  AND t.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())`

	// commentsSQL compares the comments of the model ($1 relations, $2
	// columns, '' for the relation itself, $3 comments) with the catalog's,
	// and returns the statements that make them agree. Relations and
	// columns that are not there are left out.
	commentsSQL = `
WITH model AS (SELECT m.rel, m.col, nullif(m.comment, '') AS comment
               FROM unnest($1::text[], $2::text[], $3::text[]) m(rel, col, comment))
SELECT CASE WHEN m.col = ''
            THEN format('COMMENT ON %s %I IS %L',
                        CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                        m.rel, m.comment)
            ELSE format('COMMENT ON COLUMN %I.%I IS %L', m.rel, m.col, m.comment) END
FROM model m
JOIN pg_class c ON c.relname = m.rel
 AND c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = m.col AND a.attnum > 0 AND NOT a.attisdropped
WHERE (m.col = '' OR a.attnum IS NOT NULL)
  AND m.comment IS DISTINCT FROM CASE WHEN m.col = '' THEN obj_description(c.oid, 'pg_class')
                                      ELSE col_description(c.oid, a.attnum) END
ORDER BY m.rel, m.col`
)

// Comment is the comment the model gives a relation of the star schema (a
// star table, or a fact's view of current versions) or one of its
// columns (Column empty: the relation itself).
type Comment struct {
	Relation, Column, Text string
}

// Comments returns the comments the model gives the star schema: every
// star table and column (a fact's surrogate key included), and each fact's
// view of current versions and its columns (which the warehouse comments
// once the view is there).
func Comments() []Comment {
	var out []Comment
	for _, t := range star.Tables {
		rels := []string{t.Name}
		if t.Kind == star.Fact {
			rels = append(rels, t.CurrentView())
		}
		for _, rel := range rels {
			text := t.Comment
			if rel != t.Name {
				text = currentViewComment(t)
			}
			out = append(out, Comment{Relation: rel, Text: text})
			if t.Kind == star.Fact {
				out = append(out, Comment{Relation: rel, Column: t.Surrogate, Text: surrogateComment})
			}
			for _, c := range t.Columns {
				out = append(out, Comment{Relation: rel, Column: c.Name, Text: c.Comment})
			}
		}
	}
	return out
}

// drift is how the warehouse differs from what applyModel keeps.
type drift struct {
	foreignKeys []foreignKey // missing
	// unchecked are the foreign keys there NOT VALID (a first load's,
	// whose check after its commit did not happen), by fact.
	unchecked map[string][]string
	comments  []string // the statements that make the comments agree
}

// modelDrift compares the warehouse's foreign keys and comments with the
// model.
func modelDrift(ctx context.Context, q querier) (drift, error) {
	var d drift
	var facts []string
	for _, t := range star.Tables {
		if t.Kind == star.Fact {
			facts = append(facts, t.Name)
		}
	}
	rows, err := q.Query(ctx, foreignKeysSQL, facts)
	if err != nil {
		return d, fmt.Errorf("read foreign keys: %w", err)
	}
	type fk struct {
		Table, Column, Dim, Name string
		Checked                  bool
	}
	have, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fk])
	if err != nil {
		return d, fmt.Errorf("read foreign keys: %w", err)
	}
	d.unchecked = map[string][]string{}
	for _, name := range facts {
		for _, k := range biSQL[name].foreignKeys {
			i := slices.IndexFunc(have, func(h fk) bool { return h.Table == k.fact && h.Column == k.column && h.Dim == k.dim })
			switch {
			case i < 0:
				d.foreignKeys = append(d.foreignKeys, k)
			case !have[i].Checked:
				d.unchecked[k.fact] = append(d.unchecked[k.fact], have[i].Name)
			}
		}
	}

	var rels, cols, texts []string
	for _, c := range Comments() {
		rels, cols, texts = append(rels, c.Relation), append(cols, c.Column), append(texts, c.Text)
	}
	rows, err = q.Query(ctx, commentsSQL, rels, cols, texts)
	if err != nil {
		return d, fmt.Errorf("read comments: %w", err)
	}
	if d.comments, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return d, fmt.Errorf("read comments: %w", err)
	}
	return d, nil
}

// applyModel gives the star tables the foreign keys and comments the model
// says they have and they lack, after the migrations: a missing foreign
// key after placeholders for the keys its fact refers to that its
// dimension lacks (an upgraded warehouse's facts may), so that it holds;
// and checks the foreign keys a first load left unchecked (its process
// stopped between its commit and checkForeignKeys). A warehouse that has
// them all costs two catalog queries.
func (w *Warehouse) applyModel(ctx context.Context) error {
	d, err := modelDrift(ctx, w.pool)
	if err != nil || (len(d.foreignKeys) == 0 && len(d.unchecked) == 0 && len(d.comments) == 0) {
		return wrapModel(err)
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return wrapModel(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Under both locks: no migration and no load runs meanwhile.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)`, migrateLock, loadLock); err != nil {
		return wrapModel(fmt.Errorf("lock: %w", err))
	}
	if d, err = modelDrift(ctx, tx); err != nil {
		return wrapModel(err)
	}
	var added []string
	for _, t := range star.Tables {
		names := d.unchecked[t.Name]
		if len(names) == 0 {
			continue
		}
		if err := w.keepForeignKeys(ctx, tx, t, false, "", func(tx pgx.Tx) error { return validateKeys(ctx, tx, t, names) }); err != nil {
			return wrapModel(err)
		}
		added = append(added, names...)
	}
	for _, t := range star.Tables {
		i := slices.IndexFunc(d.foreignKeys, func(k foreignKey) bool { return k.fact == t.Name })
		if i < 0 {
			continue
		}
		var names []string
		if err := w.keepForeignKeys(ctx, tx, t, false, "", func(tx pgx.Tx) error {
			names = nil
			for _, k := range d.foreignKeys[i:] {
				if k.fact != t.Name {
					continue
				}
				if _, err := tx.Exec(ctx, k.add); err != nil {
					return fmt.Errorf("add foreign key %s: %w", k.name, err)
				}
				names = append(names, k.name)
			}
			return nil
		}); err != nil {
			return wrapModel(err)
		}
		added = append(added, names...)
	}
	for _, c := range d.comments {
		if _, err := tx.Exec(ctx, c); err != nil {
			return wrapModel(fmt.Errorf("%s: %w", c, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return wrapModel(err)
	}
	if len(added) > 0 {
		w.log.Debug("added or checked the facts' foreign keys to their dimensions", "foreign_keys", strings.Join(added, ", "))
	}
	if len(d.comments) > 0 {
		w.log.Debug("comments follow the model", "changed", len(d.comments))
	}
	return nil
}

func wrapModel(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("migrate warehouse: foreign keys and comments: %w", err)
}

// The queries of GrantReader.
const (
	// roleSQL: whether role $1 is a superuser and may log in.
	roleSQL = `SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = $1`
	// noRoleSQL: role $1 quoted as an identifier, and the roles of that
	// name in another case.
	noRoleSQL = `SELECT quote_ident($1),
       array(SELECT rolname::text FROM pg_roles WHERE lower(rolname) = lower($1) ORDER BY 1)`
	// ownersSQL: the owners of the relations named $2 in the current
	// schema, and whether role $1 is (a member of) each.
	ownersSQL = `
SELECT DISTINCT pg_get_userbyid(c.relowner)::text, pg_has_role($1, c.relowner, 'MEMBER')
FROM pg_class c
WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()) AND c.relname = ANY($2)
ORDER BY 1`
	// viewsSQL: which of the views named $1 the current schema has.
	viewsSQL = `
SELECT c.relname::text FROM pg_class c
WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
  AND c.relkind IN ('v', 'm') AND c.relname = ANY($1)
ORDER BY 1`
	// lackingSQL: what role $1 lacks of a reader's privileges on the
	// database, the current schema and the relations named $2.
	lackingSQL = `
SELECT 'CONNECT on database ' || current_database() WHERE NOT has_database_privilege($1, current_database(), 'CONNECT')
UNION ALL
SELECT 'USAGE on schema ' || current_schema() WHERE NOT has_schema_privilege($1, current_schema(), 'USAGE')
UNION ALL
SELECT 'SELECT on ' || t FROM unnest($2::text[]) t WHERE NOT has_table_privilege($1, quote_ident(t), 'SELECT')`
)

// Reader says what GrantReader granted a role.
type Reader struct {
	Role     string `json:"role"`
	Database string `json:"database"`
	Schema   string `json:"schema"`
	// Tables and Views are the star tables, and the facts' views of
	// current versions that are there, that the role may read.
	Tables []string `json:"tables"`
	Views  []string `json:"views"`
	// Owners are the roles that own the star tables: the role may read the
	// tables and views they create in Schema later too (later migrations).
	Owners []string `json:"owners"`
	// Notes are what the caller may want to look at: a role that cannot
	// log in, or that has access to tote's schema granted elsewhere.
	Notes []string `json:"notes,omitempty"`
}

// GrantReader lets role read the star schema, for a BI tool, and nothing
// else: CONNECT on the database, USAGE on the star tables' schema, SELECT
// on every star table and every fact's view of current versions there is,
// and SELECT on the tables and views the owners of the star tables create
// in that schema later (ALTER DEFAULT PRIVILEGES), so that a later
// migration's views are readable without granting again. Nothing on
// schema tote (the ledger, runs, rejects, the dashboard's summaries). It
// creates nothing and may be run again. The role must exist, and be
// neither a superuser nor the tables' owner (or a member of it); the
// warehouse must be migrated.
func (w *Warehouse) GrantReader(ctx context.Context, role string) (Reader, error) {
	r := Reader{Role: role}
	wrap := func(err error) (Reader, error) { return Reader{}, fmt.Errorf("grant reader %s: %w", role, err) }
	if role == "" {
		return wrap(errors.New("no role given"))
	}
	switch ok, err := w.migrated(ctx); {
	case isDenied(err):
		return wrap(fmt.Errorf("%w: connect as the role that runs tote load (the owner of the star tables) or a superuser", err))
	case err != nil:
		return wrap(err)
	case !ok:
		v, err := schemaVersion(ctx, w.pool)
		if err != nil {
			return wrap(err)
		}
		return wrap(fmt.Errorf("the warehouse is not migrated (schema version %d; this tote's is %d): "+
			"run tote load or tote run against it first, then grant", v, migrations[len(migrations)-1].version))
	}

	var super, login bool
	err := w.pool.QueryRow(ctx, roleSQL, role).Scan(&super, &login)
	if errors.Is(err, pgx.ErrNoRows) {
		return wrap(w.noRole(ctx, role))
	}
	if err != nil {
		return wrap(fmt.Errorf("look up the role: %w", err))
	}
	if super {
		return wrap(fmt.Errorf("%s is a superuser: it reads and writes everything, whatever is granted; "+
			"give the BI tool a role of its own, without SUPERUSER", role))
	}
	if !login {
		r.Notes = append(r.Notes, role+" cannot log in (NOLOGIN): right for a group role whose members log in; "+
			"otherwise ALTER ROLE "+role+" LOGIN")
	}

	names := make([]string, len(star.Tables))
	var views []string
	for i, t := range star.Tables {
		names[i] = t.Name
		if t.Kind == star.Fact {
			views = append(views, t.CurrentView())
		}
	}
	if err := w.pool.QueryRow(ctx, `SELECT current_database(), coalesce(current_schema(), '')`).Scan(&r.Database, &r.Schema); err != nil {
		return wrap(err)
	}
	rows, err := w.pool.Query(ctx, ownersSQL, role, names)
	if err != nil {
		return wrap(fmt.Errorf("look up the tables' owners: %w", err))
	}
	var owner string
	var member bool
	if _, err := pgx.ForEachRow(rows, []any{&owner, &member}, func() error {
		if member {
			return fmt.Errorf("%s owns the star tables, or is a member of %s, which does: it can change them; "+
				"give the BI tool a role of its own", role, owner)
		}
		r.Owners = append(r.Owners, owner)
		return nil
	}); err != nil {
		return wrap(err)
	}
	rows, err = w.pool.Query(ctx, viewsSQL, views)
	if err != nil {
		return wrap(fmt.Errorf("look for the facts' views: %w", err))
	}
	if r.Views, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return wrap(fmt.Errorf("look for the facts' views: %w", err))
	}
	r.Tables = names

	// GRANT takes no parameters: the role, the database and the schema are
	// identifiers, quoted.
	who := ident(role)
	stmts := []string{
		"GRANT CONNECT ON DATABASE " + ident(r.Database) + " TO " + who,
		"GRANT USAGE ON SCHEMA " + ident(r.Schema) + " TO " + who,
		"GRANT SELECT ON TABLE " + strings.Join(idents(append(slices.Clone(r.Tables), r.Views...)), ", ") + " TO " + who,
	}
	for _, o := range r.Owners {
		stmts = append(stmts, "ALTER DEFAULT PRIVILEGES FOR ROLE "+ident(o)+" IN SCHEMA "+ident(r.Schema)+
			" GRANT SELECT ON TABLES TO "+who)
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return wrap(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return wrap(fmt.Errorf("%s: %w (connect as the owner of the star tables, %s, or a superuser)",
				s, err, strings.Join(r.Owners, ", ")))
		}
	}
	// A GRANT by a role without the grant option warns and grants
	// nothing: look.
	var lacking []string
	rows, err = tx.Query(ctx, lackingSQL,
		role, append(slices.Clone(r.Tables), r.Views...))
	if err != nil {
		return wrap(fmt.Errorf("check the grants: %w", err))
	}
	if lacking, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return wrap(fmt.Errorf("check the grants: %w", err))
	}
	if len(lacking) > 0 {
		return wrap(fmt.Errorf("the grants gave it no %s: connect as the owner of the star tables, %s, or a superuser",
			strings.Join(lacking, ", "), strings.Join(r.Owners, ", ")))
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap(err)
	}
	var tote bool
	if err := w.pool.QueryRow(ctx, `SELECT has_schema_privilege($1, 'tote', 'USAGE')`, role).Scan(&tote); err != nil {
		return wrap(err)
	}
	if tote {
		r.Notes = append(r.Notes, role+" may use schema tote, by a grant made elsewhere (to it, a role it is in, or PUBLIC); "+
			"tote's tables are private only after REVOKE USAGE ON SCHEMA tote FROM "+role)
	}
	w.log.Info("granted read access to the star schema", "role", role, "database", r.Database, "schema", r.Schema,
		"tables", len(r.Tables), "views", len(r.Views), "owners", strings.Join(r.Owners, ","))
	return r, nil
}

// noRole is the error for a role that does not exist: what to run to
// create it, and a role of the same name in other case if there is one.
func (w *Warehouse) noRole(ctx context.Context, role string) error {
	var quoted string
	var like []string
	if err := w.pool.QueryRow(ctx, noRoleSQL, role).Scan(&quoted, &like); err != nil {
		return fmt.Errorf("look up the role: %w", err)
	}
	msg := fmt.Sprintf("role %s does not exist; create it (as a superuser or a role with CREATEROLE), e.g. "+
		"CREATE ROLE %s LOGIN PASSWORD '…'; then grant again", role, quoted)
	if len(like) > 0 {
		msg += fmt.Sprintf(" (role names are case-sensitive: there is %s)", strings.Join(like, ", "))
	}
	return errors.New(msg)
}

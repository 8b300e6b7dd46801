// Package startest is the tests' oracle of the star schema: given a source
// database, it says what each star table should hold, computed by
// PostgreSQL from the source with SQL rendered from the model
// (star.Tables), apart from the transform's code and from verify's. It
// renders what the lake and the warehouse hold in the same text, so that
// tests of every stage compare them with it.
//
// A row's text is its columns, but batch_id (which the source cannot
// know), in the model's order, joined with "|": integers and money as
// PostgreSQL prints them (money with two decimals), booleans true or
// false, dates YYYY-MM-DD, times HH:MM:SS.ffffff, text as it is, NULL as
// NULL.
package startest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
)

// Querier is a database the oracle reads: a pool, a connection or a
// transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Columns are the columns of table a row's text holds: all but batch_id.
func Columns(table star.Table) []star.Column {
	var out []star.Column
	for _, c := range table.Columns {
		if c.Conv != star.Batch {
			out = append(out, c)
		}
	}
	return out
}

// Expected returns the rows table should hold given the source as src
// has it now, by source id: for a dimension, the entity's row; for a fact,
// the version of the row the source has now. where, if not empty, picks
// the source rows: it names each source table by its name (staff,
// department, …), with args as $1, $2, ….
func Expected(t testing.TB, src Querier, table star.Table, where string, args ...any) map[string]string {
	t.Helper()
	sql, names := expectedSQL(t, table, len(args)+1)
	if where != "" {
		sql += " WHERE " + where
	}
	if names {
		var codes, iso []string
		for code, name := range transform.CurrencyNames() {
			codes, iso = append(codes, code), append(iso, name)
		}
		args = append(args, codes, iso)
	}
	return one(byID(t, src, sql, args...))
}

// expectedSQL renders the query of table's rows from the source: its id,
// then its text. The ISO 4217 codes and names, if a column needs them, are
// parameters iso and iso+1; names says whether it does.
func expectedSQL(t testing.TB, table star.Table, iso int) (sql string, names bool) {
	t.Helper()
	src, err := totesys.Lookup(table.Source)
	if err != nil {
		t.Fatalf("%s: %v", table.Name, err)
	}
	from := []string{ident(src.Name)}
	for _, j := range table.Joins {
		jt, err := totesys.Lookup(j.Table)
		if err != nil {
			t.Fatal(err)
		}
		// A NULL key joins nothing: the joined columns are NULL.
		from = append(from, fmt.Sprintf("LEFT JOIN %[1]s ON %[1]s.%[2]s = %[3]s.%[4]s", ident(jt.Name), ident(jt.Key()), ident(src.Name), ident(j.On)))
	}
	var exprs []string
	for _, c := range Columns(table) {
		if c.Conv == star.Xmin {
			exprs = append(exprs, text(c, ident(src.Name)+".xmin::text::bigint"))
			continue
		}
		if c.Conv == star.Deleted {
			exprs = append(exprs, text(c, "false")) // a row of the source is not deleted
			continue
		}
		st, name := c.FromTable(table.Source)
		expr := ident(st) + "." + ident(name)
		switch c.Conv {
		case star.Copy:
		case star.DateOf, star.ParseDate:
			expr += "::date"
		case star.TimeOf:
			expr += "::time"
		case star.CurrencyName:
			alias := fmt.Sprintf("iso%d", len(from))
			from = append(from, fmt.Sprintf("LEFT JOIN unnest($%[1]d::text[], $%[2]d::text[]) %[3]s(code, name) ON %[3]s.code = %[4]s",
				iso, iso+1, alias, expr))
			expr, names = alias+".name", true
		default:
			t.Fatalf("%s.%s: the oracle does not know conversion %s", table.Name, c.Name, c.Conv)
		}
		exprs = append(exprs, text(c, expr))
	}
	return fmt.Sprintf("SELECT %s.%s::text, concat_ws('|', %s) FROM %s",
		ident(src.Name), ident(src.Key()), strings.Join(exprs, ", "), strings.Join(from, " ")), names
}

// text renders expr, a value of column c's type, as a row's text does.
func text(c star.Column, expr string) string {
	switch c.Type {
	case star.Date:
		expr = fmt.Sprintf("to_char(%s, 'YYYY-MM-DD')", expr)
	case star.Time:
		expr = fmt.Sprintf("to_char(%s, 'HH24:MI:SS.US')", expr)
	default:
		expr += "::text"
	}
	return fmt.Sprintf("coalesce(%s, 'NULL')", expr)
}

// Warehouse returns the rows of table in the warehouse db: for a fact,
// every version.
func Warehouse(t testing.TB, db Querier, table star.Table) []string {
	t.Helper()
	return relation(t, db, table, table.Name)
}

// Current returns the rows of fact table's current view in the warehouse
// db: the newest version of every source id, deleted ones left out.
func Current(t testing.TB, db Querier, table star.Table) []string {
	t.Helper()
	return relation(t, db, table, table.CurrentView())
}

// relation returns the rows of relation name, which has table's columns.
func relation(t testing.TB, db Querier, table star.Table, name string) []string {
	t.Helper()
	var exprs []string
	for _, c := range Columns(table) {
		exprs = append(exprs, text(c, ident(c.Name)))
	}
	var out []string
	for _, row := range byID(t, db, fmt.Sprintf("SELECT '', concat_ws('|', %s) FROM %s", strings.Join(exprs, ", "), ident(name))) {
		out = append(out, row...)
	}
	return out
}

// Calendar returns the rows the calendar table (dim_date) should hold for
// days (YYYY-MM-DD), by day, as PostgreSQL computes them.
func Calendar(t testing.TB, db Querier, days []string) map[string]string {
	t.Helper()
	table := calendar(t)
	parts := map[string]string{
		"date_id":     "to_char(d, 'YYYY-MM-DD')",
		"year":        "extract(year FROM d)::int",
		"month":       "extract(month FROM d)::int",
		"day":         "extract(day FROM d)::int",
		"day_of_week": "extract(isodow FROM d)::int",
		"day_name":    "trim(to_char(d, 'Day'))",
		"month_name":  "trim(to_char(d, 'Month'))",
		"quarter":     "extract(quarter FROM d)::int",
	}
	var exprs []string
	for _, c := range table.Columns {
		expr, ok := parts[c.Name]
		if !ok {
			t.Fatalf("%s.%s: the oracle does not know that part of a day", table.Name, c.Name)
		}
		exprs = append(exprs, expr)
	}
	return one(byID(t, db, fmt.Sprintf("SELECT to_char(d, 'YYYY-MM-DD'), concat_ws('|', %s) FROM unnest($1::date[]) d",
		strings.Join(exprs, ", ")), days))
}

// ReferencedDays returns the days (YYYY-MM-DD) that the rows of the
// warehouse db refer to in columns that reference the calendar table.
func ReferencedDays(t testing.TB, db Querier) []string {
	t.Helper()
	cal := calendar(t)
	var selects []string
	for _, table := range star.Tables {
		for _, c := range table.References() {
			if c.References == cal.Name {
				selects = append(selects, fmt.Sprintf("SELECT %s FROM %s", ident(c.Name), ident(table.Name)))
			}
		}
	}
	days := byID(t, db, fmt.Sprintf("SELECT to_char(d, 'YYYY-MM-DD'), '' FROM (%s) x(d) WHERE d IS NOT NULL",
		strings.Join(selects, " UNION ")))
	var out []string
	for d := range days {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// calendar is the star table made of days rather than a source.
func calendar(t testing.TB) star.Table {
	t.Helper()
	for _, table := range star.Tables {
		if table.Source == "" {
			return table
		}
	}
	t.Fatal("the star has no calendar table")
	return star.Table{}
}

// Lake renders a row of table's processed file, its values by column.
func Lake(table star.Table, rec map[string]parquet.Value) string {
	var parts []string
	for _, c := range Columns(table) {
		parts = append(parts, Value(c, rec[c.Name]))
	}
	return strings.Join(parts, "|")
}

// Value renders a processed value of column c as a row's text does.
func Value(c star.Column, v parquet.Value) string {
	if v.IsNull() {
		return "NULL"
	}
	switch c.Type {
	case star.Integer:
		return fmt.Sprint(v.Int32())
	case star.BigInt:
		return fmt.Sprint(v.Int64())
	case star.Money:
		return laketest.Money(v.Int64())
	case star.Boolean:
		return fmt.Sprint(v.Boolean())
	case star.Date:
		return Day(v.Int32())
	case star.Time:
		return time.UnixMicro(v.Int64()).UTC().Format("15:04:05.000000")
	}
	return string(v.ByteArray())
}

// Day formats days since 1970-01-01 as YYYY-MM-DD.
func Day(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// byID runs a query of (id, text) rows and returns the texts by id, each
// id's in the order the query gives them.
func byID(t testing.TB, db Querier, sql string, args ...any) map[string][]string {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out := map[string][]string{}
	var id, row string
	if _, err := pgx.ForEachRow(rows, []any{&id, &row}, func() error { out[id] = append(out[id], row); return nil }); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// one takes the single text of each id; the oracle's queries have one.
func one(rows map[string][]string) map[string]string {
	out := make(map[string]string, len(rows))
	for id, texts := range rows {
		out[id] = texts[len(texts)-1]
	}
	return out
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

// check compares one star table with the source. Each side is a FROM
// clause, the id of a row and its text, ROW(...)::text over the same
// columns in the same order and types, so that equal rows have equal text.
type check struct {
	table, source string
	srcFrom       string   // the source tables, with aliases
	srcID, srcRow string   // in terms of those aliases
	flight        []flying // the source rows whose xmin makes a row in flight
	whFrom        string
	whID, whRow   string
	names         bool // srcRow uses {codes} and {names}: the ISO 4217 names, as parameters
}

// flying is a source row a star row is made from: its table's alias, name
// and key.
type flying struct{ alias, table, key string }

// checks are the tables compared: every star table made from a source
// (dim_date is made from the facts), with its rows rendered from the model
// as the transform makes them. For a fact, its current version (its
// current view) is compared with the source row; for a dimension, its rows
// not flagged deleted. Where a version came from (source_xmin, batch_id)
// is not compared: a corrective batch sends a version again; nor
// is_deleted, false on every row compared.
func checks() ([]check, error) {
	var out []check
	for _, t := range star.Tables {
		if t.Source == "" {
			continue
		}
		c, err := newCheck(t)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// newCheck renders the check of star table t. The source is aliased s,
// its joins j1, j2, …, and each ISO 4217 name lookup n1, n2, ….
func newCheck(t star.Table) (check, error) {
	src, err := totesys.Lookup(t.Source)
	if err != nil {
		return check{}, fmt.Errorf("%s: %w", t.Name, err)
	}
	c := check{table: t.Name, source: src.Name, srcID: "s." + ident(src.Key()),
		flight: []flying{{"s", src.Name, "s." + ident(src.Key())}}}
	from := []string{ident(src.Name) + " s"}
	aliases := map[string]string{src.Name: "s"}
	for i, j := range t.Joins {
		jt, err := totesys.Lookup(j.Table)
		on, ok := src.Column(j.On)
		if err != nil || !ok {
			return check{}, fmt.Errorf("%s: join %s on %s.%s: no such table or column", t.Name, j.Table, src.Name, j.On)
		}
		alias := fmt.Sprintf("j%d", i+1)
		aliases[j.Table] = alias
		join := "JOIN"
		if on.Nullable {
			join = "LEFT JOIN" // the transform makes the row, with the joined columns NULL
		}
		from = append(from, fmt.Sprintf("%s %s %s ON %s.%s = s.%s", join, ident(jt.Name), alias, alias, ident(jt.Key()), ident(j.On)))
		c.flight = append(c.flight, flying{alias, jt.Name, alias + "." + ident(jt.Key())})
	}
	var srcCols, whCols []string
	for _, col := range t.Columns {
		if col.Conv == star.Xmin || col.Conv == star.Batch || col.Conv == star.Deleted {
			continue
		}
		table, name := col.FromTable(t.Source)
		alias, ok := aliases[table]
		st, _ := totesys.Lookup(table)
		in, found := st.Column(name)
		if !ok || !found {
			return check{}, fmt.Errorf("%s.%s: no source column %s.%s", t.Name, col.Name, table, name)
		}
		expr := alias + "." + ident(in.Name)
		switch col.Conv {
		case star.Copy:
			if col.Type == star.Text && in.Type != totesys.Text {
				expr += "::text" // an enum
			}
		case star.DateOf, star.ParseDate:
			expr += "::date"
		case star.TimeOf:
			expr += "::time"
		case star.CurrencyName:
			n := fmt.Sprintf("n%d", len(from))
			from = append(from, fmt.Sprintf("LEFT JOIN unnest({codes}::text[], {names}::text[]) %s(code, name) ON %s.code = %s", n, n, expr))
			expr, c.names = n+".name", true
		default:
			return check{}, fmt.Errorf("%s.%s: conversion %s", t.Name, col.Name, col.Conv)
		}
		srcCols = append(srcCols, expr)
		whCols = append(whCols, ident(col.Name))
	}
	c.srcFrom = strings.Join(from, " ")
	c.srcRow = "ROW(" + strings.Join(srcCols, ", ") + ")::text"
	c.whID, c.whRow = ident(t.ID()), "ROW("+strings.Join(whCols, ", ")+")::text"
	c.whFrom = ident(t.Name)
	switch {
	case t.Kind == star.Fact:
		c.whFrom = ident(t.CurrentView())
	case slices.ContainsFunc(t.Columns, func(c star.Column) bool { return c.Conv == star.Deleted }):
		c.whFrom = fmt.Sprintf("(SELECT * FROM %s WHERE NOT %s) d", ident(t.Name), ident(star.IsDeleted))
	}
	return c, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// side is one side of a check, the source or the warehouse, with what its
// queries need.
type side struct {
	q        warehousePool // a transaction or a pool
	from, id string
	row      string
	extra    []any // arguments after the query's own ({codes}, {names})
	queries  *int
}

// sql makes a query over the side: cols, then where (in terms of the id,
// with the query's own arguments $1 to $n), with the extra arguments
// numbered after n.
func (s side) sql(cols, where string, n int) string {
	from := s.from
	for i, name := range []string{"{codes}", "{names}"} {
		from = strings.ReplaceAll(from, name, fmt.Sprintf("$%d", n+1+i))
	}
	q := "SELECT " + strings.ReplaceAll(cols, "{id}", s.id) + " FROM " + from
	if where != "" {
		q += " WHERE " + strings.ReplaceAll(where, "{id}", s.id)
	}
	return q
}

// summary is a range's row count and the XOR of its rows' hashes.
type summary struct{ rows, hash int64 }

const (
	rangeWhere = "{id} >= $1 AND {id} < $2 AND NOT ({id} = ANY($3))"
	hashOf     = "('x' || substr(md5(%s), 1, 16))::bit(64)::bigint"
)

func (s side) summarize(ctx context.Context, lo, hi int64, excluded []int64) (summary, error) {
	*s.queries++
	var sm summary
	q := s.sql("count(*), coalesce(bit_xor("+fmt.Sprintf(hashOf, s.row)+"), 0)", rangeWhere, 3)
	err := s.q.QueryRow(ctx, q, append([]any{lo, hi, excluded}, s.extra...)...).Scan(&sm.rows, &sm.hash)
	return sm, err
}

// rows returns the hashes of the rows of a range, by id.
func (s side) rows(ctx context.Context, lo, hi int64, excluded []int64) (map[int64]string, error) {
	*s.queries++
	q := s.sql("{id}::bigint, md5("+s.row+")", rangeWhere, 3)
	rows, err := s.q.Query(ctx, q, append([]any{lo, hi, excluded}, s.extra...)...)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	var id int64
	var h string
	_, err = pgx.ForEachRow(rows, []any{&id, &h}, func() error { out[id] = h; return nil })
	return out, err
}

// bounds returns the side's smallest id and largest plus one (0, 0 if empty).
func (s side) bounds(ctx context.Context) (lo, hi int64, err error) {
	*s.queries++
	var min, max *int64
	if err := s.q.QueryRow(ctx, s.sql("min({id})::bigint, max({id})::bigint", "", 0), s.extra...).Scan(&min, &max); err != nil {
		return 0, 0, err
	}
	if min == nil {
		return 0, 0, nil
	}
	return *min, *max + 1, nil
}

// run compares the table: the rows in flight (age(xmin) <= inFlight on any
// of the source tables a row comes from) and quarantined are left out.
func (c check) run(ctx context.Context, src pgx.Tx, wh *warehouse.Warehouse, fl flight, quarantined []int64, leaf int64) (TableResult, error) {
	tr := TableResult{Table: c.table, Source: c.source}
	var extra []any
	if c.names {
		var codes, names []string
		for code, name := range transform.CurrencyNames() {
			codes, names = append(codes, code), append(names, name)
		}
		extra = []any{codes, names}
	}
	s := side{q: src, from: c.srcFrom, id: c.srcID, row: c.srcRow, extra: extra, queries: &tr.Queries}
	w := side{q: wh.Pool(), from: c.whFrom, id: c.whID, row: c.whRow, queries: &tr.Queries}

	flying, err := c.inFlight(ctx, s, fl, extra)
	if err != nil {
		return tr, fmt.Errorf("rows in flight: %w", err)
	}
	tr.InFlight, tr.Quarantined = len(flying), len(quarantined)
	excluded := slices.Concat(flying, quarantined)
	if excluded == nil {
		excluded = []int64{}
	}

	slo, shi, err := s.bounds(ctx)
	if err != nil {
		return tr, fmt.Errorf("source ids: %w", err)
	}
	wlo, whi, err := w.bounds(ctx)
	if err != nil {
		return tr, fmt.Errorf("warehouse ids: %w", err)
	}
	lo, hi := min(slo, wlo), max(shi, whi)
	if shi == 0 {
		lo = wlo
	}
	if whi == 0 {
		lo = slo
	}
	if hi == 0 {
		return tr, nil
	}
	var compare func(lo, hi int64, top bool) error
	compare = func(lo, hi int64, top bool) error {
		if hi-lo > leaf {
			a, err := s.summarize(ctx, lo, hi, excluded)
			if err != nil {
				return fmt.Errorf("source ids %d to %d: %w", lo, hi-1, err)
			}
			b, err := w.summarize(ctx, lo, hi, excluded)
			if err != nil {
				return fmt.Errorf("warehouse ids %d to %d: %w", lo, hi-1, err)
			}
			if top {
				tr.Rows = a.rows
			}
			if a == b {
				return nil
			}
			step := max((hi-lo+7)/8, 1)
			for l := lo; l < hi; l += step {
				if err := compare(l, min(l+step, hi), false); err != nil {
					return err
				}
			}
			return nil
		}
		a, err := s.rows(ctx, lo, hi, excluded)
		if err != nil {
			return fmt.Errorf("source ids %d to %d: %w", lo, hi-1, err)
		}
		b, err := w.rows(ctx, lo, hi, excluded)
		if err != nil {
			return fmt.Errorf("warehouse ids %d to %d: %w", lo, hi-1, err)
		}
		if top {
			tr.Rows = int64(len(a))
		}
		for id, h := range a {
			switch bh, ok := b[id]; {
			case !ok:
				tr.Missing = append(tr.Missing, id)
			case bh != h:
				tr.Different = append(tr.Different, id)
			}
		}
		for id := range b {
			if _, ok := a[id]; ok {
				continue
			}
			if fl.deletedSince(c.source, id) {
				tr.InFlight++
				continue
			}
			tr.Extra = append(tr.Extra, id)
		}
		return nil
	}
	if err := compare(lo, hi, true); err != nil {
		return tr, err
	}
	slices.Sort(tr.Missing)
	slices.Sort(tr.Extra)
	slices.Sort(tr.Different)
	return tr, nil
}

// inFlight returns the ids of the star rows made from a source row in
// flight (see flight).
func (c check) inFlight(ctx context.Context, s side, fl flight, extra []any) ([]int64, error) {
	cols := []string{"{id}::bigint"}
	var conds []string
	for _, f := range c.flight {
		cols = append(cols, f.key+"::bigint", fmt.Sprintf("age(%s.xmin)", f.alias))
		conds = append(conds, fmt.Sprintf("age(%s.xmin) <= $1", f.alias))
	}
	*s.queries++
	rows, err := s.q.Query(ctx, s.sql(strings.Join(cols, ", "), strings.Join(conds, " OR "), 1), append([]any{fl.maxAge}, extra...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		vals := make([]int64, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, f := range c.flight {
			if fl.inFlight(f.table, vals[1+2*i], vals[2+2*i]) {
				out = append(out, vals[0])
				break
			}
		}
	}
	return out, rows.Err()
}

package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

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

// dimension is a check of a dimension whose rows come from one source
// table, column for column (the warehouse's names given separately where
// they differ).
func dimension(table, source, srcCols, whCols string) check {
	return check{table: table, source: source,
		srcFrom: source + " s", srcID: strings.SplitN(srcCols, ",", 2)[0], srcRow: "ROW(" + srcCols + ")::text",
		flight: []flying{{"s", source, strings.SplitN(srcCols, ",", 2)[0]}},
		whFrom: table, whID: strings.SplitN(whCols, ",", 2)[0], whRow: "ROW(" + whCols + ")::text"}
}

// fact is a check of a fact's latest version (that of the newest batch)
// against the source row.
func fact(table, source, id, srcCols, whCols string) check {
	return check{table: table, source: source,
		srcFrom: source + " s", srcID: "s." + id, srcRow: "ROW(" + srcCols + ")::text", flight: []flying{{"s", source, "s." + id}},
		whFrom: fmt.Sprintf("(SELECT DISTINCT ON (%[2]s) * FROM %[1]s ORDER BY %[2]s, batch_id DESC, last_updated_date DESC, last_updated_time DESC) f",
			table, id),
		whID: id, whRow: "ROW(" + whCols + ")::text"}
}

// checks are the tables compared, as the transform makes them.
func checks() []check {
	return []check{
		dimension("dim_location", "address",
			"s.address_id, s.address_line_1, s.address_line_2, s.district, s.city, s.postal_code, s.country, s.phone",
			"location_id, address_line_1, address_line_2, district, city, postal_code, country, phone"),
		dimension("dim_design", "design",
			"s.design_id, s.design_name, s.file_location, s.file_name",
			"design_id, design_name, file_location, file_name"),
		dimension("dim_transaction", "transaction",
			"s.transaction_id, s.transaction_type::text, s.sales_order_id, s.purchase_order_id",
			"transaction_id, transaction_type, sales_order_id, purchase_order_id"),
		dimension("dim_payment_type", "payment_type",
			"s.payment_type_id, s.payment_type_name::text",
			"payment_type_id, payment_type_name"),
		{table: "dim_currency", source: "currency",
			srcFrom: "currency s LEFT JOIN unnest({codes}::text[], {names}::text[]) n(code, name) ON n.code = s.currency_code",
			srcID:   "s.currency_id", srcRow: "ROW(s.currency_id, s.currency_code, n.name)::text",
			flight: []flying{{"s", "currency", "s.currency_id"}}, names: true,
			whFrom: "dim_currency", whID: "currency_id", whRow: "ROW(currency_id, currency_code, currency_name)::text"},
		{table: "dim_staff", source: "staff",
			srcFrom: "staff s JOIN department d USING (department_id)",
			srcID:   "s.staff_id", srcRow: "ROW(s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address)::text",
			flight: []flying{{"s", "staff", "s.staff_id"}, {"d", "department", "d.department_id"}},
			whFrom: "dim_staff", whID: "staff_id", whRow: "ROW(staff_id, first_name, last_name, department_name, location, email_address)::text"},
		{table: "dim_counterparty", source: "counterparty",
			srcFrom: "counterparty s JOIN address a ON a.address_id = s.legal_address_id",
			srcID:   "s.counterparty_id",
			srcRow: "ROW(s.counterparty_id, s.counterparty_legal_name, a.address_line_1, a.address_line_2, a.district, a.city, " +
				"a.postal_code, a.country, a.phone)::text",
			flight: []flying{{"s", "counterparty", "s.counterparty_id"}, {"a", "address", "a.address_id"}},
			whFrom: "dim_counterparty", whID: "counterparty_id",
			whRow: "ROW(counterparty_id, counterparty_legal_name, counterparty_legal_address_line_1, counterparty_legal_address_line_2, " +
				"counterparty_legal_district, counterparty_legal_city, counterparty_legal_postal_code, counterparty_legal_country, " +
				"counterparty_legal_phone_number)::text"},
		fact("fact_sales_order", "sales_order", "sales_order_id",
			"s.sales_order_id, s.created_at::date, s.created_at::time, s.last_updated::date, s.last_updated::time, s.staff_id, "+
				"s.counterparty_id, s.units_sold, s.unit_price, s.currency_id, s.design_id, s.agreed_payment_date::date, "+
				"s.agreed_delivery_date::date, s.agreed_delivery_location_id",
			"sales_order_id, created_date, created_time, last_updated_date, last_updated_time, sales_staff_id, "+
				"counterparty_id, units_sold, unit_price, currency_id, design_id, agreed_payment_date, "+
				"agreed_delivery_date, agreed_delivery_location_id"),
		fact("fact_purchase_order", "purchase_order", "purchase_order_id",
			"s.purchase_order_id, s.created_at::date, s.created_at::time, s.last_updated::date, s.last_updated::time, s.staff_id, "+
				"s.counterparty_id, s.item_code, s.item_quantity, s.item_unit_price, s.currency_id, s.agreed_delivery_date::date, "+
				"s.agreed_payment_date::date, s.agreed_delivery_location_id",
			"purchase_order_id, created_date, created_time, last_updated_date, last_updated_time, staff_id, "+
				"counterparty_id, item_code, item_quantity, item_unit_price, currency_id, agreed_delivery_date, "+
				"agreed_payment_date, agreed_delivery_location_id"),
		fact("fact_payment", "payment", "payment_id",
			"s.payment_id, s.created_at::date, s.created_at::time, s.last_updated::date, s.last_updated::time, s.transaction_id, "+
				"s.counterparty_id, s.payment_amount, s.currency_id, s.payment_type_id, s.paid, s.payment_date::date",
			"payment_id, created_date, created_time, last_updated_date, last_updated_time, transaction_id, "+
				"counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date"),
	}
}

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
			if _, ok := a[id]; !ok {
				tr.Extra = append(tr.Extra, id)
			}
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

package web

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every query the dashboard runs is one of the named SQL constants below,
// listed in queries: the browser sends filter values, never SQL, and a
// handler can only ask for a query by name. Parameters are named (@from,
// @cur, …) and each family of queries takes one parameter struct
// (salesParams, purchaseParams, paymentParams), turned into pgx.NamedArgs
// by its args method: a name means the same in every query of its family.
// Every result column is named as the Column it fills (business.go).
//
// The business queries read the summaries (summaries.sql says what they
// hold) and, for what no summary has (a design, two dimensions at once),
// the facts, through the versions views and the indexes the summaries
// build. A fact's queries share:
//
//	@route  which summary rows ('all', a dimension: 'lead', 'location',
//	        'staff', 'counterparty'; 'design' for the design rankings), or
//	        'facts' (filter.salesRoute and the like)
//	@mode   'current'; or, as of batch @as_of, 'upto' (the log up to it)
//	        or 'after' (the current summaries less the log after it)
//	@rec    the fact's rows the summaries have (surrogate keys up to it):
//	        the facts are read as the summaries are, so that a drill-down
//	        counts what the figure counts while the summaries catch up
//	@from, @to  the first and last day (YYYY-MM-DD)
//	then the filters, NULL for none: @cur currency, @loc location,
//	@staff, @cp counterparty, @design ids, @lead a lead-time bucket
//
// and read their rows from salesSource, purchaseSource or paymentSource,
// whose branches @route and @mode switch on and off: the queries run with
// custom plans (db.query), so those one-time conditions fold away, and so
// do the NULL-means-any filters, leaving one source and plain index
// conditions.

// versionsAsOf is the condition that versions v (of the facts' versions
// views) are the ones the summaries count, now or as of batch @as_of:
// summarized, live, and not superseded by then.
func versionsAsOf(fact string) string {
	return `v.live AND v.rec <= @rec::bigint
  AND (@mode::text = 'current' OR v.seq <= @as_of::bigint)
  AND NOT EXISTS (SELECT FROM tote_dash.` + fact + `_next n
                  WHERE n.rec = v.rec AND (@mode::text = 'current' OR n.next_seq <= @as_of::bigint))`
}

// salesFacts is the condition on the sales order versions v that the
// sales parameters select: the route is 'facts', the version the
// summaries count of each order in the period, matching the filters.
var salesFacts = `@route::text = 'facts' AND v.day BETWEEN @from::date AND @to::date
  AND (@cur::integer[] IS NULL OR v.currency_id = ANY(@cur::integer[]))
  AND (@loc::integer[] IS NULL OR v.location = ANY(@loc::integer[]))
  AND (@staff::integer[] IS NULL OR v.staff = ANY(@staff::integer[]))
  AND (@cp::integer[] IS NULL OR v.counterparty = ANY(@cp::integer[]))
  AND (@design::integer[] IS NULL OR v.design = ANY(@design::integer[]))
  AND (@lead::smallint IS NULL OR v.lead = @lead::smallint)
  AND ` + versionsAsOf("sales")

// summaryAsOf is summary table t (tote_dash.t and its log t_log) as @mode
// asks ('current', 'after' batch @as_of or 'upto' batch @as_of), with its
// columns dim, day, key, cols and the sums (negated where the log's rows
// are taken away), as s.
func summaryAsOf(t, cols string, sums []string) string {
	list := func(neg string) string {
		out := ""
		for i, m := range sums {
			if i > 0 {
				out += ", "
			}
			out += neg + m
		}
		return out
	}
	return `(
  SELECT dim, day, key, ` + cols + `, ` + list("") + ` FROM tote_dash.` + t + `
  WHERE @mode::text IN ('current', 'after')
  UNION ALL
  SELECT dim, day, key, ` + cols + `, ` + list("") + ` FROM tote_dash.` + t + `_log
  WHERE @mode::text = 'upto' AND seq <= @as_of::bigint
  UNION ALL
  SELECT dim, day, key, ` + cols + `, ` + list("-") + ` FROM tote_dash.` + t + `_log
  WHERE @mode::text = 'after' AND seq > @as_of::bigint
) s`
}

// dimKey keeps the summary rows s whose key is among the ids the route's
// dimension is filtered to (@loc, @staff, @cp; NULL: any).
var dimKey = `  AND (CASE @route::text WHEN 'location' THEN @loc::integer[] WHEN 'staff' THEN @staff::integer[] WHEN 'counterparty' THEN @cp::integer[] END IS NULL
       OR s.key = ANY(CASE @route::text WHEN 'location' THEN @loc::integer[] WHEN 'staff' THEN @staff::integer[] WHEN 'counterparty' THEN @cp::integer[] END))`

// salesSource is the rows the sales queries aggregate: (day, currency_id,
// lead, location_id, staff_id, counterparty_id, design_id, orders, units,
// value_cents), from tote_dash.sales_by (the dimension @route names; the
// others are NULL) or the facts.
var salesSource = `
SELECT s.day, s.currency_id,
       (CASE WHEN s.dim = 'lead' THEN s.key END)::smallint AS lead,
       CASE WHEN s.dim = 'location' THEN s.key END AS location_id,
       CASE WHEN s.dim = 'staff' THEN s.key END AS staff_id,
       CASE WHEN s.dim = 'counterparty' THEN s.key END AS counterparty_id,
       NULL::integer AS design_id, s.orders, s.units, s.value_cents
FROM ` + summaryAsOf("sales_by", "currency_id", []string{"orders", "units", "value_cents"}) + `
WHERE @route::text <> 'facts' AND s.dim = @route::text AND s.day BETWEEN @from::date AND @to::date
  AND (@cur::integer[] IS NULL OR s.currency_id = ANY(@cur::integer[]))
` + dimKey + `
  AND (@route::text <> 'lead' OR @lead::smallint IS NULL OR s.key = @lead::smallint)
UNION ALL
SELECT v.day, v.currency_id, v.lead::smallint, v.location, v.staff, v.counterparty, v.design, v.orders, v.units, v.value_cents
FROM tote_dash.sales_versions v
WHERE ` + salesFacts

// salesKPIs is revenue, orders and units per currency in the period from
// @since to @to and in the previous period (@from to the day before
// @since). Money is in cents.
var salesKPIs = `WITH src AS (` + salesSource + `
), g AS (
  SELECT currency_id,
         coalesce(sum(orders) FILTER (WHERE day >= @since::date), 0)::bigint AS orders,
         coalesce(sum(units) FILTER (WHERE day >= @since::date), 0)::bigint AS units,
         coalesce(sum(value_cents) FILTER (WHERE day >= @since::date), 0)::bigint AS value,
         coalesce(sum(orders) FILTER (WHERE day < @since::date), 0)::bigint AS prev_orders,
         coalesce(sum(units) FILTER (WHERE day < @since::date), 0)::bigint AS prev_units,
         coalesce(sum(value_cents) FILTER (WHERE day < @since::date), 0)::bigint AS prev_value
  FROM src GROUP BY currency_id
)
SELECT c.currency_code AS currency, g.orders, g.units, g.value, g.prev_orders, g.prev_units, g.prev_value
FROM g JOIN dim_currency c USING (currency_id)
WHERE g.orders <> 0 OR g.prev_orders <> 0
ORDER BY c.currency_code`

// salesSeries is orders, units and revenue per period (@grain: day, week,
// month or quarter; the period's first day) and currency.
var salesSeries = `WITH src AS (` + salesSource + `)
SELECT to_char(date_trunc(@grain::text, s.day), 'YYYY-MM-DD') AS period, c.currency_code AS currency,
       sum(s.orders)::bigint AS orders, sum(s.units)::bigint AS units, sum(s.value_cents)::bigint AS revenue
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 1, 2`

// byLocation is salesSource summed by delivery location and currency,
// before the location's names are looked up (a few dozen rows, not
// thousands, to join).
var byLocation = `WITH src AS (` + salesSource + `
), s AS (
  SELECT location_id, currency_id, sum(orders) AS orders, sum(units) AS units, sum(value_cents) AS value_cents
  FROM src GROUP BY 1, 2
)`

// salesByCountry is orders, units and revenue per delivery country and currency.
var salesByCountry = byLocation + `
SELECT l.country, c.currency_code AS currency, sum(s.orders)::bigint AS orders, sum(s.units)::bigint AS units,
       sum(s.value_cents)::bigint AS revenue
FROM s JOIN dim_location l USING (location_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// salesByCity is orders, units and revenue per delivery city (with its
// country) and currency.
var salesByCity = byLocation + `
SELECT l.country || ' / ' || l.city AS city, c.currency_code AS currency, sum(s.orders)::bigint AS orders,
       sum(s.units)::bigint AS units, sum(s.value_cents)::bigint AS revenue
FROM s JOIN dim_location l USING (location_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// designPeriod is, for each row d of tote_dash.sales_design or its log,
// the positions in d.days of the last day of the period (@to) and the last
// day before it: d.x[b] - d.x[a] is d's figure over the period (x[0] is
// NULL: nothing).
var designPeriod = `LATERAL (SELECT width_bucket(@to::date, d.days) AS b, width_bucket(@from::date - 1, d.days) AS a) w`

// designOver is measure x of d over the period.
func designOver(x string) string {
	return `coalesce(d.` + x + `[w.b], 0) - coalesce(d.` + x + `[w.a], 0)`
}

// designValue is d's revenue over the period.
var designValue = designOver("value_cents")

// A design is looked up in changed with NOT IN, not NOT EXISTS: a hashed
// subplan, where NOT EXISTS became a nested loop over changed for every
// design the index scans in order (seconds as of an early batch).

// designValueHere is designValue without designPeriod, for a condition
// on the row d of an index scan (w is not joined yet there).
var designValueHere = `coalesce(d.value_cents[width_bucket(@to::date, d.days)], 0) - coalesce(d.value_cents[width_bucket(@from::date - 1, d.days)], 0)`

// designAllTime is d's revenue of all time (its last running total), as
// the index sales_design_rank has it.
var designAllTime = `d.value_cents[array_upper(d.value_cents, 1)]`

// orderValue is the revenue of the sales order version f, as the
// summaries count it and the index fact_sales_order_dash_value_cents_idx
// (summaries.go's indexes) has it.
var orderValue = `f.units_sold * (f.unit_price * 100)::bigint`

// designListed says the period's orders (period_orders: the facts by day,
// the first @listed of them) are all its orders: then they name every
// design that sold in it.
var designListed = `(SELECT count(*) FROM period_orders) < @listed::integer`

// designWhole says the period holds every day with a sale: then a
// design's revenue over it is its revenue of all time.
var designWhole = `(NOT EXISTS (SELECT FROM tote_dash.sales_by s WHERE s.dim = 'all' AND s.day < @from::date)
       AND NOT EXISTS (SELECT FROM tote_dash.sales_by s WHERE s.dim = 'all' AND s.day > @to::date))`

// designSample is, for currency c, some designs that can rank over the
// period, to bound the rankings with: the 100 that sold the most of all
// time, the 100 that sold the least, those of the period's first orders
// (period_orders) and, unless the period holds every day, those of its
// 1,000 smallest orders (the facts' value index, which holds the day). The
// bottom of a period is designs that sold once in it, and little: among
// the designs of its 1,000 smallest orders enough sold nothing else in it
// for a tight bottom (of 100, at scale 100 over 200 days, too few did,
// and the bound let half the period's orders through). The facts are
// only a hint: each design's figures are the summary's. The sample is
// not sought when period_orders lists every order of the period (then
// the index would be read far past the period's few entries).
var designSample = `(SELECT d.key FROM tote_dash.sales_design d WHERE d.currency_id = c.currency_id
   ORDER BY ` + designAllTime + ` DESC LIMIT 100)
  UNION
  (SELECT d.key FROM tote_dash.sales_design d WHERE d.currency_id = c.currency_id
   ORDER BY ` + designAllTime + ` LIMIT 100)
  UNION
  SELECT p.design_id FROM period_orders p WHERE p.currency_id = c.currency_id
  UNION
  (SELECT f.design_id FROM fact_sales_order f
   WHERE f.currency_id = c.currency_id AND f.created_date BETWEEN @from::date AND @to::date AND NOT ` + designWhole + `
   ORDER BY ` + orderValue + ` LIMIT 1000)`

// designBounds is, for currency c, the @n-th largest revenue over the
// period (top) and the @n-th smallest (bottom) among the sample's designs
// that sold in it (of those no batch after the as-of one changed: see
// salesByDesign); NULL if fewer than @n of them did. The true @n-th
// largest reaches top and the true @n-th smallest stays under bottom: a
// design between the two ranks at neither end. Each sampled design is
// looked up by its key (OFFSET 0 keeps the lookup apart): joined, the
// plan read the whole currency to hash it as of an early batch.
var designBounds = `(SELECT (array_agg(s.v ORDER BY s.v DESC))[@n::integer] AS top, (array_agg(s.v ORDER BY s.v))[@n::integer] AS bottom
  FROM (` + designSample + `) k(key),
  LATERAL (SELECT d.* FROM tote_dash.sales_design d WHERE d.currency_id = c.currency_id AND d.key = k.key OFFSET 0) d,
  ` + designPeriod + `, LATERAL (SELECT ` + designValue + ` AS v) s
  WHERE w.b > w.a AND (d.currency_id, d.key) NOT IN (SELECT currency_id, key FROM changed))`

// designCandidates is, for currency b (a row of bounds), the rows of
// tote_dash.sales_design that can rank, each once, found through indexes
// rather than by reading every design. No order's revenue is negative
// (b.negative: one is; then every row), so a design's revenue over the
// period is at most its revenue of all time: one that reaches top has an
// all-time revenue that does (sales_design_rank). One at or under bottom
// has an order in the period of at most bottom (the facts' value index,
// the designs it names looked up by key); or, when the period holds every
// day (designWhole), an all-time revenue at or under it
// (sales_design_rank again). Without both bounds, every row.
var designCandidates = `(
    SELECT d.* FROM tote_dash.sales_design d
    WHERE d.currency_id = b.currency_id AND (b.top IS NULL OR b.bottom IS NULL OR b.negative)
    UNION ALL
    SELECT d.* FROM tote_dash.sales_design d
    WHERE d.currency_id = b.currency_id AND b.top IS NOT NULL AND b.bottom IS NOT NULL AND NOT b.negative
      AND ` + designAllTime + ` >= b.top AND ` + designValueHere + ` >= b.top
    UNION ALL
    SELECT d.* FROM (SELECT DISTINCT f.design_id FROM fact_sales_order f
                     WHERE f.currency_id = b.currency_id AND ` + orderValue + ` <= b.bottom
                       AND f.created_date BETWEEN @from::date AND @to::date) k,
    LATERAL (SELECT d.* FROM tote_dash.sales_design d WHERE d.currency_id = b.currency_id AND d.key = k.design_id OFFSET 0) d
    WHERE b.top IS NOT NULL AND b.bottom IS NOT NULL AND NOT b.negative AND NOT ` + designWhole + `
      AND ` + designValueHere + ` <= b.bottom AND (` + designAllTime + ` < b.top OR ` + designValueHere + ` < b.top)
    UNION ALL
    SELECT d.* FROM tote_dash.sales_design d
    WHERE d.currency_id = b.currency_id AND b.top IS NOT NULL AND b.bottom IS NOT NULL AND NOT b.negative
      AND ` + designWhole + ` AND ` + designAllTime + ` <= b.bottom AND ` + designAllTime + ` < b.top
  )`

// (Each way in keeps only the rows past their bound: g's test again, but
// before the rows are joined and carried, which cost as much as reading
// them when a bound is loose. A row is left to the first way that keeps
// it.)

// salesByDesign is the @n designs with the most and the @n with the least
// revenue, per currency: rank 'top' or 'bottom', then the design's id and
// name, each currency's designs from the most revenue to the least. The
// bottom ones are the last @n in the top ones' order (revenue, then id),
// leaving out any already in the top ones; each is a top-N sort of g,
// cheaper than ranking every design that sold.
//
// Route 'design' reads tote_dash.sales_design, one row per currency and
// design (key). Current, or as of N read 'after': the designs the log
// after N changed (changed; none when current) get their figures as of N,
// the current ones less those changes; the others have their current
// figures, and only those that can rank are read: when the period has
// fewer than @listed orders (designListed), the designs its orders name;
// else, per currency, those designCandidates finds from the currency's
// bounds. As of N read 'upto': the log up to N, added up. Route 'facts'
// reads the facts.
var salesByDesign = `WITH changed AS MATERIALIZED (
  SELECT d.currency_id, d.key, sum(` + designOver("orders") + `) AS orders, sum(` + designOver("units") + `) AS units,
         sum(` + designValue + `) AS value
  FROM tote_dash.sales_design_log d, ` + designPeriod + `
  WHERE @route::text = 'design' AND @mode::text = 'after' AND d.seq > @as_of::bigint
    AND (@cur::integer[] IS NULL OR d.currency_id = ANY(@cur::integer[]))
  GROUP BY 1, 2
), period_orders AS MATERIALIZED (
  SELECT f.currency_id, f.design_id FROM fact_sales_order f
  WHERE @route::text = 'design' AND @mode::text IN ('current', 'after')
    AND f.created_date BETWEEN @from::date AND @to::date
  ORDER BY f.created_date LIMIT @listed::integer
), bounds AS MATERIALIZED (
  SELECT c.currency_id, b.top, b.bottom,
         (SELECT min(` + orderValue + `) FROM fact_sales_order f WHERE f.currency_id = c.currency_id) < 0 AS negative
  FROM dim_currency c, LATERAL ` + designBounds + ` b
  WHERE @route::text = 'design' AND @mode::text IN ('current', 'after') AND NOT ` + designListed + `
    AND (@cur::integer[] IS NULL OR c.currency_id = ANY(@cur::integer[]))
), candidates AS (
  SELECT d.* FROM (SELECT DISTINCT p.currency_id, p.design_id FROM period_orders p) p,
  LATERAL (SELECT d.* FROM tote_dash.sales_design d WHERE d.currency_id = p.currency_id AND d.key = p.design_id OFFSET 0) d
  WHERE @route::text = 'design' AND @mode::text IN ('current', 'after') AND ` + designListed + `
    AND (@cur::integer[] IS NULL OR p.currency_id = ANY(@cur::integer[]))
  UNION ALL
  SELECT d.* FROM bounds b, LATERAL ` + designCandidates + ` d
), g AS (
  SELECT d.currency_id, d.key AS design_id, ` + designOver("orders") + ` AS orders, ` + designOver("units") + ` AS units,
         v.value
  FROM candidates d LEFT JOIN bounds t ON t.currency_id = d.currency_id, ` + designPeriod + `,
       LATERAL (SELECT ` + designValue + ` AS value) v
  WHERE w.b > w.a AND (d.currency_id, d.key) NOT IN (SELECT currency_id, key FROM changed)
    AND (t.top IS NULL OR t.bottom IS NULL OR v.value >= t.top OR v.value <= t.bottom)
  UNION ALL
  SELECT x.currency_id, x.key, coalesce(now.orders, 0) - x.orders, coalesce(now.units, 0) - x.units, coalesce(now.value, 0) - x.value
  FROM changed x LEFT JOIN LATERAL (
    SELECT ` + designOver("orders") + ` AS orders, ` + designOver("units") + ` AS units, ` + designValue + ` AS value
    FROM tote_dash.sales_design d, ` + designPeriod + `
    WHERE d.currency_id = x.currency_id AND d.key = x.key OFFSET 0) now ON true -- by key, for each changed design
  WHERE coalesce(now.orders, 0) - x.orders <> 0
  UNION ALL
  SELECT currency_id, design_id, sum(orders)::bigint, sum(units)::bigint, sum(value)::bigint
  FROM (
    SELECT d.currency_id, d.key AS design_id, ` + designOver("orders") + ` AS orders, ` + designOver("units") + ` AS units,
           ` + designValue + ` AS value
    FROM tote_dash.sales_design_log d, ` + designPeriod + `
    WHERE @route::text = 'design' AND @mode::text = 'upto' AND d.seq <= @as_of::bigint AND w.b > w.a
      AND (@cur::integer[] IS NULL OR d.currency_id = ANY(@cur::integer[]))
    UNION ALL
    SELECT v.currency_id, v.design, v.orders, v.units, v.value_cents
    FROM tote_dash.sales_versions v
    WHERE ` + salesFacts + `
  ) x
  GROUP BY 1, 2 HAVING sum(orders) <> 0
), gm AS MATERIALIZED (
  SELECT * FROM g
), top AS (
  SELECT t.* FROM dim_currency c CROSS JOIN LATERAL (
    SELECT gm.* FROM gm WHERE gm.currency_id = c.currency_id ORDER BY gm.value DESC, gm.design_id LIMIT @n::integer) t
), r AS (
  SELECT 'top' AS side, top.* FROM top
  UNION ALL
  SELECT 'bottom', b.* FROM dim_currency c CROSS JOIN LATERAL (
    SELECT gm.* FROM gm
    WHERE gm.currency_id = c.currency_id
      AND NOT EXISTS (SELECT FROM top WHERE top.currency_id = gm.currency_id AND top.design_id = gm.design_id)
    ORDER BY gm.value, gm.design_id DESC LIMIT @n::integer) b
)
SELECT r.side AS rank, r.design_id, (SELECT d.design_name FROM dim_design d WHERE d.design_id = r.design_id) AS design,
       c.currency_code AS currency, r.orders::bigint AS orders, r.units::bigint AS units, r.value::bigint AS revenue
FROM r JOIN dim_currency c USING (currency_id)
ORDER BY c.currency_code, r.side = 'bottom', r.value DESC, r.design_id`

// salesByCounterparty is orders, units and revenue per counterparty and
// currency, largest first.
var salesByCounterparty = `WITH src AS (` + salesSource + `
), s AS (
  SELECT counterparty_id, currency_id, sum(orders)::bigint AS orders, sum(units)::bigint AS units,
         sum(value_cents)::bigint AS value_cents
  FROM src GROUP BY 1, 2 HAVING sum(orders) <> 0
)
SELECT s.counterparty_id AS cp, p.counterparty_legal_name AS counterparty, c.currency_code AS currency,
       s.orders, s.units, s.value_cents AS revenue
FROM s JOIN dim_counterparty p USING (counterparty_id) JOIN dim_currency c USING (currency_id)
ORDER BY 6 DESC, 1, 3`

// byStaff is salesSource summed by member of staff and currency.
var byStaff = `WITH src AS (` + salesSource + `
), s AS (
  SELECT staff_id, currency_id, sum(orders) AS orders, sum(units) AS units, sum(value_cents) AS value_cents
  FROM src GROUP BY 1, 2
)`

// salesByStaff is orders, units and revenue per member of staff and
// currency, largest first.
var salesByStaff = byStaff + `
SELECT s.staff_id AS staff, st.first_name || ' ' || st.last_name AS name, c.currency_code AS currency,
       s.orders::bigint AS orders, s.units::bigint AS units, s.value_cents::bigint AS revenue
FROM s JOIN dim_staff st USING (staff_id) JOIN dim_currency c USING (currency_id)
WHERE s.orders <> 0 ORDER BY 6 DESC, 1, 3`

// salesByDepartment is orders, units and revenue per department (of the
// staff member who made the sale) and currency.
var salesByDepartment = byStaff + `
SELECT st.department_name AS dept, c.currency_code AS currency, sum(s.orders)::bigint AS orders,
       sum(s.units)::bigint AS units, sum(s.value_cents)::bigint AS revenue
FROM s JOIN dim_staff st USING (staff_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// salesLeadTime is orders, units and revenue per lead-time bucket (from
// order to agreed delivery, LeadBuckets) and currency.
var salesLeadTime = `WITH src AS (` + salesSource + `)
SELECT s.lead AS bucket, c.currency_code AS currency, sum(s.orders)::bigint AS orders, sum(s.units)::bigint AS units,
       sum(s.value_cents)::bigint AS revenue
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 1, 2`

// purchaseFacts is salesFacts for purchase order versions v.
var purchaseFacts = `@route::text = 'facts' AND v.day BETWEEN @from::date AND @to::date
  AND (@cur::integer[] IS NULL OR v.currency_id = ANY(@cur::integer[]))
  AND (@loc::integer[] IS NULL OR v.location = ANY(@loc::integer[]))
  AND (@staff::integer[] IS NULL OR v.staff = ANY(@staff::integer[]))
  AND (@cp::integer[] IS NULL OR v.counterparty = ANY(@cp::integer[]))
  AND ` + versionsAsOf("purchases")

// purchaseSource is the rows purchase queries aggregate: (day, currency_id,
// orders, quantity, value_cents), from tote_dash.purchases_by ('all' or a
// dimension) or the facts.
var purchaseSource = `
SELECT s.day, s.currency_id, s.orders, s.quantity, s.value_cents
FROM ` + summaryAsOf("purchases_by", "currency_id", []string{"orders", "quantity", "value_cents"}) + `
WHERE @route::text <> 'facts' AND s.dim = @route::text AND s.day BETWEEN @from::date AND @to::date
  AND (@cur::integer[] IS NULL OR s.currency_id = ANY(@cur::integer[]))
` + dimKey + `
UNION ALL
SELECT v.day, v.currency_id, v.orders, v.quantity, v.value_cents
FROM tote_dash.purchases_versions v
WHERE ` + purchaseFacts

// purchaseSeries is purchase orders, quantity and value per period
// (@grain) and currency.
var purchaseSeries = `WITH src AS (` + purchaseSource + `)
SELECT to_char(date_trunc(@grain::text, s.day), 'YYYY-MM-DD') AS period, c.currency_code AS currency,
       sum(s.orders)::bigint AS orders, sum(s.quantity)::bigint AS quantity, sum(s.value_cents)::bigint AS value
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 1, 2`

// paymentSource is the payments the payment queries aggregate, by payment
// date: (day, currency_id, payment_type_id, paid, payments, amount_cents),
// from tote_dash.payments_by ('all' or 'counterparty').
var paymentSource = `
SELECT s.day, s.currency_id, s.payment_type_id, s.paid, s.payments, s.amount_cents
FROM ` + summaryAsOf("payments_by", "currency_id, payment_type_id, paid", []string{"payments", "amount_cents"}) + `
WHERE s.dim = @route::text AND s.day BETWEEN @from::date AND @to::date
  AND (@cur::integer[] IS NULL OR s.currency_id = ANY(@cur::integer[]))
  AND (@route::text <> 'counterparty' OR s.key = ANY(@cp::integer[]))`

// paymentNet is paymentSource summed by day, currency, type and status:
// what is there on each day, whichever rows it comes from.
var paymentNet = `WITH src AS (` + paymentSource + `
), s AS (
  SELECT day, currency_id, payment_type_id, paid, sum(payments)::bigint AS payments, sum(amount_cents)::bigint AS amount_cents
  FROM src GROUP BY 1, 2, 3, 4 HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0
)`

// paymentKPIs is, per currency, the unpaid payments due before @today
// (today, or the as-of day: overdue) in the period from @since to @to and
// in the previous period, and the oldest overdue payment date.
var paymentKPIs = paymentNet + `
SELECT c.currency_code AS currency,
       coalesce(sum(s.payments) FILTER (WHERE NOT s.paid AND s.day < @today::date AND s.day >= @since::date), 0)::bigint AS overdue,
       coalesce(sum(s.amount_cents) FILTER (WHERE NOT s.paid AND s.day < @today::date AND s.day >= @since::date), 0)::bigint AS overdue_amount,
       coalesce(sum(s.payments) FILTER (WHERE NOT s.paid AND s.day < @today::date AND s.day < @since::date), 0)::bigint AS prev_overdue,
       coalesce(sum(s.amount_cents) FILTER (WHERE NOT s.paid AND s.day < @today::date AND s.day < @since::date), 0)::bigint AS prev_overdue_amount,
       to_char(min(s.day) FILTER (WHERE NOT s.paid AND s.day < @today::date AND s.day >= @since::date), 'YYYY-MM-DD') AS oldest_overdue
FROM s JOIN dim_currency c USING (currency_id)
GROUP BY 1 ORDER BY 1`

// paymentStatus is payments and their amount per currency, payment type
// and status (paid; overdue: unpaid and due before @today; due), with the
// oldest payment date of each.
var paymentStatus = paymentNet + `
SELECT c.currency_code AS currency, t.payment_type_name AS type,
       CASE WHEN s.paid THEN 'paid' WHEN s.day < @today::date THEN 'overdue' ELSE 'due' END AS status,
       sum(s.payments)::bigint AS payments, sum(s.amount_cents)::bigint AS amount, to_char(min(s.day), 'YYYY-MM-DD') AS oldest
FROM s JOIN dim_currency c USING (currency_id) JOIN dim_payment_type t USING (payment_type_id)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// paymentSeries is paid and unpaid payments per period (@grain) and
// currency, by payment date.
var paymentSeries = `WITH src AS (` + paymentSource + `)
SELECT to_char(date_trunc(@grain::text, s.day), 'YYYY-MM-DD') AS period, c.currency_code AS currency, s.paid,
       sum(s.payments)::bigint AS payments, sum(s.amount_cents)::bigint AS amount
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2, 3 HAVING sum(s.payments) <> 0 ORDER BY 1, 2, 3`

// drillSalesCount is how many sales orders are behind a figure, with their
// units and revenue per currency: the sales parameters, from the summary
// that answers the figure itself.
var drillSalesCount = `WITH src AS (` + salesSource + `)
SELECT c.currency_code AS currency, sum(s.orders)::bigint AS rows, sum(s.units)::bigint AS units,
       sum(s.value_cents)::bigint AS revenue
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1 HAVING sum(s.orders) <> 0 ORDER BY 1`

// drillSalesRows is one page (@limit rows from @offset) of the sales
// order versions behind a figure (the sales parameters, route 'facts'),
// newest order first: the fact row, its source id, version (last_updated)
// and the lake batch that loaded it.
var drillSalesRows = `
SELECT f.sales_order_id AS id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS') AS version,
       f.batch_id AS batch, f.sales_record_id AS record, to_char(f.created_date, 'YYYY-MM-DD') AS created,
       c.currency_code AS currency, d.design_name AS design, st.first_name || ' ' || st.last_name AS staff,
       p.counterparty_legal_name AS counterparty, l.country, l.city, f.units_sold::bigint AS units,
       f.unit_price::text AS unit_price, (f.units_sold * f.unit_price)::text AS value,
       to_char(f.agreed_delivery_date, 'YYYY-MM-DD') AS delivery
FROM (SELECT v.rec FROM tote_dash.sales_versions v
      WHERE ` + salesFacts + `
      ORDER BY v.day DESC, v.id DESC
      LIMIT @limit::integer OFFSET @offset::integer) r
JOIN fact_sales_order f ON f.sales_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_design d ON d.design_id = f.design_id
LEFT JOIN dim_staff st ON st.staff_id = f.sales_staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
LEFT JOIN dim_location l ON l.location_id = f.agreed_delivery_location_id
ORDER BY f.created_date DESC, f.sales_order_id DESC`

// paymentStatusIs is the condition that payment rows r (with paid and
// day) have status @status ('paid', 'unpaid', 'overdue' as of day @today,
// 'due'; NULL: any).
func paymentStatusIs(r string) string {
	return `(@status::text IS NULL
       OR (@status::text = 'paid' AND ` + r + `.paid) OR (@status::text = 'unpaid' AND NOT ` + r + `.paid)
       OR (@status::text = 'overdue' AND NOT ` + r + `.paid AND ` + r + `.day < @today::date)
       OR (@status::text = 'due' AND NOT ` + r + `.paid AND ` + r + `.day >= @today::date))`
}

// drillPaymentCount is how many payments are behind a figure, and their
// amount, per currency.
var drillPaymentCount = `WITH src AS (` + paymentSource + `)
SELECT c.currency_code AS currency, sum(s.payments)::bigint AS rows, sum(s.amount_cents)::bigint AS amount
FROM src s JOIN dim_currency c USING (currency_id)
WHERE ` + paymentStatusIs("s") + `
GROUP BY 1 HAVING sum(s.payments) <> 0 ORDER BY 1`

// drillPaymentRows is one page (@limit rows from @offset) of the payment
// versions behind a figure, oldest payment date first (the route unused).
var drillPaymentRows = `
SELECT f.payment_id AS id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS') AS version,
       f.batch_id AS batch, f.payment_record_id AS record, to_char(f.payment_date, 'YYYY-MM-DD') AS payment_date,
       c.currency_code AS currency, t.payment_type_name AS type, p.counterparty_legal_name AS counterparty, f.paid,
       f.payment_amount::text AS amount, f.transaction_id AS transaction
FROM (SELECT v.rec FROM tote_dash.payments_versions v
      WHERE @route::text IS NOT NULL AND v.day BETWEEN @from::date AND @to::date
        AND (@cur::integer[] IS NULL OR v.currency_id = ANY(@cur::integer[]))
        AND (@cp::integer[] IS NULL OR v.counterparty = ANY(@cp::integer[]))
        AND ` + paymentStatusIs("v") + `
        AND ` + versionsAsOf("payments") + `
      ORDER BY v.day, v.id
      LIMIT @limit::integer OFFSET @offset::integer) r
JOIN fact_payment f ON f.payment_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_payment_type t ON t.payment_type_id = f.payment_type_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
ORDER BY f.payment_date, f.payment_id`

// drillPurchaseCount is how many purchase orders are behind a figure, with
// their quantity and value, per currency.
var drillPurchaseCount = `WITH src AS (` + purchaseSource + `)
SELECT c.currency_code AS currency, sum(s.orders)::bigint AS rows, sum(s.quantity)::bigint AS quantity,
       sum(s.value_cents)::bigint AS value
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1 HAVING sum(s.orders) <> 0 ORDER BY 1`

// drillPurchaseRows is one page (@limit rows from @offset) of the
// purchase order versions behind a figure (route 'facts'), newest first.
var drillPurchaseRows = `
SELECT f.purchase_order_id AS id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS') AS version,
       f.batch_id AS batch, f.purchase_record_id AS record, to_char(f.created_date, 'YYYY-MM-DD') AS created,
       c.currency_code AS currency, f.item_code AS item, st.first_name || ' ' || st.last_name AS staff,
       p.counterparty_legal_name AS counterparty, f.item_quantity::bigint AS quantity, f.item_unit_price::text AS unit_price,
       (f.item_quantity * f.item_unit_price)::text AS value
FROM (SELECT v.rec FROM tote_dash.purchases_versions v
      WHERE ` + purchaseFacts + `
      ORDER BY v.day DESC, v.id DESC
      LIMIT @limit::integer OFFSET @offset::integer) r
JOIN fact_purchase_order f ON f.purchase_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_staff st ON st.staff_id = f.staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
ORDER BY f.created_date DESC, f.purchase_order_id DESC`

// orderHistory is every version the warehouse holds of sales order
// @order, in the order they became visible (batch order, as the ledger
// numbers the batches), with when each was loaded; a deletion version says
// so (its version is when the deletion was seen).
var orderHistory = `
SELECT f.sales_record_id AS record, CASE WHEN f.is_deleted THEN 'deleted' ELSE '' END AS change,
       to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS') AS version,
       f.batch_id AS batch, coalesce(to_char(l.loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '') AS loaded_at,
       to_char(f.created_date + f.created_time, 'YYYY-MM-DD HH24:MI:SS') AS created, c.currency_code AS currency,
       d.design_name AS design, st.first_name || ' ' || st.last_name AS staff, p.counterparty_legal_name AS counterparty,
       l2.country, l2.city, f.units_sold::bigint AS units, f.unit_price::text AS unit_price,
       to_char(f.agreed_delivery_date, 'YYYY-MM-DD') AS delivery, to_char(f.agreed_payment_date, 'YYYY-MM-DD') AS payment,
       f.source_xmin AS xmin
FROM fact_sales_order f
LEFT JOIN tote.load_ledger l ON l.batch_id = f.batch_id
LEFT JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_design d ON d.design_id = f.design_id
LEFT JOIN dim_staff st ON st.staff_id = f.sales_staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
LEFT JOIN dim_location l2 ON l2.location_id = f.agreed_delivery_location_id
WHERE f.sales_order_id = @order::integer
ORDER BY coalesce(l.seq, 0), f.sales_record_id`

// dataBounds is the first and last day with a sale (as the summaries
// count them), as the date presets count back from the last.
var dataBounds = `
SELECT coalesce((SELECT to_char(day, 'YYYY-MM-DD') FROM tote_dash.sales_by WHERE dim = 'all' AND orders <> 0
                 ORDER BY day LIMIT 1), ''),
       coalesce((SELECT to_char(day, 'YYYY-MM-DD') FROM tote_dash.sales_by WHERE dim = 'all' AND orders <> 0
                 ORDER BY day DESC LIMIT 1), '')`

// summaryState is the batch the summaries reflect, the newest batch
// loaded at or before time @at (0 if none, or @at NULL), and each fact's
// rows the summaries have (their surrogate keys up to it).
var summaryState = `
SELECT w.seq,
       coalesce((SELECT max(seq) FROM tote.load_ledger WHERE loaded_at <= @at::timestamptz), 0),
       coalesce((SELECT jsonb_object_agg(fact, record_id) FROM tote_dash.state), '{}')
FROM tote_dash.watermark w`

// newestLoad is the newest batch in the ledger and when it was loaded.
var newestLoad = `SELECT batch_id, seq, loaded_at FROM tote.load_ledger ORDER BY seq DESC LIMIT 1`

// recentLoads is the @limit most recent batches of the ledger, oldest
// first: batch, sequence number, when loaded, rows, and the source rows
// deleted (deletion versions and flagged dimension rows).
var recentLoads = `
SELECT batch_id, seq, loaded_at, rows, (SELECT coalesce(sum(n::bigint), 0) FROM jsonb_each_text(deleted) d(t, n)) FROM (
  SELECT batch_id, seq, loaded_at, rows, deleted FROM tote.load_ledger ORDER BY seq DESC LIMIT @limit::integer
) r ORDER BY seq`

// hasGroups says whether the warehouse is migrated far enough for the
// dashboard's summaries (migration 0011's tote.group_migrations).
var hasGroups = `SELECT to_regclass('tote.group_migrations') IS NOT NULL`

// The filter lists: every value a filter can take.
const (
	// countries lists the delivery countries.
	countries = `SELECT DISTINCT country FROM dim_location ORDER BY 1`
	// cities lists the delivery cities with their country.
	cities = `SELECT DISTINCT country, city FROM dim_location ORDER BY 1, 2`
	// staffList lists the staff with their department.
	staffList = `SELECT staff_id, first_name || ' ' || last_name, department_name FROM dim_staff ORDER BY 2, 1`
	// departments lists the departments that have staff.
	departments = `SELECT DISTINCT department_name FROM dim_staff ORDER BY 1`
	// currencies lists the currencies.
	currencies = `SELECT currency_id, currency_code, currency_name FROM dim_currency ORDER BY 2`
	// counterparties lists the counterparties.
	counterparties = `SELECT counterparty_id, counterparty_legal_name FROM dim_counterparty ORDER BY 2, 1`
	// designsByID names the designs with ids @ids.
	designsByID = `SELECT design_id, design_name FROM dim_design WHERE design_id = ANY(@ids::integer[]) ORDER BY 2, 1`
	// designSearch finds up to 20 designs whose name contains @q, or whose id is @q.
	designSearch = `
SELECT design_id, design_name FROM dim_design
WHERE design_name ILIKE '%' || @q::text || '%' OR design_id::text = @q::text
ORDER BY design_id::text = @q::text DESC, design_name, design_id LIMIT 20`
)

// Resolving filters by name to the ids the summaries keep.
const (
	// locationIDs are the delivery addresses in countries @countries and
	// cities @cities ("country / city"); NULL for no filter.
	locationIDs = `
SELECT location_id FROM dim_location
WHERE (@countries::text[] IS NULL OR country = ANY(@countries::text[]))
  AND (@cities::text[] IS NULL OR country || ' / ' || city = ANY(@cities::text[]))`
	// staffIDs are the staff of departments @depts.
	staffIDs = `SELECT staff_id FROM dim_staff WHERE department_name = ANY(@depts::text[])`
	// currencyIDs are the currencies with codes @codes.
	currencyIDs = `SELECT currency_id FROM dim_currency WHERE currency_code = ANY(@codes::text[])`
)

// queries is the allow-list: the only SQL the dashboard runs, by name.
var queries = map[string]string{
	"sales_kpis":            salesKPIs,
	"sales_series":          salesSeries,
	"sales_by_country":      salesByCountry,
	"sales_by_city":         salesByCity,
	"sales_by_design":       salesByDesign,
	"sales_by_counterparty": salesByCounterparty,
	"sales_by_staff":        salesByStaff,
	"sales_by_department":   salesByDepartment,
	"sales_lead_time":       salesLeadTime,
	"purchase_series":       purchaseSeries,
	"payment_kpis":          paymentKPIs,
	"payment_status":        paymentStatus,
	"payment_series":        paymentSeries,
	"drill_sales_count":     drillSalesCount,
	"drill_sales_rows":      drillSalesRows,
	"drill_payment_count":   drillPaymentCount,
	"drill_payment_rows":    drillPaymentRows,
	"drill_purchase_count":  drillPurchaseCount,
	"drill_purchase_rows":   drillPurchaseRows,
	"order_history":         orderHistory,
	"data_bounds":           dataBounds,
	"summary_state":         summaryState,
	"newest_load":           newestLoad,
	"recent_loads":          recentLoads,
	"countries":             countries,
	"cities":                cities,
	"staff":                 staffList,
	"departments":           departments,
	"currencies":            currencies,
	"counterparties":        counterparties,
	"designs_by_id":         designsByID,
	"design_search":         designSearch,
	"location_ids":          locationIDs,
	"staff_ids":             staffIDs,
	"currency_ids":          currencyIDs,
}

// QueryNames returns the names of every query the dashboard runs, sorted.
func QueryNames() []string {
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// db runs the named queries and times them.
type db struct {
	pool *pgxpool.Pool
	// observe, if set, is told how long each query took.
	observe func(name string, d time.Duration)
}

// query runs the named query with named arguments args (nil for none). It uses an unnamed prepared statement
// (QueryExecModeExec), so that PostgreSQL plans each execution with its
// parameters: the one-time filters of the sources fold away and the
// NULL-means-any filters become plain index conditions, which a cached
// generic plan would not do.
func (d *db) query(ctx context.Context, name string, args pgx.NamedArgs) (pgx.Rows, error) {
	sql, ok := queries[name]
	if !ok {
		panic("web: no query named " + name)
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	if err := prepareSession(ctx, conn); err != nil {
		conn.Release()
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	start := time.Now() // the query's own time, not the wait for a connection
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeExec, args)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	return &timedRows{Rows: rows, name: name, start: start, d: d, conn: conn}, nil
}

// sessionSettings are the settings the dashboard's queries run with, set
// once on each connection of its pool (the dashboard's own): memory
// enough for their sorts and hashes (a few hundred thousand summary rows
// at most) not to spill to disk, and no JIT compilation, which costs more
// than these short queries gain from it.
var sessionSettings = `SET work_mem = '32MB'; SET jit = off`

// prepareSession applies sessionSettings to a connection the first time
// the dashboard uses it.
func prepareSession(ctx context.Context, conn *pgxpool.Conn) error {
	data := conn.Conn().PgConn().CustomData()
	if data["tote/web"] != nil {
		return nil
	}
	if _, err := conn.Exec(ctx, sessionSettings, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("session settings: %w", err)
	}
	data["tote/web"] = true
	return nil
}

// collect runs the named query and scans every row with fn.
func collect[T any](ctx context.Context, d *db, name string, args pgx.NamedArgs, fn func(pgx.CollectableRow) (T, error)) ([]T, error) {
	rows, err := d.query(ctx, name, args)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, fn)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// timedRows reports the query's time once its rows are read.
type timedRows struct {
	pgx.Rows
	name  string
	start time.Time
	d     *db
	conn  *pgxpool.Conn
	done  bool
}

func (r *timedRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.conn.Release()
		if r.d.observe != nil {
			r.d.observe(r.name, time.Since(r.start))
		}
	}
}

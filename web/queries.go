package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every query the dashboard runs is one of the named SQL constants below,
// listed in queries: the browser sends filter values, never SQL, and a
// handler can only ask for a query by name.
//
// The business queries read the summaries of migration 0008 (its header
// says what they hold) and, for what no summary has (a design, two
// dimensions at once), the facts through the migration's indexes. A
// fact's queries share their first parameters:
//
//	$1 route: which summary rows ('lead', 'location', 'staff',
//	   'counterparty', 'all', 'design'), or 'facts' (filter.salesRoute and
//	   the like)
//	$2 mode: 'current'; or, as of batch $3, 'upto' (the log up to it) or
//	   'after' (the current summaries less the log after it): filter.modes
//	$3 the as-of batch's sequence number (unused when current)
//	$4, $5 the first and last day (YYYY-MM-DD)
//	then the filters, NULL for none: sales $6 currency, $7 location, $8
//	staff, $9 counterparty, $10 design ids, $11 lead-time bucket;
//	purchases $6 to $9 as sales; payments $6 currency, $7 counterparty ids
//
// and read their rows from salesSource, purchaseSource or paymentSource,
// whose branches $1 and $2 switch on and off: the queries run with custom
// plans (db.query), so those one-time conditions fold away, and so do the
// NULL-means-any filters, leaving one source and plain index conditions.

// salesFacts is the condition on the sales order versions (v, a row of
// tote.dash_sales_versions) that the sales parameters select: the route is
// 'facts', the current version (or the one as of batch $3) of each order,
// matching the filters.
var salesFacts = `$1::text = 'facts' AND v.day BETWEEN $4::date AND $5::date
  AND ($6::integer[] IS NULL OR v.currency_id = ANY($6::integer[]))
  AND ($7::integer[] IS NULL OR v.location_id = ANY($7::integer[]))
  AND ($8::integer[] IS NULL OR v.staff_id = ANY($8::integer[]))
  AND ($9::integer[] IS NULL OR v.counterparty_id = ANY($9::integer[]))
  AND ($10::integer[] IS NULL OR v.design_id = ANY($10::integer[]))
  AND ($11::smallint IS NULL OR v.lead = $11::smallint)
  AND ($2::text = 'current' OR v.seq <= $3::bigint)
  AND NOT EXISTS (SELECT FROM tote.dash_sales_next n
                  WHERE n.sales_record_id = v.rec AND ($2::text = 'current' OR n.next_seq <= $3::bigint))`

// salesFactsOf is the condition that sales order versions v are in the
// period and current (or as of batch $3), whatever the route and filters.
var salesFactsOf = `v.day BETWEEN $4::date AND $5::date
  AND ($2::text = 'current' OR v.seq <= $3::bigint)
  AND NOT EXISTS (SELECT FROM tote.dash_sales_next n
                  WHERE n.sales_record_id = v.rec AND ($2::text = 'current' OR n.next_seq <= $3::bigint))`

// summaryAsOf is summary table t (tote.t and its log tote.t_log) as the
// queries' state asks ($2: 'current', 'after' batch $3 or 'upto' batch $3),
// with its columns dim, day, key, cols and the sums (negated where the
// log's rows are taken away), as s.
func summaryAsOf(t, cols, sums string) string {
	neg := "-" + strings.ReplaceAll(sums, ", ", ", -")
	return `(
  SELECT dim, day, key, ` + cols + `, ` + sums + ` FROM tote.` + t + `
  WHERE $2::text IN ('current', 'after')
  UNION ALL
  SELECT dim, day, key, ` + cols + `, ` + sums + ` FROM tote.` + t + `_log
  WHERE $2::text = 'upto' AND seq <= $3::bigint
  UNION ALL
  SELECT dim, day, key, ` + cols + `, ` + neg + ` FROM tote.` + t + `_log
  WHERE $2::text = 'after' AND seq > $3::bigint
) s`
}

// dimKey keeps the summary rows s whose key is among the ids the route's
// dimension ($1) is filtered to ($7 locations, $8 staff, $9
// counterparties; NULL: any).
var dimKey = `  AND (CASE $1::text WHEN 'location' THEN $7::integer[] WHEN 'staff' THEN $8::integer[] WHEN 'counterparty' THEN $9::integer[] END IS NULL
       OR s.key = ANY(CASE $1::text WHEN 'location' THEN $7::integer[] WHEN 'staff' THEN $8::integer[] WHEN 'counterparty' THEN $9::integer[] END))`

// salesSource is the rows the sales queries aggregate: (day, currency_id,
// lead, location_id, staff_id, counterparty_id, design_id, orders, units,
// value_cents), from tote.dash_sales_by (the dimension $1 names; the
// others are NULL) or the facts.
var salesSource = `
SELECT s.day, s.currency_id,
       (CASE WHEN s.dim = 'lead' THEN s.key END)::smallint AS lead,
       CASE WHEN s.dim = 'location' THEN s.key END AS location_id,
       CASE WHEN s.dim = 'staff' THEN s.key END AS staff_id,
       CASE WHEN s.dim = 'counterparty' THEN s.key END AS counterparty_id,
       NULL::integer AS design_id, s.orders, s.units, s.value_cents
FROM ` + summaryAsOf("dash_sales_by", "currency_id", "orders, units, value_cents") + `
WHERE $1::text <> 'facts' AND s.dim = $1::text AND s.day BETWEEN $4::date AND $5::date
  AND ($6::integer[] IS NULL OR s.currency_id = ANY($6::integer[]))
` + dimKey + `
  AND ($1::text <> 'lead' OR $11::smallint IS NULL OR s.key = $11::smallint)
UNION ALL
SELECT v.day, v.currency_id, v.lead, v.location_id, v.staff_id, v.counterparty_id, v.design_id, v.orders, v.units, v.value_cents
FROM tote.dash_sales_versions v
WHERE ` + salesFacts

// salesKPIs is revenue, orders and units per currency in the period from
// $12 to $5 and in the previous period ($4 to the day before $12). Money
// is in cents.
var salesKPIs = `WITH src AS (` + salesSource + `
), g AS (
  SELECT currency_id,
         coalesce(sum(orders) FILTER (WHERE day >= $12::date), 0)::bigint AS orders,
         coalesce(sum(units) FILTER (WHERE day >= $12::date), 0)::bigint AS units,
         coalesce(sum(value_cents) FILTER (WHERE day >= $12::date), 0)::bigint AS value,
         coalesce(sum(orders) FILTER (WHERE day < $12::date), 0)::bigint AS prev_orders,
         coalesce(sum(units) FILTER (WHERE day < $12::date), 0)::bigint AS prev_units,
         coalesce(sum(value_cents) FILTER (WHERE day < $12::date), 0)::bigint AS prev_value
  FROM src GROUP BY currency_id
)
SELECT c.currency_code, g.orders, g.units, g.value, g.prev_orders, g.prev_units, g.prev_value
FROM g JOIN dim_currency c USING (currency_id)
WHERE g.orders <> 0 OR g.prev_orders <> 0
ORDER BY c.currency_code`

// salesSeries is orders, units and revenue per period ($12: day, week,
// month or quarter; the period's first day) and currency.
var salesSeries = `WITH src AS (` + salesSource + `)
SELECT to_char(date_trunc($12::text, s.day), 'YYYY-MM-DD'), c.currency_code,
       sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
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
SELECT l.country, c.currency_code, sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
FROM s JOIN dim_location l USING (location_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// salesByCity is orders, units and revenue per delivery city (with its
// country) and currency.
var salesByCity = byLocation + `
SELECT l.country || ' / ' || l.city, c.currency_code, sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
FROM s JOIN dim_location l USING (location_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// designPeriod is, for each row d of tote.dash_sales_design or its log,
// the positions in d.days of the last day of the period ($5) and the last
// day before it: d.x[b] - d.x[a] is d's figure over the period (x[0] is
// NULL: nothing).
var designPeriod = `LATERAL (SELECT width_bucket($5::date, d.days) AS b, width_bucket($4::date - 1, d.days) AS a) w`

// designValue is d's revenue over the period.
var designValue = `coalesce(d.value_cents[w.b], 0) - coalesce(d.value_cents[w.a], 0)`

// designTop is, for currency c, the $12th largest revenue over the period
// among the 100 designs that sold the most of all time (of those no batch
// after the as-of one changed: see salesByDesign): a value the true $12th
// largest reaches, since no design sells more in a period than in all
// time. NULL if fewer than $12 of them sold in the period.
var designTop = `(SELECT s.v FROM (
    SELECT ` + designValue + ` AS v
    FROM tote.dash_sales_design d, ` + designPeriod + `
    WHERE d.currency_id = c.currency_id AND w.b > w.a
      AND NOT EXISTS (SELECT FROM changed x WHERE x.currency_id = d.currency_id AND x.design_id = d.design_id)
    ORDER BY d.value_cents[array_upper(d.value_cents, 1)] DESC LIMIT 100) s
  ORDER BY s.v DESC OFFSET $12::integer - 1 LIMIT 1)`

// designBottom is the same from the other end: the $12th smallest
// revenue over the period among the 100 designs that sold the least of
// all time, which the true $12th smallest stays under.
var designBottom = `(SELECT s.v FROM (
    SELECT ` + designValue + ` AS v
    FROM tote.dash_sales_design d, ` + designPeriod + `
    WHERE d.currency_id = c.currency_id AND w.b > w.a
      AND NOT EXISTS (SELECT FROM changed x WHERE x.currency_id = d.currency_id AND x.design_id = d.design_id)
    ORDER BY d.value_cents[array_upper(d.value_cents, 1)] LIMIT 100) s
  ORDER BY s.v OFFSET $12::integer - 1 LIMIT 1)`

// salesByDesign is the $12 designs with the most and the $12 with the
// least revenue, per currency: rank 'top' or 'bottom', then the design's
// id and name, each currency's designs from the most revenue to the least.
// The bottom ones are the last $12 in the top ones' order (revenue, then
// id), leaving out any already in the top ones; each is a top-N sort of
// g, cheaper than ranking every design that sold.
//
// Route 'design' reads tote.dash_sales_design, one row per currency and
// design. Current, or as of batch N read 'after': the designs the log
// after N changed (changed; none when current) get their figures as of N,
// the current ones less those changes; the others have their current
// figures, and only those that can rank (their revenue at or past their
// currency's bounds, kept in arrays in the order of bounds.currency) are
// sorted. As of N read 'upto': the log up to N, added up. Route 'facts'
// reads the facts. The table has no units: the ranked designs' come from
// the facts (the design index finds their few rows).
var salesByDesign = `WITH changed AS MATERIALIZED (
  SELECT d.currency_id, d.design_id, sum(coalesce(d.orders[w.b], 0) - coalesce(d.orders[w.a], 0)) AS orders,
         sum(` + designValue + `) AS value
  FROM tote.dash_sales_design_log d, ` + designPeriod + `
  WHERE $1::text = 'design' AND $2::text = 'after' AND d.seq > $3::bigint
    AND ($6::integer[] IS NULL OR d.currency_id = ANY($6::integer[]))
  GROUP BY 1, 2
), bounds AS MATERIALIZED (
  SELECT array_agg(c.currency_id) AS currency, array_agg(` + designTop + `) AS top, array_agg(` + designBottom + `) AS bottom
  FROM dim_currency c
  WHERE $1::text = 'design' AND $2::text IN ('current', 'after')
), g AS (
  SELECT d.currency_id, d.design_id, coalesce(d.orders[w.b], 0) - coalesce(d.orders[w.a], 0) AS orders,
         NULL::bigint AS units, ` + designValue + ` AS value
  FROM tote.dash_sales_design d CROSS JOIN bounds t, ` + designPeriod + `,
       LATERAL (SELECT array_position(t.currency, d.currency_id) AS i) c
  WHERE $1::text = 'design' AND $2::text IN ('current', 'after') AND w.b > w.a
    AND ($6::integer[] IS NULL OR d.currency_id = ANY($6::integer[]))
    AND NOT EXISTS (SELECT FROM changed x WHERE x.currency_id = d.currency_id AND x.design_id = d.design_id)
    AND (t.top[c.i] IS NULL OR t.bottom[c.i] IS NULL OR ` + designValue + ` >= t.top[c.i] OR ` + designValue + ` <= t.bottom[c.i])
  UNION ALL
  SELECT x.currency_id, x.design_id, coalesce(now.orders, 0) - x.orders, NULL, coalesce(now.value, 0) - x.value
  FROM changed x LEFT JOIN LATERAL (
    SELECT coalesce(d.orders[w.b], 0) - coalesce(d.orders[w.a], 0) AS orders, ` + designValue + ` AS value
    FROM tote.dash_sales_design d, ` + designPeriod + `
    WHERE d.currency_id = x.currency_id AND d.design_id = x.design_id) now ON true
  WHERE coalesce(now.orders, 0) - x.orders <> 0
  UNION ALL
  SELECT currency_id, design_id, sum(orders)::bigint, sum(units)::bigint, sum(value)::bigint
  FROM (
    SELECT d.currency_id, d.design_id, coalesce(d.orders[w.b], 0) - coalesce(d.orders[w.a], 0) AS orders,
           NULL::bigint AS units, ` + designValue + ` AS value
    FROM tote.dash_sales_design_log d, ` + designPeriod + `
    WHERE $1::text = 'design' AND $2::text = 'upto' AND d.seq <= $3::bigint AND w.b > w.a
      AND ($6::integer[] IS NULL OR d.currency_id = ANY($6::integer[]))
    UNION ALL
    SELECT v.currency_id, v.design_id, v.orders, v.units, v.value_cents
    FROM tote.dash_sales_versions v
    WHERE ` + salesFacts + `
  ) x
  GROUP BY 1, 2 HAVING sum(orders) <> 0
), gm AS MATERIALIZED (
  SELECT * FROM g
), top AS (
  SELECT t.* FROM dim_currency c CROSS JOIN LATERAL (
    SELECT gm.* FROM gm WHERE gm.currency_id = c.currency_id ORDER BY gm.value DESC, gm.design_id LIMIT $12::integer) t
), r AS (
  SELECT 'top' AS side, top.* FROM top
  UNION ALL
  SELECT 'bottom', b.* FROM dim_currency c CROSS JOIN LATERAL (
    SELECT gm.* FROM gm
    WHERE gm.currency_id = c.currency_id
      AND NOT EXISTS (SELECT FROM top WHERE top.currency_id = gm.currency_id AND top.design_id = gm.design_id)
    ORDER BY gm.value, gm.design_id DESC LIMIT $12::integer) b
)
SELECT r.side, r.design_id,
       (SELECT d.design_name FROM dim_design d WHERE d.design_id = r.design_id), c.currency_code,
       r.orders, coalesce(r.units, (SELECT sum(v.units) FROM tote.dash_sales_versions v
                                    WHERE v.design_id = r.design_id AND v.currency_id = r.currency_id
                                      AND ` + salesFactsOf + `))::bigint,
       r.value
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
SELECT s.counterparty_id, p.counterparty_legal_name, c.currency_code, s.orders, s.units, s.value_cents
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
SELECT s.staff_id, st.first_name || ' ' || st.last_name, c.currency_code,
       s.orders::bigint, s.units::bigint, s.value_cents::bigint
FROM s JOIN dim_staff st USING (staff_id) JOIN dim_currency c USING (currency_id)
WHERE s.orders <> 0 ORDER BY 6 DESC, 1, 3`

// salesByDepartment is orders, units and revenue per department (of the
// staff member who made the sale) and currency.
var salesByDepartment = byStaff + `
SELECT st.department_name, c.currency_code, sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
FROM s JOIN dim_staff st USING (staff_id) JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 5 DESC, 1, 2`

// salesLeadTime is orders, units and revenue per lead-time bucket (from
// order to agreed delivery, tote.lead_bucket) and currency.
var salesLeadTime = `WITH src AS (` + salesSource + `)
SELECT s.lead, c.currency_code, sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 1, 2`

// purchaseFacts is salesFacts for purchase order versions (v, a row of
// tote.dash_purchase_versions).
var purchaseFacts = `$1::text = 'facts' AND v.day BETWEEN $4::date AND $5::date
  AND ($6::integer[] IS NULL OR v.currency_id = ANY($6::integer[]))
  AND ($7::integer[] IS NULL OR v.location_id = ANY($7::integer[]))
  AND ($8::integer[] IS NULL OR v.staff_id = ANY($8::integer[]))
  AND ($9::integer[] IS NULL OR v.counterparty_id = ANY($9::integer[]))
  AND ($2::text = 'current' OR v.seq <= $3::bigint)
  AND NOT EXISTS (SELECT FROM tote.dash_purchase_next n
                  WHERE n.purchase_record_id = v.rec AND ($2::text = 'current' OR n.next_seq <= $3::bigint))`

// purchaseSource is the rows purchase queries aggregate: (day, currency_id,
// orders, quantity, value_cents), from tote.dash_purchase_by ('all' or a
// dimension) or the facts.
var purchaseSource = `
SELECT s.day, s.currency_id, s.orders, s.quantity, s.value_cents
FROM ` + summaryAsOf("dash_purchase_by", "currency_id", "orders, quantity, value_cents") + `
WHERE $1::text <> 'facts' AND s.dim = $1::text AND s.day BETWEEN $4::date AND $5::date
  AND ($6::integer[] IS NULL OR s.currency_id = ANY($6::integer[]))
` + dimKey + `
UNION ALL
SELECT v.day, v.currency_id, v.orders, v.quantity, v.value_cents
FROM tote.dash_purchase_versions v
WHERE ` + purchaseFacts

// purchaseSeries is purchase orders, quantity and value per period ($10)
// and currency.
var purchaseSeries = `WITH src AS (` + purchaseSource + `)
SELECT to_char(date_trunc($10::text, s.day), 'YYYY-MM-DD'), c.currency_code,
       sum(s.orders)::bigint, sum(s.quantity)::bigint, sum(s.value_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2 HAVING sum(s.orders) <> 0 ORDER BY 1, 2`

// paymentSource is the payments the payment queries aggregate, by payment
// date: (day, currency_id, payment_type_id, paid, payments, amount_cents),
// from tote.dash_payment_by ('all' or 'counterparty').
var paymentSource = `
SELECT s.day, s.currency_id, s.payment_type_id, s.paid, s.payments, s.amount_cents
FROM ` + summaryAsOf("dash_payment_by", "currency_id, payment_type_id, paid", "payments, amount_cents") + `
WHERE s.dim = $1::text AND s.day BETWEEN $4::date AND $5::date
  AND ($6::integer[] IS NULL OR s.currency_id = ANY($6::integer[]))
  AND ($1::text <> 'counterparty' OR s.key = ANY($7::integer[]))`

// paymentNet is paymentSource summed by day, currency, type and status:
// what is there on each day, whichever rows it comes from.
var paymentNet = `WITH src AS (` + paymentSource + `
), s AS (
  SELECT day, currency_id, payment_type_id, paid, sum(payments)::bigint AS payments, sum(amount_cents)::bigint AS amount_cents
  FROM src GROUP BY 1, 2, 3, 4 HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0
)`

// paymentKPIs is, per currency, the unpaid payments due before $8 (today,
// or the as-of day: overdue) in the period from $9 to $5 and in the
// previous period, and the oldest overdue payment date.
var paymentKPIs = paymentNet + `
SELECT c.currency_code,
       coalesce(sum(s.payments) FILTER (WHERE NOT s.paid AND s.day < $8::date AND s.day >= $9::date), 0)::bigint,
       coalesce(sum(s.amount_cents) FILTER (WHERE NOT s.paid AND s.day < $8::date AND s.day >= $9::date), 0)::bigint,
       coalesce(sum(s.payments) FILTER (WHERE NOT s.paid AND s.day < $8::date AND s.day < $9::date), 0)::bigint,
       coalesce(sum(s.amount_cents) FILTER (WHERE NOT s.paid AND s.day < $8::date AND s.day < $9::date), 0)::bigint,
       to_char(min(s.day) FILTER (WHERE NOT s.paid AND s.day < $8::date AND s.day >= $9::date), 'YYYY-MM-DD')
FROM s JOIN dim_currency c USING (currency_id)
GROUP BY 1 ORDER BY 1`

// paymentStatus is payments and their amount per currency, payment type
// and status (paid; overdue: unpaid and due before $8; due), with the
// oldest payment date of each.
var paymentStatus = paymentNet + `
SELECT c.currency_code, t.payment_type_name,
       CASE WHEN s.paid THEN 'paid' WHEN s.day < $8::date THEN 'overdue' ELSE 'due' END,
       sum(s.payments)::bigint, sum(s.amount_cents)::bigint, to_char(min(s.day), 'YYYY-MM-DD')
FROM s JOIN dim_currency c USING (currency_id) JOIN dim_payment_type t USING (payment_type_id)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// paymentSeries is paid and unpaid payments per period ($8) and currency,
// by payment date.
var paymentSeries = `WITH src AS (` + paymentSource + `)
SELECT to_char(date_trunc($8::text, s.day), 'YYYY-MM-DD'), c.currency_code, s.paid,
       sum(s.payments)::bigint, sum(s.amount_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1, 2, 3 HAVING sum(s.payments) <> 0 ORDER BY 1, 2, 3`

// drillSalesCount is how many sales orders are behind a figure, with their
// units and revenue per currency: the sales parameters, from the summary
// that answers the figure itself.
var drillSalesCount = `WITH src AS (` + salesSource + `)
SELECT c.currency_code, sum(s.orders)::bigint, sum(s.units)::bigint, sum(s.value_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1 HAVING sum(s.orders) <> 0 ORDER BY 1`

// drillSalesRows is one page ($12 rows from $13) of the sales order
// versions behind a figure (the sales parameters, route 'facts'), newest
// order first: the fact row, its source id, version (last_updated) and
// the lake batch that loaded it.
var drillSalesRows = `
SELECT f.sales_order_id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS'), f.batch_id,
       f.sales_record_id, to_char(f.created_date, 'YYYY-MM-DD'), c.currency_code, d.design_name,
       st.first_name || ' ' || st.last_name, p.counterparty_legal_name, l.country, l.city,
       f.units_sold, f.unit_price::text, (f.units_sold * f.unit_price)::text, to_char(f.agreed_delivery_date, 'YYYY-MM-DD')
FROM (SELECT v.rec FROM tote.dash_sales_versions v
      WHERE ` + salesFacts + `
      ORDER BY v.day DESC, v.id DESC
      LIMIT $12::integer OFFSET $13::integer) r
JOIN fact_sales_order f ON f.sales_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_design d ON d.design_id = f.design_id
LEFT JOIN dim_staff st ON st.staff_id = f.sales_staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
LEFT JOIN dim_location l ON l.location_id = f.agreed_delivery_location_id
ORDER BY f.created_date DESC, f.sales_order_id DESC`

// paymentStatusIs is the condition that payment rows s have status $9
// ('paid', 'unpaid', 'overdue' as of day $8, 'due'; NULL: any).
var paymentStatusIs = `($9::text IS NULL
       OR ($9::text = 'paid' AND s.paid) OR ($9::text = 'unpaid' AND NOT s.paid)
       OR ($9::text = 'overdue' AND NOT s.paid AND s.day < $8::date)
       OR ($9::text = 'due' AND NOT s.paid AND s.day >= $8::date))`

// drillPaymentCount is how many payments are behind a figure, and their
// amount, per currency: the payment parameters, $8 today and $9 the
// status.
var drillPaymentCount = `WITH src AS (` + paymentSource + `)
SELECT c.currency_code, sum(s.payments)::bigint, sum(s.amount_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
WHERE ` + paymentStatusIs + `
GROUP BY 1 HAVING sum(s.payments) <> 0 ORDER BY 1`

// drillPaymentRows is one page ($10 rows from $11) of the payment versions
// behind a figure, oldest payment date first: the payment parameters
// (the route unused), $8 today and $9 the status.
var drillPaymentRows = `
SELECT f.payment_id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS'), f.batch_id,
       f.payment_record_id, to_char(f.payment_date, 'YYYY-MM-DD'), c.currency_code, t.payment_type_name,
       p.counterparty_legal_name, f.paid, f.payment_amount::text, f.transaction_id
FROM (SELECT s.rec FROM tote.dash_payment_versions s
      WHERE $1::text IS NOT NULL AND s.day BETWEEN $4::date AND $5::date
        AND ($6::integer[] IS NULL OR s.currency_id = ANY($6::integer[]))
        AND ($7::integer[] IS NULL OR s.counterparty_id = ANY($7::integer[]))
        AND ` + paymentStatusIs + `
        AND ($2::text = 'current' OR s.seq <= $3::bigint)
        AND NOT EXISTS (SELECT FROM tote.dash_payment_next n
                        WHERE n.payment_record_id = s.rec AND ($2::text = 'current' OR n.next_seq <= $3::bigint))
      ORDER BY s.day, s.id
      LIMIT $10::integer OFFSET $11::integer) r
JOIN fact_payment f ON f.payment_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_payment_type t ON t.payment_type_id = f.payment_type_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
ORDER BY f.payment_date, f.payment_id`

// drillPurchaseCount is how many purchase orders are behind a figure, with
// their quantity and value, per currency.
var drillPurchaseCount = `WITH src AS (` + purchaseSource + `)
SELECT c.currency_code, sum(s.orders)::bigint, sum(s.quantity)::bigint, sum(s.value_cents)::bigint
FROM src s JOIN dim_currency c USING (currency_id)
GROUP BY 1 HAVING sum(s.orders) <> 0 ORDER BY 1`

// drillPurchaseRows is one page ($10 rows from $11) of the purchase order
// versions behind a figure (route 'facts'), newest first.
var drillPurchaseRows = `
SELECT f.purchase_order_id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS'), f.batch_id,
       f.purchase_record_id, to_char(f.created_date, 'YYYY-MM-DD'), c.currency_code, f.item_code,
       st.first_name || ' ' || st.last_name, p.counterparty_legal_name, f.item_quantity, f.item_unit_price::text,
       (f.item_quantity * f.item_unit_price)::text
FROM (SELECT v.rec FROM tote.dash_purchase_versions v
      WHERE ` + purchaseFacts + `
      ORDER BY v.day DESC, v.id DESC
      LIMIT $10::integer OFFSET $11::integer) r
JOIN fact_purchase_order f ON f.purchase_record_id = r.rec
JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_staff st ON st.staff_id = f.staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
ORDER BY f.created_date DESC, f.purchase_order_id DESC`

// orderHistory is every version the warehouse holds of sales order $1, in
// the order they became visible (batch order), with when each was loaded.
var orderHistory = `
SELECT f.sales_record_id, to_char(f.last_updated_date + f.last_updated_time, 'YYYY-MM-DD HH24:MI:SS.MS'), f.batch_id,
       coalesce(to_char(l.loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ''),
       to_char(f.created_date + f.created_time, 'YYYY-MM-DD HH24:MI:SS'), c.currency_code, d.design_name,
       st.first_name || ' ' || st.last_name, p.counterparty_legal_name, l2.country, l2.city,
       f.units_sold, f.unit_price::text, to_char(f.agreed_delivery_date, 'YYYY-MM-DD'),
       to_char(f.agreed_payment_date, 'YYYY-MM-DD'), f.source_xmin
FROM fact_sales_order f
LEFT JOIN tote.load_ledger l ON l.batch_id = f.batch_id
LEFT JOIN dim_currency c ON c.currency_id = f.currency_id
LEFT JOIN dim_design d ON d.design_id = f.design_id
LEFT JOIN dim_staff st ON st.staff_id = f.sales_staff_id
LEFT JOIN dim_counterparty p ON p.counterparty_id = f.counterparty_id
LEFT JOIN dim_location l2 ON l2.location_id = f.agreed_delivery_location_id
WHERE f.sales_order_id = $1::integer
ORDER BY tote.batch_seq(f.batch_id), f.sales_record_id`

// dataBounds is the first and last day with a sale (current versions), as
// the date presets count back from the last.
var dataBounds = `
SELECT coalesce((SELECT to_char(day, 'YYYY-MM-DD') FROM tote.dash_sales_by WHERE dim = 'lead' AND orders <> 0
                 ORDER BY day LIMIT 1), ''),
       coalesce((SELECT to_char(day, 'YYYY-MM-DD') FROM tote.dash_sales_by WHERE dim = 'lead' AND orders <> 0
                 ORDER BY day DESC LIMIT 1), '')`

// asOf is the newest batch loaded at or before time $1 (the state of the
// warehouse then; 0 if none was), the newest batch of all, and the batch
// whose contributions each fact's logs leave out (tote.dash_state).
var asOf = `
SELECT coalesce((SELECT max(seq) FROM tote.load_ledger WHERE loaded_at <= $1::timestamptz), 0),
       coalesce((SELECT max(seq) FROM tote.load_ledger), 0),
       (SELECT base_seq FROM tote.dash_state WHERE fact = 'fact_sales_order'),
       (SELECT base_seq FROM tote.dash_state WHERE fact = 'fact_purchase_order'),
       (SELECT base_seq FROM tote.dash_state WHERE fact = 'fact_payment')`

// newestLoad is the newest batch in the ledger and when it was loaded.
var newestLoad = `SELECT batch_id, seq, loaded_at FROM tote.load_ledger ORDER BY seq DESC LIMIT 1`

// recentLoads is the $1 most recent batches of the ledger, oldest first:
// batch, sequence number, when loaded, rows.
var recentLoads = `
SELECT batch_id, seq, loaded_at, rows FROM (
  SELECT batch_id, seq, loaded_at, rows FROM tote.load_ledger ORDER BY seq DESC LIMIT $1::integer
) r ORDER BY seq`

// hasSummaries says whether migration 0008 has made the summaries.
var hasSummaries = `SELECT to_regclass('tote.dash_state') IS NOT NULL AND to_regclass('tote.dash_sales_design') IS NOT NULL`

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
	// designsByID names the designs with ids $1.
	designsByID = `SELECT design_id, design_name FROM dim_design WHERE design_id = ANY($1::integer[]) ORDER BY 2, 1`
	// designSearch finds up to 20 designs whose name contains $1, or whose id is $1.
	designSearch = `
SELECT design_id, design_name FROM dim_design
WHERE design_name ILIKE '%' || $1::text || '%' OR design_id::text = $1::text
ORDER BY design_id::text = $1::text DESC, design_name, design_id LIMIT 20`
)

// Resolving filters by name to the ids the summaries keep.
const (
	// locationIDs are the delivery addresses in countries $1 and cities
	// $2 ("country / city"); NULL for no filter.
	locationIDs = `
SELECT location_id FROM dim_location
WHERE ($1::text[] IS NULL OR country = ANY($1::text[]))
  AND ($2::text[] IS NULL OR country || ' / ' || city = ANY($2::text[]))`
	// staffIDs are the staff of departments $1.
	staffIDs = `SELECT staff_id FROM dim_staff WHERE department_name = ANY($1::text[])`
	// currencyIDs are the currencies with codes $1.
	currencyIDs = `SELECT currency_id FROM dim_currency WHERE currency_code = ANY($1::text[])`
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
	"as_of":                 asOf,
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

// query runs the named query. It uses an unnamed prepared statement
// (QueryExecModeExec), so that PostgreSQL plans each execution with its
// parameters: the one-time filters of the sources fold away and the
// NULL-means-any filters become plain index conditions, which a cached
// generic plan would not do.
func (d *db) query(ctx context.Context, name string, args ...any) (pgx.Rows, error) {
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
	rows, err := conn.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
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
func collect[T any](ctx context.Context, d *db, name string, fn func(pgx.CollectableRow) (T, error), args ...any) ([]T, error) {
	rows, err := d.query(ctx, name, args...)
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

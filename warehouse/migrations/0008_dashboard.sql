-- The dashboard's summaries (package web, docs/decisions/0008-dashboard.md),
-- kept by the load: every batch's transaction calls tote.after_load, which
-- this migration replaces, and triggers follow the rare changes a load does
-- not make by inserting (a corrective batch's updates, a fact deleted or
-- altered by hand).
--
-- Versions and batches. A fact row is one version of a source row; its
-- batch's sequence number (tote.batch_seq of batch_id) says when it became
-- visible. An id's versions in the order (seq, surrogate key) form its
-- chain, as the warehouse orders them (a later batch wins, whatever its
-- stamp: decision 0006). A version counts from its batch's seq until the
-- seq of the next version of the chain; tote.dash_*_next holds that seq for
-- every version that has a next one, so the current versions are those not
-- in it, and the state "as of batch N" is the versions with seq <= N not
-- superseded by a version with seq <= N.
--
-- Summaries. Each version adds itself at its seq and takes itself away at
-- its next version's. The *_log tables keep those signed contributions by
-- seq; the plain tables keep their sum, the current state, which the
-- dashboard reads. So the state as of N is the current one less the log
-- rows after N, or the log rows up to N: the same queries, one predicate
-- more. The log leaves out the contributions of the first load (when every
-- version came from one batch, tote.dash_state.base_seq): they are the
-- current summaries then, and the formula "current less the log after N"
-- holds without them for every N at or after that batch, "the log up to N"
-- for every N before it.
--
-- Day grain, one table per fact, one row per day, currency and one
-- dimension (dim, key): sales by lead-time bucket (which also gives the
-- totals), delivery location, staff and counterparty; purchases in all
-- (key 0), by location, staff and counterparty; payments by payment date,
-- currency, type and status, in all and by counterparty. These compress
-- (under 70 k rows a dimension at scale 100). Designs do not (40 k designs
-- by currency by day is the facts over again), so tote.dash_sales_design
-- keeps one row per currency and design with the days it sold on and the
-- running totals at each: any period's figures are two lookups
-- (width_bucket) in its arrays.
--
-- Filters that a summary does not have (a design, two dimensions at once)
-- read the facts through the indexes made at the end of this file.
--
-- Everything here is a function of the facts, their batches and the order
-- the batches were loaded in: a warehouse rebuilt from the lake ends with
-- the same summaries.

CREATE FUNCTION tote.batch_seq(batch text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN substr(batch, 13, 1) = '-' AND translate(substr(batch, 1, 12), '0123456789', '') = ''
                THEN substr(batch, 1, 12)::bigint ELSE 0 END
$$;
COMMENT ON FUNCTION tote.batch_seq(text) IS
    'The sequence number of a processed batch, from its id (a lake id begins with it, in 12 digits); '
    '0 for rows loaded before facts recorded their batch, or with an id of another form.';

-- Lead time from order to agreed delivery, in buckets: 0 same day (or
-- before), 1 up to a week, 2 up to 30 days, 3 up to 90, 4 up to 180, 5 up to
-- a year, 6 more than a year.
CREATE FUNCTION tote.lead_bucket(days integer) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE WHEN days <= 0 THEN 0 WHEN days <= 7 THEN 1 WHEN days <= 30 THEN 2 WHEN days <= 90 THEN 3
                 WHEN days <= 180 THEN 4 WHEN days <= 365 THEN 5 ELSE 6 END)::smallint
$$;

-- The versions as the summaries see them; money in cents (exact, and
-- summed much faster than numeric). Each view's row type is also the type
-- of the versions and signed contributions the functions below pass round.
CREATE VIEW tote.dash_sales_versions AS
SELECT f.sales_record_id AS rec, f.sales_order_id AS id, tote.batch_seq(f.batch_id) AS seq,
       f.created_date AS day, f.currency_id, tote.lead_bucket(f.agreed_delivery_date - f.created_date) AS lead,
       f.agreed_delivery_location_id AS location_id, f.sales_staff_id AS staff_id, f.counterparty_id, f.design_id,
       1::bigint AS orders, f.units_sold::bigint AS units, f.units_sold * (f.unit_price * 100)::bigint AS value_cents
FROM fact_sales_order f;

CREATE VIEW tote.dash_purchase_versions AS
SELECT f.purchase_record_id AS rec, f.purchase_order_id AS id, tote.batch_seq(f.batch_id) AS seq,
       f.created_date AS day, f.currency_id, f.agreed_delivery_location_id AS location_id, f.staff_id, f.counterparty_id,
       1::bigint AS orders, f.item_quantity::bigint AS quantity, f.item_quantity * (f.item_unit_price * 100)::bigint AS value_cents
FROM fact_purchase_order f;

-- day is the payment date.
CREATE VIEW tote.dash_payment_versions AS
SELECT f.payment_record_id AS rec, f.payment_id AS id, tote.batch_seq(f.batch_id) AS seq,
       f.payment_date AS day, f.currency_id, f.payment_type_id, f.paid, f.counterparty_id,
       1::bigint AS payments, (f.payment_amount * 100)::bigint AS amount_cents
FROM fact_payment f;

-- The same mappings for rows that are not in the fact tables any more (a
-- trigger's old rows).
CREATE FUNCTION tote.dash_sales_version(f fact_sales_order) RETURNS tote.dash_sales_versions LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(f.sales_record_id, f.sales_order_id, tote.batch_seq(f.batch_id), f.created_date, f.currency_id,
               tote.lead_bucket(f.agreed_delivery_date - f.created_date), f.agreed_delivery_location_id, f.sales_staff_id,
               f.counterparty_id, f.design_id, 1::bigint, f.units_sold::bigint,
               f.units_sold * (f.unit_price * 100)::bigint)::tote.dash_sales_versions
$$;
CREATE FUNCTION tote.dash_purchase_version(f fact_purchase_order) RETURNS tote.dash_purchase_versions LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(f.purchase_record_id, f.purchase_order_id, tote.batch_seq(f.batch_id), f.created_date, f.currency_id,
               f.agreed_delivery_location_id, f.staff_id, f.counterparty_id, 1::bigint, f.item_quantity::bigint,
               f.item_quantity * (f.item_unit_price * 100)::bigint)::tote.dash_purchase_versions
$$;
CREATE FUNCTION tote.dash_payment_version(f fact_payment) RETURNS tote.dash_payment_versions LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(f.payment_record_id, f.payment_id, tote.batch_seq(f.batch_id), f.payment_date, f.currency_id,
               f.payment_type_id, f.paid, f.counterparty_id, 1::bigint,
               (f.payment_amount * 100)::bigint)::tote.dash_payment_versions
$$;

-- How far each fact is summarized: every row up to surrogate key record_id
-- (the load numbers each batch's new rows after the largest, so the rows
-- above it are the ones loaded since), and the batch whose contributions
-- the fact's logs leave out (NULL: they have them all). No row: not
-- summarized yet.
CREATE TABLE tote.dash_state (
    fact text PRIMARY KEY,
    record_id bigint NOT NULL,
    base_seq bigint
);

-- The seq of the next version of each version that has one.
CREATE TABLE tote.dash_sales_next (sales_record_id integer PRIMARY KEY, next_seq bigint NOT NULL);
CREATE TABLE tote.dash_purchase_next (purchase_record_id integer PRIMARY KEY, next_seq bigint NOT NULL);
CREATE TABLE tote.dash_payment_next (payment_record_id integer PRIMARY KEY, next_seq bigint NOT NULL);

-- dim: 'lead' (key: tote.lead_bucket), 'location', 'staff', 'counterparty'
-- (key: that dimension's id). Each dim's rows hold every current sale once.
CREATE TABLE tote.dash_sales_by (
    dim text COLLATE "C" NOT NULL,
    day date NOT NULL,
    key integer NOT NULL,
    currency_id integer NOT NULL,
    orders bigint NOT NULL,
    units bigint NOT NULL,
    value_cents bigint NOT NULL,
    CONSTRAINT dash_sales_by_pkey PRIMARY KEY (dim, day, key, currency_id)
);
CREATE TABLE tote.dash_sales_by_log (seq bigint NOT NULL, LIKE tote.dash_sales_by,
    CONSTRAINT dash_sales_by_log_pkey PRIMARY KEY (seq, dim, day, key, currency_id));

-- A currency and design's sales: days holds the days it sold on, in order;
-- orders and value_cents[i] the totals up to and including days[i]. So its
-- figures over from..to are x[b] - x[a] with b = width_bucket(to, days) and
-- a = width_bucket(from - 1, days) (x[0] is NULL: nothing). Units are left
-- to the facts: the rankings show them for their few designs only.
CREATE TABLE tote.dash_sales_design (
    currency_id integer NOT NULL,
    design_id integer NOT NULL,
    days date[] NOT NULL,
    orders integer[] NOT NULL,
    value_cents bigint[] NOT NULL,
    CONSTRAINT dash_sales_design_pkey PRIMARY KEY (currency_id, design_id)
);
-- The arrays have no statistics worth their cost (ANALYZE would take each
-- sampled array apart).
ALTER TABLE tote.dash_sales_design ALTER COLUMN days SET STATISTICS 0, ALTER COLUMN orders SET STATISTICS 0,
    ALTER COLUMN value_cents SET STATISTICS 0;
-- Designs by currency and all-time revenue (the last running total), for
-- the rankings to bound a period's from (see web's salesByDesign).
CREATE INDEX dash_sales_design_value ON tote.dash_sales_design (currency_id, (value_cents[array_upper(value_cents, 1)]));
CREATE TABLE tote.dash_sales_design_log (seq bigint NOT NULL, LIKE tote.dash_sales_design,
    CONSTRAINT dash_sales_design_log_pkey PRIMARY KEY (seq, currency_id, design_id));
ALTER TABLE tote.dash_sales_design_log ALTER COLUMN days SET STATISTICS 0, ALTER COLUMN orders SET STATISTICS 0,
    ALTER COLUMN value_cents SET STATISTICS 0;

-- dim: 'all' (key 0), 'location', 'staff', 'counterparty'.
CREATE TABLE tote.dash_purchase_by (
    dim text COLLATE "C" NOT NULL,
    day date NOT NULL,
    key integer NOT NULL,
    currency_id integer NOT NULL,
    orders bigint NOT NULL,
    quantity bigint NOT NULL,
    value_cents bigint NOT NULL,
    CONSTRAINT dash_purchase_by_pkey PRIMARY KEY (dim, day, key, currency_id)
);
CREATE TABLE tote.dash_purchase_by_log (seq bigint NOT NULL, LIKE tote.dash_purchase_by,
    CONSTRAINT dash_purchase_by_log_pkey PRIMARY KEY (seq, dim, day, key, currency_id));

-- dim: 'all' (key 0), 'counterparty'; day is the payment date.
CREATE TABLE tote.dash_payment_by (
    dim text COLLATE "C" NOT NULL,
    day date NOT NULL,
    key integer NOT NULL,
    currency_id integer NOT NULL,
    payment_type_id integer NOT NULL,
    paid boolean NOT NULL,
    payments bigint NOT NULL,
    amount_cents bigint NOT NULL,
    CONSTRAINT dash_payment_by_pkey PRIMARY KEY (dim, day, key, currency_id, payment_type_id, paid)
);
CREATE TABLE tote.dash_payment_by_log (seq bigint NOT NULL, LIKE tote.dash_payment_by,
    CONSTRAINT dash_payment_by_log_pkey PRIMARY KEY (seq, dim, day, key, currency_id, payment_type_id, paid));

-- ---------------------------------------------------------------------
-- Sales.

-- dash_sales_add adds signed contributions c (rec and id unused) to the
-- day-grain and design summaries, current and log.
CREATE FUNCTION tote.dash_sales_add(c tote.dash_sales_versions[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    -- The keys of rows that came to nothing, to delete.
    z_seq bigint[];
    z_dim text[];
    z_day date[];
    z_key integer[];
    z_currency_id integer[];
BEGIN
    WITH up AS (
        INSERT INTO tote.dash_sales_by_log AS t (seq, dim, day, key, currency_id, orders, units, value_cents)
        SELECT seq, CASE WHEN GROUPING(lead) = 0 THEN 'lead' WHEN GROUPING(location_id) = 0 THEN 'location'
                         WHEN GROUPING(staff_id) = 0 THEN 'staff' ELSE 'counterparty' END,
               day, coalesce(lead::integer, location_id, staff_id, counterparty_id), currency_id,
               sum(orders), sum(units), sum(value_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((seq, day, currency_id, lead), (seq, day, currency_id, location_id),
                                (seq, day, currency_id, staff_id), (seq, day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(units) <> 0 OR sum(value_cents) <> 0
        ON CONFLICT (seq, dim, day, key, currency_id) DO UPDATE
        SET orders = t.orders + EXCLUDED.orders, units = t.units + EXCLUDED.units,
            value_cents = t.value_cents + EXCLUDED.value_cents
        RETURNING t.seq, t.dim, t.day, t.key, t.currency_id,
                  t.orders = 0 AND t.units = 0 AND t.value_cents = 0 AS zero
    )
    SELECT array_agg(seq), array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id)
    INTO z_seq, z_dim, z_day, z_key, z_currency_id FROM up WHERE zero;
    IF z_seq IS NOT NULL THEN
        DELETE FROM tote.dash_sales_by_log t
        USING unnest(z_seq, z_dim, z_day, z_key, z_currency_id) z(seq, dim, day, key, currency_id)
        WHERE (t.seq, t.dim, t.day, t.key, t.currency_id) = (z.seq, z.dim, z.day, z.key, z.currency_id)
          AND t.orders = 0 AND t.units = 0 AND t.value_cents = 0;
    END IF;

    WITH up AS (
        INSERT INTO tote.dash_sales_by AS t (dim, day, key, currency_id, orders, units, value_cents)
        SELECT CASE WHEN GROUPING(lead) = 0 THEN 'lead' WHEN GROUPING(location_id) = 0 THEN 'location'
                    WHEN GROUPING(staff_id) = 0 THEN 'staff' ELSE 'counterparty' END,
               day, coalesce(lead::integer, location_id, staff_id, counterparty_id), currency_id,
               sum(orders), sum(units), sum(value_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((day, currency_id, lead), (day, currency_id, location_id),
                                (day, currency_id, staff_id), (day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(units) <> 0 OR sum(value_cents) <> 0
        ON CONFLICT (dim, day, key, currency_id) DO UPDATE
        SET orders = t.orders + EXCLUDED.orders, units = t.units + EXCLUDED.units,
            value_cents = t.value_cents + EXCLUDED.value_cents
        RETURNING t.dim, t.day, t.key, t.currency_id,
                  t.orders = 0 AND t.units = 0 AND t.value_cents = 0 AS zero
    )
    SELECT array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id)
    INTO z_dim, z_day, z_key, z_currency_id FROM up WHERE zero;
    IF z_dim IS NOT NULL THEN
        DELETE FROM tote.dash_sales_by t
        USING unnest(z_dim, z_day, z_key, z_currency_id) z(dim, day, key, currency_id)
        WHERE (t.dim, t.day, t.key, t.currency_id) = (z.dim, z.day, z.key, z.currency_id)
          AND t.orders = 0 AND t.units = 0 AND t.value_cents = 0;
    END IF;

    -- Designs: each touched row's entries, taken apart, plus the new ones,
    -- summed by day, put back together.
    WITH d AS (
        SELECT currency_id, design_id, day, sum(orders) AS o, sum(value_cents) AS v
        FROM unnest(c) GROUP BY 1, 2, 3
    ), k AS (
        SELECT DISTINCT currency_id, design_id FROM d
    ), old AS (
        SELECT s.currency_id, s.design_id, e.day,
               e.o - coalesce(lag(e.o) OVER w, 0) AS o, e.v - coalesce(lag(e.v) OVER w, 0) AS v
        FROM tote.dash_sales_design s JOIN k USING (currency_id, design_id)
        CROSS JOIN LATERAL unnest(s.days, s.orders, s.value_cents) WITH ORDINALITY e(day, o, v, i)
        WINDOW w AS (PARTITION BY s.currency_id, s.design_id ORDER BY e.i)
    ), m AS (
        SELECT currency_id, design_id, day, sum(o) AS o, sum(v) AS v
        FROM (SELECT * FROM old UNION ALL SELECT * FROM d) x
        GROUP BY 1, 2, 3 HAVING sum(o) <> 0 OR sum(v) <> 0
    ), n AS (
        SELECT currency_id, design_id, array_agg(day ORDER BY day) AS days, array_agg(co ORDER BY day) AS orders,
               array_agg(cv ORDER BY day) AS value_cents
        FROM (SELECT m.*, (sum(o) OVER w)::integer AS co, (sum(v) OVER w)::bigint AS cv
              FROM m WINDOW w AS (PARTITION BY currency_id, design_id ORDER BY day)) x
        GROUP BY 1, 2
    ), up AS (
        INSERT INTO tote.dash_sales_design AS t SELECT * FROM n
        ON CONFLICT (currency_id, design_id) DO UPDATE
        SET days = EXCLUDED.days, orders = EXCLUDED.orders, value_cents = EXCLUDED.value_cents
    )
    DELETE FROM tote.dash_sales_design t USING k
    WHERE t.currency_id = k.currency_id AND t.design_id = k.design_id
      AND NOT EXISTS (SELECT FROM n WHERE n.currency_id = k.currency_id AND n.design_id = k.design_id);

    WITH d AS (
        SELECT seq, currency_id, design_id, day, sum(orders) AS o, sum(value_cents) AS v
        FROM unnest(c) GROUP BY 1, 2, 3, 4
    ), k AS (
        SELECT DISTINCT seq, currency_id, design_id FROM d
    ), old AS (
        SELECT s.seq, s.currency_id, s.design_id, e.day,
               e.o - coalesce(lag(e.o) OVER w, 0) AS o, e.v - coalesce(lag(e.v) OVER w, 0) AS v
        FROM tote.dash_sales_design_log s JOIN k USING (seq, currency_id, design_id)
        CROSS JOIN LATERAL unnest(s.days, s.orders, s.value_cents) WITH ORDINALITY e(day, o, v, i)
        WINDOW w AS (PARTITION BY s.seq, s.currency_id, s.design_id ORDER BY e.i)
    ), m AS (
        SELECT seq, currency_id, design_id, day, sum(o) AS o, sum(v) AS v
        FROM (SELECT * FROM old UNION ALL SELECT * FROM d) x
        GROUP BY 1, 2, 3, 4 HAVING sum(o) <> 0 OR sum(v) <> 0
    ), n AS (
        SELECT seq, currency_id, design_id, array_agg(day ORDER BY day) AS days, array_agg(co ORDER BY day) AS orders,
               array_agg(cv ORDER BY day) AS value_cents
        FROM (SELECT m.*, (sum(o) OVER w)::integer AS co, (sum(v) OVER w)::bigint AS cv
              FROM m WINDOW w AS (PARTITION BY seq, currency_id, design_id ORDER BY day)) x
        GROUP BY 1, 2, 3
    ), up AS (
        INSERT INTO tote.dash_sales_design_log AS t SELECT * FROM n
        ON CONFLICT (seq, currency_id, design_id) DO UPDATE
        SET days = EXCLUDED.days, orders = EXCLUDED.orders, value_cents = EXCLUDED.value_cents
    )
    DELETE FROM tote.dash_sales_design_log t USING k
    WHERE t.seq = k.seq AND t.currency_id = k.currency_id AND t.design_id = k.design_id
      AND NOT EXISTS (SELECT FROM n WHERE n.seq = k.seq AND n.currency_id = k.currency_id AND n.design_id = k.design_id);
END
$$;

-- dash_sales_change replaces the summarized chains before (every version
-- of some orders, as summarized) by after (the same orders' versions now):
-- it adds after's contributions less before's (what did not change cancels
-- out) and brings tote.dash_sales_next up to date.
CREATE FUNCTION tote.dash_sales_change(before tote.dash_sales_versions[], after tote.dash_sales_versions[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c tote.dash_sales_versions[];
BEGIN
    WITH b AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(before) v
    ), a AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(after) v
    ), x AS (
        SELECT seq, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id, orders, units, value_cents FROM a
        UNION ALL
        SELECT nxt, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id, -orders, -units, -value_cents
        FROM a WHERE nxt IS NOT NULL
        UNION ALL
        SELECT seq, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id, -orders, -units, -value_cents FROM b
        UNION ALL
        SELECT nxt, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id, orders, units, value_cents
        FROM b WHERE nxt IS NOT NULL
    ), del AS (
        DELETE FROM tote.dash_sales_next t USING b
        WHERE t.sales_record_id = b.rec AND b.nxt IS NOT NULL
          AND NOT EXISTS (SELECT FROM a WHERE a.rec = b.rec AND a.nxt IS NOT NULL)
    ), ins AS (
        INSERT INTO tote.dash_sales_next AS t (sales_record_id, next_seq)
        SELECT a.rec, a.nxt FROM a
        WHERE a.nxt IS NOT NULL AND NOT EXISTS (SELECT FROM b WHERE b.rec = a.rec AND b.nxt = a.nxt)
        ON CONFLICT (sales_record_id) DO UPDATE SET next_seq = EXCLUDED.next_seq
    )
    SELECT array_agg(ROW(NULL, NULL, seq, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id,
                         o, u, v)::tote.dash_sales_versions)
    INTO c
    FROM (SELECT seq, day, currency_id, lead, location_id, staff_id, counterparty_id, design_id,
                 sum(orders)::bigint AS o, sum(units)::bigint AS u, sum(value_cents)::bigint AS v
          FROM x GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
          HAVING sum(orders) <> 0 OR sum(units) <> 0 OR sum(value_cents) <> 0) s;
    IF c IS NOT NULL THEN
        PERFORM tote.dash_sales_add(c);
    END IF;
END
$$;

-- dash_sales_rebuild makes every sales summary afresh from the facts: the
-- first load's way, one pass for the day-grain summaries and one sort for
-- the designs.
CREATE FUNCTION tote.dash_sales_rebuild() RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' SET maintenance_work_mem = '256MB' SET jit = off SET enable_hashagg = on AS $$
DECLARE
    n bigint;
    ids bigint;
    first text;
    last text;
    top bigint;
BEGIN
    -- The keys are built once after the inserts, much faster than grown row
    -- by row. The tables stay locked until the load commits.
    TRUNCATE tote.dash_sales_by, tote.dash_sales_by_log, tote.dash_sales_design, tote.dash_sales_design_log,
        tote.dash_sales_next;
    ALTER TABLE tote.dash_sales_by DROP CONSTRAINT dash_sales_by_pkey;
    ALTER TABLE tote.dash_sales_by_log DROP CONSTRAINT dash_sales_by_log_pkey;
    ALTER TABLE tote.dash_sales_design DROP CONSTRAINT dash_sales_design_pkey;
    DROP INDEX tote.dash_sales_design_value;
    ALTER TABLE tote.dash_sales_design_log DROP CONSTRAINT dash_sales_design_log_pkey;

    SELECT count(*), count(DISTINCT sales_order_id), min(batch_id COLLATE "C"), max(batch_id COLLATE "C"),
           max(sales_record_id)
    INTO n, ids, first, last, top FROM fact_sales_order;

    IF ids < n THEN
        -- Some orders have several versions: when each was superseded.
        INSERT INTO tote.dash_sales_next (sales_record_id, next_seq)
        SELECT rec, nxt FROM (
            SELECT v.rec, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt
            FROM tote.dash_sales_versions v
            WHERE v.id IN (SELECT sales_order_id FROM fact_sales_order GROUP BY 1 HAVING count(*) > 1)
        ) x WHERE nxt IS NOT NULL;
    END IF;
    ANALYZE tote.dash_sales_next;

    -- The current versions, in one pass.
    INSERT INTO tote.dash_sales_by (dim, day, key, currency_id, orders, units, value_cents)
    SELECT CASE WHEN GROUPING(lead) = 0 THEN 'lead' WHEN GROUPING(location_id) = 0 THEN 'location'
                WHEN GROUPING(staff_id) = 0 THEN 'staff' ELSE 'counterparty' END,
           day, coalesce(lead::integer, location_id, staff_id, counterparty_id), currency_id,
           count(*), sum(units), sum(value_cents)
    FROM tote.dash_sales_versions v
    WHERE ids = n OR NOT EXISTS (SELECT FROM tote.dash_sales_next x WHERE x.sales_record_id = v.rec)
    GROUP BY GROUPING SETS ((day, currency_id, lead), (day, currency_id, location_id),
                            (day, currency_id, staff_id), (day, currency_id, counterparty_id));

    -- And one sort, by design first (it has the most values, so the sort
    -- compares least), makes the running totals and the arrays.
    -- A day with several sales has an entry for each, all with the day's
    -- running totals (the window's peers): width_bucket still finds the
    -- day's totals, and a later change makes them one entry. The arrays
    -- are window aggregates over each whole partition, in the window's
    -- order (an ordered aggregate would sort each group again), kept once.
    INSERT INTO tote.dash_sales_design (currency_id, design_id, days, orders, value_cents)
    SELECT currency_id, design_id, days, orders, value_cents FROM (
        SELECT currency_id, design_id, row_number() OVER p AS i, array_agg(day) OVER p AS days,
               array_agg(co) OVER p AS orders, array_agg(cv) OVER p AS value_cents
        FROM (SELECT design_id, currency_id, day, (count(*) OVER w)::integer AS co,
                     (sum(value_cents) OVER w)::bigint AS cv
              FROM tote.dash_sales_versions v
              WHERE ids = n OR NOT EXISTS (SELECT FROM tote.dash_sales_next x WHERE x.sales_record_id = v.rec)
              WINDOW w AS (PARTITION BY design_id, currency_id ORDER BY day)) r
        WINDOW p AS (PARTITION BY design_id, currency_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ) a WHERE i = 1;

    IF first IS DISTINCT FROM last THEN
        -- Versions from several batches: the logs have every contribution.
        INSERT INTO tote.dash_sales_by_log (seq, dim, day, key, currency_id, orders, units, value_cents)
        SELECT seq, CASE WHEN GROUPING(lead) = 0 THEN 'lead' WHEN GROUPING(location_id) = 0 THEN 'location'
                         WHEN GROUPING(staff_id) = 0 THEN 'staff' ELSE 'counterparty' END,
               day, coalesce(lead::integer, location_id, staff_id, counterparty_id), currency_id,
               sum(orders), sum(units), sum(value_cents)
        FROM (SELECT v.* FROM tote.dash_sales_versions v
              UNION ALL
              SELECT v.rec, v.id, x.next_seq, v.day, v.currency_id, v.lead, v.location_id, v.staff_id, v.counterparty_id,
                     v.design_id, -v.orders, -v.units, -v.value_cents
              FROM tote.dash_sales_versions v JOIN tote.dash_sales_next x ON x.sales_record_id = v.rec) c
        GROUP BY GROUPING SETS ((seq, day, currency_id, lead), (seq, day, currency_id, location_id),
                                (seq, day, currency_id, staff_id), (seq, day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(units) <> 0 OR sum(value_cents) <> 0;

        SET LOCAL enable_hashagg = off;
        INSERT INTO tote.dash_sales_design_log (seq, currency_id, design_id, days, orders, value_cents)
        SELECT seq, currency_id, design_id, array_agg(day ORDER BY day), array_agg(co ORDER BY day),
               array_agg(cv ORDER BY day)
        FROM (SELECT seq, design_id, currency_id, day, (sum(o) OVER w)::integer AS co, (sum(v) OVER w)::bigint AS cv
              FROM (SELECT seq, design_id, currency_id, day, sum(orders) AS o, sum(value_cents) AS v
                    FROM (SELECT v.seq, v.design_id, v.currency_id, v.day, v.orders, v.value_cents
                          FROM tote.dash_sales_versions v
                          UNION ALL
                          SELECT x.next_seq, v.design_id, v.currency_id, v.day, -v.orders, -v.value_cents
                          FROM tote.dash_sales_versions v JOIN tote.dash_sales_next x ON x.sales_record_id = v.rec) c
                    GROUP BY 1, 2, 3, 4
                    HAVING sum(orders) <> 0 OR sum(value_cents) <> 0) d
              WINDOW w AS (PARTITION BY seq, design_id, currency_id ORDER BY day)) r
        GROUP BY seq, design_id, currency_id;
        SET LOCAL enable_hashagg = on;
    END IF;

    ALTER TABLE tote.dash_sales_by ADD CONSTRAINT dash_sales_by_pkey PRIMARY KEY (dim, day, key, currency_id);
    ALTER TABLE tote.dash_sales_by_log ADD CONSTRAINT dash_sales_by_log_pkey PRIMARY KEY (seq, dim, day, key, currency_id);
    ALTER TABLE tote.dash_sales_design ADD CONSTRAINT dash_sales_design_pkey PRIMARY KEY (currency_id, design_id);
    CREATE INDEX dash_sales_design_value ON tote.dash_sales_design (currency_id, (value_cents[array_upper(value_cents, 1)]));
    ALTER TABLE tote.dash_sales_design_log ADD CONSTRAINT dash_sales_design_log_pkey PRIMARY KEY (seq, currency_id, design_id);
    ANALYZE tote.dash_sales_by, tote.dash_sales_design;

    INSERT INTO tote.dash_state (fact, record_id, base_seq)
    VALUES ('fact_sales_order', coalesce(top, 0), CASE WHEN first = last THEN tote.batch_seq(first) END)
    ON CONFLICT (fact) DO UPDATE SET record_id = EXCLUDED.record_id, base_seq = EXCLUDED.base_seq;
END
$$;

-- dash_sales_refresh summarizes the sales loaded since it last ran.
CREATE FUNCTION tote.dash_sales_refresh() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
    wm bigint;
    top bigint;
    b tote.dash_sales_versions[];
    a tote.dash_sales_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_sales_order';
    SELECT max(sales_record_id) INTO top FROM fact_sales_order;
    IF wm IS NOT NULL AND coalesce(top, 0) <= wm THEN
        RETURN;
    END IF;
    -- Nothing summarized yet, or more new rows than old: afresh is faster.
    IF coalesce(wm, 0) = 0 OR top - wm > wm THEN
        PERFORM tote.dash_sales_rebuild();
        RETURN;
    END IF;
    -- The ids first, then their versions id by id (through the version
    -- key): a plan for both at once would trust estimates of how many rows
    -- are new and how many versions an id has, which are poor before the
    -- table is analyzed.
    ids := ARRAY(SELECT DISTINCT sales_order_id FROM fact_sales_order WHERE sales_record_id > wm);
    SELECT array_agg(x.v) FILTER (WHERE (x.v).rec <= wm), array_agg(x.v) INTO b, a
    FROM unnest(ids) i(id), LATERAL (SELECT v FROM tote.dash_sales_versions v WHERE v.id = i.id OFFSET 0) x;
    PERFORM tote.dash_sales_change(coalesce(b, '{}'), a);
    UPDATE tote.dash_state SET record_id = top WHERE fact = 'fact_sales_order';
END
$$;

-- ---------------------------------------------------------------------
-- Purchases.

CREATE FUNCTION tote.dash_purchase_add(c tote.dash_purchase_versions[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    z_seq bigint[];
    z_dim text[];
    z_day date[];
    z_key integer[];
    z_currency_id integer[];
BEGIN
    WITH up AS (
        INSERT INTO tote.dash_purchase_by_log AS t (seq, dim, day, key, currency_id, orders, quantity, value_cents)
        SELECT seq, CASE WHEN GROUPING(location_id) = 0 THEN 'location' WHEN GROUPING(staff_id) = 0 THEN 'staff'
                         WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(location_id, staff_id, counterparty_id, 0), currency_id,
               sum(orders), sum(quantity), sum(value_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((seq, day, currency_id), (seq, day, currency_id, location_id),
                                (seq, day, currency_id, staff_id), (seq, day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(quantity) <> 0 OR sum(value_cents) <> 0
        ON CONFLICT (seq, dim, day, key, currency_id) DO UPDATE
        SET orders = t.orders + EXCLUDED.orders, quantity = t.quantity + EXCLUDED.quantity,
            value_cents = t.value_cents + EXCLUDED.value_cents
        RETURNING t.seq, t.dim, t.day, t.key, t.currency_id,
                  t.orders = 0 AND t.quantity = 0 AND t.value_cents = 0 AS zero
    )
    SELECT array_agg(seq), array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id)
    INTO z_seq, z_dim, z_day, z_key, z_currency_id FROM up WHERE zero;
    IF z_seq IS NOT NULL THEN
        DELETE FROM tote.dash_purchase_by_log t
        USING unnest(z_seq, z_dim, z_day, z_key, z_currency_id) z(seq, dim, day, key, currency_id)
        WHERE (t.seq, t.dim, t.day, t.key, t.currency_id) = (z.seq, z.dim, z.day, z.key, z.currency_id)
          AND t.orders = 0 AND t.quantity = 0 AND t.value_cents = 0;
    END IF;

    WITH up AS (
        INSERT INTO tote.dash_purchase_by AS t (dim, day, key, currency_id, orders, quantity, value_cents)
        SELECT CASE WHEN GROUPING(location_id) = 0 THEN 'location' WHEN GROUPING(staff_id) = 0 THEN 'staff'
                    WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(location_id, staff_id, counterparty_id, 0), currency_id,
               sum(orders), sum(quantity), sum(value_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((day, currency_id), (day, currency_id, location_id),
                                (day, currency_id, staff_id), (day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(quantity) <> 0 OR sum(value_cents) <> 0
        ON CONFLICT (dim, day, key, currency_id) DO UPDATE
        SET orders = t.orders + EXCLUDED.orders, quantity = t.quantity + EXCLUDED.quantity,
            value_cents = t.value_cents + EXCLUDED.value_cents
        RETURNING t.dim, t.day, t.key, t.currency_id,
                  t.orders = 0 AND t.quantity = 0 AND t.value_cents = 0 AS zero
    )
    SELECT array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id)
    INTO z_dim, z_day, z_key, z_currency_id FROM up WHERE zero;
    IF z_dim IS NOT NULL THEN
        DELETE FROM tote.dash_purchase_by t
        USING unnest(z_dim, z_day, z_key, z_currency_id) z(dim, day, key, currency_id)
        WHERE (t.dim, t.day, t.key, t.currency_id) = (z.dim, z.day, z.key, z.currency_id)
          AND t.orders = 0 AND t.quantity = 0 AND t.value_cents = 0;
    END IF;
END
$$;

CREATE FUNCTION tote.dash_purchase_change(before tote.dash_purchase_versions[], after tote.dash_purchase_versions[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c tote.dash_purchase_versions[];
BEGIN
    WITH b AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(before) v
    ), a AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(after) v
    ), x AS (
        SELECT seq, day, currency_id, location_id, staff_id, counterparty_id, orders, quantity, value_cents FROM a
        UNION ALL
        SELECT nxt, day, currency_id, location_id, staff_id, counterparty_id, -orders, -quantity, -value_cents
        FROM a WHERE nxt IS NOT NULL
        UNION ALL
        SELECT seq, day, currency_id, location_id, staff_id, counterparty_id, -orders, -quantity, -value_cents FROM b
        UNION ALL
        SELECT nxt, day, currency_id, location_id, staff_id, counterparty_id, orders, quantity, value_cents
        FROM b WHERE nxt IS NOT NULL
    ), del AS (
        DELETE FROM tote.dash_purchase_next t USING b
        WHERE t.purchase_record_id = b.rec AND b.nxt IS NOT NULL
          AND NOT EXISTS (SELECT FROM a WHERE a.rec = b.rec AND a.nxt IS NOT NULL)
    ), ins AS (
        INSERT INTO tote.dash_purchase_next AS t (purchase_record_id, next_seq)
        SELECT a.rec, a.nxt FROM a
        WHERE a.nxt IS NOT NULL AND NOT EXISTS (SELECT FROM b WHERE b.rec = a.rec AND b.nxt = a.nxt)
        ON CONFLICT (purchase_record_id) DO UPDATE SET next_seq = EXCLUDED.next_seq
    )
    SELECT array_agg(ROW(NULL, NULL, seq, day, currency_id, location_id, staff_id, counterparty_id,
                         o, q, v)::tote.dash_purchase_versions)
    INTO c
    FROM (SELECT seq, day, currency_id, location_id, staff_id, counterparty_id,
                 sum(orders)::bigint AS o, sum(quantity)::bigint AS q, sum(value_cents)::bigint AS v
          FROM x GROUP BY 1, 2, 3, 4, 5, 6
          HAVING sum(orders) <> 0 OR sum(quantity) <> 0 OR sum(value_cents) <> 0) s;
    IF c IS NOT NULL THEN
        PERFORM tote.dash_purchase_add(c);
    END IF;
END
$$;

CREATE FUNCTION tote.dash_purchase_rebuild() RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' SET maintenance_work_mem = '256MB' SET jit = off AS $$
DECLARE
    n bigint;
    ids bigint;
    first text;
    last text;
    top bigint;
BEGIN
    TRUNCATE tote.dash_purchase_by, tote.dash_purchase_by_log, tote.dash_purchase_next;
    ALTER TABLE tote.dash_purchase_by DROP CONSTRAINT dash_purchase_by_pkey;
    ALTER TABLE tote.dash_purchase_by_log DROP CONSTRAINT dash_purchase_by_log_pkey;

    SELECT count(*), count(DISTINCT purchase_order_id), min(batch_id COLLATE "C"), max(batch_id COLLATE "C"),
           max(purchase_record_id)
    INTO n, ids, first, last, top FROM fact_purchase_order;

    IF ids < n THEN
        INSERT INTO tote.dash_purchase_next (purchase_record_id, next_seq)
        SELECT rec, nxt FROM (
            SELECT v.rec, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt
            FROM tote.dash_purchase_versions v
            WHERE v.id IN (SELECT purchase_order_id FROM fact_purchase_order GROUP BY 1 HAVING count(*) > 1)
        ) x WHERE nxt IS NOT NULL;
    END IF;
    ANALYZE tote.dash_purchase_next;

    -- 'all' is the sum of the location rows.
    INSERT INTO tote.dash_purchase_by (dim, day, key, currency_id, orders, quantity, value_cents)
    SELECT CASE WHEN GROUPING(location_id) = 0 THEN 'location' WHEN GROUPING(staff_id) = 0 THEN 'staff'
                ELSE 'counterparty' END,
           day, coalesce(location_id, staff_id, counterparty_id), currency_id,
           count(*), sum(quantity), sum(value_cents)
    FROM tote.dash_purchase_versions v
    WHERE ids = n OR NOT EXISTS (SELECT FROM tote.dash_purchase_next x WHERE x.purchase_record_id = v.rec)
    GROUP BY GROUPING SETS ((day, currency_id, location_id), (day, currency_id, staff_id), (day, currency_id, counterparty_id));
    INSERT INTO tote.dash_purchase_by (dim, day, key, currency_id, orders, quantity, value_cents)
    SELECT 'all', day, 0, currency_id, sum(orders), sum(quantity), sum(value_cents)
    FROM tote.dash_purchase_by WHERE dim = 'location'
    GROUP BY day, currency_id;

    IF first IS DISTINCT FROM last THEN
        INSERT INTO tote.dash_purchase_by_log (seq, dim, day, key, currency_id, orders, quantity, value_cents)
        SELECT seq, CASE WHEN GROUPING(location_id) = 0 THEN 'location' WHEN GROUPING(staff_id) = 0 THEN 'staff'
                         WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(location_id, staff_id, counterparty_id, 0), currency_id,
               sum(orders), sum(quantity), sum(value_cents)
        FROM (SELECT v.* FROM tote.dash_purchase_versions v
              UNION ALL
              SELECT v.rec, v.id, x.next_seq, v.day, v.currency_id, v.location_id, v.staff_id, v.counterparty_id,
                     -v.orders, -v.quantity, -v.value_cents
              FROM tote.dash_purchase_versions v JOIN tote.dash_purchase_next x ON x.purchase_record_id = v.rec) c
        GROUP BY GROUPING SETS ((seq, day, currency_id), (seq, day, currency_id, location_id),
                                (seq, day, currency_id, staff_id), (seq, day, currency_id, counterparty_id))
        HAVING sum(orders) <> 0 OR sum(quantity) <> 0 OR sum(value_cents) <> 0;
    END IF;

    ALTER TABLE tote.dash_purchase_by ADD CONSTRAINT dash_purchase_by_pkey PRIMARY KEY (dim, day, key, currency_id);
    ALTER TABLE tote.dash_purchase_by_log ADD CONSTRAINT dash_purchase_by_log_pkey PRIMARY KEY (seq, dim, day, key, currency_id);
    ANALYZE tote.dash_purchase_by;

    INSERT INTO tote.dash_state (fact, record_id, base_seq)
    VALUES ('fact_purchase_order', coalesce(top, 0), CASE WHEN first = last THEN tote.batch_seq(first) END)
    ON CONFLICT (fact) DO UPDATE SET record_id = EXCLUDED.record_id, base_seq = EXCLUDED.base_seq;
END
$$;

CREATE FUNCTION tote.dash_purchase_refresh() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
    wm bigint;
    top bigint;
    b tote.dash_purchase_versions[];
    a tote.dash_purchase_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_purchase_order';
    SELECT max(purchase_record_id) INTO top FROM fact_purchase_order;
    IF wm IS NOT NULL AND coalesce(top, 0) <= wm THEN
        RETURN;
    END IF;
    IF coalesce(wm, 0) = 0 OR top - wm > wm THEN
        PERFORM tote.dash_purchase_rebuild();
        RETURN;
    END IF;
    -- The ids first, then their versions id by id (through the version
    -- key): a plan for both at once would trust estimates of how many rows
    -- are new and how many versions an id has, which are poor before the
    -- table is analyzed.
    ids := ARRAY(SELECT DISTINCT purchase_order_id FROM fact_purchase_order WHERE purchase_record_id > wm);
    SELECT array_agg(x.v) FILTER (WHERE (x.v).rec <= wm), array_agg(x.v) INTO b, a
    FROM unnest(ids) i(id), LATERAL (SELECT v FROM tote.dash_purchase_versions v WHERE v.id = i.id OFFSET 0) x;
    PERFORM tote.dash_purchase_change(coalesce(b, '{}'), a);
    UPDATE tote.dash_state SET record_id = top WHERE fact = 'fact_purchase_order';
END
$$;

-- ---------------------------------------------------------------------
-- Payments.

CREATE FUNCTION tote.dash_payment_add(c tote.dash_payment_versions[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    z_seq bigint[];
    z_dim text[];
    z_day date[];
    z_key integer[];
    z_currency_id integer[];
    z_payment_type_id integer[];
    z_paid boolean[];
BEGIN
    WITH up AS (
        INSERT INTO tote.dash_payment_by_log AS t (seq, dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents)
        SELECT seq, CASE WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(counterparty_id, 0), currency_id, payment_type_id, paid, sum(payments), sum(amount_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((seq, day, currency_id, payment_type_id, paid),
                                (seq, day, currency_id, payment_type_id, paid, counterparty_id))
        HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0
        ON CONFLICT (seq, dim, day, key, currency_id, payment_type_id, paid) DO UPDATE
        SET payments = t.payments + EXCLUDED.payments, amount_cents = t.amount_cents + EXCLUDED.amount_cents
        RETURNING t.seq, t.dim, t.day, t.key, t.currency_id, t.payment_type_id, t.paid,
                  t.payments = 0 AND t.amount_cents = 0 AS zero
    )
    SELECT array_agg(seq), array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id),
           array_agg(payment_type_id), array_agg(paid)
    INTO z_seq, z_dim, z_day, z_key, z_currency_id, z_payment_type_id, z_paid FROM up WHERE zero;
    IF z_seq IS NOT NULL THEN
        DELETE FROM tote.dash_payment_by_log t
        USING unnest(z_seq, z_dim, z_day, z_key, z_currency_id, z_payment_type_id, z_paid)
              z(seq, dim, day, key, currency_id, payment_type_id, paid)
        WHERE (t.seq, t.dim, t.day, t.key, t.currency_id, t.payment_type_id, t.paid)
            = (z.seq, z.dim, z.day, z.key, z.currency_id, z.payment_type_id, z.paid)
          AND t.payments = 0 AND t.amount_cents = 0;
    END IF;

    WITH up AS (
        INSERT INTO tote.dash_payment_by AS t (dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents)
        SELECT CASE WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(counterparty_id, 0), currency_id, payment_type_id, paid, sum(payments), sum(amount_cents)
        FROM unnest(c)
        GROUP BY GROUPING SETS ((day, currency_id, payment_type_id, paid),
                                (day, currency_id, payment_type_id, paid, counterparty_id))
        HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0
        ON CONFLICT (dim, day, key, currency_id, payment_type_id, paid) DO UPDATE
        SET payments = t.payments + EXCLUDED.payments, amount_cents = t.amount_cents + EXCLUDED.amount_cents
        RETURNING t.dim, t.day, t.key, t.currency_id, t.payment_type_id, t.paid,
                  t.payments = 0 AND t.amount_cents = 0 AS zero
    )
    SELECT array_agg(dim), array_agg(day), array_agg(key), array_agg(currency_id), array_agg(payment_type_id),
           array_agg(paid)
    INTO z_dim, z_day, z_key, z_currency_id, z_payment_type_id, z_paid FROM up WHERE zero;
    IF z_dim IS NOT NULL THEN
        DELETE FROM tote.dash_payment_by t
        USING unnest(z_dim, z_day, z_key, z_currency_id, z_payment_type_id, z_paid)
              z(dim, day, key, currency_id, payment_type_id, paid)
        WHERE (t.dim, t.day, t.key, t.currency_id, t.payment_type_id, t.paid)
            = (z.dim, z.day, z.key, z.currency_id, z.payment_type_id, z.paid)
          AND t.payments = 0 AND t.amount_cents = 0;
    END IF;
END
$$;

CREATE FUNCTION tote.dash_payment_change(before tote.dash_payment_versions[], after tote.dash_payment_versions[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c tote.dash_payment_versions[];
BEGIN
    WITH b AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(before) v
    ), a AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(after) v
    ), x AS (
        SELECT seq, day, currency_id, payment_type_id, paid, counterparty_id, payments, amount_cents FROM a
        UNION ALL
        SELECT nxt, day, currency_id, payment_type_id, paid, counterparty_id, -payments, -amount_cents
        FROM a WHERE nxt IS NOT NULL
        UNION ALL
        SELECT seq, day, currency_id, payment_type_id, paid, counterparty_id, -payments, -amount_cents FROM b
        UNION ALL
        SELECT nxt, day, currency_id, payment_type_id, paid, counterparty_id, payments, amount_cents
        FROM b WHERE nxt IS NOT NULL
    ), del AS (
        DELETE FROM tote.dash_payment_next t USING b
        WHERE t.payment_record_id = b.rec AND b.nxt IS NOT NULL
          AND NOT EXISTS (SELECT FROM a WHERE a.rec = b.rec AND a.nxt IS NOT NULL)
    ), ins AS (
        INSERT INTO tote.dash_payment_next AS t (payment_record_id, next_seq)
        SELECT a.rec, a.nxt FROM a
        WHERE a.nxt IS NOT NULL AND NOT EXISTS (SELECT FROM b WHERE b.rec = a.rec AND b.nxt = a.nxt)
        ON CONFLICT (payment_record_id) DO UPDATE SET next_seq = EXCLUDED.next_seq
    )
    SELECT array_agg(ROW(NULL, NULL, seq, day, currency_id, payment_type_id, paid, counterparty_id,
                         p, v)::tote.dash_payment_versions)
    INTO c
    FROM (SELECT seq, day, currency_id, payment_type_id, paid, counterparty_id,
                 sum(payments)::bigint AS p, sum(amount_cents)::bigint AS v
          FROM x GROUP BY 1, 2, 3, 4, 5, 6
          HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0) s;
    IF c IS NOT NULL THEN
        PERFORM tote.dash_payment_add(c);
    END IF;
END
$$;

CREATE FUNCTION tote.dash_payment_rebuild() RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' SET maintenance_work_mem = '256MB' SET jit = off AS $$
DECLARE
    n bigint;
    ids bigint;
    first text;
    last text;
    top bigint;
BEGIN
    TRUNCATE tote.dash_payment_by, tote.dash_payment_by_log, tote.dash_payment_next;
    ALTER TABLE tote.dash_payment_by DROP CONSTRAINT dash_payment_by_pkey;
    ALTER TABLE tote.dash_payment_by_log DROP CONSTRAINT dash_payment_by_log_pkey;

    SELECT count(*), count(DISTINCT payment_id), min(batch_id COLLATE "C"), max(batch_id COLLATE "C"),
           max(payment_record_id)
    INTO n, ids, first, last, top FROM fact_payment;

    IF ids < n THEN
        INSERT INTO tote.dash_payment_next (payment_record_id, next_seq)
        SELECT rec, nxt FROM (
            SELECT v.rec, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt
            FROM tote.dash_payment_versions v
            WHERE v.id IN (SELECT payment_id FROM fact_payment GROUP BY 1 HAVING count(*) > 1)
        ) x WHERE nxt IS NOT NULL;
    END IF;
    ANALYZE tote.dash_payment_next;

    -- One pass makes the counterparty rows, whose sums make 'all' (one
    -- hash table per row of the facts instead of two).
    INSERT INTO tote.dash_payment_by (dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents)
    SELECT 'counterparty', day, counterparty_id, currency_id, payment_type_id, paid, count(*), sum(amount_cents)
    FROM tote.dash_payment_versions v
    WHERE ids = n OR NOT EXISTS (SELECT FROM tote.dash_payment_next x WHERE x.payment_record_id = v.rec)
    GROUP BY day, counterparty_id, currency_id, payment_type_id, paid;
    INSERT INTO tote.dash_payment_by (dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents)
    SELECT 'all', day, 0, currency_id, payment_type_id, paid, sum(payments), sum(amount_cents)
    FROM tote.dash_payment_by WHERE dim = 'counterparty'
    GROUP BY day, currency_id, payment_type_id, paid;

    IF first IS DISTINCT FROM last THEN
        INSERT INTO tote.dash_payment_by_log (seq, dim, day, key, currency_id, payment_type_id, paid, payments, amount_cents)
        SELECT seq, CASE WHEN GROUPING(counterparty_id) = 0 THEN 'counterparty' ELSE 'all' END,
               day, coalesce(counterparty_id, 0), currency_id, payment_type_id, paid, sum(payments), sum(amount_cents)
        FROM (SELECT v.* FROM tote.dash_payment_versions v
              UNION ALL
              SELECT v.rec, v.id, x.next_seq, v.day, v.currency_id, v.payment_type_id, v.paid, v.counterparty_id,
                     -v.payments, -v.amount_cents
              FROM tote.dash_payment_versions v JOIN tote.dash_payment_next x ON x.payment_record_id = v.rec) c
        GROUP BY GROUPING SETS ((seq, day, currency_id, payment_type_id, paid),
                                (seq, day, currency_id, payment_type_id, paid, counterparty_id))
        HAVING sum(payments) <> 0 OR sum(amount_cents) <> 0;
    END IF;

    ALTER TABLE tote.dash_payment_by ADD CONSTRAINT dash_payment_by_pkey
        PRIMARY KEY (dim, day, key, currency_id, payment_type_id, paid);
    ALTER TABLE tote.dash_payment_by_log ADD CONSTRAINT dash_payment_by_log_pkey
        PRIMARY KEY (seq, dim, day, key, currency_id, payment_type_id, paid);
    ANALYZE tote.dash_payment_by;

    INSERT INTO tote.dash_state (fact, record_id, base_seq)
    VALUES ('fact_payment', coalesce(top, 0), CASE WHEN first = last THEN tote.batch_seq(first) END)
    ON CONFLICT (fact) DO UPDATE SET record_id = EXCLUDED.record_id, base_seq = EXCLUDED.base_seq;
END
$$;

CREATE FUNCTION tote.dash_payment_refresh() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
    wm bigint;
    top bigint;
    b tote.dash_payment_versions[];
    a tote.dash_payment_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_payment';
    SELECT max(payment_record_id) INTO top FROM fact_payment;
    IF wm IS NOT NULL AND coalesce(top, 0) <= wm THEN
        RETURN;
    END IF;
    IF coalesce(wm, 0) = 0 OR top - wm > wm THEN
        PERFORM tote.dash_payment_rebuild();
        RETURN;
    END IF;
    -- The ids first, then their versions id by id (through the version
    -- key): a plan for both at once would trust estimates of how many rows
    -- are new and how many versions an id has, which are poor before the
    -- table is analyzed.
    ids := ARRAY(SELECT DISTINCT payment_id FROM fact_payment WHERE payment_record_id > wm);
    SELECT array_agg(x.v) FILTER (WHERE (x.v).rec <= wm), array_agg(x.v) INTO b, a
    FROM unnest(ids) i(id), LATERAL (SELECT v FROM tote.dash_payment_versions v WHERE v.id = i.id OFFSET 0) x;
    PERFORM tote.dash_payment_change(coalesce(b, '{}'), a);
    UPDATE tote.dash_state SET record_id = top WHERE fact = 'fact_payment';
END
$$;

-- ---------------------------------------------------------------------
-- Changes the load does not make by inserting: a corrective batch's
-- updates (decision 0007), rows deleted or altered by hand (tote verify
-- finds them). Each replaces the summarized chains of the ids it touched.
-- Rows above the watermark are not summarized yet: the next refresh takes
-- them as they are then. A delete moves the watermark down to the largest
-- row left below it, since the load numbers new rows after the largest
-- there is.

CREATE FUNCTION tote.dash_sales_updated() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_sales_versions[];
    a tote.dash_sales_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_sales_order';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT sales_order_id FROM old_rows WHERE sales_record_id <= wm
                 UNION SELECT sales_order_id FROM new_rows WHERE sales_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_sales_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := ARRAY(SELECT v FROM unnest(a) v WHERE v.rec NOT IN (SELECT sales_record_id FROM new_rows))
         || ARRAY(SELECT tote.dash_sales_version(o) FROM old_rows o WHERE o.sales_record_id <= wm);
    PERFORM tote.dash_sales_change(coalesce(b, '{}'), coalesce(a, '{}'));
    RETURN NULL;
END
$$;

CREATE FUNCTION tote.dash_sales_deleted() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_sales_versions[];
    a tote.dash_sales_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_sales_order';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT DISTINCT sales_order_id FROM old_rows WHERE sales_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_sales_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := coalesce(a, '{}') || ARRAY(SELECT tote.dash_sales_version(o) FROM old_rows o WHERE o.sales_record_id <= wm);
    PERFORM tote.dash_sales_change(coalesce(b, '{}'), coalesce(a, '{}'));
    UPDATE tote.dash_state
    SET record_id = (SELECT coalesce(max(sales_record_id), 0) FROM fact_sales_order WHERE sales_record_id <= wm)
    WHERE fact = 'fact_sales_order';
    RETURN NULL;
END
$$;

CREATE FUNCTION tote.dash_purchase_updated() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_purchase_versions[];
    a tote.dash_purchase_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_purchase_order';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT purchase_order_id FROM old_rows WHERE purchase_record_id <= wm
                 UNION SELECT purchase_order_id FROM new_rows WHERE purchase_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_purchase_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := ARRAY(SELECT v FROM unnest(a) v WHERE v.rec NOT IN (SELECT purchase_record_id FROM new_rows))
         || ARRAY(SELECT tote.dash_purchase_version(o) FROM old_rows o WHERE o.purchase_record_id <= wm);
    PERFORM tote.dash_purchase_change(coalesce(b, '{}'), coalesce(a, '{}'));
    RETURN NULL;
END
$$;

CREATE FUNCTION tote.dash_purchase_deleted() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_purchase_versions[];
    a tote.dash_purchase_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_purchase_order';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT DISTINCT purchase_order_id FROM old_rows WHERE purchase_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_purchase_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := coalesce(a, '{}') || ARRAY(SELECT tote.dash_purchase_version(o) FROM old_rows o WHERE o.purchase_record_id <= wm);
    PERFORM tote.dash_purchase_change(coalesce(b, '{}'), coalesce(a, '{}'));
    UPDATE tote.dash_state
    SET record_id = (SELECT coalesce(max(purchase_record_id), 0) FROM fact_purchase_order WHERE purchase_record_id <= wm)
    WHERE fact = 'fact_purchase_order';
    RETURN NULL;
END
$$;

CREATE FUNCTION tote.dash_payment_updated() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_payment_versions[];
    a tote.dash_payment_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_payment';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT payment_id FROM old_rows WHERE payment_record_id <= wm
                 UNION SELECT payment_id FROM new_rows WHERE payment_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_payment_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := ARRAY(SELECT v FROM unnest(a) v WHERE v.rec NOT IN (SELECT payment_record_id FROM new_rows))
         || ARRAY(SELECT tote.dash_payment_version(o) FROM old_rows o WHERE o.payment_record_id <= wm);
    PERFORM tote.dash_payment_change(coalesce(b, '{}'), coalesce(a, '{}'));
    RETURN NULL;
END
$$;

CREATE FUNCTION tote.dash_payment_deleted() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids integer[];
    wm bigint;
    b tote.dash_payment_versions[];
    a tote.dash_payment_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote.dash_state WHERE fact = 'fact_payment';
    IF coalesce(wm, 0) = 0 THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT DISTINCT payment_id FROM old_rows WHERE payment_record_id <= wm);
    SELECT array_agg(x.v) INTO a
    FROM unnest(ids) i(id),
         LATERAL (SELECT v FROM tote.dash_payment_versions v WHERE v.id = i.id AND v.rec <= wm OFFSET 0) x;
    b := coalesce(a, '{}') || ARRAY(SELECT tote.dash_payment_version(o) FROM old_rows o WHERE o.payment_record_id <= wm);
    PERFORM tote.dash_payment_change(coalesce(b, '{}'), coalesce(a, '{}'));
    UPDATE tote.dash_state
    SET record_id = (SELECT coalesce(max(payment_record_id), 0) FROM fact_payment WHERE payment_record_id <= wm)
    WHERE fact = 'fact_payment';
    RETURN NULL;
END
$$;

-- A truncated fact starts afresh.
CREATE FUNCTION tote.dash_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_TABLE_NAME
    WHEN 'fact_sales_order' THEN
        DELETE FROM tote.dash_sales_by; DELETE FROM tote.dash_sales_by_log;
        DELETE FROM tote.dash_sales_design; DELETE FROM tote.dash_sales_design_log; DELETE FROM tote.dash_sales_next;
    WHEN 'fact_purchase_order' THEN
        DELETE FROM tote.dash_purchase_by; DELETE FROM tote.dash_purchase_by_log; DELETE FROM tote.dash_purchase_next;
    WHEN 'fact_payment' THEN
        DELETE FROM tote.dash_payment_by; DELETE FROM tote.dash_payment_by_log; DELETE FROM tote.dash_payment_next;
    END CASE;
    DELETE FROM tote.dash_state WHERE fact = TG_TABLE_NAME;
    RETURN NULL;
END
$$;

CREATE TRIGGER dash_updated AFTER UPDATE ON fact_sales_order REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_sales_updated();
CREATE TRIGGER dash_deleted AFTER DELETE ON fact_sales_order REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_sales_deleted();
CREATE TRIGGER dash_truncated AFTER TRUNCATE ON fact_sales_order FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_truncated();
CREATE TRIGGER dash_updated AFTER UPDATE ON fact_purchase_order REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_purchase_updated();
CREATE TRIGGER dash_deleted AFTER DELETE ON fact_purchase_order REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_purchase_deleted();
CREATE TRIGGER dash_truncated AFTER TRUNCATE ON fact_purchase_order FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_truncated();
CREATE TRIGGER dash_updated AFTER UPDATE ON fact_payment REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_payment_updated();
CREATE TRIGGER dash_deleted AFTER DELETE ON fact_payment REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_payment_deleted();
CREATE TRIGGER dash_truncated AFTER TRUNCATE ON fact_payment FOR EACH STATEMENT EXECUTE FUNCTION tote.dash_truncated();

-- ---------------------------------------------------------------------

-- dash_refresh brings every summary up to date with the facts. Without
-- JIT compilation: the plans of a few hundred rows that the planner
-- overestimates (before the facts are analyzed) would compile for longer
-- than they run.
CREATE FUNCTION tote.dash_refresh() RETURNS void LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM tote.dash_sales_refresh();
    PERFORM tote.dash_purchase_refresh();
    PERFORM tote.dash_payment_refresh();
END
$$;

CREATE OR REPLACE FUNCTION tote.after_load(batch text) RETURNS void LANGUAGE sql AS $$
    SELECT tote.dash_refresh()
$$;

-- Row-level reads (drill-down pages, filters no summary has, an order's
-- history) go to the facts. Each index here is there because a dashboard
-- query in web/queries.go needs it (a dimension's or a design's rows in a
-- period, a day's rows for the drill-down). A large first load drops
-- them and builds them after its insert, as it does the unique keys.
SET LOCAL maintenance_work_mem = '256MB';
CREATE INDEX fact_sales_order_created_idx ON fact_sales_order (created_date, sales_order_id);
CREATE INDEX fact_sales_order_design_idx ON fact_sales_order (design_id, created_date);
CREATE INDEX fact_sales_order_location_idx ON fact_sales_order (agreed_delivery_location_id, created_date);
CREATE INDEX fact_sales_order_staff_idx ON fact_sales_order (sales_staff_id, created_date);
CREATE INDEX fact_sales_order_counterparty_idx ON fact_sales_order (counterparty_id, created_date);
CREATE INDEX fact_purchase_order_created_idx ON fact_purchase_order (created_date, purchase_order_id);
CREATE INDEX fact_payment_date_idx ON fact_payment (payment_date, payment_id);

-- Backfill a warehouse loaded before this migration.
SELECT tote.dash_refresh();
ANALYZE tote.dash_sales_by, tote.dash_sales_design, tote.dash_purchase_by, tote.dash_payment_by;

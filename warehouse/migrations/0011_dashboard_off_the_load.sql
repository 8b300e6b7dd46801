-- The dashboard's summaries leave the load (docs/decisions/0011): package
-- web keeps them in a migration group of its own, recorded in
-- tote.group_migrations below, and brings them up to date after each load
-- commits. This drops what migration 0008 made: the hook the load called
-- in every batch's transaction, the summaries, their functions, their
-- triggers on the facts and the facts' indexes that only the dashboard
-- used (web builds what it needs itself, once, after a load).

DROP FUNCTION tote.after_load(text);

DROP TRIGGER IF EXISTS dash_updated ON fact_sales_order;
DROP TRIGGER IF EXISTS dash_deleted ON fact_sales_order;
DROP TRIGGER IF EXISTS dash_truncated ON fact_sales_order;
DROP TRIGGER IF EXISTS dash_updated ON fact_purchase_order;
DROP TRIGGER IF EXISTS dash_deleted ON fact_purchase_order;
DROP TRIGGER IF EXISTS dash_truncated ON fact_purchase_order;
DROP TRIGGER IF EXISTS dash_updated ON fact_payment;
DROP TRIGGER IF EXISTS dash_deleted ON fact_payment;
DROP TRIGGER IF EXISTS dash_truncated ON fact_payment;

DROP FUNCTION IF EXISTS tote.dash_refresh(), tote.dash_truncated(),
    tote.dash_sales_refresh(), tote.dash_sales_rebuild(), tote.dash_sales_updated(), tote.dash_sales_deleted(),
    tote.dash_sales_change(tote.dash_sales_versions[], tote.dash_sales_versions[]),
    tote.dash_sales_add(tote.dash_sales_versions[]), tote.dash_sales_version(fact_sales_order),
    tote.dash_purchase_refresh(), tote.dash_purchase_rebuild(), tote.dash_purchase_updated(), tote.dash_purchase_deleted(),
    tote.dash_purchase_change(tote.dash_purchase_versions[], tote.dash_purchase_versions[]),
    tote.dash_purchase_add(tote.dash_purchase_versions[]), tote.dash_purchase_version(fact_purchase_order),
    tote.dash_payment_refresh(), tote.dash_payment_rebuild(), tote.dash_payment_updated(), tote.dash_payment_deleted(),
    tote.dash_payment_change(tote.dash_payment_versions[], tote.dash_payment_versions[]),
    tote.dash_payment_add(tote.dash_payment_versions[]), tote.dash_payment_version(fact_payment);

DROP TABLE IF EXISTS tote.dash_state,
    tote.dash_sales_next, tote.dash_sales_by, tote.dash_sales_by_log, tote.dash_sales_design, tote.dash_sales_design_log,
    tote.dash_purchase_next, tote.dash_purchase_by, tote.dash_purchase_by_log,
    tote.dash_payment_next, tote.dash_payment_by, tote.dash_payment_by_log;
DROP VIEW IF EXISTS tote.dash_sales_versions, tote.dash_purchase_versions, tote.dash_payment_versions;
DROP FUNCTION IF EXISTS tote.batch_seq(text), tote.lead_bucket(integer);

DROP INDEX IF EXISTS fact_sales_order_created_idx, fact_sales_order_design_idx, fact_sales_order_location_idx,
    fact_sales_order_staff_idx, fact_sales_order_counterparty_idx, fact_purchase_order_created_idx, fact_payment_date_idx;

-- Migration groups: lines of migrations of other parts that keep objects
-- in the warehouse (warehouse.Group), each version with a checksum of its
-- text, so that a group derived from the model is made again when the
-- model changes.
CREATE TABLE tote.group_migrations (
    grp text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, version)
);

-- Facts identify a source row version by the transaction that wrote it as
-- well as by its stamps, so that a row rewritten without a later
-- last_updated is a version of its own, and say which processed batch
-- brought each version (batches are in the order versions became visible).
-- Rows loaded before this migration get source_xmin 0 and batch_id ''.
ALTER TABLE fact_sales_order
    ADD COLUMN IF NOT EXISTS source_xmin bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS batch_id text NOT NULL DEFAULT '';
ALTER TABLE fact_sales_order ALTER COLUMN source_xmin DROP DEFAULT, ALTER COLUMN batch_id DROP DEFAULT;
ALTER TABLE fact_sales_order DROP CONSTRAINT IF EXISTS fact_sales_order_version_key;
ALTER TABLE fact_sales_order ADD CONSTRAINT fact_sales_order_version_key
    UNIQUE (sales_order_id, last_updated_date, last_updated_time, source_xmin);

ALTER TABLE fact_purchase_order
    ADD COLUMN IF NOT EXISTS source_xmin bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS batch_id text NOT NULL DEFAULT '';
ALTER TABLE fact_purchase_order ALTER COLUMN source_xmin DROP DEFAULT, ALTER COLUMN batch_id DROP DEFAULT;
ALTER TABLE fact_purchase_order DROP CONSTRAINT IF EXISTS fact_purchase_order_version_key;
ALTER TABLE fact_purchase_order ADD CONSTRAINT fact_purchase_order_version_key
    UNIQUE (purchase_order_id, last_updated_date, last_updated_time, source_xmin);

ALTER TABLE fact_payment
    ADD COLUMN IF NOT EXISTS source_xmin bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS batch_id text NOT NULL DEFAULT '';
ALTER TABLE fact_payment ALTER COLUMN source_xmin DROP DEFAULT, ALTER COLUMN batch_id DROP DEFAULT;
ALTER TABLE fact_payment DROP CONSTRAINT IF EXISTS fact_payment_version_key;
ALTER TABLE fact_payment ADD CONSTRAINT fact_payment_version_key
    UNIQUE (payment_id, last_updated_date, last_updated_time, source_xmin);

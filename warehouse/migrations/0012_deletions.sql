-- Deletions are history (issue 19): every fact and every dimension made
-- from a source (all but dim_date) says whether its row records a
-- deletion. A fact gets one more version when its source row is deleted
-- (the row's last values, stamped when the deletion was seen, is_deleted
-- true); a dimension keeps a deleted entity's row, flagged. Rows loaded
-- before are not deletions. IF NOT EXISTS: a star table adopted before
-- migration 0001 may have the column already (see checkExisting).
ALTER TABLE fact_sales_order ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE fact_purchase_order ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE fact_payment ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_staff ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_location ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_design ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_currency ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_counterparty ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_transaction ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE dim_payment_type ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false;

-- An id's newest version is the one with the largest surrogate key (the
-- load numbers each batch's new versions after the largest): the facts'
-- current views (rendered from the model after the migrations, views.go)
-- and the load's deletion versions find it through these. A large first
-- load drops them and builds them after its insert, as it does the
-- unique keys.
SET LOCAL maintenance_work_mem = '256MB';
CREATE INDEX IF NOT EXISTS fact_sales_order_newest_idx ON fact_sales_order (sales_order_id, sales_record_id);
CREATE INDEX IF NOT EXISTS fact_purchase_order_newest_idx ON fact_purchase_order (purchase_order_id, purchase_record_id);
CREATE INDEX IF NOT EXISTS fact_payment_newest_idx ON fact_payment (payment_id, payment_record_id);

-- What each loaded batch deleted, by star table: the deletion versions it
-- added to a fact, the dimension rows it flagged ({"fact_payment": 2}).
ALTER TABLE tote.load_ledger ADD COLUMN deleted jsonb NOT NULL DEFAULT '{}';
ALTER TABLE tote.load_ledger_history ADD COLUMN deleted jsonb NOT NULL DEFAULT '{}';

-- The newest source change (last_updated) each loaded batch brought, so
-- that the age of the newest change loaded is read from the ledger instead
-- of by scanning every fact table. Batches loaded before this migration
-- are summed up in the newest one: the maximum is what is asked for.
ALTER TABLE tote.load_ledger ADD COLUMN newest_change timestamp;
ALTER TABLE tote.load_ledger_history ADD COLUMN newest_change timestamp;

UPDATE tote.load_ledger SET newest_change = (
    SELECT max(t) FROM (
        SELECT max(last_updated_date + last_updated_time) AS t FROM fact_sales_order
        UNION ALL SELECT max(last_updated_date + last_updated_time) FROM fact_purchase_order
        UNION ALL SELECT max(last_updated_date + last_updated_time) FROM fact_payment
    ) f)
WHERE seq = (SELECT max(seq) FROM tote.load_ledger);

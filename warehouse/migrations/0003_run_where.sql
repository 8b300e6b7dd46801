-- Where a failed run failed, as its error says it (tote.Where as JSON:
-- stage, batch, table, id, column, value), so that alerts, tote status and
-- the dashboard read it without parsing the error text.
ALTER TABLE tote.runs ADD COLUMN error_where jsonb;

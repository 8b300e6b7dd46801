-- A hook the load calls in each batch's transaction, after the batch's rows
-- and its ledger row are in: summaries that must stay current with the
-- facts (the dashboard's) replace it in later migrations. It does nothing
-- here.
CREATE FUNCTION tote.after_load(batch text) RETURNS void LANGUAGE sql AS $$ SELECT $$;

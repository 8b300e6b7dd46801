-- tote's own tables: the ledger of loaded processed batches (the load
-- inserts a batch's row in the transaction that loads it, so a batch is in
-- the ledger exactly when its rows are in the warehouse) and the history of
-- pipeline runs. The schema tote itself, with tote.schema_migrations, is
-- created before the first migration.

CREATE TABLE tote.load_ledger (
    batch_id text PRIMARY KEY,
    seq bigint NOT NULL UNIQUE,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    rows bigint NOT NULL,           -- rows in the batch's processed files
    tables jsonb NOT NULL           -- the same per star table: {"dim_staff": 3, ...}
);

CREATE TABLE tote.runs (
    id bigserial PRIMARY KEY,
    trigger text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text,
    error text,
    stages jsonb,
    batches jsonb
);

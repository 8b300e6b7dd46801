-- The star as Iceberg tables (issue 23, package iceberg): which Iceberg
-- snapshot holds which loaded batch. The truth is in the Iceberg tables
-- themselves (each snapshot tote commits carries tote.batch in its
-- summary, and a fact's tote.max-key, so a publish that crashed after its
-- Iceberg commit is recognised and never repeated); these rows say the
-- same to SQL readers and to tote iceberg tables, and which batches are
-- done. docs/decisions/0017-iceberg.md says why.
CREATE TABLE tote.iceberg_batches (
    batch_id text PRIMARY KEY,        -- a batch of tote.load_ledger, published to every table
    seq bigint NOT NULL UNIQUE,
    published_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tote.iceberg_snapshots (
    batch_id text NOT NULL,
    table_name text NOT NULL,         -- the star table, as named in the Iceberg namespace
    snapshot_id bigint NOT NULL,      -- the Iceberg snapshot that brought the batch's rows
    operation text NOT NULL,          -- append (a fact's new versions) or overwrite (a dimension, a corrected fact)
    rows bigint NOT NULL,             -- rows the snapshot added
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, table_name)
);

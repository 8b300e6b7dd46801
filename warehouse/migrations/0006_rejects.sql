-- The rows the transform quarantined (a value that cannot be transformed),
-- loaded with the processed batch that found them, and marked resolved by
-- the batch in which a later version of the row transformed.
CREATE TABLE tote.rejects (
    id bigserial PRIMARY KEY,
    batch_id text NOT NULL,          -- the processed batch that quarantined the row
    raw_batch text NOT NULL,         -- the raw batch that holds the rejected version
    source_table text NOT NULL,
    source_id bigint NOT NULL,
    version timestamp,               -- the rejected version's last_updated
    source_xmin bigint NOT NULL,     -- and its 32-bit xmin
    column_name text,
    value text,
    reason text NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(),
    resolved_batch text,             -- the processed batch in which a later version transformed
    resolved_at timestamptz
);
CREATE INDEX rejects_open ON tote.rejects (source_table, source_id) WHERE resolved_batch IS NULL;

-- Batches loaded from a lake the warehouse no longer follows: when a
-- warehouse adopts another lake (tote load --adopt-lake), the ledger of the
-- old one moves here, and the new lake's batches are loaded from its first.
CREATE TABLE tote.load_ledger_history (
    batch_id text NOT NULL,
    seq bigint NOT NULL,
    loaded_at timestamptz NOT NULL,
    rows bigint NOT NULL,
    tables jsonb NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

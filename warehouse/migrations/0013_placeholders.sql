-- Dimension rows the load made up so that a fact's foreign keys hold: a
-- fact that refers to a dimension row the warehouse does not have (its row
-- was quarantined, or never came: totesys has no foreign key from
-- sales_order to design, say) gets a placeholder row in the dimension, its
-- text '(unknown)', and a row here. The real row replaces it when it comes
-- (the dimension's upsert), and marks it resolved here. Placeholders of the
-- calendar table (dim_date) are whole days, not recorded.
-- docs/decisions/0013-warehouse-for-bi.md says why.
CREATE TABLE tote.placeholders (
    dim_table text NOT NULL,
    id bigint NOT NULL,               -- the dimension key the facts refer to
    fact_table text NOT NULL,         -- the first fact table that referred to it
    batch_id text NOT NULL,           -- and the processed batch of its first such row
    made_at timestamptz NOT NULL DEFAULT now(),
    resolved_batch text,              -- the processed batch that brought the real row
    resolved_at timestamptz,
    PRIMARY KEY (dim_table, id)
);

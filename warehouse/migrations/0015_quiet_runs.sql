-- Quiet runs are coalesced (issue 22): under tote serve a run comes every
-- second, and most find nothing new. A run that succeeded at its first
-- attempt and moved nothing is quiet, and a quiet run takes the quiet row
-- before it (same trigger, no alert sent, its first run begun within the
-- hour) into its own, so that one row stands for a streak of quiet runs.
-- The row still describes its newest run in full (id, started_at,
-- finished_at, stages); these columns say how many runs it stands for and
-- since when. pipeline/history.go owns the rule; a row recorded before
-- this migration stands for one run.
ALTER TABLE tote.runs ADD COLUMN quiet boolean NOT NULL DEFAULT false;
ALTER TABLE tote.runs ADD COLUMN coalesced integer NOT NULL DEFAULT 1;  -- the runs the row stands for
ALTER TABLE tote.runs ADD COLUMN first_id bigint;                       -- the first of them, when more than one
ALTER TABLE tote.runs ADD COLUMN first_started_at timestamptz;          -- and when it started

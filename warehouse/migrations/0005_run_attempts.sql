-- Runs remember how many attempts they took and what became of each alert
-- sent about them: one {notifier, kind, at, error} per notifier and alert.
ALTER TABLE tote.runs ADD COLUMN attempts integer NOT NULL DEFAULT 1;
ALTER TABLE tote.runs ADD COLUMN notifications jsonb NOT NULL DEFAULT '[]';

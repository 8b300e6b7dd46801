{{/*
The statements that load one star table's processed file, one template per
step, rendered once per table from the star model. Identifiers come quoted;
values are never part of the text.

Data: .Table, .Stage (the staging table), .Surrogate (a fact's; empty for a
dimension), .Columns (the model's, in order), .Key, .Other (the columns not
in .Key).
*/}}

{{/* stage: a temporary table for the file's rows, shaped like the target
     less the surrogate, plus the row's position in the file. */}}
{{define "stage" -}}
CREATE TEMP TABLE {{.Stage}} (LIKE {{.Table}}) ON COMMIT DROP;
{{- if .Surrogate}}
ALTER TABLE {{.Stage}} DROP COLUMN {{.Surrogate}};
{{- end}}
ALTER TABLE {{.Stage}} ADD COLUMN tote_ordinal bigint NOT NULL
{{- end}}

{{/* dimension: upsert each entity's last row in the file; a row that is
     already there as it is stays untouched. Returns (inserted, updated):
     every part of the statement sees the table as it was before, so the
     keys not there before are the inserted rows. */}}
{{define "dimension" -}}
WITH src AS (
    SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
    FROM {{.Stage}}
    ORDER BY {{list "" .Key}}, tote_ordinal DESC
), merged AS (
    INSERT INTO {{.Table}} AS t ({{list "" .Columns}})
    SELECT {{list "" .Columns}} FROM src
    ON CONFLICT ({{list "" .Key}}) DO UPDATE SET {{assign .Other}}
    WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*)
    RETURNING 1
)
SELECT n.inserted, (SELECT count(*) FROM merged) - n.inserted
FROM (SELECT count(*) AS inserted FROM src s
      WHERE NOT EXISTS (SELECT FROM {{.Table}} t WHERE {{same "t" "s" .Key}})) n
{{- end}}

{{/* fact: insert the row versions not there yet, numbering them after the
     largest surrogate in key order (see the package comment). Loads are
     serialized by an advisory lock, so the numbers are free; ON CONFLICT
     is a second guard against a repeated version. */}}
{{define "fact" -}}
{{template "factInsert" .}}
ORDER BY {{list "s." .Key}}
ON CONFLICT ({{list "" .Key}}) DO NOTHING
{{- end}}

{{/* factInsert: the head of fact and factFull, each staged key's last
     row not in the table yet, numbered after the largest surrogate; they
     add their own conditions after its WHERE. */}}
{{define "factInsert" -}}
INSERT INTO {{.Table}} ({{.Surrogate}}, {{list "" .Columns}})
SELECT base.n + row_number() OVER (ORDER BY {{list "s." .Key}}), {{list "s." .Columns}}
FROM (
    SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
    FROM {{.Stage}}
    ORDER BY {{list "" .Key}}, tote_ordinal DESC
) s
CROSS JOIN (SELECT coalesce(max({{.Surrogate}}), 0) AS n FROM {{.Table}}) base
WHERE NOT EXISTS (SELECT FROM {{.Table}} f WHERE {{same "f" "s" .Key}})
{{- end}}

{{/* sequence: keep the surrogate's default (nextval) past the ids the
     load has given. */}}
{{define "sequence" -}}
SELECT setval(pg_get_serial_sequence('{{.Table}}', '{{.SurrogateName}}'), max({{.Surrogate}}))
FROM {{.Table}} HAVING max({{.Surrogate}}) IS NOT NULL
{{- end}}

{{/* empty: whether the table has no rows, which under the load lock (and
     the table lock a first load takes) nothing else changes. */}}
{{define "empty" -}}
SELECT NOT EXISTS (SELECT FROM {{.Table}})
{{- end}}

{{/* dimensionFirst: the dimension upsert into an empty table, where every
     entity is new: a plain insert of each entity's last row. */}}
{{define "dimensionFirst" -}}
INSERT INTO {{.Table}} ({{list "" .Columns}})
SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
FROM {{.Stage}}
ORDER BY {{list "" .Key}}, tote_ordinal DESC
{{- end}}

{{/* factFirst: the fact insert into an empty table, where no version is
     there yet: the same rows with the same surrogates, without the
     per-row conflict checks. The unique key still guards it: a duplicate
     fails the batch. */}}
{{define "factFirst" -}}
INSERT INTO {{.Table}} ({{.Surrogate}}, {{list "" .Columns}})
SELECT row_number() OVER (ORDER BY {{list "s." .Key}}), {{list "s." .Columns}}
FROM (
    SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
    FROM {{.Stage}}
    ORDER BY {{list "" .Key}}, tote_ordinal DESC
) s
ORDER BY {{list "s." .Key}}
{{- end}}

{{/* uniqueKeys: the table's unique keys and its indexes that back no
     constraint (the dashboard's, package web), not the primary key
     (dropping that too gained nothing): name, definition, and whether it
     is a constraint. A large first load drops them and adds them back
     (building an index once is much cheaper than growing it row by
     row). */}}
{{define "uniqueKeys" -}}
SELECT conname, pg_get_constraintdef(oid), true FROM pg_constraint
WHERE conrelid = '{{.Table}}'::regclass AND contype = 'u'
UNION ALL
SELECT c.relname, pg_get_indexdef(i.indexrelid), false
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = '{{.Table}}'::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 3 DESC, 1
{{- end}}

{{/* factCorrect: in a corrective batch (see lake.Manifest.Corrective), the
     versions already there take the file's values: they were found to
     differ from the source (tote verify). Each keeps the batch that first
     brought it; the versions not there are inserted as usual after. */}}
{{define "factCorrect" -}}
UPDATE {{.Table}} AS t SET {{range $i, $c := .Correct}}{{if $i}}, {{end}}{{$c}} = s.{{$c}}{{end}}
FROM (
    SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
    FROM {{.Stage}}
    ORDER BY {{list "" .Key}}, tote_ordinal DESC
) s
WHERE {{same "t" "s" .Key}} AND ({{list "t." .Correct}}) IS DISTINCT FROM ({{list "s." .Correct}})
{{- end}}

{{/* deletedStage: a temporary table for a batch's deletions file
     (star.Deletions), plus each row's position in the file. */}}
{{define "deletedStage" -}}
CREATE TEMP TABLE {{.DeletedStage}} (star_table text NOT NULL, id integer NOT NULL, seen_date date NOT NULL,
    seen_time time NOT NULL, tote_ordinal bigint NOT NULL) ON COMMIT DROP
{{- end}}

{{/* factDeleted: for each id of fact $1 in the deletions (the last row of
     an id wins), a deletion version: the values of the id's newest
     version (the largest surrogate), stamped when the deletion was seen,
     source_xmin 0, brought by batch $2, is_deleted; unless the newest
     version is a deletion already. An id the table never had adds
     nothing. Numbered after the largest surrogate in id order. */}}
{{define "factDeleted" -}}
INSERT INTO {{.Table}} ({{.Surrogate}}, {{list "" .Columns}})
SELECT base.n + row_number() OVER (ORDER BY d.id), {{join .Deletion}}
FROM (
    SELECT DISTINCT ON (id) id, seen_date, seen_time
    FROM {{.DeletedStage}} WHERE star_table = $1
    ORDER BY id, tote_ordinal DESC
) d
CROSS JOIN LATERAL (
    SELECT * FROM {{.Table}} f WHERE f.{{.ID}} = d.id ORDER BY f.{{.Surrogate}} DESC LIMIT 1
) f
CROSS JOIN (SELECT coalesce(max({{.Surrogate}}), 0) AS n FROM {{.Table}}) base
WHERE NOT f.{{.Deleted}}
ORDER BY d.id
{{- end}}

{{/* dimensionDeleted: flag the rows of dimension $1's ids in the
     deletions; they keep their values. */}}
{{define "dimensionDeleted" -}}
UPDATE {{.Table}} AS t SET {{.Deleted}} = true
FROM (SELECT DISTINCT id FROM {{.DeletedStage}} WHERE star_table = $1) d
WHERE t.{{index .Key 0}} = d.id AND NOT t.{{.Deleted}}
{{- end}}

{{/* factFull: the fact insert of a full batch (lake.Manifest.Full), which
     holds every row of the source: a version is added unless it is there
     already, or the id's newest version has the same values but where it
     came from (source_xmin, batch_id: a source restored from a dump has
     other transaction ids). A row that came back after its deletion
     differs from the deletion version (is_deleted), so it is added. */}}
{{define "factFull" -}}
{{template "factInsert" .}}
  AND NOT EXISTS (
    SELECT FROM (SELECT {{list "" .Compare}} FROM {{.Table}} f WHERE f.{{.ID}} = s.{{.ID}} ORDER BY f.{{.Surrogate}} DESC LIMIT 1) n
    WHERE ({{list "n." .Compare}}) IS NOT DISTINCT FROM ({{list "s." .Compare}}))
ORDER BY {{list "s." .Key}}
ON CONFLICT ({{list "" .Key}}) DO NOTHING
{{- end}}

{{/* factBack: in a full or corrective batch, after the insert, a staged
     row whose id's newest version is still a deletion came back with the
     very version it had before (a source restored from a physical
     backup keeps transaction ids): it is added after the deletion all
     the same, its source_xmin raised by 2^32 for each version of the id
     with the same stamps and 32-bit xmin, which keeps the version key
     unique (star.SourceXmin). */}}
{{define "factBack" -}}
INSERT INTO {{.Table}} ({{.Surrogate}}, {{list "" .Columns}})
SELECT base.n + row_number() OVER (ORDER BY {{list "s." .Key}}), {{join .Back}}
FROM (
    SELECT DISTINCT ON ({{list "" .Key}}) {{list "" .Columns}}
    FROM {{.Stage}}
    ORDER BY {{list "" .Key}}, tote_ordinal DESC
) s
CROSS JOIN LATERAL (
    SELECT f.{{.Deleted}} FROM {{.Table}} f WHERE f.{{.ID}} = s.{{.ID}} ORDER BY f.{{.Surrogate}} DESC LIMIT 1
) n
CROSS JOIN (SELECT coalesce(max({{.Surrogate}}), 0) AS n FROM {{.Table}}) base
WHERE n.{{.Deleted}}
ORDER BY {{list "s." .Key}}
{{- end}}

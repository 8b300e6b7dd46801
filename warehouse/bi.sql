{{/*
What the warehouse keeps for BI tools besides the star tables' rows: the
facts' foreign keys to their dimensions, and the placeholder rows that keep
those keys true when a fact refers to a dimension row that has not come.
Rendered once per table from the star model (bi.go). Identifiers come
quoted; the only text values are the model's names and the placeholder
text, quoted by the renderer; no value of a row is ever part of the text.

Data: .Fact (the fact table, quoted), .FactName (its name as a literal),
.Source (where the new fact rows are: the staging table, or the fact table
itself), .Batch (the batch they came in: $1, or each row's batch_id), .Refs (one per referencing
column: .Alias, .Column, .Dim, .Key), .Dims (one per dimension referred
to: .Alias, .Table, .Name, .Key, .Columns, .Values, .Refs (the aliases of
its columns)), .Recorded (the .Dims whose placeholders tote.placeholders
lists: all but the calendar's).
*/}}

{{/* placeholders: for every new fact row's reference to a dimension row
     that is not there, one placeholder row in the dimension, recorded in
     tote.placeholders; returns (dimension, the keys made up). One pass over
     the new rows, joined with each dimension (small, hashed). */}}
{{define "placeholders" -}}
WITH missing AS MATERIALIZED (
    SELECT {{.Batch}} AS batch_id
    {{- range .Refs}}, CASE WHEN {{.Alias}}.{{.Key}} IS NULL THEN f.{{.Column}} END AS {{.Alias}}{{end}}
    FROM {{.Source}} f
    {{- range .Refs}}
    LEFT JOIN {{.Dim}} {{.Alias}} ON {{.Alias}}.{{.Key}} = f.{{.Column}}
    {{- end}}
    WHERE {{range $i, $r := .Refs}}{{if $i}}
       OR {{end}}(f.{{$r.Column}} IS NOT NULL AND {{$r.Alias}}.{{$r.Key}} IS NULL){{end}}
)
{{- range .Dims}},
{{.Alias}}_wanted AS (
    SELECT id, min(batch_id) AS batch_id
    FROM ({{range $i, $a := .Refs}}{{if $i}} UNION ALL {{end}}SELECT {{$a}} AS id, batch_id FROM missing{{end}}) u
    WHERE id IS NOT NULL
    GROUP BY id
), {{.Alias}}_made AS (
    INSERT INTO {{.Table}} ({{list "" .Columns}})
    SELECT {{list "" .Values}} FROM {{.Alias}}_wanted w
    ON CONFLICT DO NOTHING
    RETURNING {{.Key}} AS id
)
{{- end}}
{{- if .Recorded}},
recorded AS (
    INSERT INTO tote.placeholders AS p (dim_table, id, fact_table, batch_id)
    {{- range $i, $d := .Recorded}}{{if $i}}
    UNION ALL{{end}}
    SELECT {{$d.Name}}, m.id, {{$.FactName}}, w.batch_id FROM {{$d.Alias}}_made m JOIN {{$d.Alias}}_wanted w USING (id)
    {{- end}}
    ON CONFLICT (dim_table, id) DO UPDATE SET fact_table = EXCLUDED.fact_table, batch_id = EXCLUDED.batch_id,
        made_at = now(), resolved_batch = NULL, resolved_at = NULL
)
{{- end}}
{{range $i, $d := .Dims}}{{if $i}}
UNION ALL
{{end}}SELECT {{$d.Name}}, array(SELECT m.id::text FROM {{$d.Alias}}_made m ORDER BY m.id){{end}}
{{- end}}

{{/* resolve: a dimension's staged rows are the real rows of the
     placeholders they replace. $1 is the batch. */}}
{{define "resolve" -}}
UPDATE tote.placeholders p SET resolved_batch = $1, resolved_at = now()
FROM {{.Stage}} s
WHERE p.dim_table = {{.Name}} AND p.resolved_batch IS NULL AND p.id = s.{{.Key}}
{{- end}}

{{/* foreignKeys: the fact's foreign keys, as uniqueKeys (load.sql) lists
     its unique keys: name, definition, true (a constraint). */}}
{{define "foreignKeys" -}}
SELECT conname, pg_get_constraintdef(oid), true FROM pg_constraint
WHERE conrelid = '{{.Fact}}'::regclass AND contype = 'f'
ORDER BY 1
{{- end}}

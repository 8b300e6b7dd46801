{{/*
The dashboard's summaries: migration 1 of the warehouse group "dashboard"
(see summaries.go), rendered once from the star model. Every object is in
the schema tote_dash, which only this file fills: the group is derived, so
when the model or this file changes, the schema is dropped and made again
(warehouse.Group.Reset) and the summaries rebuilt from the facts.

Data: .Facts, each a fact the dashboard summarises (summaries.go's
factSummary): .Name (the prefix of its objects), .Fact, .Surrogate, .ID,
.Day, .Keys, .Dims, .Ranked, .RankBy, .Measures, .M (the measures' names),
.K (the keys' names), .G (every column a summary groups by: day, keys,
dims, ranked), .Live; .LeadCase (web.LeadBuckets as a CASE over days).

Versions and batches. A fact row is one version of a source row; its
batch's sequence number (the ledger's seq of its batch_id; 0 for a batch
the ledger does not list, such as one of a lake the warehouse followed
before) says when it became visible. An id's versions in the order (seq,
surrogate key) form its chain, as the warehouse orders them (a later batch
wins, whatever its stamp). A version counts from its seq until the seq of
the next version of its chain; <name>_next holds that seq for every
version that has a next one, so the current versions are those not in it,
and the state "as of batch N" is the versions with seq <= N not superseded
by a version with seq <= N. A version that is not live (issue 19: a
deletion) holds its place in the chain and counts nothing.

Summaries. Each version adds itself at its seq and takes itself away at
its next version's. <name>_by_log keeps those signed contributions by seq,
every one of them; <name>_by their sum, the current state. So the state as
of N is the log up to N, or the current state less the log after N: the
same queries, one predicate more. Day grain: one row per day, keys (the
currency, and for payments the type and status) and at most one dimension
(dim, key): 'all' (key 0) and each dimension of .Dims. Those compress. A
ranked dimension (designs) does not (40 k designs by currency by day is the
facts over again), so <name>_<dim> keeps one row per keys and value with
the days it sold on and the running totals of each measure at each: any
period's figures are two lookups (width_bucket) in its arrays.

Keeping up. Refresh (summaries.go) calls tote_dash.refresh() after loads
commit, in one REPEATABLE READ transaction under an advisory lock: each
fact's rows above its watermark (the surrogate key: the load numbers each
batch's new rows after the largest) are new; the rows a statement updated
or deleted since (a corrective batch, a hand edit) left their old image in
<name>_retired (a trigger, the only thing here that runs in another
transaction, and only for UPDATE and DELETE, which a load does not do but
to correct); a TRUNCATE leaves a mark in tote_dash.truncated. The chains
of every id touched are summed again, old against new. A first refresh, or
one that finds more new rows than old, builds afresh.
*/}}

{{define "versionColumns" -}}
f.{{.F.Surrogate}} AS rec, f.{{.F.ID}} AS id, {{.Seq}} AS seq, f.{{.F.Day}} AS day, {{.F.Live}} AS live
{{- range .F.Keys}}, f.{{.Name}} AS {{.Name}}{{end}}
{{- range .F.Dims}}, ({{.Expr}})::integer AS {{.Name}}{{end}}
{{- range .F.Ranked}}, ({{.Expr}})::integer AS {{.Name}}{{end}}
{{- range .F.Measures}}, CASE WHEN {{$.F.Live}} THEN ({{.Expr}})::bigint ELSE 0 END AS {{.Name}}{{end}}
{{- end}}

{{define "dimOf" -}}
CASE {{range .Dims}}WHEN GROUPING({{.Name}}) = 0 THEN '{{.Name}}' {{end}}ELSE 'all' END
{{- end}}
{{define "keyOf" -}}
coalesce({{range .Dims}}{{.Name}}, {{end}}0)
{{- end}}
{{define "sets" -}}
GROUPING SETS (({{.P}}day, {{list "" .F.K}}){{range .F.Dims}}, ({{$.P}}day, {{list "" $.F.K}}, {{.Name}}){{end}})
{{- end}}

{{/* rankedAdd adds contributions c to ranked table .T (the log, with
     .Seq): each touched row's entries taken apart, plus the new ones,
     summed by day, put back together. */}}
{{define "rankedAdd" -}}
    WITH d AS (
        SELECT {{.Seq}}{{list "" .F.K}}, {{.R}} AS key, day, {{sums .F.M}}
        FROM unnest(c) GROUP BY {{.Seq}}{{list "" .F.K}}, {{.R}}, day
    ), k AS (
        SELECT DISTINCT {{.Seq}}{{list "" .F.K}}, key FROM d
    ), old AS (
        SELECT {{list "s." .SK}}, s.key, e.day, {{range $i, $m := .F.M}}{{if $i}}, {{end}}e.{{$m}} - coalesce(lag(e.{{$m}}) OVER w, 0) AS {{$m}}{{end}}
        FROM {{.T}} s JOIN k USING ({{list "" .SK}}, key)
        CROSS JOIN LATERAL unnest(s.days, {{list "s." .F.M}}) WITH ORDINALITY e(day, {{list "" .F.M}}, i)
        WINDOW w AS (PARTITION BY {{list "s." .SK}}, s.key ORDER BY e.i)
    ), m AS (
        SELECT {{list "" .SK}}, key, day, {{sums .F.M}}
        FROM (SELECT * FROM old UNION ALL SELECT * FROM d) x
        GROUP BY {{list "" .SK}}, key, day HAVING {{nonzero .F.M}}
    ), n AS (
        SELECT {{list "" .SK}}, key, array_agg(day ORDER BY day) AS days{{range .F.M}}, array_agg(c_{{.}} ORDER BY day) AS {{.}}{{end}}
        FROM (SELECT m.*{{range .F.M}}, (sum({{.}}) OVER w)::bigint AS c_{{.}}{{end}}
              FROM m WINDOW w AS (PARTITION BY {{list "" .SK}}, key ORDER BY day)) x
        GROUP BY {{list "" .SK}}, key
    ), up AS (
        INSERT INTO {{.T}} AS t SELECT * FROM n
        ON CONFLICT ({{list "" .SK}}, key) DO UPDATE SET days = EXCLUDED.days{{range .F.M}}, {{.}} = EXCLUDED.{{.}}{{end}}
    )
    DELETE FROM {{.T}} t USING k
    WHERE {{same "t" "k" .SK}} AND t.key = k.key
      AND NOT EXISTS (SELECT FROM n WHERE {{same "n" "k" .SK}} AND n.key = k.key);
{{- end}}

{{/* byAdd adds contributions c to day-grain table .T (the log, with
     .Seq), deleting the rows that come to nothing. */}}
{{define "byAdd" -}}
    WITH up AS (
        INSERT INTO {{.T}} AS t ({{.Seq}}dim, day, key, {{list "" .F.K}}, {{list "" .F.M}})
        SELECT {{.Seq}}{{template "dimOf" .F}}, day, {{template "keyOf" .F}}, {{list "" .F.K}}, {{sums .F.M}}
        FROM unnest(c)
        GROUP BY {{template "sets" .}}
        HAVING {{nonzero .F.M}}
        ON CONFLICT ({{.Seq}}dim, day, key, {{list "" .F.K}}) DO UPDATE
        SET {{range $i, $m := .F.M}}{{if $i}}, {{end}}{{$m}} = t.{{$m}} + EXCLUDED.{{$m}}{{end}}
        RETURNING t.*
    )
    SELECT array_agg(u) INTO {{.Z}} FROM up u WHERE {{zero "u" .F.M}};
    IF {{.Z}} IS NOT NULL THEN
        DELETE FROM {{.T}} t USING unnest({{.Z}}) z
        WHERE {{if .Seq}}t.seq = z.seq AND {{end}}t.dim = z.dim AND t.day = z.day AND t.key = z.key AND {{same "t" "z" .F.K}}
          AND {{zero "t" .F.M}};
    END IF;
{{- end}}

DROP SCHEMA IF EXISTS tote_dash CASCADE;
CREATE SCHEMA tote_dash;
COMMENT ON SCHEMA tote_dash IS 'The dashboard''s summaries of the facts (package web), derived: dropped and made again when their definition changes.';

-- The lead time from order to agreed delivery, in buckets (web.LeadBuckets).
CREATE FUNCTION tote_dash.lead_bucket(days integer) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ({{.LeadCase}})::smallint
$$;

-- How far the summaries are: each fact's rows up to surrogate key
-- record_id, and the ledger's newest batch then (seq, the batch the
-- figures reflect).
-- Every table here is UNLOGGED: derived, it needs no WAL, and a crash
-- that empties them all (state included) only makes the next refresh build
-- them afresh.
CREATE UNLOGGED TABLE tote_dash.state (fact text PRIMARY KEY, record_id bigint NOT NULL);
CREATE UNLOGGED TABLE tote_dash.watermark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL,
    refreshed_at timestamptz NOT NULL
);
INSERT INTO tote_dash.watermark (seq, refreshed_at) VALUES (0, now());
-- Facts truncated since the last refresh: built afresh.
CREATE UNLOGGED TABLE tote_dash.truncated (fact text PRIMARY KEY);
CREATE FUNCTION tote_dash.truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tote_dash.truncated VALUES (TG_TABLE_NAME) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
{{range .Facts}}
-- ---------------------------------------------------------------------
-- {{.Fact}}

-- Its versions as the summaries see them; money in cents (exact, and
-- summed much faster than numeric). The view's row type is also the type
-- of the versions and signed contributions the functions pass round.
CREATE VIEW tote_dash.{{.Name}}_versions AS
SELECT {{template "versionColumns" (version . "coalesce(l.seq, 0)")}}
FROM {{.Fact}} f LEFT JOIN tote.load_ledger l ON l.batch_id = f.{{.Batch}};

-- The same for a row that is not in the table any more (a trigger's old rows).
CREATE FUNCTION tote_dash.{{.Name}}_version(f {{.Fact}}) RETURNS tote_dash.{{.Name}}_versions LANGUAGE sql STABLE AS $$
    SELECT {{template "versionColumns" (version . (print "coalesce((SELECT l.seq FROM tote.load_ledger l WHERE l.batch_id = f." .Batch "), 0)"))}}
$$;

CREATE UNLOGGED TABLE tote_dash.{{.Name}}_next (rec integer NOT NULL, next_seq bigint NOT NULL);

CREATE UNLOGGED TABLE tote_dash.{{.Name}}_by (
    dim text COLLATE "C" NOT NULL,
    day date NOT NULL,
    key integer NOT NULL,
{{- range .Keys}}
    {{.Name}} {{.Type}} NOT NULL,
{{- end}}
{{- range $i, $m := .M}}{{if $i}},{{end}}
    {{$m}} bigint NOT NULL
{{- end}}
);
CREATE UNLOGGED TABLE tote_dash.{{.Name}}_by_log (seq bigint NOT NULL, LIKE tote_dash.{{.Name}}_by);
{{- $f := .}}
{{- range .Ranked}}

-- Per keys and {{.Name}}: days holds the days it has figures on, in order;
-- each measure's array the running totals up to and including each day.
-- So its figures over from..to are x[b] - x[a] with b = width_bucket(to,
-- days) and a = width_bucket(from - 1, days) (x[0] is NULL: nothing).
CREATE UNLOGGED TABLE tote_dash.{{$f.Name}}_{{.Name}} (
{{- range $f.Keys}}
    {{.Name}} {{.Type}} NOT NULL,
{{- end}}
    key integer NOT NULL,
    days date[] NOT NULL
{{- range $f.M}},
    {{.}} bigint[] NOT NULL
{{- end}}
);
-- The arrays have no statistics worth their cost (ANALYZE would take each
-- sampled array apart).
ALTER TABLE tote_dash.{{$f.Name}}_{{.Name}} ALTER COLUMN days SET STATISTICS 0{{range $f.M}}, ALTER COLUMN {{.}} SET STATISTICS 0{{end}};
CREATE UNLOGGED TABLE tote_dash.{{$f.Name}}_{{.Name}}_log (seq bigint NOT NULL, LIKE tote_dash.{{$f.Name}}_{{.Name}});
ALTER TABLE tote_dash.{{$f.Name}}_{{.Name}}_log ALTER COLUMN days SET STATISTICS 0{{range $f.M}}, ALTER COLUMN {{.}} SET STATISTICS 0{{end}};
{{- end}}

-- Their keys (summaries.go's bulkKey: a build into empty tables adds them
-- after its inserts).
{{- range .Bulk}}
{{.Add}};
{{- end}}

-- The old images of rows updated or deleted since the last refresh.
CREATE UNLOGGED TABLE tote_dash.{{.Name}}_retired (LIKE tote_dash.{{.Name}}_versions, PRIMARY KEY (rec));

-- {{.Name}}_add adds signed contributions c (rec and id unused) to every summary, current and log.
CREATE FUNCTION tote_dash.{{.Name}}_add(c tote_dash.{{.Name}}_versions[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    -- The rows that came to nothing, to delete.
    z tote_dash.{{.Name}}_by[];
    zl tote_dash.{{.Name}}_by_log[];
BEGIN
{{template "byAdd" (add . (print "tote_dash." .Name "_by_log") "seq, " "")}}
{{template "byAdd" (add . (print "tote_dash." .Name "_by") "" "")}}
{{- range .Ranked}}
{{template "rankedAdd" (add $f (print "tote_dash." $f.Name "_" .Name "_log") "seq, " .Name)}}
{{template "rankedAdd" (add $f (print "tote_dash." $f.Name "_" .Name) "" .Name)}}
{{- end}}
END
$$;

-- {{.Name}}_change replaces the summarized chains before (every version of
-- some ids, as summarized) by after (the same ids' versions now): it adds
-- after's contributions less before's (what did not change cancels out)
-- and brings {{.Name}}_next up to date.
CREATE FUNCTION tote_dash.{{.Name}}_change(before tote_dash.{{.Name}}_versions[], after tote_dash.{{.Name}}_versions[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c tote_dash.{{.Name}}_versions[];
BEGIN
    WITH b AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(before) v
    ), a AS (
        SELECT v.*, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt FROM unnest(after) v
    ), x AS (
        SELECT seq, {{list "" .G}}, {{list "" .M}} FROM a
        UNION ALL
        SELECT nxt, {{list "" .G}}, {{list "-" .M}} FROM a WHERE nxt IS NOT NULL
        UNION ALL
        SELECT seq, {{list "" .G}}, {{list "-" .M}} FROM b
        UNION ALL
        SELECT nxt, {{list "" .G}}, {{list "" .M}} FROM b WHERE nxt IS NOT NULL
    ), del AS (
        DELETE FROM tote_dash.{{.Name}}_next t USING b
        WHERE t.rec = b.rec AND b.nxt IS NOT NULL
          AND NOT EXISTS (SELECT FROM a WHERE a.rec = b.rec AND a.nxt IS NOT NULL)
    ), ins AS (
        INSERT INTO tote_dash.{{.Name}}_next AS t (rec, next_seq)
        SELECT a.rec, a.nxt FROM a
        WHERE a.nxt IS NOT NULL AND NOT EXISTS (SELECT FROM b WHERE b.rec = a.rec AND b.nxt = a.nxt)
        ON CONFLICT (rec) DO UPDATE SET next_seq = EXCLUDED.next_seq
    )
    SELECT array_agg(ROW(NULL, NULL, seq, day, true{{range .Keys}}, {{.Name}}{{end}}{{range .Dims}}, {{.Name}}{{end}}{{range .Ranked}}, {{.Name}}{{end}}, {{list "" .M}})::tote_dash.{{.Name}}_versions)
    INTO c
    FROM (SELECT seq, {{list "" .G}}, {{range $i, $m := .M}}{{if $i}}, {{end}}sum({{$m}})::bigint AS {{$m}}{{end}}
          FROM x GROUP BY seq, {{list "" .G}}
          HAVING {{nonzero .M}}) s;
    IF c IS NOT NULL THEN
        PERFORM tote_dash.{{.Name}}_add(c);
    END IF;
END
$$;

-- {{.Name}}_rebuild makes every summary of the fact afresh: one pass over
-- the versions for the log, whose sums are the current state; one sort for
-- each ranked dimension. Readers see the old figures until it commits; but
-- a build into empty summaries (the first) drops their keys and adds them
-- after its inserts, much faster than growing them row by row, and
-- readers wait for it. The indexes on the fact that the dashboard's reads
-- of the facts use are not made here: CREATE INDEX, even IF NOT EXISTS,
-- holds a SHARE lock on the fact until this transaction commits, which a
-- load's INSERT waits for. Refresh makes them before, concurrently
-- (summaries.go's factIndex).
CREATE FUNCTION tote_dash.{{.Name}}_rebuild() RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB' SET maintenance_work_mem = '256MB' SET jit = off SET enable_hashagg = on AS $$
DECLARE
    n bigint;
    ids bigint;
    first bigint;
    last bigint;
    top bigint;
    bulk boolean;
BEGIN
    bulk := NOT EXISTS (SELECT FROM tote_dash.{{.Name}}_by) AND NOT EXISTS (SELECT FROM tote_dash.{{.Name}}_next);
    IF bulk THEN
{{- range .Bulk}}
        {{.Drop}};
{{- end}}
    END IF;
    DELETE FROM tote_dash.{{.Name}}_by;
    DELETE FROM tote_dash.{{.Name}}_by_log;
    DELETE FROM tote_dash.{{.Name}}_next;
    DELETE FROM tote_dash.{{.Name}}_retired;
{{- range .Ranked}}
    DELETE FROM tote_dash.{{$f.Name}}_{{.Name}};
    DELETE FROM tote_dash.{{$f.Name}}_{{.Name}}_log;
{{- end}}
    DELETE FROM tote_dash.truncated WHERE fact = '{{.Fact}}';

    SELECT count(*), count(DISTINCT id), min(seq), max(seq), max(rec)
    INTO n, ids, first, last, top FROM tote_dash.{{.Name}}_versions;

    IF ids < n THEN
        -- Some ids have several versions: when each was superseded.
        INSERT INTO tote_dash.{{.Name}}_next (rec, next_seq)
        SELECT rec, nxt FROM (
            SELECT v.rec, lead(v.seq) OVER (PARTITION BY v.id ORDER BY v.seq, v.rec) AS nxt
            FROM tote_dash.{{.Name}}_versions v
            WHERE v.id IN (SELECT {{.ID}} FROM {{.Fact}} GROUP BY 1 HAVING count(*) > 1)
        ) x WHERE nxt IS NOT NULL;
    END IF;
    ANALYZE tote_dash.{{.Name}}_next;

    IF first = last THEN
        -- Every version from one batch: the current state, in one pass,
        -- is the log at that batch.
        INSERT INTO tote_dash.{{.Name}}_by (dim, day, key, {{list "" .K}}, {{list "" .M}})
        SELECT {{template "dimOf" .}}, day, {{template "keyOf" .}}, {{list "" .K}}, {{sums .M}}
        FROM tote_dash.{{.Name}}_versions v
        WHERE ids = n OR NOT EXISTS (SELECT FROM tote_dash.{{.Name}}_next x WHERE x.rec = v.rec)
        GROUP BY {{template "sets" (add . "" "" "")}}
        HAVING {{nonzero .M}};
        INSERT INTO tote_dash.{{.Name}}_by_log SELECT first, * FROM tote_dash.{{.Name}}_by;
    ELSIF first IS NOT NULL THEN
        -- Versions from several batches: every contribution by seq, then
        -- their sums.
        INSERT INTO tote_dash.{{.Name}}_by_log (seq, dim, day, key, {{list "" .K}}, {{list "" .M}})
        SELECT seq, {{template "dimOf" .}}, day, {{template "keyOf" .}}, {{list "" .K}}, {{sums .M}}
        FROM (SELECT v.seq, {{list "v." .G}}, {{list "v." .M}} FROM tote_dash.{{.Name}}_versions v
              UNION ALL
              SELECT x.next_seq, {{list "v." .G}}, {{list "-v." .M}}
              FROM tote_dash.{{.Name}}_versions v JOIN tote_dash.{{.Name}}_next x ON x.rec = v.rec) c
        GROUP BY {{template "sets" (add . "" "seq, " "")}}
        HAVING {{nonzero .M}};
        INSERT INTO tote_dash.{{.Name}}_by (dim, day, key, {{list "" .K}}, {{list "" .M}})
        SELECT dim, day, key, {{list "" .K}}, {{sums .M}}
        FROM tote_dash.{{.Name}}_by_log GROUP BY dim, day, key, {{list "" .K}}
        HAVING {{nonzero .M}};
    END IF;
{{- range .Ranked}}

    -- {{.Name}}: one sort, by the ranked value first (it has the most
    -- values, so the sort compares least), makes the running totals and
    -- the arrays, of the live current versions (a deletion counts nothing,
    -- and an entry for it would keep a value whose orders are all deleted,
    -- at zero, among the rankings). A day with several versions has an entry for each, all
    -- with the day's running totals (the window's peers): width_bucket
    -- still finds the day's totals, and a later change makes them one
    -- entry. The arrays are window aggregates over each whole partition,
    -- in the window's order (an ordered aggregate would sort each group
    -- again), kept once.
    INSERT INTO tote_dash.{{$f.Name}}_{{.Name}} ({{list "" $f.K}}, key, days, {{list "" $f.M}})
    SELECT {{list "" $f.K}}, key, days, {{list "" $f.M}} FROM (
        SELECT {{list "" $f.K}}, key, row_number() OVER p AS i, array_agg(day) OVER p AS days
               {{- range $f.M}}, array_agg(c_{{.}}) OVER p AS {{.}}{{end}}
        FROM (SELECT {{.Name}} AS key, {{list "" $f.K}}, day{{range $f.M}}, (sum({{.}}) OVER w)::bigint AS c_{{.}}{{end}}
              FROM tote_dash.{{$f.Name}}_versions v
              WHERE (ids = n OR NOT EXISTS (SELECT FROM tote_dash.{{$f.Name}}_next x WHERE x.rec = v.rec)) AND v.live
              WINDOW w AS (PARTITION BY {{.Name}}, {{list "" $f.K}} ORDER BY day)) r
        WINDOW p AS (PARTITION BY key, {{list "" $f.K}} ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ) a WHERE i = 1;

    IF first = last THEN
        INSERT INTO tote_dash.{{$f.Name}}_{{.Name}}_log SELECT first, * FROM tote_dash.{{$f.Name}}_{{.Name}};
    ELSIF first IS NOT NULL THEN
        SET LOCAL enable_hashagg = off;
        INSERT INTO tote_dash.{{$f.Name}}_{{.Name}}_log (seq, {{list "" $f.K}}, key, days, {{list "" $f.M}})
        SELECT seq, {{list "" $f.K}}, key, array_agg(day ORDER BY day){{range $f.M}}, array_agg(c_{{.}} ORDER BY day){{end}}
        FROM (SELECT seq, key, {{list "" $f.K}}, day{{range $f.M}}, (sum({{.}}) OVER w)::bigint AS c_{{.}}{{end}}
              FROM (SELECT seq, key, {{list "" $f.K}}, day, {{sums $f.M}}
                    FROM (SELECT v.seq, v.{{.Name}} AS key, {{list "v." $f.K}}, v.day, {{list "v." $f.M}}
                          FROM tote_dash.{{$f.Name}}_versions v
                          UNION ALL
                          SELECT x.next_seq, v.{{.Name}}, {{list "v." $f.K}}, v.day, {{list "-v." $f.M}}
                          FROM tote_dash.{{$f.Name}}_versions v JOIN tote_dash.{{$f.Name}}_next x ON x.rec = v.rec) c
                    GROUP BY 1, 2, {{list "" $f.K}}, day
                    HAVING {{nonzero $f.M}}) d
              WINDOW w AS (PARTITION BY seq, key, {{list "" $f.K}} ORDER BY day)) r
        GROUP BY seq, key, {{list "" $f.K}};
        SET LOCAL enable_hashagg = on;
    END IF;
{{- end}}
    IF bulk THEN
{{- range .Bulk}}
        {{.Add}};
{{- end}}
    END IF;
    ANALYZE tote_dash.{{.Name}}_by;
{{- range .Ranked}}
    ANALYZE tote_dash.{{$f.Name}}_{{.Name}};
    -- Its log's seq, for reading the log after a batch through its key
    -- (the rankings as of a batch): unanalyzed, a third of it is assumed.
    ANALYZE tote_dash.{{$f.Name}}_{{.Name}}_log;
{{- end}}

    INSERT INTO tote_dash.state (fact, record_id) VALUES ('{{.Fact}}', coalesce(top, 0))
    ON CONFLICT (fact) DO UPDATE SET record_id = EXCLUDED.record_id;
END
$$;

-- {{.Name}}_refresh summarizes what changed in the fact since it last ran:
-- the rows above the watermark, and the rows updated or deleted since
-- (their old images in {{.Name}}_retired).
CREATE FUNCTION tote_dash.{{.Name}}_refresh() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    wm bigint;
    top bigint;
    r tote_dash.{{.Name}}_versions[];
    recs integer[];
    ids integer[];
    b tote_dash.{{.Name}}_versions[];
    a tote_dash.{{.Name}}_versions[];
BEGIN
    SELECT record_id INTO wm FROM tote_dash.state WHERE fact = '{{.Fact}}';
    SELECT coalesce(max({{.Surrogate}}), 0) INTO top FROM {{.Fact}};
    -- Nothing summarized yet, truncated since, or more new rows than old:
    -- afresh is faster.
    IF wm IS NULL OR wm = 0 OR top - wm > wm OR EXISTS (SELECT FROM tote_dash.truncated WHERE fact = '{{.Fact}}') THEN
        PERFORM tote_dash.{{.Name}}_rebuild();
        RETURN;
    END IF;
    r := ARRAY(SELECT v FROM tote_dash.{{.Name}}_retired v);
    IF top = wm AND cardinality(r) = 0 THEN
        RETURN;
    END IF;
    recs := ARRAY(SELECT (v).rec FROM unnest(r) v);
    -- The ids first, then their versions id by id (through the version
    -- key): a plan for both at once would trust estimates of how many rows
    -- are new and how many versions an id has, which are poor before the
    -- table is analyzed.
    ids := ARRAY(SELECT (v).id FROM unnest(r) v
                 UNION SELECT {{.ID}} FROM {{.Fact}} WHERE {{.Surrogate}} = ANY(recs)
                 UNION SELECT {{.ID}} FROM {{.Fact}} WHERE {{.Surrogate}} > wm);
    SELECT array_agg(x.v) FILTER (WHERE (x.v).rec <= wm AND (x.v).rec <> ALL(recs)), array_agg(x.v) INTO b, a
    FROM unnest(ids) i(id), LATERAL (SELECT v FROM tote_dash.{{.Name}}_versions v WHERE v.id = i.id OFFSET 0) x;
    -- Before: the versions summarized, the changed ones as they were.
    b := coalesce(b, '{}') || ARRAY(SELECT v FROM unnest(r) v WHERE (v).rec <= wm);
    PERFORM tote_dash.{{.Name}}_change(b, coalesce(a, '{}'));
    DELETE FROM tote_dash.{{.Name}}_retired WHERE rec = ANY(recs);
    UPDATE tote_dash.state SET record_id = top WHERE fact = '{{.Fact}}';
END
$$;

-- What a statement changed in rows already loaded, for the next refresh:
-- each row's image before its first change since then.
CREATE FUNCTION tote_dash.{{.Name}}_retire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tote_dash.{{.Name}}_retired
    SELECT v.* FROM old_rows o, LATERAL tote_dash.{{.Name}}_version(o) v
    ON CONFLICT (rec) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER tote_dash_updated AFTER UPDATE ON {{.Fact}} REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote_dash.{{.Name}}_retire();
CREATE TRIGGER tote_dash_deleted AFTER DELETE ON {{.Fact}} REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tote_dash.{{.Name}}_retire();
CREATE TRIGGER tote_dash_truncated AFTER TRUNCATE ON {{.Fact}}
    FOR EACH STATEMENT EXECUTE FUNCTION tote_dash.truncated();
{{end}}
-- ---------------------------------------------------------------------

-- refresh brings every summary up to the facts and records the ledger's
-- newest batch as the one they reflect. Refresh (summaries.go) runs it in
-- a REPEATABLE READ transaction, so that the facts and the ledger are read
-- in one state. Without JIT compilation: the plans of a few hundred rows
-- that the planner overestimates would compile for longer than they run.
CREATE FUNCTION tote_dash.refresh() RETURNS bigint LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    newest bigint;
BEGIN
{{- range .Facts}}
    PERFORM tote_dash.{{.Name}}_refresh();
{{- end}}
    SELECT coalesce(max(seq), 0) INTO newest FROM tote.load_ledger;
    INSERT INTO tote_dash.watermark (seq, refreshed_at) VALUES (newest, now())
    ON CONFLICT (one) DO UPDATE SET seq = EXCLUDED.seq, refreshed_at = EXCLUDED.refreshed_at;
    RETURN newest;
END
$$;

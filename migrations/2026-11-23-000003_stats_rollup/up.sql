-- Rollups for GET /v1/stats (docs/api.md, Stats; docs/performance.md, How stats get there).
-- Every change to runs, steps and failures adds, in the same transaction, a delta row per
-- (grain, bucket, agent_id, agent_version, environment) to stats_rollup: `grain` 'h' (hour),
-- 'd' (day) or 'm' (month) of the run's started_at in UTC,
-- and `c` a map of counters that sum across rows:
--   runs:<status>         runs                      steps, latency_sum   steps, their latency_ms
--   type:<step_type>      steps                     fail:<type>/<code>   failure records
--   model_steps:<model>, model_in:<model>, model_out:<model>   steps naming a model, their tokens
--   lat:<i>, dur:<i>      histograms of step latency and run duration (ended runs), bucket i
-- Histogram buckets are logarithmic: bucket i holds (γ^(i-1), γ^i] with γ = 1.04/0.96 and stands
-- for 0.96·γ^i, within 4 % of every value in it (bucket -32768 holds exact zeros); percentiles
-- interpolated between two such values are within 4 % of the exact percentile_cont. Counts and
-- sums are exact. Deltas are inserted, never updated, so concurrent writers never wait on each
-- other here; the ingest role merges them (agenttracer_rollup_compact) in the background.

CREATE TABLE stats_rollup (
    grain         char(1)      NOT NULL CHECK (grain IN ('h', 'd', 'm')),
    bucket        timestamptz  NOT NULL,
    agent_id      varchar(255) NOT NULL,
    agent_version varchar(100) NOT NULL,
    environment   varchar(50)  NOT NULL,
    compacted     boolean      NOT NULL DEFAULT false,
    c             jsonb        NOT NULL
);

CREATE INDEX ix_stats_rollup_grain_bucket ON stats_rollup (grain, bucket);
CREATE INDEX ix_stats_rollup_deltas ON stats_rollup (grain, bucket, agent_id, agent_version, environment)
    WHERE NOT compacted;

-- ln(γ), γ = 1.04 / 0.96. NULL (a run not ended) has no bucket.
CREATE FUNCTION agenttracer_bucket(x float8) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x > 0 THEN ceil(ln(x) / 0.0800427076735364)::integer WHEN x = 0 THEN -32768 END
$$;

CREATE FUNCTION agenttracer_bucket_value(i integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN i = -32768 THEN 0 ELSE 0.96 * exp(i * 0.0800427076735364) END
$$;

-- percentile_cont of a histogram {bucket: count} at each of qs (NULL when it is empty): the
-- values at ranks floor(q·(n-1)) and ceil(q·(n-1)), interpolated.
CREATE FUNCTION agenttracer_quantiles(hist jsonb, qs float8[]) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH b AS (
        SELECT key::integer AS i, value::bigint AS n FROM jsonb_each_text(hist) WHERE value::bigint > 0
    ), c AS (
        SELECT i, sum(n) OVER (ORDER BY i) AS upto FROM b
    ), total AS (
        SELECT sum(n)::float8 AS n FROM b HAVING sum(n) > 0
    )
    SELECT array_agg(lo.v + (hi.v - lo.v) * (q.rank - floor(q.rank)) ORDER BY q.ord)
    FROM total,
         LATERAL (SELECT qq * (total.n - 1) AS rank, ord FROM unnest(qs) WITH ORDINALITY AS u (qq, ord)) q,
         LATERAL (SELECT agenttracer_bucket_value(i) AS v FROM c WHERE upto > floor(q.rank) ORDER BY i LIMIT 1) lo,
         LATERAL (SELECT agenttracer_bucket_value(i) AS v FROM c WHERE upto > ceil(q.rank) ORDER BY i LIMIT 1) hi
$$;

-- What one row adds to the counters.
CREATE FUNCTION agenttracer_run_entries(status text, started_at timestamptz, ended_at timestamptz)
RETURNS TABLE (k text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.k, e.n FROM (VALUES
        ('runs:' || status, 1::bigint),
        ('dur:' || agenttracer_bucket(extract(epoch FROM ended_at - started_at)::float8 * 1000), 1)
    ) e (k, n) WHERE e.k IS NOT NULL
$$;

CREATE FUNCTION agenttracer_step_entries(step_type text, latency_ms integer, model text,
                                         input_tokens integer, output_tokens integer)
RETURNS TABLE (k text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.k, e.n FROM (VALUES
        ('steps', 1::bigint),
        ('latency_sum', latency_ms::bigint),
        ('type:' || step_type, 1),
        ('lat:' || agenttracer_bucket(latency_ms), 1),
        ('model_steps:' || model, 1),
        ('model_in:' || model, coalesce(input_tokens, 0)),
        ('model_out:' || model, coalesce(output_tokens, 0))
    ) e (k, n) WHERE e.k IS NOT NULL
$$;

CREATE FUNCTION agenttracer_failure_entries(failure_type text, failure_code text)
RETURNS TABLE (k text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'fail:' || failure_type || '/' || failure_code, 1::bigint
$$;

-- SQL text of the entries (started_at, agent_id, agent_version, environment, k, n) of a relation
-- of runs, or of steps or failures joined to a relation of their runs, times sign.
CREATE FUNCTION agenttracer_run_entries_sql(runs text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * %s AS n '
                  'FROM %s r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e', sign, runs)
$$;

CREATE FUNCTION agenttracer_step_entries_sql(steps text, runs text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * %s AS n '
                  'FROM %s s JOIN %s r ON r.run_id = s.run_id, '
                  'agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e',
                  sign, steps, runs)
$$;

CREATE FUNCTION agenttracer_failure_entries_sql(failures text, runs text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * %s AS n '
                  'FROM %s f JOIN %s r ON r.run_id = f.run_id, '
                  'agenttracer_failure_entries(f.failure_type, f.failure_code) e',
                  sign, failures, runs)
$$;

-- The statement that adds entries to stats_rollup, one delta row per grain and key: summed
-- per hour first, and the hours' sums per day and month.
CREATE FUNCTION agenttracer_rollup_sql(entries text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'WITH hourly AS (SELECT date_trunc(''hour'', e.started_at, ''UTC'') AS hour, e.agent_id, '
        'e.agent_version, e.environment, e.k, sum(e.n) AS n FROM (' || entries || ') e GROUP BY 1, 2, 3, 4, 5) '
        'INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c) '
        'SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n) FROM ('
        'SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n '
        'FROM hourly h CROSS JOIN LATERAL (VALUES (''h'', h.hour), (''d'', date_trunc(''day'', h.hour, ''UTC'')), '
        '(''m'', date_trunc(''month'', h.hour, ''UTC''))) g (grain, bucket) '
        'GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0) x GROUP BY 1, 2, 3, 4, 5'
$$;

CREATE FUNCTION agenttracer_rollup_rebuild() RETURNS void
LANGUAGE plpgsql SET enable_sort = off AS $$
BEGIN
    DELETE FROM stats_rollup;
    EXECUTE agenttracer_rollup_sql(
        agenttracer_run_entries_sql('agent_runs', 1) || ' UNION ALL ' ||
        agenttracer_step_entries_sql('agent_steps', 'agent_runs', 1) || ' UNION ALL ' ||
        agenttracer_failure_entries_sql('agent_failures', 'agent_runs', 1));
END
$$;

CREATE FUNCTION agenttracer_rollup_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agenttracer_rollup_rebuild();
    RETURN NULL;
END
$$;

-- The trigger functions, generated from the builders above as static SQL (plpgsql plans each
-- statement once per session; EXECUTE would plan it on every write). Without sorts, their
-- aggregates hash (sorting text keys under a collation costs several times more).
-- (2026-12-02-000007_rollup_triggers_plain replaces them with the same functions written out,
-- and the rebuild with the statement it builds.)
CREATE FUNCTION agenttracer_trigger_function(name text, body text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql SET enable_sort = off AS %L', name,
                   'BEGIN ' || body || ' RETURN NULL; END');
END
$$;

DO $$
DECLARE
    -- Updated rows whose counted columns changed (renumbering steps, or a run's last_span_at,
    -- changes nothing counted), as old and new relations.
    runs_changed constant text := 'FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id WHERE '
        '(o.status, o.started_at, o.ended_at, o.agent_id, o.agent_version, o.environment) IS DISTINCT FROM '
        '(n.status, n.started_at, n.ended_at, n.agent_id, n.agent_version, n.environment)';
    -- Runs whose update moved them to another key (OTLP runs learn their start and agent as
    -- spans arrive): their steps' and failures' entries move with them.
    moved constant text := 'FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id WHERE '
        '(o.agent_id, o.agent_version, o.environment, date_trunc(''hour'', o.started_at, ''UTC'')) IS DISTINCT FROM '
        '(n.agent_id, n.agent_version, n.environment, date_trunc(''hour'', n.started_at, ''UTC''))';
    -- A deleted run's steps and failures go by ON DELETE CASCADE after the run is gone, when
    -- their key can no longer be read: a row trigger takes them out while it still can.
    dying constant text := '(SELECT * FROM agent_runs WHERE run_id = OLD.run_id)';
    children record;
    changed text;
BEGIN
    PERFORM agenttracer_trigger_function('agenttracer_runs_inserted',
        agenttracer_rollup_sql(agenttracer_run_entries_sql('new_rows', 1)) || ';');
    PERFORM agenttracer_trigger_function('agenttracer_runs_deleted',
        agenttracer_rollup_sql(agenttracer_run_entries_sql('old_rows', -1)) || ';');
    PERFORM agenttracer_trigger_function('agenttracer_runs_updated',
        'IF EXISTS (SELECT 1 ' || runs_changed || ') THEN ' ||
        agenttracer_rollup_sql(agenttracer_run_entries_sql('(SELECT o.* ' || runs_changed || ')', -1) || ' UNION ALL ' ||
                               agenttracer_run_entries_sql('(SELECT n.* ' || runs_changed || ')', 1)) || '; ' ||
        'IF EXISTS (SELECT 1 ' || moved || ') THEN ' ||
        agenttracer_rollup_sql(
            agenttracer_step_entries_sql('agent_steps', '(SELECT o.* ' || moved || ')', -1) || ' UNION ALL ' ||
            agenttracer_step_entries_sql('agent_steps', '(SELECT n.* ' || moved || ')', 1) || ' UNION ALL ' ||
            agenttracer_failure_entries_sql('agent_failures', '(SELECT o.* ' || moved || ')', -1) || ' UNION ALL ' ||
            agenttracer_failure_entries_sql('agent_failures', '(SELECT n.* ' || moved || ')', 1)) ||
        '; END IF; END IF;');
    EXECUTE format('CREATE FUNCTION agenttracer_run_dying() RETURNS trigger LANGUAGE plpgsql SET enable_sort = off AS %L',
        'BEGIN ' || agenttracer_rollup_sql(
            agenttracer_step_entries_sql('agent_steps', dying, -1) || ' UNION ALL ' ||
            agenttracer_failure_entries_sql('agent_failures', dying, -1)) || '; RETURN OLD; END');
    -- Steps and failures: entries under their run's current key (none once the run is gone).
    FOR children IN SELECT * FROM (VALUES
        ('steps', 'agenttracer_step_entries_sql', 'step_id',
         'run_id, step_type, latency_ms, model, input_tokens, output_tokens'),
        ('failures', 'agenttracer_failure_entries_sql', 'failure_id', 'run_id, failure_type, failure_code')
    ) v (t, builder, id, counted)
    LOOP
        EXECUTE format('SELECT agenttracer_trigger_function(%L, agenttracer_rollup_sql(%I(%L, %L, 1)) || '';'')',
                       'agenttracer_' || children.t || '_inserted', children.builder, 'new_rows', 'agent_runs');
        EXECUTE format('SELECT agenttracer_trigger_function(%L, agenttracer_rollup_sql(%I(%L, %L, -1)) || '';'')',
                       'agenttracer_' || children.t || '_deleted', children.builder, 'old_rows', 'agent_runs');
        changed := format('FROM old_rows o JOIN new_rows n ON n.%1$s = o.%1$s WHERE (%2$s) IS DISTINCT FROM (%3$s)',
                          children.id, regexp_replace(children.counted, '(\w+)', 'o.\1', 'g'),
                          regexp_replace(children.counted, '(\w+)', 'n.\1', 'g'));
        EXECUTE format('SELECT agenttracer_trigger_function(%L, %L || agenttracer_rollup_sql(%I(%L, %L, -1) || '' UNION ALL '' || %I(%L, %L, 1)) || %L)',
                       'agenttracer_' || children.t || '_updated', 'IF EXISTS (SELECT 1 ' || changed || ') THEN ',
                       children.builder, '(SELECT o.* ' || changed || ')', 'agent_runs',
                       children.builder, '(SELECT n.* ' || changed || ')', 'agent_runs', '; END IF;');
    END LOOP;
END
$$;

DROP FUNCTION agenttracer_trigger_function(text, text);

CREATE TRIGGER agent_runs_rollup_insert AFTER INSERT ON agent_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_runs_inserted();
CREATE TRIGGER agent_runs_rollup_update AFTER UPDATE ON agent_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_runs_updated();
CREATE TRIGGER agent_runs_rollup_delete AFTER DELETE ON agent_runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_runs_deleted();
CREATE TRIGGER agent_runs_rollup_children BEFORE DELETE ON agent_runs
    FOR EACH ROW EXECUTE FUNCTION agenttracer_run_dying();

CREATE TRIGGER agent_steps_rollup_insert AFTER INSERT ON agent_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_steps_inserted();
CREATE TRIGGER agent_steps_rollup_update AFTER UPDATE ON agent_steps
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_steps_updated();
CREATE TRIGGER agent_steps_rollup_delete AFTER DELETE ON agent_steps
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_steps_deleted();

CREATE TRIGGER agent_failures_rollup_insert AFTER INSERT ON agent_failures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_failures_inserted();
CREATE TRIGGER agent_failures_rollup_update AFTER UPDATE ON agent_failures
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_failures_updated();
CREATE TRIGGER agent_failures_rollup_delete AFTER DELETE ON agent_failures
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_failures_deleted();

CREATE TRIGGER agent_runs_rollup_truncate AFTER TRUNCATE ON agent_runs
    FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_rollup_truncated();
CREATE TRIGGER agent_steps_rollup_truncate AFTER TRUNCATE ON agent_steps
    FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_rollup_truncated();
CREATE TRIGGER agent_failures_rollup_truncate AFTER TRUNCATE ON agent_failures
    FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_rollup_truncated();

-- Merges the delta rows of up to max_groups keys into one compacted row each; one compactor at
-- a time. Returns how many keys it merged.
CREATE FUNCTION agenttracer_rollup_compact(max_groups integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    merged integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('agenttracer_rollup_compact')) THEN
        RETURN 0;
    END IF;
    WITH g AS (
        SELECT DISTINCT grain, bucket, agent_id, agent_version, environment
        FROM stats_rollup WHERE NOT compacted LIMIT max_groups
    ), d AS (
        DELETE FROM stats_rollup s USING g
        WHERE (s.grain, s.bucket, s.agent_id, s.agent_version, s.environment)
            = (g.grain, g.bucket, g.agent_id, g.agent_version, g.environment)
        RETURNING s.*
    ), e AS (
        SELECT d.grain, d.bucket, d.agent_id, d.agent_version, d.environment, x.key, sum(x.value::bigint) AS n
        FROM d, jsonb_each_text(d.c) x
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(x.value::bigint) <> 0
    ), ins AS (
        INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, compacted, c)
        SELECT grain, bucket, agent_id, agent_version, environment, true, jsonb_object_agg(key, n)
        FROM e GROUP BY 1, 2, 3, 4, 5
    )
    SELECT count(*) INTO merged FROM g;
    RETURN merged;
END
$$;

SELECT agenttracer_rollup_rebuild();

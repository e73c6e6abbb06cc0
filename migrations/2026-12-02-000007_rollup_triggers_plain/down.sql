-- The trigger functions stay as up.sql wrote them: the same statements as the generated ones.
-- The string builders come back (2026-11-23-000003's down drops them), as does the rebuild
-- that EXECUTEs what they build.
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

CREATE OR REPLACE FUNCTION agenttracer_rollup_rebuild() RETURNS void
LANGUAGE plpgsql SET enable_sort = off AS $$
BEGIN
    DELETE FROM stats_rollup;
    EXECUTE agenttracer_rollup_sql(
        agenttracer_run_entries_sql('agent_runs', 1) || ' UNION ALL ' ||
        agenttracer_step_entries_sql('agent_steps', 'agent_runs', 1) || ' UNION ALL ' ||
        agenttracer_failure_entries_sql('agent_failures', 'agent_runs', 1));
END
$$;

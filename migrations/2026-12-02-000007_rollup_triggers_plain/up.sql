-- The rollup trigger functions, written out. 2026-11-23-000003 generated them in a DO block
-- from string builders (format, regexp_replace), so no file held their text; this migration
-- replaces each with the very statements it had (the same tokens, laid out to read; checked
-- against pg_get_functiondef of the generated ones) and the same settings: enable_sort = off
-- (000003: the aggregates hash), enable_seqscan = off (000004: the joins to agent_runs and
-- agent_steps use their indexes), enable_nestloop = off on the update functions (000005: the
-- transition tables are hash joined), and jit = off on every one (000006: never JIT-compiled).
-- The rebuild is written out too, and the string builders
-- it EXECUTEd go.
--
-- Every function adds one delta row per grain and key to stats_rollup, in the same shape:
--
--     WITH hourly AS (the entries (started_at, agent, k, n) of the changed rows, summed per UTC hour)
--     INSERT INTO stats_rollup … the hours' sums per grain: 'h' the hour, 'd' its day, 'm' its month
--
-- The entries come from agenttracer_run_entries, agenttracer_step_entries and
-- agenttracer_failure_entries (000003), which name the counters (src/rollup/counter.rs); rows
-- are counted under their run's key (its started_at, agent_id, agent_version, environment),
-- added as `e.n * 1` and taken out as `e.n * -1`.
--
-- The write paths skip the insert triggers for the rows they count themselves
-- (agenttracer.rollup_by_writer, 000004; src/rollup/writer.rs).

-- Runs inserted (by psql, a restore: the write paths count their own).
CREATE OR REPLACE FUNCTION agenttracer_runs_inserted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM new_rows r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Runs deleted: their own entries out (their steps' and failures' go in agenttracer_run_dying).
CREATE OR REPLACE FUNCTION agenttracer_runs_deleted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
            FROM old_rows r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Runs updated. First, the runs whose counted columns changed (a run's last_span_at changes
-- nothing counted): their old entries out, their new ones in. Then, the runs moved to another
-- key (OTLP runs learn their start and agent as spans arrive): their steps' and failures'
-- entries move with them.
CREATE OR REPLACE FUNCTION agenttracer_runs_updated() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
SET enable_nestloop = off
AS $$BEGIN
    IF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
        WHERE (o.status, o.started_at, o.ended_at, o.agent_id, o.agent_version, o.environment)
              IS DISTINCT FROM (n.status, n.started_at, n.ended_at, n.agent_id, n.agent_version, n.environment)
    ) THEN
        WITH hourly AS (
            SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
            FROM (
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                FROM (
                    SELECT o.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                    WHERE (o.status, o.started_at, o.ended_at, o.agent_id, o.agent_version, o.environment)
                          IS DISTINCT FROM (n.status, n.started_at, n.ended_at, n.agent_id, n.agent_version, n.environment)
                ) r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e
                UNION ALL
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                FROM (
                    SELECT n.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                    WHERE (o.status, o.started_at, o.ended_at, o.agent_id, o.agent_version, o.environment)
                          IS DISTINCT FROM (n.status, n.started_at, n.ended_at, n.agent_id, n.agent_version, n.environment)
                ) r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e
            ) e
            GROUP BY 1, 2, 3, 4, 5
        )
        INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
        SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
        FROM (
            SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
            FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
            GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
        ) x
        GROUP BY 1, 2, 3, 4, 5;
        IF EXISTS (
            SELECT 1 FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
            WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                  IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
        ) THEN
            WITH hourly AS (
                SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
                FROM (
                    SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                    FROM agent_steps s JOIN (
                        SELECT o.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                        WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                              IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
                    ) r ON r.run_id = s.run_id,
                    agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
                    UNION ALL
                    SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                    FROM agent_steps s JOIN (
                        SELECT n.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                        WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                              IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
                    ) r ON r.run_id = s.run_id,
                    agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
                    UNION ALL
                    SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                    FROM agent_failures f JOIN (
                        SELECT o.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                        WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                              IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
                    ) r ON r.run_id = f.run_id,
                    agenttracer_failure_entries(f.failure_type, f.failure_code) e
                    UNION ALL
                    SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                    FROM agent_failures f JOIN (
                        SELECT n.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                        WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                              IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
                    ) r ON r.run_id = f.run_id,
                    agenttracer_failure_entries(f.failure_type, f.failure_code) e
                ) e
                GROUP BY 1, 2, 3, 4, 5
            )
            INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
            SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
            FROM (
                SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
                FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
                GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
            ) x
            GROUP BY 1, 2, 3, 4, 5;
        END IF;
    END IF;
    RETURN NULL;
END$$;

-- A run about to be deleted (a row trigger, BEFORE DELETE): its steps and failures go by
-- ON DELETE CASCADE after the run is gone, when their key can no longer be read, so their
-- entries are taken out here, while it still can.
CREATE OR REPLACE FUNCTION agenttracer_run_dying() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
            FROM agent_steps s JOIN (SELECT * FROM agent_runs WHERE run_id = OLD.run_id) r ON r.run_id = s.run_id,
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
            UNION ALL
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
            FROM agent_failures f JOIN (SELECT * FROM agent_runs WHERE run_id = OLD.run_id) r ON r.run_id = f.run_id,
            agenttracer_failure_entries(f.failure_type, f.failure_code) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN OLD;
END$$;

-- Steps inserted (by psql, a restore: the write paths count their own), under their run's key.
CREATE OR REPLACE FUNCTION agenttracer_steps_inserted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM new_rows s JOIN agent_runs r ON r.run_id = s.run_id,
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Steps deleted, under their run's key (none once the run is gone: agenttracer_run_dying took
-- them out).
CREATE OR REPLACE FUNCTION agenttracer_steps_deleted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
            FROM old_rows s JOIN agent_runs r ON r.run_id = s.run_id,
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Steps updated: those whose counted columns changed (renumbering seq changes nothing counted)
-- have their old entries taken out and their new ones added.
CREATE OR REPLACE FUNCTION agenttracer_steps_updated() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
SET enable_nestloop = off
AS $$BEGIN
    IF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
        WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens)
              IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens)
    ) THEN
        WITH hourly AS (
            SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
            FROM (
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                FROM (
                    SELECT o.* FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
                    WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens)
                          IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens)
                ) s JOIN agent_runs r ON r.run_id = s.run_id,
                agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
                UNION ALL
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                FROM (
                    SELECT n.* FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
                    WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens)
                          IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens)
                ) s JOIN agent_runs r ON r.run_id = s.run_id,
                agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
            ) e
            GROUP BY 1, 2, 3, 4, 5
        )
        INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
        SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
        FROM (
            SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
            FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
            GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
        ) x
        GROUP BY 1, 2, 3, 4, 5;
    END IF;
    RETURN NULL;
END$$;

-- Failures inserted (by psql, a restore: the write paths count their own), under their run's key.
CREATE OR REPLACE FUNCTION agenttracer_failures_inserted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM new_rows f JOIN agent_runs r ON r.run_id = f.run_id,
            agenttracer_failure_entries(f.failure_type, f.failure_code) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Failures deleted, under their run's key (none once the run is gone).
CREATE OR REPLACE FUNCTION agenttracer_failures_deleted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
AS $$BEGIN
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
            FROM old_rows f JOIN agent_runs r ON r.run_id = f.run_id,
            agenttracer_failure_entries(f.failure_type, f.failure_code) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END$$;

-- Failures updated: those whose counted columns changed, old entries out and new ones in.
CREATE OR REPLACE FUNCTION agenttracer_failures_updated() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
SET enable_nestloop = off
AS $$BEGIN
    IF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.failure_id = o.failure_id
        WHERE (o.run_id, o.failure_type, o.failure_code) IS DISTINCT FROM (n.run_id, n.failure_type, n.failure_code)
    ) THEN
        WITH hourly AS (
            SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
            FROM (
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                FROM (
                    SELECT o.* FROM old_rows o JOIN new_rows n ON n.failure_id = o.failure_id
                    WHERE (o.run_id, o.failure_type, o.failure_code) IS DISTINCT FROM (n.run_id, n.failure_type, n.failure_code)
                ) f JOIN agent_runs r ON r.run_id = f.run_id,
                agenttracer_failure_entries(f.failure_type, f.failure_code) e
                UNION ALL
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                FROM (
                    SELECT n.* FROM old_rows o JOIN new_rows n ON n.failure_id = o.failure_id
                    WHERE (o.run_id, o.failure_type, o.failure_code) IS DISTINCT FROM (n.run_id, n.failure_type, n.failure_code)
                ) f JOIN agent_runs r ON r.run_id = f.run_id,
                agenttracer_failure_entries(f.failure_type, f.failure_code) e
            ) e
            GROUP BY 1, 2, 3, 4, 5
        )
        INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
        SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
        FROM (
            SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
            FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
            GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
        ) x
        GROUP BY 1, 2, 3, 4, 5;
    END IF;
    RETURN NULL;
END$$;

-- Every row's entries again, from scratch (after a TRUNCATE; tests and benchmarks check the
-- deltas kept at ingest against it). The statement agenttracer_rollup_sql built and EXECUTEd.
CREATE OR REPLACE FUNCTION agenttracer_rollup_rebuild() RETURNS void
LANGUAGE plpgsql
SET enable_sort = off
AS $$BEGIN
    DELETE FROM stats_rollup;
    WITH hourly AS (
        SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
        FROM (
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM agent_runs r, agenttracer_run_entries(r.status, r.started_at, r.ended_at) e
            UNION ALL
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id,
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e
            UNION ALL
            SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
            FROM agent_failures f JOIN agent_runs r ON r.run_id = f.run_id,
            agenttracer_failure_entries(f.failure_type, f.failure_code) e
        ) e
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c)
    SELECT grain, bucket, agent_id, agent_version, environment, jsonb_object_agg(k, n)
    FROM (
        SELECT g.grain, g.bucket, h.agent_id, h.agent_version, h.environment, h.k, sum(h.n) AS n
        FROM hourly h CROSS JOIN LATERAL (VALUES ('h', h.hour), ('d', date_trunc('day', h.hour, 'UTC')), ('m', date_trunc('month', h.hour, 'UTC'))) g (grain, bucket)
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0
    ) x
    GROUP BY 1, 2, 3, 4, 5;
END$$;

-- The string builders of 000003, now unused.
DROP FUNCTION agenttracer_rollup_sql(text);
DROP FUNCTION agenttracer_failure_entries_sql(text, text, integer);
DROP FUNCTION agenttracer_step_entries_sql(text, text, integer);
DROP FUNCTION agenttracer_run_entries_sql(text, integer);

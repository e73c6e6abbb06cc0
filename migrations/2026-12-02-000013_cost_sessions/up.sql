-- Cost and sessions (docs/cost.md, docs/sessions.md; DESIGN §13).
--
-- A step's cost, in whole nano-dollars (10^-9 USD, so every sum is exact), priced at ingest
-- from its model and tokens at its started_at (src/cost/); NULL when its model has no price or
-- it counted no tokens: never a guessed zero. A run's cost is the sum over its priced steps,
-- NULL when none is priced; the write paths keep it with the steps they write, and
-- `agenttracer reprice` recomputes both for a period.
--
-- The rollups count each priced step's cost under `cost:<model>` (src/rollup/counter.rs), so
-- `/v1/stats` sums costs as it sums tokens. agenttracer_step_entries takes the cost as a sixth
-- argument, and the trigger functions that call it are restated from 2026-12-02-000007 with
-- that argument (and agenttracer_steps_updated counting a changed cost as a change); nothing
-- else in them changes.
--
-- Sessions: a run's optional session_id and user_id (identifiers, <= 255 characters).

ALTER TABLE agent_steps ADD COLUMN cost_nanos bigint
    CONSTRAINT agent_steps_cost_nanos_not_negative CHECK (cost_nanos >= 0);
ALTER TABLE agent_runs
    ADD COLUMN cost_nanos bigint
        CONSTRAINT agent_runs_cost_nanos_not_negative CHECK (cost_nanos >= 0),
    ADD COLUMN session_id varchar(255),
    ADD COLUMN user_id varchar(255);

-- A session's runs in order, and the sessions list's newest first; a user's runs.
CREATE INDEX ix_agent_runs_session_id_started_at ON agent_runs (session_id, started_at)
    WHERE session_id IS NOT NULL;
CREATE INDEX ix_agent_runs_user_id_started_at ON agent_runs (user_id, started_at)
    WHERE user_id IS NOT NULL;

DROP FUNCTION agenttracer_step_entries(text, integer, text, integer, integer);

CREATE FUNCTION agenttracer_step_entries(step_type text, latency_ms integer, model text,
                                         input_tokens integer, output_tokens integer,
                                         cost_nanos bigint)
RETURNS TABLE (k text, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.k, e.n FROM (VALUES
        ('steps', 1::bigint),
        ('latency_sum', latency_ms::bigint),
        ('type:' || step_type, 1),
        ('lat:' || agenttracer_bucket(latency_ms), 1),
        ('model_steps:' || model, 1),
        ('model_in:' || model, coalesce(input_tokens, 0)),
        ('model_out:' || model, coalesce(output_tokens, 0)),
        ('cost:' || model, cost_nanos)
    ) e (k, n) WHERE e.k IS NOT NULL AND e.n IS NOT NULL
$$;

-- The functions of 2026-12-02-000007 that call it, with the cost.
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
                    agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
                    UNION ALL
                    SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                    FROM agent_steps s JOIN (
                        SELECT n.* FROM old_rows o JOIN new_rows n ON n.run_id = o.run_id
                        WHERE (o.agent_id, o.agent_version, o.environment, date_trunc('hour', o.started_at, 'UTC'))
                              IS DISTINCT FROM (n.agent_id, n.agent_version, n.environment, date_trunc('hour', n.started_at, 'UTC'))
                    ) r ON r.run_id = s.run_id,
                    agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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

CREATE OR REPLACE FUNCTION agenttracer_steps_updated() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
SET enable_sort = off
SET enable_seqscan = off
SET enable_nestloop = off
AS $$BEGIN
    IF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
        WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens, o.cost_nanos)
              IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens, n.cost_nanos)
    ) THEN
        WITH hourly AS (
            SELECT date_trunc('hour', e.started_at, 'UTC') AS hour, e.agent_id, e.agent_version, e.environment, e.k, sum(e.n) AS n
            FROM (
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * -1 AS n
                FROM (
                    SELECT o.* FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
                    WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens, o.cost_nanos)
                          IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens, n.cost_nanos)
                ) s JOIN agent_runs r ON r.run_id = s.run_id,
                agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
                UNION ALL
                SELECT r.started_at, r.agent_id, r.agent_version, r.environment, e.k, e.n * 1 AS n
                FROM (
                    SELECT n.* FROM old_rows o JOIN new_rows n ON n.step_id = o.step_id
                    WHERE (o.run_id, o.step_type, o.latency_ms, o.model, o.input_tokens, o.output_tokens, o.cost_nanos)
                          IS DISTINCT FROM (n.run_id, n.step_type, n.latency_ms, n.model, n.input_tokens, n.output_tokens, n.cost_nanos)
                ) s JOIN agent_runs r ON r.run_id = s.run_id,
                agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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
            agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e
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

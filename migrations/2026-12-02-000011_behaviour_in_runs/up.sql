-- A run's decisions and quality signals move into its own row (docs/behaviour.md, Storage).
--
-- As rows of their own tables they made ingest 29–37 % slower with three of each per run
-- (docs/performance.md): six more rows beside a run's eleven cost what rows cost, in heap,
-- indexes and foreign-key checks, and no trim reached the 10 % the feature may cost. Kept as
-- two `jsonb` arrays of the run row, written in the run's own statement, they cost within noise.
--
-- `agent_decisions` and `agent_quality_signals` stay, as views with the original's columns, so
-- its database-level tools still read them (one row per item, `seq` its place in the run's
-- array), and tools that write rows still can: an insert appends to the run's array with the
-- original's checks (not null, lengths, ranges, the run and the step must exist, an id once per
-- run), a delete removes the item. Deleting a run takes its items with it, as the cascade did.
-- The writer does not go through these: the ingest role checks each item before it writes
-- (docs/behaviour.md, Validation), the step of each `step_id` among them.
--
-- An item of the arrays is the API's object without `run_id` (its run's), without what is null
-- and without an empty `metadata` (read as `{}`); `recorded_at` and `created_at` are the run's
-- `created_at` unless the item has its own (the rows moved here keep theirs).

ALTER TABLE agent_runs
    ADD COLUMN decisions jsonb CHECK (jsonb_typeof(decisions) = 'array'),
    ADD COLUMN quality_signals jsonb CHECK (jsonb_typeof(quality_signals) = 'array');

UPDATE agent_runs r SET decisions = x.items
FROM (
    SELECT run_id, jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'decision_id', decision_id, 'step_id', step_id, 'decision_type', decision_type,
               'selected', selected, 'reason_code', reason_code, 'confidence', confidence))
               || jsonb_build_object('metadata', metadata, 'recorded_at', recorded_at,
                                     'created_at', created_at)
               ORDER BY seq, decision_id) AS items
    FROM agent_decisions GROUP BY run_id
) x
WHERE r.run_id = x.run_id;

UPDATE agent_runs r SET quality_signals = x.items
FROM (
    SELECT run_id, jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'signal_id', signal_id, 'step_id', step_id, 'signal_type', signal_type,
               'signal_code', signal_code, 'value', value, 'weight', weight))
               || jsonb_build_object('metadata', metadata, 'recorded_at', recorded_at,
                                     'created_at', created_at)
               ORDER BY seq, signal_id) AS items
    FROM agent_quality_signals GROUP BY run_id
) x
WHERE r.run_id = x.run_id;

DROP TABLE agent_decisions;
DROP TABLE agent_quality_signals;

CREATE VIEW agent_decisions AS
SELECT (i.item ->> 'decision_id')::uuid AS decision_id,
       r.run_id,
       (i.item ->> 'step_id')::uuid AS step_id,
       (i.item ->> 'decision_type')::varchar(100) AS decision_type,
       (i.item ->> 'selected')::varchar(200) AS selected,
       (i.item ->> 'reason_code')::varchar(100) AS reason_code,
       (i.item ->> 'confidence')::real AS confidence,
       coalesce(i.item -> 'metadata', '{}'::jsonb) AS metadata,
       coalesce((i.item ->> 'recorded_at')::timestamptz, r.created_at) AS recorded_at,
       coalesce((i.item ->> 'created_at')::timestamptz, r.created_at) AS created_at,
       (i.n - 1)::integer AS seq
FROM agent_runs r
CROSS JOIN LATERAL jsonb_array_elements(r.decisions) WITH ORDINALITY AS i (item, n);

CREATE VIEW agent_quality_signals AS
SELECT (i.item ->> 'signal_id')::uuid AS signal_id,
       r.run_id,
       (i.item ->> 'step_id')::uuid AS step_id,
       (i.item ->> 'signal_type')::varchar(100) AS signal_type,
       (i.item ->> 'signal_code')::varchar(100) AS signal_code,
       (i.item ->> 'value')::boolean AS value,
       (i.item ->> 'weight')::real AS weight,
       coalesce(i.item -> 'metadata', '{}'::jsonb) AS metadata,
       coalesce((i.item ->> 'recorded_at')::timestamptz, r.created_at) AS recorded_at,
       coalesce((i.item ->> 'created_at')::timestamptz, r.created_at) AS created_at,
       (i.n - 1)::integer AS seq
FROM agent_runs r
CROSS JOIN LATERAL jsonb_array_elements(r.quality_signals) WITH ORDINALITY AS i (item, n);

-- The original's defaults, for an insert that leaves them out.
ALTER VIEW agent_decisions ALTER COLUMN decision_id SET DEFAULT gen_random_uuid();
ALTER VIEW agent_decisions ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
ALTER VIEW agent_decisions ALTER COLUMN recorded_at SET DEFAULT now();
ALTER VIEW agent_decisions ALTER COLUMN created_at SET DEFAULT now();
ALTER VIEW agent_quality_signals ALTER COLUMN signal_id SET DEFAULT gen_random_uuid();
ALTER VIEW agent_quality_signals ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
ALTER VIEW agent_quality_signals ALTER COLUMN recorded_at SET DEFAULT now();
ALTER VIEW agent_quality_signals ALTER COLUMN created_at SET DEFAULT now();

-- Appends `item` (id `id` under key `id_key`) to the array `items` of run `run_id`, as the
-- foreign keys and primary key of the old tables did: the run and the step must exist, the id
-- must be new in its run. Returns the item's `seq`.
CREATE FUNCTION agenttracer_append_item(
    items text, id_key text, id uuid, run uuid, step uuid, item jsonb, view_name text
) RETURNS integer
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    stored jsonb;
    found_runs integer;
    seq integer;
BEGIN
    IF step IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agent_steps s WHERE s.step_id = step) THEN
        RAISE EXCEPTION 'insert on "%" violates foreign key: step_id % is not in agent_steps',
            view_name, step
            USING ERRCODE = 'foreign_key_violation', TABLE = view_name, COLUMN = 'step_id';
    END IF;
    EXECUTE format('SELECT %I FROM agent_runs WHERE run_id = $1 FOR UPDATE', items)
        INTO stored USING run;
    -- (EXECUTE leaves FOUND alone.)
    GET DIAGNOSTICS found_runs = ROW_COUNT;
    IF found_runs = 0 THEN
        RAISE EXCEPTION 'insert on "%" violates foreign key: run_id % is not in agent_runs',
            view_name, run
            USING ERRCODE = 'foreign_key_violation', TABLE = view_name, COLUMN = 'run_id';
    END IF;
    IF stored @> jsonb_build_array(jsonb_build_object(id_key, id)) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint: % % already exists',
            id_key, id
            USING ERRCODE = 'unique_violation', TABLE = view_name, COLUMN = id_key;
    END IF;
    seq := coalesce(jsonb_array_length(stored), 0);
    EXECUTE format('UPDATE agent_runs SET %I = coalesce(%I, ''[]''::jsonb) || $1 WHERE run_id = $2',
                   items, items)
        USING jsonb_build_array(item), run;
    RETURN seq;
END$$;

-- Removes the item with id `id` under key `id_key` from the array `items` of run `run`.
CREATE FUNCTION agenttracer_remove_item(items text, id_key text, id uuid, run uuid)
RETURNS void
LANGUAGE plpgsql
SET jit = off
AS $$BEGIN
    EXECUTE format(
        'UPDATE agent_runs SET %I = (SELECT nullif(coalesce(jsonb_agg(i.item ORDER BY i.n), ''[]''), ''[]'') '
        'FROM jsonb_array_elements(%I) WITH ORDINALITY AS i (item, n) WHERE i.item ->> $1 IS DISTINCT FROM $2) '
        'WHERE run_id = $3', items, items)
        USING id_key, id::text, run;
END$$;

CREATE FUNCTION agenttracer_decision_inserted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
AS $$BEGIN
    IF NEW.decision_id IS NULL OR NEW.run_id IS NULL OR NEW.decision_type IS NULL
       OR NEW.selected IS NULL OR NEW.reason_code IS NULL OR NEW.metadata IS NULL
       OR NEW.recorded_at IS NULL OR NEW.created_at IS NULL THEN
        RAISE EXCEPTION 'null value in a required column of "agent_decisions"'
            USING ERRCODE = 'not_null_violation', TABLE = 'agent_decisions';
    END IF;
    IF length(NEW.decision_type) = 0 OR length(NEW.selected) = 0 OR length(NEW.reason_code) = 0
       OR NOT (NEW.confidence IS NULL OR (NEW.confidence >= 0.0 AND NEW.confidence <= 1.0))
       OR jsonb_typeof(NEW.metadata) <> 'object' THEN
        RAISE EXCEPTION 'new row for "agent_decisions" violates a check constraint'
            USING ERRCODE = 'check_violation', TABLE = 'agent_decisions';
    END IF;
    NEW.seq := agenttracer_append_item('decisions', 'decision_id', NEW.decision_id, NEW.run_id,
        NEW.step_id,
        jsonb_strip_nulls(jsonb_build_object(
            'decision_id', NEW.decision_id, 'step_id', NEW.step_id,
            'decision_type', NEW.decision_type, 'selected', NEW.selected,
            'reason_code', NEW.reason_code, 'confidence', NEW.confidence))
        || jsonb_build_object('metadata', NEW.metadata, 'recorded_at', NEW.recorded_at,
                              'created_at', NEW.created_at),
        'agent_decisions');
    RETURN NEW;
END$$;

CREATE FUNCTION agenttracer_signal_inserted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
AS $$BEGIN
    IF NEW.signal_id IS NULL OR NEW.run_id IS NULL OR NEW.signal_type IS NULL
       OR NEW.signal_code IS NULL OR NEW.value IS NULL OR NEW.metadata IS NULL
       OR NEW.recorded_at IS NULL OR NEW.created_at IS NULL THEN
        RAISE EXCEPTION 'null value in a required column of "agent_quality_signals"'
            USING ERRCODE = 'not_null_violation', TABLE = 'agent_quality_signals';
    END IF;
    IF length(NEW.signal_type) = 0 OR length(NEW.signal_code) = 0
       OR NOT (NEW.weight IS NULL OR (NEW.weight >= 0.0 AND NEW.weight <= 1.0))
       OR jsonb_typeof(NEW.metadata) <> 'object' THEN
        RAISE EXCEPTION 'new row for "agent_quality_signals" violates a check constraint'
            USING ERRCODE = 'check_violation', TABLE = 'agent_quality_signals';
    END IF;
    NEW.seq := agenttracer_append_item('quality_signals', 'signal_id', NEW.signal_id, NEW.run_id,
        NEW.step_id,
        jsonb_strip_nulls(jsonb_build_object(
            'signal_id', NEW.signal_id, 'step_id', NEW.step_id,
            'signal_type', NEW.signal_type, 'signal_code', NEW.signal_code,
            'value', NEW.value, 'weight', NEW.weight))
        || jsonb_build_object('metadata', NEW.metadata, 'recorded_at', NEW.recorded_at,
                              'created_at', NEW.created_at),
        'agent_quality_signals');
    RETURN NEW;
END$$;

CREATE FUNCTION agenttracer_decision_deleted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
AS $$BEGIN
    PERFORM agenttracer_remove_item('decisions', 'decision_id', OLD.decision_id, OLD.run_id);
    RETURN OLD;
END$$;

CREATE FUNCTION agenttracer_signal_deleted() RETURNS trigger
LANGUAGE plpgsql
SET jit = off
AS $$BEGIN
    PERFORM agenttracer_remove_item('quality_signals', 'signal_id', OLD.signal_id, OLD.run_id);
    RETURN OLD;
END$$;

CREATE TRIGGER agent_decisions_insert INSTEAD OF INSERT ON agent_decisions
    FOR EACH ROW EXECUTE FUNCTION agenttracer_decision_inserted();
CREATE TRIGGER agent_decisions_delete INSTEAD OF DELETE ON agent_decisions
    FOR EACH ROW EXECUTE FUNCTION agenttracer_decision_deleted();
CREATE TRIGGER agent_quality_signals_insert INSTEAD OF INSERT ON agent_quality_signals
    FOR EACH ROW EXECUTE FUNCTION agenttracer_signal_inserted();
CREATE TRIGGER agent_quality_signals_delete INSTEAD OF DELETE ON agent_quality_signals
    FOR EACH ROW EXECUTE FUNCTION agenttracer_signal_deleted();

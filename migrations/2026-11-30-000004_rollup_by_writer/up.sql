-- The native and OTLP write paths compute the rollup deltas of the rows they insert themselves
-- (one small insert per transaction; src/rollup/deltas.rs) and say so with the transaction-local
-- setting agenttracer.rollup_by_writer: the insert triggers skip their statements. Every other
-- insert (psql, a restore) still goes through them, as do all updates and deletes. The setting
-- is set only together with the deltas (src/rollup/writer.rs).
DROP TRIGGER agent_runs_rollup_insert ON agent_runs;
DROP TRIGGER agent_steps_rollup_insert ON agent_steps;
DROP TRIGGER agent_failures_rollup_insert ON agent_failures;

CREATE TRIGGER agent_runs_rollup_insert AFTER INSERT ON agent_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('agenttracer.rollup_by_writer', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION agenttracer_runs_inserted();
CREATE TRIGGER agent_steps_rollup_insert AFTER INSERT ON agent_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('agenttracer.rollup_by_writer', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION agenttracer_steps_inserted();
CREATE TRIGGER agent_failures_rollup_insert AFTER INSERT ON agent_failures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('agenttracer.rollup_by_writer', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION agenttracer_failures_inserted();

-- The trigger functions join their transition tables (a few rows) to agent_runs or agent_steps.
-- Their plans are cached per session, and one planned while the tables were small (or not yet
-- analyzed) hashed the whole of agent_runs on every write: each insert's cost grew with the
-- table. Index lookups are always right for a statement's handful of rows.
ALTER FUNCTION agenttracer_runs_updated() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_run_dying() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_steps_inserted() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_steps_updated() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_steps_deleted() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_failures_inserted() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_failures_updated() SET enable_seqscan = off;
ALTER FUNCTION agenttracer_failures_deleted() SET enable_seqscan = off;

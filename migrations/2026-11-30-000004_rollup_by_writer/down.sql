ALTER FUNCTION agenttracer_runs_updated() RESET enable_seqscan;
ALTER FUNCTION agenttracer_run_dying() RESET enable_seqscan;
ALTER FUNCTION agenttracer_steps_inserted() RESET enable_seqscan;
ALTER FUNCTION agenttracer_steps_updated() RESET enable_seqscan;
ALTER FUNCTION agenttracer_steps_deleted() RESET enable_seqscan;
ALTER FUNCTION agenttracer_failures_inserted() RESET enable_seqscan;
ALTER FUNCTION agenttracer_failures_updated() RESET enable_seqscan;
ALTER FUNCTION agenttracer_failures_deleted() RESET enable_seqscan;

DROP TRIGGER agent_runs_rollup_insert ON agent_runs;
DROP TRIGGER agent_steps_rollup_insert ON agent_steps;
DROP TRIGGER agent_failures_rollup_insert ON agent_failures;

CREATE TRIGGER agent_runs_rollup_insert AFTER INSERT ON agent_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_runs_inserted();
CREATE TRIGGER agent_steps_rollup_insert AFTER INSERT ON agent_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_steps_inserted();
CREATE TRIGGER agent_failures_rollup_insert AFTER INSERT ON agent_failures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agenttracer_failures_inserted();

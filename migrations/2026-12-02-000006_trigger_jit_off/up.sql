-- The rollup triggers run small statements over their transition tables, planned with some node
-- types disabled (enable_sort, enable_seqscan, enable_nestloop = off). A disabled node that the
-- plan cannot avoid (the nested loop over VALUES and agenttracer_run_entries) adds a cost of
-- 10^10 each, which puts the statement far above jit_above_cost and jit_optimize_above_cost:
-- PostgreSQL then JIT-compiled and optimised it on every execution, about 3 s per OTLP export of
-- 10 traces where the statement itself takes milliseconds (the load bench's OTLP scenario: 238
-- spans/s). JIT never pays off for these statements.
ALTER FUNCTION agenttracer_runs_inserted() SET jit = off;
ALTER FUNCTION agenttracer_runs_updated() SET jit = off;
ALTER FUNCTION agenttracer_runs_deleted() SET jit = off;
ALTER FUNCTION agenttracer_run_dying() SET jit = off;
ALTER FUNCTION agenttracer_steps_inserted() SET jit = off;
ALTER FUNCTION agenttracer_steps_updated() SET jit = off;
ALTER FUNCTION agenttracer_steps_deleted() SET jit = off;
ALTER FUNCTION agenttracer_failures_inserted() SET jit = off;
ALTER FUNCTION agenttracer_failures_updated() SET jit = off;
ALTER FUNCTION agenttracer_failures_deleted() SET jit = off;
ALTER FUNCTION agenttracer_rollup_truncated() SET jit = off;

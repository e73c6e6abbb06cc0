-- The update triggers join their transition tables (old_rows, new_rows) by id. Those carry no
-- statistics and no index: planned as a nested loop, renumbering the seq of the n steps of one
-- OTLP trace cost n^2 comparisons (500 spans merged into a 5,500-span trace took 4.7 s). A hash
-- join is linear.
ALTER FUNCTION agenttracer_runs_updated() SET enable_nestloop = off;
ALTER FUNCTION agenttracer_steps_updated() SET enable_nestloop = off;
ALTER FUNCTION agenttracer_failures_updated() SET enable_nestloop = off;

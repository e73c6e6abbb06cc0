ALTER FUNCTION agenttracer_runs_updated() RESET enable_nestloop;
ALTER FUNCTION agenttracer_steps_updated() RESET enable_nestloop;
ALTER FUNCTION agenttracer_failures_updated() RESET enable_nestloop;

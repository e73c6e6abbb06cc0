DROP TABLE agent_failures;
DROP TABLE agent_steps;
DROP TABLE agent_runs;

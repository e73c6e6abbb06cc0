DROP TABLE agent_quality_signals;
DROP TABLE agent_decisions;

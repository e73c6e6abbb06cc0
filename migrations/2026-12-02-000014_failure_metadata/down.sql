ALTER TABLE agent_failures DROP COLUMN metadata;

ALTER TABLE agent_steps
    DROP CONSTRAINT uq_agent_steps_run_id_seq,
    ADD CONSTRAINT uq_agent_steps_run_id_seq UNIQUE (run_id, seq);
ALTER TABLE agent_steps
    DROP COLUMN span_id,
    DROP COLUMN parent_span_id,
    DROP COLUMN model,
    DROP COLUMN input_tokens,
    DROP COLUMN output_tokens;
DROP INDEX ix_agent_runs_otlp_running;
ALTER TABLE agent_runs
    DROP COLUMN source,
    DROP COLUMN otlp_root,
    DROP COLUMN otlp_root_error,
    DROP COLUMN otlp_finalized,
    DROP COLUMN last_span_at;

-- What the OpenTelemetry mapping needs (docs/api.md, OpenTelemetry), shown in the query API too.

-- Where a run came from. OTLP runs are recomputed as their spans arrive: `otlp_root` once the
-- root span (the run itself) has arrived, `otlp_root_error` when it ended in ERROR,
-- `otlp_finalized` when it was closed without a root after `otlp.finalize_after_s` of silence,
-- and `last_span_at` (arrival time of its last spans) drives that finalizer.
ALTER TABLE agent_runs
    ADD COLUMN source          varchar(10) NOT NULL DEFAULT 'native' CHECK (source IN ('native', 'otlp')),
    ADD COLUMN otlp_root       boolean NOT NULL DEFAULT false,
    ADD COLUMN otlp_root_error boolean NOT NULL DEFAULT false,
    ADD COLUMN otlp_finalized  boolean NOT NULL DEFAULT false,
    ADD COLUMN last_span_at    timestamptz;

CREATE INDEX ix_agent_runs_otlp_running ON agent_runs (last_span_at)
    WHERE source = 'otlp' AND status = 'running';

-- A step's span identity (hex), and the model and token usage of LLM steps (from OTLP
-- attributes, or from the metadata of natively ingested steps).
ALTER TABLE agent_steps
    ADD COLUMN span_id        varchar(16),
    ADD COLUMN parent_span_id varchar(16),
    ADD COLUMN model          varchar(255),
    ADD COLUMN input_tokens   integer CHECK (input_tokens >= 0),
    ADD COLUMN output_tokens  integer CHECK (output_tokens >= 0);

-- Spans arrive in any order and steps are ordered by start time: renumbering seq inside one
-- transaction needs the uniqueness checked at commit. INITIALLY IMMEDIATE keeps every other
-- writer's behaviour unchanged.
ALTER TABLE agent_steps
    DROP CONSTRAINT uq_agent_steps_run_id_seq,
    ADD CONSTRAINT uq_agent_steps_run_id_seq UNIQUE (run_id, seq) DEFERRABLE INITIALLY IMMEDIATE;

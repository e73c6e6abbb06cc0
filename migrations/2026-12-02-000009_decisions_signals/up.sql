-- Decisions and quality signals of a run (docs/behaviour.md): structured choices and outcomes an
-- agent reports, enums and numbers, never text. Named and shaped as the original AgentTracer's
-- tables (its columns, types, defaults and checks), so its database-level tools work against
-- ours; the type/code lists are checked by the ingest role, like the step types.
--
-- Ours beside the original's: `seq`, the item's place in the run's array, so a run reads back
-- in the order it was sent (0 for rows written by other tools).

CREATE TABLE agent_decisions (
    decision_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id        uuid NOT NULL REFERENCES agent_runs (run_id) ON DELETE CASCADE,
    step_id       uuid REFERENCES agent_steps (step_id) ON DELETE CASCADE,
    decision_type varchar(100) NOT NULL CHECK (length(decision_type) > 0),
    selected      varchar(200) NOT NULL CHECK (length(selected) > 0),
    reason_code   varchar(100) NOT NULL CHECK (length(reason_code) > 0),
    confidence    real CHECK (confidence IS NULL OR (confidence >= 0.0 AND confidence <= 1.0)),
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    seq           integer NOT NULL DEFAULT 0 CHECK (seq >= 0)
);

-- A run's decisions in order; deleting a run or a step finds them by these.
CREATE INDEX ix_agent_decisions_run_id_seq ON agent_decisions (run_id, seq);
CREATE INDEX ix_agent_decisions_step_id ON agent_decisions (step_id) WHERE step_id IS NOT NULL;

CREATE TABLE agent_quality_signals (
    signal_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id      uuid NOT NULL REFERENCES agent_runs (run_id) ON DELETE CASCADE,
    step_id     uuid REFERENCES agent_steps (step_id) ON DELETE CASCADE,
    signal_type varchar(100) NOT NULL CHECK (length(signal_type) > 0),
    signal_code varchar(100) NOT NULL CHECK (length(signal_code) > 0),
    value       boolean NOT NULL,
    weight      real CHECK (weight IS NULL OR (weight >= 0.0 AND weight <= 1.0)),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    seq         integer NOT NULL DEFAULT 0 CHECK (seq >= 0)
);

CREATE INDEX ix_agent_quality_signals_run_id_seq ON agent_quality_signals (run_id, seq);
CREATE INDEX ix_agent_quality_signals_step_id ON agent_quality_signals (step_id)
    WHERE step_id IS NOT NULL;

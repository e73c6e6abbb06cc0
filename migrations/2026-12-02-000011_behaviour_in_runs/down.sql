-- Back to rows of their own tables (migration 000009's), each item of the runs' arrays a row.

CREATE TABLE agent_decisions_rows (
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
INSERT INTO agent_decisions_rows SELECT * FROM agent_decisions;

CREATE TABLE agent_quality_signals_rows (
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
INSERT INTO agent_quality_signals_rows SELECT * FROM agent_quality_signals;

DROP VIEW agent_decisions;
DROP VIEW agent_quality_signals;
DROP FUNCTION agenttracer_decision_inserted();
DROP FUNCTION agenttracer_signal_inserted();
DROP FUNCTION agenttracer_decision_deleted();
DROP FUNCTION agenttracer_signal_deleted();
DROP FUNCTION agenttracer_append_item(text, text, uuid, uuid, uuid, jsonb, text);
DROP FUNCTION agenttracer_remove_item(text, text, uuid, uuid);
ALTER TABLE agent_runs DROP COLUMN decisions, DROP COLUMN quality_signals;

ALTER TABLE agent_decisions_rows RENAME TO agent_decisions;
ALTER TABLE agent_quality_signals_rows RENAME TO agent_quality_signals;
ALTER INDEX agent_decisions_rows_pkey RENAME TO agent_decisions_pkey;
ALTER INDEX agent_quality_signals_rows_pkey RENAME TO agent_quality_signals_pkey;
CREATE INDEX ix_agent_decisions_run_id_seq ON agent_decisions (run_id, seq);
CREATE INDEX ix_agent_decisions_step_id ON agent_decisions (step_id) WHERE step_id IS NOT NULL;
CREATE INDEX ix_agent_quality_signals_run_id_seq ON agent_quality_signals (run_id, seq);
CREATE INDEX ix_agent_quality_signals_step_id ON agent_quality_signals (step_id)
    WHERE step_id IS NOT NULL;

-- Runs, their ordered steps and their failures (docs/architecture.md, Data). Enumerations are
-- text with CHECK constraints, so a new value is one ALTER away and never a type rewrite.

CREATE TABLE agent_runs (
    run_id        uuid PRIMARY KEY,
    agent_id      varchar(255) NOT NULL CHECK (agent_id <> ''),
    agent_version varchar(100) NOT NULL CHECK (agent_version <> ''),
    environment   varchar(50)  NOT NULL DEFAULT 'production',
    status        varchar(20)  NOT NULL
                  CHECK (status IN ('success', 'failure', 'partial', 'running')),
    started_at    timestamptz  NOT NULL,
    ended_at      timestamptz,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT agent_runs_ended_after_started CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE INDEX ix_agent_runs_agent_id_started_at ON agent_runs (agent_id, started_at DESC);
CREATE INDEX ix_agent_runs_started_at_run_id ON agent_runs (started_at DESC, run_id DESC);

CREATE TABLE agent_steps (
    step_id    uuid PRIMARY KEY,
    run_id     uuid NOT NULL REFERENCES agent_runs (run_id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 0),
    step_type  varchar(20) NOT NULL
               CHECK (step_type IN ('plan', 'retrieve', 'tool', 'llm', 'respond', 'other')),
    name       varchar(255) NOT NULL,
    latency_ms integer NOT NULL CHECK (latency_ms >= 0),
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_steps_ended_after_started CHECK (ended_at >= started_at),
    CONSTRAINT uq_agent_steps_run_id_seq UNIQUE (run_id, seq)
);

CREATE TABLE agent_failures (
    failure_id   uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES agent_runs (run_id) ON DELETE CASCADE,
    step_id      uuid REFERENCES agent_steps (step_id) ON DELETE SET NULL,
    failure_type varchar(20) NOT NULL
                 CHECK (failure_type IN ('tool', 'model', 'retrieval', 'orchestration')),
    failure_code varchar(100) NOT NULL CHECK (failure_code <> ''),
    message      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ix_agent_failures_type_code ON agent_failures (failure_type, failure_code);
CREATE INDEX ix_agent_failures_run_id ON agent_failures (run_id);
-- Deleting a step sets its failures' step_id to NULL; without this index each deleted step
-- would scan the whole failures table.
CREATE INDEX ix_agent_failures_step_id ON agent_failures (step_id) WHERE step_id IS NOT NULL;

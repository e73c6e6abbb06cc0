-- Behaviour profiles, baselines, drift and the alert log (docs/drift.md). Named and shaped as the
-- original AgentTracer's tables (its migration 003: columns, types, defaults, checks, indexes and
-- triggers), so its database-level tools and tests work against ours. The original's timestamps
-- here are naive (`timestamp`, UTC), and so are ours.
--
-- Ours beside the original's:
-- - behavior_profiles.decision_counts / signal_counts: the counts behind the distributions, so
--   drift is tested on real counts, not on probabilities scaled by 1000;
-- - behavior_drift.last_detected_at and ux_behavior_drift_open: an unresolved finding of a
--   baseline and metric is stored once; detecting it again only moves last_detected_at;
-- - alert_log: one row per drift event and channel (UNIQUE), written with the drift row and
--   delivered from there with retries (attempts, next_attempt_at, last_error).

CREATE TABLE behavior_profiles (
    profile_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id               varchar(255) NOT NULL,
    agent_version          varchar(100) NOT NULL,
    environment            varchar(50) NOT NULL,
    window_start           timestamp NOT NULL,
    window_end             timestamp NOT NULL,
    sample_size            integer NOT NULL CHECK (sample_size >= 0),
    decision_distributions jsonb NOT NULL DEFAULT '{}',
    signal_distributions   jsonb NOT NULL DEFAULT '{}',
    latency_stats          jsonb NOT NULL DEFAULT '{}',
    created_at             timestamp DEFAULT CURRENT_TIMESTAMP,
    decision_counts        jsonb NOT NULL DEFAULT '{}',
    signal_counts          jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT unique_profile UNIQUE (agent_id, agent_version, environment, window_start, window_end)
);

CREATE INDEX idx_behavior_profiles_agent ON behavior_profiles (agent_id, agent_version, environment);
CREATE INDEX idx_behavior_profiles_window ON behavior_profiles (window_start, window_end);
CREATE INDEX idx_behavior_profiles_created ON behavior_profiles (created_at DESC);

CREATE TABLE behavior_baselines (
    baseline_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id    uuid NOT NULL REFERENCES behavior_profiles (profile_id) ON DELETE CASCADE,
    agent_id      varchar(255) NOT NULL,
    agent_version varchar(100) NOT NULL,
    environment   varchar(50) NOT NULL,
    baseline_type varchar(50) NOT NULL CHECK (baseline_type IN ('version', 'time_window', 'manual')),
    approved_by   varchar(255),
    approved_at   timestamp,
    description   varchar(200),
    is_active     boolean DEFAULT FALSE,
    created_at    timestamp DEFAULT CURRENT_TIMESTAMP
);

CREATE UNIQUE INDEX idx_behavior_baselines_unique_active
    ON behavior_baselines (agent_id, agent_version, environment) WHERE is_active = TRUE;
CREATE INDEX idx_behavior_baselines_agent ON behavior_baselines (agent_id, agent_version, environment);
CREATE INDEX idx_behavior_baselines_active ON behavior_baselines (is_active) WHERE is_active = TRUE;
CREATE INDEX idx_behavior_baselines_type ON behavior_baselines (baseline_type);
CREATE INDEX idx_behavior_baselines_created ON behavior_baselines (created_at DESC);

CREATE TABLE behavior_drift (
    drift_id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    baseline_id              uuid NOT NULL REFERENCES behavior_baselines (baseline_id) ON DELETE CASCADE,
    agent_id                 varchar(255) NOT NULL,
    agent_version            varchar(100) NOT NULL,
    environment              varchar(50) NOT NULL,
    drift_type               varchar(50) NOT NULL CHECK (drift_type IN ('decision', 'signal', 'latency')),
    metric                   varchar(255) NOT NULL,
    baseline_value           float NOT NULL,
    observed_value           float NOT NULL,
    delta                    float NOT NULL,
    delta_percent            float NOT NULL,
    significance             float NOT NULL,
    test_method              varchar(50) NOT NULL,
    severity                 varchar(20) NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    detected_at              timestamp NOT NULL,
    observation_window_start timestamp NOT NULL,
    observation_window_end   timestamp NOT NULL,
    observation_sample_size  integer NOT NULL,
    resolved_at              timestamp,
    created_at               timestamp DEFAULT CURRENT_TIMESTAMP,
    last_detected_at         timestamp
);

CREATE INDEX idx_behavior_drift_agent ON behavior_drift (agent_id, agent_version, environment);
CREATE INDEX idx_behavior_drift_detected ON behavior_drift (detected_at DESC);
CREATE INDEX idx_behavior_drift_resolved ON behavior_drift (resolved_at) WHERE resolved_at IS NULL;
CREATE INDEX idx_behavior_drift_type ON behavior_drift (drift_type);
CREATE INDEX idx_behavior_drift_severity ON behavior_drift (severity);
CREATE INDEX idx_behavior_drift_baseline ON behavior_drift (baseline_id);
-- One open finding per baseline and metric: what makes detection idempotent.
CREATE UNIQUE INDEX ux_behavior_drift_open
    ON behavior_drift (baseline_id, drift_type, metric) WHERE resolved_at IS NULL;

CREATE TABLE alert_log (
    alert_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    drift_id        uuid NOT NULL REFERENCES behavior_drift (drift_id) ON DELETE CASCADE,
    alert_message   text NOT NULL,
    alert_channel   varchar(50) NOT NULL,
    sent_at         timestamp DEFAULT CURRENT_TIMESTAMP,
    delivery_status varchar(50) DEFAULT 'sent'
        CHECK (delivery_status IN ('sent', 'failed', 'pending', 'retry')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp,
    last_error      varchar(500),
    CONSTRAINT alert_log_one_per_channel UNIQUE (drift_id, alert_channel)
);

CREATE INDEX idx_alert_log_drift ON alert_log (drift_id);
CREATE INDEX idx_alert_log_sent ON alert_log (sent_at DESC);
CREATE INDEX idx_alert_log_status ON alert_log (delivery_status);
-- What the deliverer picks: alerts not yet sent, by when they are due.
CREATE INDEX ix_alert_log_due ON alert_log (next_attempt_at)
    WHERE delivery_status IN ('pending', 'retry');

-- The original's triggers, as it wrote them: a baseline's description is content-free and short,
-- and a baseline is immutable except for its activation and a first approval. Like every trigger
-- function of ours, never JIT-compiled (migration 000006).
CREATE FUNCTION validate_baseline_description() RETURNS trigger AS $$
BEGIN
    IF NEW.description IS NOT NULL THEN
        IF NEW.description ~* '(prompt|response|reasoning|thought|message|content|text|output|input|chain_of_thought|explanation|rationale)' THEN
            RAISE EXCEPTION 'Baseline description contains forbidden keywords';
        END IF;
        IF length(NEW.description) > 200 THEN
            RAISE EXCEPTION 'Baseline description too long (max 200 chars)';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET jit = off;

CREATE TRIGGER trg_validate_baseline_description
    BEFORE INSERT OR UPDATE ON behavior_baselines
    FOR EACH ROW EXECUTE FUNCTION validate_baseline_description();

CREATE FUNCTION prevent_baseline_update() RETURNS trigger AS $$
BEGIN
    IF OLD.is_active IS DISTINCT FROM NEW.is_active THEN
        RETURN NEW;
    END IF;
    IF OLD.approved_by IS NULL AND NEW.approved_by IS NOT NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'Baselines are immutable after creation';
END;
$$ LANGUAGE plpgsql SET jit = off;

CREATE TRIGGER trg_prevent_baseline_update
    BEFORE UPDATE ON behavior_baselines
    FOR EACH ROW EXECUTE FUNCTION prevent_baseline_update();

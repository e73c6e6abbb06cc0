// The tables of migrations/, as diesel sees them.

diesel::table! {
    agent_runs (run_id) {
        run_id -> Uuid,
        #[max_length = 255]
        agent_id -> Varchar,
        #[max_length = 100]
        agent_version -> Varchar,
        #[max_length = 50]
        environment -> Varchar,
        #[max_length = 20]
        status -> Varchar,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        #[max_length = 10]
        source -> Varchar,
        otlp_root -> Bool,
        otlp_root_error -> Bool,
        otlp_finalized -> Bool,
        last_span_at -> Nullable<Timestamptz>,
        /// The run's decisions and quality signals: JSON arrays, NULL for none (migration
        /// 000011; written by `crate::store`, read through the two views below).
        decisions -> Nullable<Jsonb>,
        quality_signals -> Nullable<Jsonb>,
        /// The sum of its steps' `cost_nanos`, NULL when none is priced (migration 000013).
        cost_nanos -> Nullable<Int8>,
        #[max_length = 255]
        session_id -> Nullable<Varchar>,
        #[max_length = 255]
        user_id -> Nullable<Varchar>,
    }
}

diesel::table! {
    agent_steps (step_id) {
        step_id -> Uuid,
        run_id -> Uuid,
        seq -> Int4,
        #[max_length = 20]
        step_type -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        latency_ms -> Int4,
        started_at -> Timestamptz,
        ended_at -> Timestamptz,
        metadata -> Jsonb,
        created_at -> Timestamptz,
        #[max_length = 16]
        span_id -> Nullable<Varchar>,
        #[max_length = 16]
        parent_span_id -> Nullable<Varchar>,
        #[max_length = 255]
        model -> Nullable<Varchar>,
        input_tokens -> Nullable<Int4>,
        output_tokens -> Nullable<Int4>,
        /// Its cost in nano-dollars (10⁻⁹ USD), NULL when unpriced (migration 000013).
        cost_nanos -> Nullable<Int8>,
    }
}

diesel::table! {
    agent_failures (failure_id) {
        failure_id -> Uuid,
        run_id -> Uuid,
        step_id -> Nullable<Uuid>,
        #[max_length = 20]
        failure_type -> Varchar,
        #[max_length = 100]
        failure_code -> Varchar,
        message -> Text,
        created_at -> Timestamptz,
        metadata -> Jsonb,
    }
}

// `agent_decisions` and `agent_quality_signals` are views: one row per item of a run's
// `decisions` / `quality_signals` (migration 000011), `seq` its place in the array.
diesel::table! {
    agent_decisions (decision_id) {
        decision_id -> Uuid,
        run_id -> Uuid,
        step_id -> Nullable<Uuid>,
        #[max_length = 100]
        decision_type -> Varchar,
        #[max_length = 200]
        selected -> Varchar,
        #[max_length = 100]
        reason_code -> Varchar,
        confidence -> Nullable<Float4>,
        metadata -> Jsonb,
        recorded_at -> Timestamptz,
        created_at -> Timestamptz,
        seq -> Int4,
    }
}

diesel::table! {
    agent_quality_signals (signal_id) {
        signal_id -> Uuid,
        run_id -> Uuid,
        step_id -> Nullable<Uuid>,
        #[max_length = 100]
        signal_type -> Varchar,
        #[max_length = 100]
        signal_code -> Varchar,
        value -> Bool,
        weight -> Nullable<Float4>,
        metadata -> Jsonb,
        recorded_at -> Timestamptz,
        created_at -> Timestamptz,
        seq -> Int4,
    }
}

diesel::table! {
    behavior_profiles (profile_id) {
        profile_id -> Uuid,
        #[max_length = 255]
        agent_id -> Varchar,
        #[max_length = 100]
        agent_version -> Varchar,
        #[max_length = 50]
        environment -> Varchar,
        window_start -> Timestamp,
        window_end -> Timestamp,
        sample_size -> Int4,
        decision_distributions -> Jsonb,
        signal_distributions -> Jsonb,
        latency_stats -> Jsonb,
        created_at -> Nullable<Timestamp>,
        decision_counts -> Jsonb,
        signal_counts -> Jsonb,
    }
}

diesel::table! {
    behavior_baselines (baseline_id) {
        baseline_id -> Uuid,
        profile_id -> Uuid,
        #[max_length = 255]
        agent_id -> Varchar,
        #[max_length = 100]
        agent_version -> Varchar,
        #[max_length = 50]
        environment -> Varchar,
        #[max_length = 50]
        baseline_type -> Varchar,
        #[max_length = 255]
        approved_by -> Nullable<Varchar>,
        approved_at -> Nullable<Timestamp>,
        #[max_length = 200]
        description -> Nullable<Varchar>,
        is_active -> Nullable<Bool>,
        created_at -> Nullable<Timestamp>,
    }
}

// behavior_drift has 21 columns, past diesel's 16 without its `32-column-tables` feature (which
// doubles the build's trait impls): it is read and written in SQL text (src/drift/store.rs).

diesel::table! {
    alert_log (alert_id) {
        alert_id -> Uuid,
        drift_id -> Uuid,
        alert_message -> Text,
        #[max_length = 50]
        alert_channel -> Varchar,
        sent_at -> Nullable<Timestamp>,
        #[max_length = 50]
        delivery_status -> Nullable<Varchar>,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamp>,
        #[max_length = 500]
        last_error -> Nullable<Varchar>,
    }
}

diesel::joinable!(agent_steps -> agent_runs (run_id));
diesel::joinable!(agent_failures -> agent_runs (run_id));
diesel::joinable!(agent_decisions -> agent_runs (run_id));
diesel::joinable!(agent_quality_signals -> agent_runs (run_id));
diesel::joinable!(behavior_baselines -> behavior_profiles (profile_id));
diesel::allow_tables_to_appear_in_same_query!(
    agent_runs,
    agent_steps,
    agent_failures,
    agent_decisions,
    agent_quality_signals,
    behavior_profiles,
    behavior_baselines,
    alert_log
);

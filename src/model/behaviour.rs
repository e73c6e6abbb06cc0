//! Decisions and quality signals: the structured choices an agent made in a run and the quality
//! outcomes it observed, as enumerations and numbers, never text (docs/behaviour.md). The lists
//! of types and codes are the original AgentTracer's, exact and case-sensitive.

use time::OffsetDateTime;
use uuid::Uuid;

/// Each decision type and the reason codes valid for it.
pub const DECISION_TYPES: &[(&str, &[&str])] = &[
    (
        "tool_selection",
        &[
            "fresh_data_required",
            "cached_data_sufficient",
            "tool_unavailable",
            "cost_optimization",
            "latency_optimization",
            "accuracy_required",
        ],
    ),
    (
        "retrieval_strategy",
        &[
            "semantic_search_preferred",
            "keyword_match_sufficient",
            "hybrid_approach_needed",
            "filter_applied",
            "rerank_required",
        ],
    ),
    (
        "response_mode",
        &[
            "streaming_requested",
            "batch_preferred",
            "format_constraint",
            "length_constraint",
        ],
    ),
    (
        "retry_strategy",
        &[
            "transient_error_detected",
            "rate_limit_encountered",
            "no_retry_terminal_error",
            "retry_budget_exhausted",
            "backoff_required",
        ],
    ),
    (
        "orchestration_path",
        &[
            "sequential_required",
            "parallel_preferred",
            "conditional_branch",
            "early_exit",
            "fallback_path",
        ],
    ),
];

/// Each signal type and the signal codes valid for it.
pub const SIGNAL_TYPES: &[(&str, &[&str])] = &[
    (
        "schema_valid",
        &[
            "full_match",
            "partial_match",
            "validation_failed",
            "no_schema_defined",
        ],
    ),
    (
        "empty_retrieval",
        &["no_results", "filtered_out", "index_empty"],
    ),
    (
        "tool_success",
        &["first_attempt", "after_retry", "fallback_used"],
    ),
    (
        "tool_failure",
        &[
            "timeout",
            "invalid_input",
            "unavailable",
            "rate_limited",
            "authentication_failed",
        ],
    ),
    (
        "retry_occurred",
        &["single_retry", "multiple_retries", "max_retries_reached"],
    ),
    (
        "latency_threshold",
        &[
            "under_threshold",
            "exceeded_threshold",
            "significantly_exceeded",
        ],
    ),
    (
        "token_usage",
        &[
            "low_usage",
            "moderate_usage",
            "high_usage",
            "limit_approached",
        ],
    ),
];

/// The keys a decision's or signal's metadata may not have, compared without case: they name
/// text an agent produced or read (the original's list).
pub const BLOCKED_METADATA_KEYS: &[&str] = &[
    "prompt",
    "response",
    "reasoning",
    "thought",
    "message",
    "content",
    "text",
    "output",
    "input",
    "chain_of_thought",
    "explanation",
    "rationale",
];

/// The longest string a decision's or signal's metadata value may be, in characters.
pub const MAX_METADATA_STRING_CHARS: usize = 100;

/// A type of [`DECISION_TYPES`] or [`SIGNAL_TYPES`] by its name: its name and codes as stored.
pub fn kind_of(
    table: &'static [(&'static str, &'static [&'static str])],
    name: &str,
) -> Option<(&'static str, &'static [&'static str])> {
    table.iter().copied().find(|(n, _)| *n == name)
}

/// The code `code` among `codes`, as stored.
pub fn code_of(codes: &'static [&'static str], code: &str) -> Option<&'static str> {
    codes.iter().copied().find(|c| *c == code)
}

/// A validated decision of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDecision {
    pub decision_id: Uuid,
    /// One of the run's steps, when given.
    pub step_id: Option<Uuid>,
    pub decision_type: &'static str,
    /// What was chosen (a tool's name, a strategy): free, bounded, scanned for credentials.
    pub selected: String,
    pub reason_code: &'static str,
    pub confidence: Option<f32>,
    /// A JSON object of flat values; `candidates`, when sent, is kept here.
    pub metadata: serde_json::Value,
}

/// A validated quality signal of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSignal {
    pub signal_id: Uuid,
    pub step_id: Option<Uuid>,
    pub signal_type: &'static str,
    pub signal_code: &'static str,
    pub value: bool,
    pub weight: Option<f32>,
    pub metadata: serde_json::Value,
}

/// A baseline's kinds (the original's check on `behavior_baselines.baseline_type`).
pub const BASELINE_TYPES: &[&str] = &["version", "time_window", "manual"];

/// The longest baseline description, in characters (the original's column and trigger).
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// A baseline to build: the profile of an agent version's runs that started in
/// `window_start..window_end`, frozen (`POST /v1/drift/baselines`, the body the original UI sends).
#[derive(Clone, Debug, PartialEq)]
pub struct NewBaseline {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub baseline_type: String,
    pub window_start: OffsetDateTime,
    pub window_end: OffsetDateTime,
    pub min_sample_size: i32,
    pub approved_by: Option<String>,
    pub description: Option<String>,
    pub auto_activate: bool,
}

/// The first of the original's blocked words a description contains, as a substring in any
/// case (its trigger's rule: so "context" is refused for "text").
pub fn forbidden_word(description: &str) -> Option<&'static str> {
    let lower = description.to_lowercase();
    BLOCKED_METADATA_KEYS
        .iter()
        .copied()
        .find(|word| lower.contains(word))
}

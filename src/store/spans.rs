//! What the OTLP write path takes (src/store/traces.rs): per trace, its run's fields and the
//! spans that become steps, as the mapping (src/ingest/otlp/map/) makes them from a request.
//!
//! Rows written from spans get ids derived from the trace and span ids ([`derived_id`]), so a
//! resent span maps to the same rows and changes nothing (docs/api.md, OpenTelemetry).

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::behaviour::{NewDecision, NewSignal};
use crate::model::{FailureType, StepType};

/// A failure taken from a span in ERROR.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanFailure {
    pub failure_type: FailureType,
    pub code: String,
    pub message: String,
    /// What the span sent beside the code, as sent (an object).
    pub metadata: Value,
}

/// The run's own fields, from its root span.
#[derive(Clone, Debug, PartialEq)]
pub struct Root {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    /// The session and user the spans name (docs/sessions.md), when they do.
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub failure: Option<SpanFailure>,
}

/// A span that becomes a step.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanStep {
    pub step_id: Uuid,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub step_type: StepType,
    pub name: String,
    pub latency_ms: i32,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub metadata: Value,
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    /// Of the input tokens, those read from a cache; of the output, those spent reasoning.
    pub cached_input_tokens: Option<i32>,
    pub reasoning_tokens: Option<i32>,
    /// Its cost in nano-dollars, priced at ingest; none without a price.
    pub cost_nanos: Option<i64>,
    pub failure: Option<SpanFailure>,
    /// From its `agenttracer.decision` and `agenttracer.quality_signal` events, in their order;
    /// ids derived from the span's, `step_id` the span's step.
    pub decisions: Vec<NewDecision>,
    pub signals: Vec<NewSignal>,
}

/// What one request brings to one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceUpdate {
    pub run_id: Uuid,
    pub root: Option<Root>,
    /// Provisional run fields, used until the root arrives.
    pub fallback: Root,
    pub steps: Vec<SpanStep>,
}

/// The namespace of step and failure ids derived from trace and span ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6167_656e_7474_7261_6365_722d_6f74_6c70);

/// Derives a stable id from a trace id, a span id and a purpose: a resent span maps to the same rows.
pub fn derived_id(trace: &[u8], span: &[u8], purpose: &str) -> Uuid {
    let mut name = Vec::with_capacity(trace.len() + span.len() + purpose.len());
    name.extend_from_slice(trace);
    name.extend_from_slice(span);
    name.extend_from_slice(purpose.as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id(&[1; 16], &[2; 8], "step");
        assert_eq!(a, derived_id(&[1; 16], &[2; 8], "step"));
        assert_ne!(a, derived_id(&[1; 16], &[3; 8], "step"));
        assert_ne!(a, derived_id(&[1; 16], &[2; 8], "failure"));
    }
}

//! What a request maps to: per trace, its run's fields (from the root span, or provisional) and
//! its steps, with what was dropped or redacted on the way.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{FailureType, StepType};

/// A failure taken from a span in ERROR.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanFailure {
    pub failure_type: FailureType,
    pub code: String,
    pub message: String,
}

/// The run's own fields, from its root span.
#[derive(Clone, Debug, PartialEq)]
pub struct Root {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
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
    pub failure: Option<SpanFailure>,
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

/// A request, mapped.
#[derive(Debug, Default)]
pub struct Mapped {
    pub traces: Vec<TraceUpdate>,
    pub rejected_spans: i64,
    pub rejection: Option<String>,
    pub dropped_attributes: u64,
    /// Attributes dropped for `ingest.max_metadata_depth` / `max_metadata_bytes`.
    pub over_limit_attributes: u64,
    pub redacted_values: u64,
}

impl Mapped {
    pub fn spans(&self) -> usize {
        self.traces
            .iter()
            .map(|t| t.steps.len() + usize::from(t.root.is_some()))
            .sum()
    }
}

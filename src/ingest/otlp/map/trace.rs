//! What a request maps to: per trace, its run's fields (from the root span, or provisional) and
//! its steps, with what was dropped or redacted on the way. The per-trace types are what the
//! store takes, and are its own (src/store/spans.rs).

pub use crate::store::spans::{Root, SpanFailure, SpanStep, TraceUpdate};

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

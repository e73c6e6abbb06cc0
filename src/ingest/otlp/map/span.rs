//! What a span's attributes say about it: its step type (GenAI, then OpenInference, then
//! OpenLLMetry) and, for a span in ERROR, its failure.

use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};

use super::attrs::{Attrs, clean, cut, ident, redact_secrets};
use super::trace::{Mapped, SpanFailure};
use crate::model::input::Rules;
use crate::model::{FailureType, StepType};

pub(super) fn step_type(attrs: &Attrs) -> StepType {
    if let Some(op) = attrs.str("gen_ai.operation.name") {
        match op.as_str() {
            "chat" | "text_completion" | "generate_content" => return StepType::Llm,
            "execute_tool" => return StepType::Tool,
            "retrieval" | "embeddings" => return StepType::Retrieve,
            "plan" | "create_agent" => return StepType::Plan,
            _ => {}
        }
    }
    if let Some(kind) = attrs.str("openinference.span.kind") {
        match kind.to_ascii_uppercase().as_str() {
            "LLM" => return StepType::Llm,
            "TOOL" => return StepType::Tool,
            "RETRIEVER" | "EMBEDDING" | "RERANKER" => return StepType::Retrieve,
            _ => {}
        }
    }
    // OpenLLMetry: LLM spans carry llm.request.type; tool spans traceloop.span.kind = tool.
    match attrs.str("llm.request.type").as_deref() {
        Some("embedding" | "rerank") => return StepType::Retrieve,
        Some(_) => return StepType::Llm,
        None => {}
    }
    match attrs.str("traceloop.span.kind").as_deref() {
        Some("tool") => StepType::Tool,
        _ => StepType::Other,
    }
}

/// The failure of a span in ERROR: type from its step type, code from `error.type` or the
/// exception event, message from the status or the exception (privacy applied).
pub(super) fn failure_of(
    span: &Span,
    attrs: &Attrs,
    step_type: StepType,
    rules: &Rules,
    mapped: &mut Mapped,
) -> Option<SpanFailure> {
    let mode = rules.privacy;
    let status = span.status.as_ref()?;
    if status.code != StatusCode::Error as i32 {
        return None;
    }
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .map(|e| Attrs::of(&e.attributes));
    let code = attrs
        .str("error.type")
        .or_else(|| exception.as_ref().and_then(|e| e.str("exception.type")))
        .unwrap_or_else(|| "error".into());
    let message = Some(clean(&status.message))
        .filter(|m| !m.is_empty())
        .or_else(|| exception.as_ref().and_then(|e| e.str("exception.message")))
        .unwrap_or_else(|| "span status ERROR".into());
    let mut message = cut(&message, rules.max_string_chars);
    mapped.redacted_values += redact_secrets(&mut message, mode);
    let failure_type = match step_type {
        StepType::Tool => FailureType::Tool,
        StepType::Llm => FailureType::Model,
        StepType::Retrieve => FailureType::Retrieval,
        _ => FailureType::Orchestration,
    };
    Some(SpanFailure {
        failure_type,
        code: ident(&code, 100, rules.privacy),
        message,
    })
}

//! What a span's attributes say about it: its step type (GenAI, then OpenInference, then
//! OpenLLMetry) and, for a span in ERROR, its failure.

use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};

use serde_json::{Map, Value};

use super::attrs::{Attrs, clean, cut, ident, redact_secrets};
use super::error_code;
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

/// The failure of a span in ERROR: type from its step type; code from `error.type`, the
/// exception event's `exception.type`, the HTTP status and the message, normalised
/// ([`error_code::code_of`]), with what was sent kept in the failure's metadata; message from the
/// status or the exception (privacy applied).
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
    let error_type = attrs.str("error.type");
    let exception_type = exception.as_ref().and_then(|e| e.str("exception.type"));
    let exception_message = exception.as_ref().and_then(|e| e.str("exception.message"));
    let status_message = Some(clean(&status.message)).filter(|m| !m.is_empty());
    let http_status = attrs
        .first_int(&["http.response.status_code", "http.status_code"])
        .or_else(|| {
            [&status_message, &exception_message]
                .into_iter()
                .flatten()
                .find_map(|m| error_code::status_in_message(m))
        });
    let said = [&status_message, &exception_message]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    let code = error_code::code_of(
        error_type.as_deref().or(exception_type.as_deref()),
        http_status,
        &said,
    );
    let mut metadata = Map::new();
    for (key, sent) in [
        ("error.type", error_type),
        ("exception.type", exception_type),
    ] {
        if let Some(sent) = sent {
            metadata.insert(key.into(), Value::from(ident(&sent, 255, mode)));
        }
    }
    if let Some(http_status) = http_status {
        metadata.insert("http.response.status_code".into(), Value::from(http_status));
    }
    let message = status_message
        .or(exception_message)
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
        metadata: Value::Object(metadata),
    })
}

//! OTLP spans to runs and steps (docs/api.md, OpenTelemetry): one trace is one run (`run_id` =
//! the trace id read as a UUID); its root span (no parent) is the run, every other span a step.
//! Pure: no I/O.
//!
//! Attributes of the three instrumentation families map onto step types, models and token
//! counts: OpenTelemetry GenAI (`gen_ai.*`), OpenInference (`openinference.span.kind`, `llm.*`)
//! and OpenLLMetry (`traceloop.*`, `llm.request.type`, `gen_ai.usage.prompt_tokens`). Known
//! content attributes (prompts, completions, tool arguments and results) are always dropped;
//! other attributes go through the privacy policy (dropped in `reject` mode, redacted in
//! `redact` mode, since an exporter cannot fix one span). Everything dropped is counted.

mod attrs;
mod behaviour;
mod error_code;
mod metadata;
mod span;
mod trace;

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::StepType;
use crate::model::input::Rules;
use crate::store::spans::derived_id;
use attrs::{Attrs, ident};
pub use behaviour::{DECISION_EVENT, SIGNAL_EVENT};
pub use metadata::is_content_attribute;
use metadata::metadata_of;
use span::{failure_of, step_type};
pub use trace::{Mapped, Root, SpanFailure, SpanStep, TraceUpdate};

/// The attributes naming a deployment's environment, preferred first.
const ENVIRONMENT: [&str; 2] = ["deployment.environment.name", "deployment.environment"];

/// The attributes naming a run's session, preferred first (docs/sessions.md): the
/// OpenTelemetry and OpenInference `session.id`, Langfuse's `langfuse.session.id` and the
/// `langfuse.trace.session_id` LiteLLM's Langfuse exporter writes, the GenAI conventions'
/// `gen_ai.conversation.id`.
pub const SESSION: [&str; 4] = [
    "session.id",
    "langfuse.session.id",
    "langfuse.trace.session_id",
    "gen_ai.conversation.id",
];

/// The attributes naming a run's user, preferred first (as [`SESSION`]).
pub const USER: [&str; 3] = ["user.id", "langfuse.user.id", "langfuse.trace.user_id"];

/// The tool a span calls, by the conventions' tool-name attributes: GenAI's `gen_ai.tool.name`,
/// OpenInference's `tool.name`, OpenLLMetry's `traceloop.entity.name` of a `tool` span.
fn tool_name(attrs: &Attrs) -> Option<String> {
    attrs
        .first_str(&["gen_ai.tool.name", "tool.name"])
        .or_else(|| {
            (attrs.str("traceloop.span.kind").as_deref() == Some("tool"))
                .then(|| attrs.str("traceloop.entity.name"))
                .flatten()
        })
        .filter(|name| !name.trim().is_empty())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time_of(nanos: u64) -> OffsetDateTime {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    crate::model::timestamp::normalize(t).unwrap_or(t)
}

/// Maps a whole export request. Spans with invalid trace or span ids are rejected (counted for
/// `partial_success`); nothing is rejected for privacy.
pub fn map_request(request: &ExportTraceServiceRequest, rules: &Rules) -> Mapped {
    let mut mapped = Mapped::default();
    let mut traces: Vec<TraceUpdate> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| Attrs::of(&r.attributes))
            .unwrap_or(Attrs(HashMap::new()));
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .as_ref()
                .map(|s| s.name.as_str())
                .unwrap_or_default();
            for span in &scope_spans.spans {
                let valid_ids = span.trace_id.len() == 16
                    && span.trace_id.iter().any(|b| *b != 0)
                    && span.span_id.len() == 8
                    && span.span_id.iter().any(|b| *b != 0);
                if !valid_ids {
                    mapped.rejected_spans += 1;
                    mapped.rejection = Some(
                        "spans need a 16-byte trace id and an 8-byte span id, not all zero".into(),
                    );
                    continue;
                }
                let run_id = Uuid::from_slice(&span.trace_id).unwrap_or_default();
                let attrs = Attrs::of(&span.attributes);
                let started_at = time_of(span.start_time_unix_nano);
                let ended_at = time_of(span.end_time_unix_nano.max(span.start_time_unix_nano));
                // The agent from the span, else from its resource; the environment the other way.
                let agent_id = attrs
                    .str("gen_ai.agent.name")
                    .or_else(|| resource.str("service.name"));
                let agent_version = attrs
                    .str("gen_ai.agent.version")
                    .or_else(|| resource.str("service.version"));
                let environment = resource
                    .first_str(&ENVIRONMENT)
                    .or_else(|| attrs.first_str(&ENVIRONMENT));
                let name = |value: Option<String>, default: &str, max: usize| {
                    ident(&value.unwrap_or_else(|| default.into()), max, rules.privacy)
                };
                // The session and user from the span, else from its resource.
                let id = |keys: &[&str]| {
                    attrs
                        .first_str(keys)
                        .or_else(|| resource.first_str(keys))
                        .map(|v| ident(&v, 255, rules.privacy))
                };
                let agent = Root {
                    agent_id: name(agent_id, "unknown", 255),
                    agent_version: name(agent_version, "unknown", 100),
                    environment: name(environment, "production", 50),
                    started_at,
                    ended_at,
                    session_id: id(&SESSION),
                    user_id: id(&USER),
                    failure: None,
                };
                let at = *index.entry(run_id).or_insert_with(|| {
                    traces.push(TraceUpdate {
                        run_id,
                        root: None,
                        fallback: agent.clone(),
                        steps: Vec::new(),
                    });
                    traces.len() - 1
                });
                let trace = &mut traces[at];
                let step_type = step_type(&attrs);
                let failure = failure_of(span, &attrs, step_type, rules, &mut mapped);
                if span.parent_span_id.iter().all(|b| *b == 0) {
                    trace.root = Some(Root { failure, ..agent });
                    continue;
                }
                // A span naming an agent is a better provisional source than the resource.
                if attrs.str("gen_ai.agent.name").is_some() && trace.root.is_none() {
                    trace.fallback.agent_id = agent.agent_id.clone();
                    trace.fallback.agent_version = agent.agent_version.clone();
                }
                // Until the root arrives, the first span naming a session or user provides it.
                if trace.fallback.session_id.is_none() {
                    trace.fallback.session_id = agent.session_id.clone();
                }
                if trace.fallback.user_id.is_none() {
                    trace.fallback.user_id = agent.user_id.clone();
                }
                trace.fallback.started_at = trace.fallback.started_at.min(started_at);
                trace.fallback.ended_at = trace.fallback.ended_at.max(ended_at);
                let latency = (ended_at - started_at)
                    .whole_milliseconds()
                    .clamp(0, i128::from(i32::MAX)) as i32;
                let mut metadata = metadata_of(span, scope, rules, &mut mapped);
                let span_name = match span.name.is_empty() {
                    true => step_type.as_str().to_owned(),
                    false => ident(&span.name, 255, rules.privacy),
                };
                // A tool step is named by its tool, whatever each library calls its span
                // (`execute_tool get_weather`, `get_weather`, `get_weather.tool`); the span's
                // own name stays in the metadata.
                let name = match tool_name(&attrs).filter(|_| step_type == StepType::Tool) {
                    Some(tool) if tool != span.name => {
                        if let Value::Object(meta) = &mut metadata {
                            meta.insert("otel.span.name".into(), Value::from(span_name));
                        }
                        ident(&tool, 255, rules.privacy)
                    }
                    _ => span_name,
                };
                let step_id = derived_id(&span.trace_id, &span.span_id, "step");
                let (decisions, signals) =
                    behaviour::behaviour_of(span, step_id, rules, &mut mapped);
                trace.steps.push(SpanStep {
                    step_id,
                    span_id: hex(&span.span_id),
                    parent_span_id: Some(hex(&span.parent_span_id)),
                    step_type,
                    name,
                    latency_ms: latency,
                    started_at,
                    ended_at,
                    metadata,
                    model: attrs
                        .first_str(&[
                            "gen_ai.response.model",
                            "gen_ai.request.model",
                            "llm.model_name",
                            "embedding.model_name",
                        ])
                        .map(|m| ident(&m, 255, rules.privacy)),
                    input_tokens: attrs.first_tokens(&[
                        "gen_ai.usage.input_tokens",
                        "llm.token_count.prompt",
                        "gen_ai.usage.prompt_tokens",
                    ]),
                    output_tokens: attrs.first_tokens(&[
                        "gen_ai.usage.output_tokens",
                        "llm.token_count.completion",
                        "gen_ai.usage.completion_tokens",
                    ]),
                    cached_input_tokens: attrs.first_tokens(crate::model::CACHED_INPUT_KEYS),
                    reasoning_tokens: attrs.first_tokens(crate::model::REASONING_KEYS),
                    cost_nanos: None,
                    failure,
                    decisions,
                    signals,
                });
            }
        }
    }
    // A root that names no session or user takes those its trace's other spans named.
    for t in &mut traces {
        if let Some(root) = &mut t.root {
            root.session_id = root.session_id.take().or(t.fallback.session_id.clone());
            root.user_id = root.user_id.take().or(t.fallback.user_id.clone());
        }
    }
    mapped.traces = traces;
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::Span;

    use crate::config::Config;
    use crate::model::StepType;
    use crate::model::input::json_size;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_stays_within_its_byte_limit_escapes_and_extras_included() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
        let rules = Rules {
            max_metadata_bytes: 300,
            ..Rules::from(&Config::default())
        };
        let span = |attributes| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "s".into(),
            attributes,
            ..Default::default()
        };
        // Control characters take six bytes each as JSON.
        let attributes = vec![
            kv("small", "x"),
            kv("escaped", &"\u{1}".repeat(40)),
            kv("medium", &"m".repeat(60)),
            kv("large", &"l".repeat(120)),
        ];
        for scope in ["\u{2}".repeat(100), "agent-sdk".to_owned()] {
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: scope.clone(),
                            ..Default::default()
                        }),
                        spans: vec![span(attributes.clone())],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let mapped = map_request(&request, &rules);
            let meta = &mapped.traces[0].steps[0].metadata;
            assert!(json_size(meta) <= 300, "{} bytes: {meta}", json_size(meta));
            assert_eq!(meta["small"], "x", "the small attributes stay");
            assert!(meta.get("escaped").is_none(), "the largest go first");
            assert_eq!(meta["otel.span.kind"], "unspecified");
            assert_eq!(meta.get("otel.scope.name").is_some(), scope == "agent-sdk");
            assert!(mapped.over_limit_attributes >= 1);
        }
    }

    #[test]
    fn content_attributes_of_the_three_families() {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.result",
            "input.value",
            "llm.output_messages.0.message.content",
            "gen_ai.prompt.3.content",
            "traceloop.entity.output",
            "retrieval.documents.0.document.content",
        ] {
            assert!(is_content_attribute(key), "{key}");
        }
        for key in [
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "llm.token_count.prompt",
            "gen_ai.tool.name",
            "input.mime_type",
        ] {
            assert!(!is_content_attribute(key), "{key}");
        }
    }

    #[test]
    fn step_types_follow_genai_then_openinference_then_openllmetry() {
        let cases: &[(&[(&str, &str)], StepType)] = &[
            (&[("gen_ai.operation.name", "chat")], StepType::Llm),
            (
                &[("gen_ai.operation.name", "generate_content")],
                StepType::Llm,
            ),
            (&[("gen_ai.operation.name", "execute_tool")], StepType::Tool),
            (
                &[("gen_ai.operation.name", "embeddings")],
                StepType::Retrieve,
            ),
            (&[("gen_ai.operation.name", "create_agent")], StepType::Plan),
            (
                &[("gen_ai.operation.name", "invoke_agent")],
                StepType::Other,
            ),
            (
                &[("openinference.span.kind", "RERANKER")],
                StepType::Retrieve,
            ),
            (&[("openinference.span.kind", "CHAIN")], StepType::Other),
            (
                &[
                    ("gen_ai.operation.name", "execute_tool"),
                    ("openinference.span.kind", "LLM"),
                ],
                StepType::Tool,
            ),
            (&[("llm.request.type", "chat")], StepType::Llm),
            (&[("traceloop.span.kind", "tool")], StepType::Tool),
            (&[], StepType::Other),
        ];
        for (attrs, want) in cases {
            let list: Vec<KeyValue> = attrs.iter().map(|(k, v)| kv(k, v)).collect();
            assert_eq!(step_type(&Attrs::of(&list)), *want, "{attrs:?}");
        }
    }
}

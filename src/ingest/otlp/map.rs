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

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::PrivacyMode;
use crate::model::input::{Rules, Shape, json_size};
use crate::model::privacy::{self, REDACTED};
use crate::model::{FailureType, StepType};

/// The namespace of step and failure ids derived from trace and span ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6167_656e_7474_7261_6365_722d_6f74_6c70);

/// Content attributes: dropped whatever the privacy mode, as exact keys…
const CONTENT_KEYS: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
    // The Vercel AI SDK's conventions.
    "ai.prompt",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.response.text",
    "ai.response.object",
    "ai.response.toolCalls",
    "ai.response.reasoning",
    // Bodies of HTTP requests and answers, which some instrumentations record.
    "http.request.body",
    "http.response.body",
];

/// …and as prefixes (indexed message lists, retrieved documents).
const CONTENT_PREFIXES: &[&str] = &[
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
    "gen_ai.tool.call.arguments.",
    "gen_ai.tool.call.result.",
    "gen_ai.input.messages.",
    "gen_ai.output.messages.",
    "ai.prompt.",
    "ai.toolCall.",
    "http.request.body.",
    "http.response.body.",
];

pub fn is_content_attribute(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

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

/// Derives a stable id from a trace id, a span id and a purpose: a resent span maps to the same rows.
pub fn derived_id(trace: &[u8], span: &[u8], purpose: &str) -> Uuid {
    let mut name = Vec::with_capacity(trace.len() + span.len() + purpose.len());
    name.extend_from_slice(trace);
    name.extend_from_slice(span);
    name.extend_from_slice(purpose.as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An attribute value as JSON (bytes as hex); NUL characters, which PostgreSQL cannot store, removed.
fn json_of(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Value::String(clean(s)),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(json_of).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|k| (clean(&k.key), k.value.as_ref().map_or(Value::Null, json_of)))
                .collect(),
        ),
        // Bytes can carry anything, content included, and nothing reads them: dropped.
        Some(any_value::Value::BytesValue(_)) => Value::Null,
        // None, and string-table references (used by profiles, not traces).
        _ => Value::Null,
    }
}

fn clean(s: &str) -> String {
    s.replace('\0', "")
}

fn cut(s: &str, max: usize) -> String {
    clean(s).chars().take(max).collect()
}

/// A name or code from a span (agent id, version, environment, step name, failure code, model,
/// scope name): control characters, which would forge log lines, become spaces, and a
/// credential in it is redacted (unless privacy is off) — names are free text too.
fn ident(s: &str, max: usize, mode: PrivacyMode) -> String {
    let mut out: String = s
        .chars()
        .filter(|&c| c != '\0')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    redact_secrets(&mut out, mode);
    out.chars().take(max).collect()
}

/// Redacts the credentials in `text` (unless privacy is off) and counts them; returns how many.
fn redact_secrets(text: &mut String, mode: PrivacyMode) -> u64 {
    if mode == PrivacyMode::Off {
        return 0;
    }
    let n = u64::from(privacy::redact_secrets(text));
    if n > 0 {
        metrics::counter!("privacy_violations_total", "rule" => "secret_value", "action" => "redact")
            .increment(n);
    }
    n
}

/// Attributes by key, later keys winning.
struct Attrs<'a>(HashMap<&'a str, &'a AnyValue>);

impl<'a> Attrs<'a> {
    fn of(list: &'a [KeyValue]) -> Self {
        Attrs(
            list.iter()
                .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?)))
                .collect(),
        )
    }

    fn str(&self, key: &str) -> Option<String> {
        match &self.0.get(key)?.value {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(clean(s)),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> Option<i64> {
        match &self.0.get(key)?.value {
            Some(any_value::Value::IntValue(i)) => Some(*i),
            Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 => Some(*d as i64),
            Some(any_value::Value::StringValue(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k))
    }

    fn first_tokens(&self, keys: &[&str]) -> Option<i32> {
        keys.iter()
            .find_map(|k| self.int(k))
            .map(|n| n.clamp(0, i64::from(i32::MAX)) as i32)
    }
}

fn step_type(attrs: &Attrs) -> StepType {
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

fn time_of(nanos: u64) -> OffsetDateTime {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    crate::model::timestamp::normalize(t).unwrap_or(t)
}

/// The failure of a span in ERROR: type from its step type, code from `error.type` or the
/// exception event, message from the status or the exception (privacy applied).
fn failure_of(
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

fn count_privacy(rule: &'static str, action: &'static str) {
    metrics::counter!("privacy_violations_total", "rule" => rule, "action" => action).increment(1);
}

/// A span's metadata: its attributes but content; privacy applied.
fn metadata_of(span: &Span, scope: &str, rules: &Rules, mapped: &mut Mapped) -> Value {
    let mode = rules.privacy;
    let mut meta = Map::new();
    for kv in &span.attributes {
        let key = clean(&kv.key);
        if is_content_attribute(&key) {
            mapped.dropped_attributes += 1;
            count_privacy("content_key", "drop");
            continue;
        }
        if let Some(any_value::Value::BytesValue(_)) =
            kv.value.as_ref().and_then(|v| v.value.as_ref())
        {
            mapped.dropped_attributes += 1;
            count_privacy("content_key", "drop");
            continue;
        }
        let mut value = kv.value.as_ref().map_or(Value::Null, json_of);
        if mode != PrivacyMode::Off {
            if let Some((rule, _)) = privacy::key_rule(&key, &value) {
                if mode.redacts_attributes() {
                    value = Value::String(REDACTED.into());
                    mapped.redacted_values += 1;
                    count_privacy(rule.as_str(), "redact");
                } else {
                    mapped.dropped_attributes += 1;
                    count_privacy(rule.as_str(), "drop");
                    continue;
                }
            }
            // Inside the value: content keys and credentials at any depth, secret strings.
            let mut scan = privacy::Scan::quiet();
            scan.metadata(&mut value, PrivacyMode::Reject, &mut Vec::new());
            if let Some(first) = scan.violations.first() {
                if mode.redacts_attributes() {
                    let mut redacting = privacy::Scan::quiet();
                    redacting.metadata(&mut value, PrivacyMode::Redact, &mut Vec::new());
                    mapped.redacted_values += u64::from(redacting.redacted);
                    for v in &scan.violations {
                        count_privacy(v.rule.as_str(), "redact");
                    }
                } else {
                    mapped.dropped_attributes += 1;
                    count_privacy(first.rule.as_str(), "drop");
                    continue;
                }
            }
        }
        // Depth counts the metadata object itself, as for native runs.
        if Shape::of(&value).depth + 1 > rules.max_metadata_depth {
            mapped.over_limit_attributes += 1;
            continue;
        }
        meta.insert(key, value);
    }
    // What every step carries besides its attributes: the span kind and the scope's name (left
    // out if it would take more than half the limit).
    let kind = match span.kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    };
    let mut extras = Map::new();
    extras.insert("otel.span.kind".into(), Value::from(kind));
    if !scope.is_empty() {
        extras.insert(
            "otel.scope.name".into(),
            Value::from(ident(scope, 255, rules.privacy)),
        );
        if json_size(&extras) > rules.max_metadata_bytes / 2 {
            extras.remove("otel.scope.name");
        }
    }
    // Over the size limit: the largest attributes go first, until the rest fits. An entry
    // takes its key and value as JSON, a colon and a comma; the extras join after.
    let budget = rules
        .max_metadata_bytes
        .saturating_sub(json_size(&extras) - 1);
    let mut size = json_size(&meta);
    if size > budget {
        let mut by_size: Vec<(usize, String)> = meta
            .iter()
            .map(|(k, v)| (json_size(k) + json_size(v) + 2, k.clone()))
            .collect();
        by_size.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        for (bytes, key) in by_size {
            if size <= budget {
                break;
            }
            meta.remove(&key);
            size = size.saturating_sub(bytes);
            mapped.over_limit_attributes += 1;
        }
    }
    meta.extend(extras);
    Value::Object(meta)
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
                let agent = Root {
                    agent_id: ident(
                        &attrs
                            .str("gen_ai.agent.name")
                            .or_else(|| resource.str("service.name"))
                            .unwrap_or_else(|| "unknown".into()),
                        255,
                        rules.privacy,
                    ),
                    agent_version: ident(
                        &attrs
                            .str("gen_ai.agent.version")
                            .or_else(|| resource.str("service.version"))
                            .unwrap_or_else(|| "unknown".into()),
                        100,
                        rules.privacy,
                    ),
                    environment: ident(
                        &resource
                            .first_str(&["deployment.environment.name", "deployment.environment"])
                            .or_else(|| {
                                attrs.first_str(&[
                                    "deployment.environment.name",
                                    "deployment.environment",
                                ])
                            })
                            .unwrap_or_else(|| "production".into()),
                        50,
                        rules.privacy,
                    ),
                    started_at,
                    ended_at,
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
                trace.fallback.started_at = trace.fallback.started_at.min(started_at);
                trace.fallback.ended_at = trace.fallback.ended_at.max(ended_at);
                let latency = (ended_at - started_at)
                    .whole_milliseconds()
                    .clamp(0, i128::from(i32::MAX)) as i32;
                let metadata = metadata_of(span, scope, rules, &mut mapped);
                let name = if span.name.is_empty() {
                    step_type.as_str().to_owned()
                } else {
                    ident(&span.name, 255, rules.privacy)
                };
                trace.steps.push(SpanStep {
                    step_id: derived_id(&span.trace_id, &span.span_id, "step"),
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
                    failure,
                });
            }
        }
    }
    mapped.traces = traces;
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ..Rules::default()
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

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id(&[1; 16], &[2; 8], "step");
        assert_eq!(a, derived_id(&[1; 16], &[2; 8], "step"));
        assert_ne!(a, derived_id(&[1; 16], &[3; 8], "step"));
        assert_ne!(a, derived_id(&[1; 16], &[2; 8], "failure"));
    }
}

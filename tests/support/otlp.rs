//! Building OTLP export requests: attribute values, spans, a request of one resource and one
//! scope, and the benchmarks' workload of agent traces. Shared by the integration tests
//! (`tests/api`) and the benchmarks (`benches/load/`, `benches/ingest.rs`), which include this
//! file by path.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use uuid::Uuid;

/// A string attribute value.
pub fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

/// An integer attribute value.
pub fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}

pub fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// A span of `trace_id` with id `span_id`, under `parent` (empty for a root), from `start_ns` to
/// `end_ns`.
pub fn span(
    (trace_id, span_id, parent): (&[u8], &[u8], &[u8]),
    name: &str,
    kind: SpanKind,
    (start_ns, end_ns): (u64, u64),
    attributes: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes,
        ..Default::default()
    }
}

/// An export request of `spans`, all from one resource (its `resource` attributes) and one
/// instrumentation scope named `scope`.
pub fn export(resource: Vec<KeyValue>, scope: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: scope.into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// 2026-11-01T00:00:00Z in nanoseconds: when the benchmarks' traces start.
const BENCH_BASE_NS: u64 = 1_761_955_200_000_000_000;

/// The benchmarks' export request: `traces` agent traces of 11 spans each (a root
/// `invoke_agent` and ten children alternating `chat` and `execute_tool`), GenAI conventions.
pub fn otlp_request(traces: usize) -> ExportTraceServiceRequest {
    let mut spans = Vec::with_capacity(traces * 11);
    let base_ns = BENCH_BASE_NS;
    for _ in 0..traces {
        let trace_id = Uuid::new_v4().as_bytes().to_vec();
        let root_id = Uuid::new_v4().as_bytes()[..8].to_vec();
        spans.push(span(
            (&trace_id, &root_id, &[]),
            "invoke_agent support-bot",
            SpanKind::Internal,
            (base_ns, base_ns + 11_000_000_000),
            vec![
                kv("gen_ai.operation.name", s("invoke_agent")),
                kv("gen_ai.agent.name", s("otel-agent")),
            ],
        ));
        for n in 0..10u64 {
            let (op, step_attrs) = match n % 2 {
                0 => (
                    "chat",
                    vec![
                        kv("gen_ai.request.model", s("gpt-4o")),
                        kv("gen_ai.usage.input_tokens", i(812)),
                        kv("gen_ai.usage.output_tokens", i(96)),
                        kv("gen_ai.provider.name", s("openai")),
                    ],
                ),
                _ => (
                    "execute_tool",
                    vec![kv("gen_ai.tool.name", s("search_orders"))],
                ),
            };
            let mut attributes = vec![kv("gen_ai.operation.name", s(op))];
            attributes.extend(step_attrs);
            let start_ns = base_ns + n * 1_000_000_000;
            spans.push(span(
                (&trace_id, &Uuid::new_v4().as_bytes()[..8], &root_id),
                &format!("{op} {n}"),
                SpanKind::Client,
                (start_ns, start_ns + 900_000_000),
                attributes,
            ));
        }
    }
    export(
        vec![
            kv("service.name", s("otel-agent")),
            kv("service.version", s("2.0.1")),
        ],
        "bench",
        spans,
    )
}

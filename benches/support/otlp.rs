//! OTLP export requests for the benchmarks: `traces` agent traces of 11 spans each (a root
//! `invoke_agent` and ten children alternating `chat` and `execute_tool`, GenAI conventions).
//! Included by path from `benches/load/main.rs` and `benches/ingest.rs`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use uuid::Uuid;

/// 2026-11-01T00:00:00Z in nanoseconds.
const BASE_NS: u64 = 1_761_955_200_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `traces` traces of 11 spans each (a root `invoke_agent` and ten children), GenAI conventions.
pub fn otlp_request(traces: usize) -> ExportTraceServiceRequest {
    use any_value::Value::{IntValue, StringValue};
    let mut spans = Vec::with_capacity(traces * 11);
    let base_ns = BASE_NS;
    for _ in 0..traces {
        let trace_id = Uuid::new_v4().as_bytes().to_vec();
        let root_id = Uuid::new_v4().as_bytes()[..8].to_vec();
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: root_id.clone(),
            name: "invoke_agent support-bot".into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: base_ns,
            end_time_unix_nano: base_ns + 11_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", StringValue("invoke_agent".into())),
                kv("gen_ai.agent.name", StringValue("otel-agent".into())),
            ],
            ..Default::default()
        });
        for i in 0..10u64 {
            let (op, step_attrs) = match i % 2 {
                0 => (
                    "chat",
                    vec![
                        kv("gen_ai.request.model", StringValue("gpt-4o".into())),
                        kv("gen_ai.usage.input_tokens", IntValue(812)),
                        kv("gen_ai.usage.output_tokens", IntValue(96)),
                        kv("gen_ai.provider.name", StringValue("openai".into())),
                    ],
                ),
                _ => (
                    "execute_tool",
                    vec![kv("gen_ai.tool.name", StringValue("search_orders".into()))],
                ),
            };
            let mut attributes = vec![kv("gen_ai.operation.name", StringValue(op.into()))];
            attributes.extend(step_attrs);
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: Uuid::new_v4().as_bytes()[..8].to_vec(),
                parent_span_id: root_id.clone(),
                name: format!("{op} {i}"),
                kind: SpanKind::Client as i32,
                start_time_unix_nano: base_ns + i * 1_000_000_000,
                end_time_unix_nano: base_ns + i * 1_000_000_000 + 900_000_000,
                attributes,
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", StringValue("otel-agent".into())),
                    kv("service.version", StringValue("2.0.1".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

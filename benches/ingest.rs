//! Micro-benchmarks of the ingest hot paths: decoding and validating a run, the privacy scan, and
//! decoding and mapping an OTLP export request. `cargo bench --bench ingest` prints the time per
//! run (per request of 10 traces x 11 spans for OTLP).

// (Its table label, `BEHAVIOUR`, is the load bench's.)
#[allow(dead_code)]
#[path = "load/items.rs"]
mod items;
#[path = "../tests/support/otlp.rs"]
mod otlp;

use std::hint::black_box;

use agenttracer::config::{Config, PrivacyMode};
use agenttracer::ingest::otlp::map::map_request;
use agenttracer::model::input::{FieldError, Parsed, RawRun, Rules, parse_run};
use agenttracer::model::privacy::Scan;
use agenttracer::store::batch::BehaviourRow;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};

/// A run of ten steps with about 300 bytes of metadata each, as the performance target assumes.
fn run_body() -> Vec<u8> {
    serde_json::to_vec(&run_value()).unwrap_or_default()
}

/// [`run_body`] with the decisions and quality signals the load bench adds to every run
/// (`benches/load/items.rs`): issue 17's ingest cost of behaviour.
fn run_body_with_items() -> Vec<u8> {
    let mut body = run_value();
    items::add_behaviour(&mut body);
    serde_json::to_vec(&body).unwrap_or_default()
}

fn run_value() -> Value {
    let steps: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "step_id": uuid::Uuid::new_v4(), "seq": i, "step_type": "llm", "name": format!("call-{i}"),
                "latency_ms": 120, "started_at": "2024-06-01T12:00:00Z", "ended_at": "2024-06-01T12:00:01.5Z",
                "metadata": {
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai", "input_tokens": 812,
                    "output_tokens": 96, "temperature": 0.2, "tool_name": "search_orders", "retries": 0,
                    "cache": {"hit": false, "key_hash": "9f2c1e7a5b3d"}, "finish_reasons": ["stop"],
                    "prompt_template_id": "support/v12", "http.status_code": 200
                }
            })
        })
        .collect();
    json!({
        "run_id": uuid::Uuid::new_v4(), "agent_id": "support-bot", "agent_version": "1.4.2",
        "environment": "production", "status": "success",
        "started_at": "2024-06-01T12:00:00Z", "ended_at": "2024-06-01T12:00:20Z", "steps": steps
    })
}

/// The row a valid run's decisions and signals are written in.
fn stored_items(parsed: Result<Parsed, Vec<FieldError>>) -> Option<BehaviourRow> {
    let run = parsed.ok()?.run;
    Some(BehaviourRow::of(&run.decisions, &run.quality_signals))
}

fn benches(c: &mut Criterion) {
    let body = run_body();
    let rules = Rules::from(&Config::default());
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_and_validate_run_10_steps", |b| {
        b.iter(|| {
            let raw = serde_json::from_slice::<RawRun>(black_box(&body));
            black_box(raw.map(|raw| parse_run(raw, vec![Value::from("body")], &rules).is_ok()))
        })
    });
    let with_items = run_body_with_items();
    // Decoded as the service decodes a run (src/model/input/raw.rs), validated, and the items
    // serialized once into the run's row, as the store writes them.
    group.bench_function(
        "decode_and_validate_run_10_steps_3_decisions_3_signals",
        |b| {
            b.iter(|| {
                let raw = serde_json::from_slice::<RawRun>(black_box(&with_items));
                black_box(raw.map(|raw| stored_items(parse_run(raw, vec![], &rules))))
            })
        },
    );
    // The same, decoded as a generic `Value` first, as the service did before: the items' keys
    // and maps built, then taken apart.
    group.bench_function(
        "decode_as_value_and_validate_run_10_steps_3_decisions_3_signals",
        |b| {
            b.iter(|| {
                let value = serde_json::from_slice::<Value>(black_box(&with_items));
                black_box(value.map(|value| stored_items(parse_run(value, vec![], &rules))))
            })
        },
    );
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    group.bench_function("privacy_scan_run_10_steps", |b| {
        b.iter(|| {
            let mut run = value.clone();
            let mut scan = Scan::default();
            for step in run["steps"].as_array_mut().into_iter().flatten() {
                scan.metadata(&mut step["metadata"], PrivacyMode::Reject, &mut Vec::new());
            }
            black_box(scan.violations.len())
        })
    });
    group.throughput(Throughput::Elements(110));
    let otlp = otlp::otlp_request(10).encode_to_vec();
    group.bench_function("otlp_decode_and_map_10_traces_of_11_spans", |b| {
        b.iter(|| {
            let request =
                ExportTraceServiceRequest::decode(black_box(otlp.as_slice())).unwrap_or_default();
            black_box(
                map_request(&request, &Rules::from(&Config::default()))
                    .traces
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);

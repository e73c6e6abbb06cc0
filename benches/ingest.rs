//! Micro-benchmarks of the ingest hot path: decoding and validating a run, and the privacy scan.
//! `cargo bench --bench ingest` prints the time per run.

use std::hint::black_box;

use agenttracer::config::PrivacyMode;
use agenttracer::model::input::{Rules, parse_run};
use agenttracer::model::privacy::Scan;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

/// A run of ten steps with about 300 bytes of metadata each, as the performance target assumes.
fn run_body() -> Vec<u8> {
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
    serde_json::to_vec(&json!({
        "run_id": uuid::Uuid::new_v4(), "agent_id": "support-bot", "agent_version": "1.4.2",
        "environment": "production", "status": "success",
        "started_at": "2024-06-01T12:00:00Z", "ended_at": "2024-06-01T12:00:20Z", "steps": steps
    }))
    .unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let body = run_body();
    let rules = Rules {
        max_steps: 10_000,
        privacy: PrivacyMode::Reject,
    };
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_and_validate_run_10_steps", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&body)).unwrap_or_default();
            black_box(parse_run(value, vec![Value::from("body")], &rules).is_ok())
        })
    });
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
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);

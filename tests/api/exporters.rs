//! Real OpenTelemetry exporters (the Python SDK's OTLP exporters over HTTP/protobuf, gRPC and
//! HTTP/JSON) send an agent trace; it is read back through the query API. The environments are
//! made by scripts/venvs.sh (run by scripts/test.sh).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

const KEY: &str = "exporter-key-123";

fn python(flavour: &str) -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(".venv-otel-{flavour}/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/venvs.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

/// Runs tests/otel/send_trace.py with `exporter` against `endpoint`; returns the run id.
fn send(flavour: &str, exporter: &str, endpoint: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otel/send_trace.py");
    let out = Command::new(python(flavour))
        .arg(script)
        .arg(exporter)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            format!("x-api-key={KEY}"),
        )
        .env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10")
        .output()
        .expect("python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{exporter} failed: {stderr}");
    assert!(!stderr.contains("Failed to export"), "{exporter}: {stderr}");
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    uuid::Uuid::parse_str(&hex).expect("trace id").to_string()
}

async fn check_mapping(exporter: &str, flavour: &str, via_grpc: bool) {
    let app = spawn_app_with_keys(&[KEY], &[]).await;
    let endpoint = if via_grpc {
        app.grpc.clone()
    } else {
        format!("{}/v1/traces", app.ingest)
    };
    let (flavour, exporter_name) = (flavour.to_owned(), exporter.to_owned());
    let run_id = tokio::task::spawn_blocking(move || send(&flavour, &exporter_name, &endpoint))
        .await
        .unwrap();

    let res = app.get_run(&run_id).await;
    assert_eq!(res.status(), 200, "{exporter}: run {run_id} not stored");
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["source"], "otlp");
    assert_eq!(run["agent_id"], format!("py-{exporter}"));
    assert_eq!(run["agent_version"], "0.9.1");
    assert_eq!(run["environment"], "ci");
    assert_eq!(run["status"], "partial", "{run}");
    let steps = run["steps"].as_array().unwrap();
    let shape: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["step_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("chat gpt-4o", "llm"),
            // A tool step is named by its tool (`gen_ai.tool.name`), not its span.
            ("search", "tool"),
            ("retrieve docs", "retrieve"),
            ("llm call", "llm")
        ],
        "{exporter}"
    );
    assert_eq!(
        model_and_tokens(&steps[0]),
        (Some("gpt-4o"), Some(120), Some(30))
    );
    assert_eq!(
        model_and_tokens(&steps[3]),
        (Some("claude-x"), Some(50), Some(7))
    );
    let stored = serde_json::to_string(&run).unwrap();
    assert!(
        !stored.contains("secret"),
        "{exporter}: content stored: {stored}"
    );
    let failures = run["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{run}");
    assert_eq!(failures[0]["failure_type"], "tool");
    // Python's TimeoutError is a well-known error: our code, the class kept as sent.
    assert_eq!(failures[0]["failure_code"], "timeout");
    assert_eq!(failures[0]["metadata"]["exception.type"], "TimeoutError");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("search timed out")
    );
    assert_eq!(failures[0]["step_id"], steps[1]["step_id"]);
}

#[tokio::test]
async fn the_python_http_protobuf_exporter() {
    check_mapping("http-proto", "proto", false).await;
}

#[tokio::test]
async fn the_python_grpc_exporter() {
    check_mapping("grpc", "proto", true).await;
}

#[tokio::test]
async fn the_python_http_json_exporter() {
    check_mapping("http-json", "json", false).await;
}

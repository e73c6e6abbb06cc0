//! Issue 19: what real instrumentation libraries send, replayed from the OTLP/JSON fixtures
//! captured from a run of each (tests/fixtures/otlp/README.md names the library and version of
//! every file).

use serde_json::Value;

use crate::helpers::*;

/// The fixture `name` (a file of tests/fixtures/otlp/).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/otlp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Posts fixture `name` as OTLP/JSON; every span accepted.
async fn replay(app: &TestApp, name: &str) {
    let res = app
        .post_raw(
            "/v1/traces",
            fixture(name),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(res.status(), 200, "{name}");
    let body: Value = res.json().await.unwrap();
    let rejected = body["partialSuccess"]["rejectedSpans"]
        .as_str()
        .unwrap_or("0");
    assert_eq!(rejected, "0", "{name}: {body}");
}

/// Every stored step's metadata, as text, with its span name.
fn step_metadata(app: &TestApp) -> Vec<(String, Value)> {
    let rows = app
        .db
        .psql("SELECT json_agg(json_build_array(name, metadata)) FROM agent_steps");
    let rows: Value = serde_json::from_str(rows.trim()).unwrap();
    each(&rows, |r| (r[0].as_str().unwrap().to_owned(), r[1].clone()))
}

/// The fake prompts and answers of the fixtures, found anywhere in the database's rows.
fn content_found(app: &TestApp) -> String {
    let tables = ["agent_runs", "agent_steps", "agent_failures"];
    let mut found = String::new();
    for table in tables {
        for text in ["weather in Paris", "Paris is sunny", "fake answer"] {
            let n = app.db.psql(&format!(
                "SELECT count(*) FROM {table} t WHERE t::text LIKE '%{text}%'"
            ));
            if n.trim() != "0" {
                found.push_str(&format!("{table}: {text} ({}) ", n.trim()));
            }
        }
    }
    found
}

#[tokio::test]
async fn response_measurements_and_request_settings_are_kept_and_content_never_stored() {
    let app = spawn_app().await;
    for name in [
        "genai-2.4b0-util-0.4b0.json",
        "genai-2.4b0-util-0.4b0-latest-experimental.json",
        "genai-2.4b0-util-1.1b0-latest-experimental.json",
        "openinference-0.1.66.json",
        "openllmetry-0.62.4.json",
        "openllmetry-0.38.7.json",
    ] {
        replay(&app, name).await;
    }
    let steps = step_metadata(&app);
    let kept = |key: &str| {
        steps
            .iter()
            .filter_map(|(_, m)| m.get(key))
            .cloned()
            .collect::<Vec<Value>>()
    };
    // The four of the issue (measurement and configuration, not content), and the older
    // spellings of the same.
    for key in [
        "openai.response.service_tier",
        "openai.response.system_fingerprint",
        "gen_ai.openai.response.system_fingerprint",
        "gen_ai.request.reasoning_effort",
        "gen_ai.openai.response.service_tier",
        "openai.request.service_tier",
        "gen_ai.openai.system_fingerprint",
    ] {
        let values = kept(key);
        assert!(!values.is_empty(), "{key} dropped");
        // As sent (`default`, `fp_…`, `low`), not redacted.
        assert!(
            values.iter().all(|v| v
                .as_str()
                .is_some_and(|s| !s.is_empty() && s != "[REDACTED]")),
            "{key}: {values:?}"
        );
    }
    // The content the libraries captured is stored nowhere.
    assert_eq!(content_found(&app), "");
}

#[tokio::test]
async fn a_tool_step_is_named_by_its_tool_whatever_the_library_calls_its_span() {
    let app = spawn_app().await;
    // (library fixture, the tool span's own name in it)
    let cases = [
        ("genai-2.4b0-util-0.4b0.json", "execute_tool get_weather"),
        (
            "genai-2.4b0-util-1.1b0-latest-experimental.json",
            "execute_tool get_weather",
        ),
        ("openinference-0.1.66.json", "get_weather"),
        ("openllmetry-0.62.4.json", "get_weather.tool"),
        ("openllmetry-0.38.7.json", "get_weather.tool"),
    ];
    for (name, span_name) in cases {
        app.db.psql("TRUNCATE agent_runs CASCADE");
        replay(&app, name).await;
        let tools = app.db.psql(
            "SELECT json_agg(json_build_array(name, metadata->>'otel.span.name')) \
             FROM agent_steps WHERE step_type = 'tool'",
        );
        let tools: Value = serde_json::from_str(tools.trim()).unwrap();
        let tools = each(&tools, |t| (t[0].clone(), t[1].clone()));
        // The span's own name stays in the metadata when it differs from the tool's.
        let kept = match span_name {
            "get_weather" => Value::Null,
            other => Value::from(other),
        };
        assert_eq!(tools, [(Value::from("get_weather"), kept)], "{name}");
    }
}

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

/// Every fixture, with what each sent for the 429 (tests/fixtures/otlp/README.md, "The 429"):
/// the failed model-call step's `error.type` and its exception event's `exception.type`.
const RATE_LIMITED: [(&str, Option<&str>, Option<&str>); 6] = [
    ("genai-2.4b0-util-0.4b0.json", Some("RateLimitError"), None),
    (
        "genai-2.4b0-util-0.4b0-latest-experimental.json",
        Some("RateLimitError"),
        None,
    ),
    (
        "genai-2.4b0-util-1.1b0-latest-experimental.json",
        Some("<class 'openai.RateLimitError'>"),
        None,
    ),
    (
        "openinference-0.1.66.json",
        None,
        Some("openai.RateLimitError"),
    ),
    (
        "openllmetry-0.62.4.json",
        Some("RateLimitError"),
        Some("openai.RateLimitError"),
    ),
    // Neither: only the status message `Error code: 429 - …`.
    ("openllmetry-0.38.7.json", None, None),
];

#[tokio::test]
async fn one_rate_limit_is_one_failure_code_whatever_the_library_and_what_was_sent_is_kept() {
    let app = spawn_app().await;
    for (name, error_type, exception_type) in RATE_LIMITED {
        app.db.psql("TRUNCATE agent_runs CASCADE");
        replay(&app, name).await;
        let runs = app.get_json(&app.query, "/v1/runs?status=failure").await;
        let failures: Vec<&Value> = runs
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["failures"].as_array().unwrap())
            .collect();
        assert_eq!(failures.len(), 1, "{name}: {runs}");
        let f = failures[0];
        assert_eq!(f["failure_type"], "model", "{name}");
        assert_eq!(f["failure_code"], "rate_limited", "{name}: {f}");
        // What the library sent, kept as sent.
        let mut sent = serde_json::Map::new();
        if let Some(t) = error_type {
            sent.insert("error.type".into(), t.into());
        }
        if let Some(t) = exception_type {
            sent.insert("exception.type".into(), t.into());
        }
        // Every library's message has the SDK's `Error code: 429 - …`.
        sent.insert("http.response.status_code".into(), 429.into());
        assert_eq!(f["metadata"], Value::Object(sent), "{name}");
        assert!(
            f["message"].as_str().unwrap().contains("429"),
            "{name}: {f}"
        );
    }
    // All six at once: one cause, one code.
    app.db.psql("TRUNCATE agent_runs CASCADE");
    for (name, ..) in RATE_LIMITED {
        replay(&app, name).await;
    }
    let stats = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(
        stats["failure_breakdown"],
        serde_json::json!({"model/rate_limited": 6}),
        "{stats}"
    );
    assert_eq!(content_found(&app), "");
}

/// The steps of the runs whose steps are exactly `types` (in order), as
/// `(fixture's step type, model, input tokens, output tokens)`.
fn steps_of_runs_shaped(app: &TestApp, types: &str) -> Vec<(String, Value, Value, Value)> {
    let rows = app.db.psql(&format!(
        "SELECT coalesce(json_agg(json_build_array(s.step_type, s.model, s.input_tokens, \
         s.output_tokens) ORDER BY s.run_id, s.seq), '[]') FROM agent_steps s WHERE s.run_id IN \
         (SELECT run_id FROM agent_steps GROUP BY run_id \
          HAVING string_agg(step_type, ',' ORDER BY seq) = '{types}')"
    ));
    let rows: Value = serde_json::from_str(rows.trim()).unwrap();
    each(&rows, |r| {
        (
            r[0].as_str().unwrap().to_owned(),
            r[1].clone(),
            r[2].clone(),
            r[3].clone(),
        )
    })
}

#[tokio::test]
async fn a_streamed_completion_and_an_embeddings_call_are_steps_with_model_and_tokens() {
    let app = spawn_app().await;
    for (name, ..) in RATE_LIMITED {
        app.db.psql("TRUNCATE agent_runs CASCADE");
        replay(&app, name).await;
        // The embeddings scenario: one retrieve step, the embedding model, 8 input tokens.
        let embeddings = steps_of_runs_shaped(&app, "retrieve");
        let model = embeddings
            .first()
            .and_then(|s| s.1.as_str())
            .unwrap_or_default();
        assert!(
            model.starts_with("text-embedding-3-small"),
            "{name}: {embeddings:?}"
        );
        assert_eq!(embeddings[0].2, 8, "{name}: {embeddings:?}");
        assert_eq!(embeddings.len(), 1, "{name}: {embeddings:?}");
        // The stream scenario: one llm step of gpt-4o-mini that succeeded (plain is o4-mini);
        // usage from the stream's last chunk. OpenLLMetry 0.38.7 records none for a stream.
        let streamed: Vec<_> = steps_of_runs_shaped(&app, "llm")
            .into_iter()
            .filter(|s| s.1.as_str().is_some_and(|m| m.starts_with("gpt-4o-mini")))
            .collect();
        assert_eq!(streamed.len(), 1, "{name}: {streamed:?}");
        let tokens = (streamed[0].2.clone(), streamed[0].3.clone());
        if name == "openllmetry-0.38.7.json" {
            assert_eq!(tokens, (Value::Null, Value::Null), "{name}");
        } else {
            assert_eq!(tokens, (Value::from(21), Value::from(9)), "{name}");
        }
    }
    assert_eq!(content_found(&app), "");
}

#[tokio::test]
async fn tool_definitions_are_kept_in_every_convention_within_the_metadata_limit() {
    let app = spawn_app().await;
    // (fixture, an attribute holding a tool definition, as each library writes it)
    let cases = [
        ("genai-2.4b0-util-0.4b0.json", "gen_ai.tool.description"),
        ("openllmetry-0.62.4.json", "gen_ai.tool.definitions"),
        ("openinference-0.1.66.json", "llm.tools.0.tool.json_schema"),
        ("openinference-0.1.66.json", "tool.parameters"),
        ("openinference-0.1.66.json", "tool.description"),
        ("openllmetry-0.38.7.json", "llm.request.functions.0.name"),
        (
            "openllmetry-0.38.7.json",
            "llm.request.functions.0.parameters",
        ),
    ];
    for (name, key) in cases {
        app.db.psql("TRUNCATE agent_runs CASCADE");
        replay(&app, name).await;
        let kept: Vec<Value> = step_metadata(&app)
            .into_iter()
            .filter_map(|(_, m)| m.get(key).cloned())
            .collect();
        assert!(!kept.is_empty(), "{name}: {key} dropped");
        assert!(
            // The tool's name or description, or its schema's one parameter.
            kept.iter().all(|v| {
                let text = v.to_string();
                text.contains("weather") || text.contains("city")
            }),
            "{name}: {key}: {kept:?}"
        );
    }
    assert_eq!(content_found(&app), "");

    // Bounded by the step's metadata limit: over it, the largest attributes (the definitions)
    // go first, and the exporter is told.
    let app = spawn_app_with(|c| c.ingest.max_metadata_bytes = 700).await;
    let res = app
        .post_raw(
            "/v1/traces",
            fixture("openllmetry-0.62.4.json"),
            &[("content-type", "application/json")],
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let warning = body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or("");
    assert!(warning.contains("ingest.max_metadata_bytes"), "{body}");
    let steps = step_metadata(&app);
    assert!(
        steps
            .iter()
            .all(|(_, m)| m.get("gen_ai.tool.definitions").is_none())
    );
    assert!(
        steps
            .iter()
            .any(|(_, m)| m.get("gen_ai.request.model").is_some())
    );
}

/// Every stored row but the times the database sets, as text: runs, steps, failures.
fn stored_rows(app: &TestApp) -> String {
    app.db.psql(
        "SELECT json_build_array( \
           (SELECT json_agg(json_build_array(run_id, agent_id, status, started_at, ended_at, \
              session_id, cost_nanos) ORDER BY run_id) FROM agent_runs), \
           (SELECT json_agg(json_build_array(step_id, name, step_type, model, input_tokens, \
              output_tokens, metadata) ORDER BY step_id) FROM agent_steps), \
           (SELECT json_agg(json_build_array(failure_id, failure_code, message, metadata) \
              ORDER BY failure_id) FROM agent_failures))",
    )
}

#[tokio::test]
async fn each_fixture_stores_alike_over_json_protobuf_and_grpc() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let app = spawn_app().await;
    for (name, ..) in RATE_LIMITED {
        app.db.psql("TRUNCATE agent_runs CASCADE");
        replay(&app, name).await;
        let over_json = stored_rows(&app);
        assert!(over_json.contains("rate_limited"), "{name}: {over_json}");
        let request: ExportTraceServiceRequest =
            serde_json::from_slice(&fixture(name)).expect("an OTLP/JSON body");
        app.db.psql("TRUNCATE agent_runs CASCADE");
        assert_eq!(crate::otlp::post_proto(&app, &request).await.status(), 200);
        assert_eq!(stored_rows(&app), over_json, "{name}: protobuf");
        app.db.psql("TRUNCATE agent_runs CASCADE");
        let mut client = TraceServiceClient::connect(app.grpc.clone()).await.unwrap();
        client.export(request).await.expect("a gRPC export");
        assert_eq!(stored_rows(&app), over_json, "{name}: gRPC");
    }
}

//! Every limit on what a client may send is configurable and answered clearly: 413 over the
//! body size, 422 naming the field over the others; the valid runs of a batch are still stored.

use serde_json::{Value, json};

use crate::helpers::*;

/// The single problem of a 422, as `(loc, type, msg)`.
async fn only_error(res: reqwest::Response) -> (String, String, String) {
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_array().unwrap();
    assert_eq!(detail.len(), 1, "{body}");
    (
        detail[0]["loc"].to_string(),
        detail[0]["type"].as_str().unwrap().to_owned(),
        detail[0]["msg"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn each_limit_is_configurable_and_answered_413_or_422_naming_the_field() {
    let app = spawn_app_with(|c| {
        c.server.max_body_bytes = 20_000;
        c.ingest.max_batch_runs = 3;
        c.ingest.max_steps_per_run = 5;
        c.ingest.max_metadata_depth = 3;
        c.ingest.max_metadata_bytes = 500;
        c.ingest.max_string_chars = 100;
    })
    .await;

    // Body size, counted while reading: 413 with a detail.
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"]["note"] = json!("x".repeat(30_000));
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 413);
    let detail = res.json::<Value>().await.unwrap()["detail"].to_string();
    assert!(detail.contains("20000"), "{detail}");

    // Steps per run.
    let (loc, kind, msg) = only_error(app.post_run(&sample_run(6, "success")).await).await;
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        (r#"["body","steps"]"#, "too_long")
    );
    assert!(msg.contains("ingest.max_steps_per_run"), "{msg}");
    assert_eq!(app.post_run(&sample_run(5, "success")).await.status(), 201);

    // Metadata depth: the metadata object is level 1.
    let mut run = sample_run(2, "success");
    run["steps"][1]["metadata"] = json!({"a": {"b": {"c": {}}}});
    let (loc, kind, msg) = only_error(app.post_run(&run).await).await;
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        (r#"["body","steps",1,"metadata"]"#, "metadata_too_deep")
    );
    assert!(msg.contains("ingest.max_metadata_depth"), "{msg}");
    run["steps"][1]["metadata"] = json!({"a": {"b": {"c": 1}}});
    assert_eq!(app.post_run(&run).await.status(), 201);

    // Metadata size, as compact JSON.
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"] = json!({"note": "y".repeat(600)});
    let (loc, kind, msg) = only_error(app.post_run(&run).await).await;
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        (r#"["body","steps",0,"metadata"]"#, "metadata_too_large")
    );
    assert!(msg.contains("ingest.max_metadata_bytes"), "{msg}");

    // String length of a failure message, in characters.
    let mut run = sample_run(1, "failure");
    run["failure"]["message"] = json!("é".repeat(101));
    let (loc, kind, _) = only_error(app.post_run(&run).await).await;
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        (r#"["body","failure","message"]"#, "string_too_long")
    );
    run["failure"]["message"] = json!("é".repeat(100));
    assert_eq!(app.post_run(&run).await.status(), 201);

    // Runs per batch: the whole batch is refused, naming the setting.
    let runs: Vec<Value> = (0..4).map(|_| sample_run(1, "success")).collect();
    let (loc, kind, msg) = only_error(app.post_batch(&runs).await).await;
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        (r#"["body","runs"]"#, "too_long")
    );
    assert!(msg.contains("ingest.max_batch_runs"), "{msg}");

    // Within a batch a run over a limit is a 422 entry; the others are stored.
    let mut runs: Vec<Value> = (0..3).map(|_| sample_run(1, "success")).collect();
    runs[1]["steps"][0]["metadata"] = json!({"a": {"b": {"c": {}}}});
    let res = app.post_batch(&runs).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(batch_statuses(&body), [201, 422, 201]);
    assert_eq!(
        body["results"][1]["detail"][0]["loc"],
        json!(["body", "runs", 1, "steps", 0, "metadata"])
    );
    assert_eq!(app.count("agent_runs", &run_id_of(&runs[0])), 1);
    assert_eq!(app.count("agent_runs", &run_id_of(&runs[1])), 0);
    assert_eq!(app.count("agent_runs", &run_id_of(&runs[2])), 1);
}

#[tokio::test]
async fn the_default_limits_let_ordinary_runs_through() {
    let app = spawn_app().await;
    let mut run = sample_run(3, "failure");
    run["steps"][0]["metadata"] = json!({"tool": {"args_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    run["failure"]["message"] = json!("m".repeat(10_000));
    assert_eq!(app.post_run(&run).await.status(), 201);
}

/// Found by schemathesis: a NUL in a text filter reached PostgreSQL ("invalid byte sequence")
/// and was a 500.
#[tokio::test]
async fn a_nul_in_a_query_filter_is_422_not_500() {
    let app = spawn_app().await;
    for path in [
        "/v1/runs?environment=%C3%8Cf%00%0D&status=failure",
        "/v1/runs?agent_id=a%00",
        "/v1/stats?failure_code=%00",
        "/v1/stats?agent_version=x%00y",
    ] {
        let res = app.get(&app.query, path).await;
        assert_eq!(res.status(), 422, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["detail"][0]["type"], "string_nul", "{path}: {body}");
    }
}

//! `POST /v1/runs/batch`: per-run results in input order, nothing valid lost.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn valid_runs_are_stored_even_when_others_are_not() {
    let app = spawn_app().await;
    let good = sample_run(3, "success");
    let mut bad = sample_run(2, "success");
    bad["steps"][1]["latency_ms"] = json!(-5);
    let also_good = sample_run(0, "partial");
    let res = app
        .post_batch(&[good.clone(), bad.clone(), also_good.clone()])
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(batch_statuses(&body), [201, 422, 201]);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["run_id"], good["run_id"]);
    assert_eq!(results[1]["run_id"], bad["run_id"]);
    assert_eq!(
        results[1]["detail"][0]["loc"],
        json!(["body", "runs", 1, "steps", 1, "latency_ms"])
    );
    assert!(results[0].get("detail").is_none());
    assert_eq!(app.count("agent_steps", &run_id_of(&good)), 3);
    assert_eq!(app.count("agent_runs", &run_id_of(&also_good)), 1);
    assert_eq!(app.count("agent_runs", &run_id_of(&bad)), 0);
}

#[tokio::test]
async fn known_runs_repeats_and_running_runs() {
    let app = spawn_app().await;
    let stored = sample_run(1, "success");
    let mut running = sample_run(1, "running");
    app.post_run(&stored).await;
    app.post_run(&running).await;
    running["status"] = json!("success");
    running["steps"] = sample_run(2, "success")["steps"].clone();
    let fresh = sample_run(1, "success");
    let body: Value = app
        .post_batch(&[
            stored.clone(),
            running.clone(),
            fresh.clone(),
            fresh.clone(),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch_statuses(&body), [200, 200, 201, 200]);
    assert_eq!(
        app.count("agent_steps", &run_id_of(&running)),
        2,
        "the running run was replaced"
    );
    assert_eq!(
        app.db.psql(&format!(
            "SELECT status FROM agent_runs WHERE run_id = '{}'",
            run_id_of(&running)
        )),
        "success"
    );
    assert_eq!(app.count("agent_steps", &run_id_of(&fresh)), 1);
}

#[tokio::test]
async fn one_run_breaking_a_statement_does_not_lose_the_others() {
    let app = spawn_app().await;
    let first = sample_run(2, "success");
    let mut clash = sample_run(2, "success");
    clash["steps"][0]["step_id"] = first["steps"][1]["step_id"].clone();
    let last = sample_run(2, "success");
    let body: Value = app
        .post_batch(&[first.clone(), clash.clone(), last.clone()])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch_statuses(&body), [201, 422, 201]);
    assert_eq!(
        body["results"][1]["detail"][0]["loc"],
        json!(["body", "runs", 1, "steps"])
    );
    assert_eq!(app.count("agent_runs", &run_id_of(&first)), 1);
    assert_eq!(app.count("agent_runs", &run_id_of(&clash)), 0);
    assert_eq!(app.count("agent_steps", &run_id_of(&last)), 2);
}

#[tokio::test]
async fn a_large_batch_is_stored_whole() {
    let app = spawn_app().await;
    let runs: Vec<Value> = (0..300)
        .map(|i| sample_run(i % 7, if i % 3 == 0 { "failure" } else { "success" }))
        .collect();
    let body: Value = app.post_batch(&runs).await.json().await.unwrap();
    assert!(batch_statuses(&body).iter().all(|&s| s == 201));
    assert_eq!(app.db.psql("SELECT count(*) FROM agent_runs"), "300");
    let steps: usize = (0..300).map(|i| i % 7).sum();
    assert_eq!(
        app.db.psql("SELECT count(*) FROM agent_steps"),
        steps.to_string()
    );
    assert_eq!(app.db.psql("SELECT count(*) FROM agent_failures"), "100");
    let metrics = app.get_metrics().await;
    assert!(metrics.contains("runs_ingested_total"), "{metrics}");
}

#[tokio::test]
async fn batch_shape_and_size_limits() {
    let app = spawn_app_with(|c| c.ingest.max_batch_runs = 2).await;
    let runs = [
        sample_run(0, "success"),
        sample_run(0, "success"),
        sample_run(0, "success"),
    ];
    let res = app.post_batch(&runs).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "runs"]));
    assert_eq!(body["detail"][0]["type"], "too_long");

    let res = app
        .post_raw("/v1/runs/batch", br#"{"runs": {}}"#.to_vec(), &[])
        .await;
    assert_eq!(res.status(), 422);
    let res = app.post_raw("/v1/runs/batch", b"{}".to_vec(), &[]).await;
    assert_eq!(res.status(), 422);
    let res = app.post_batch(&[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"results": []}));
    let res = app.post_batch(&[json!("not a run")]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], 422);
    assert_eq!(body["results"][0]["run_id"], Value::Null);
}

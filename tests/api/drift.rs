//! Behaviour drift end to end against PostgreSQL (docs/drift.md): a baseline built from a window
//! of runs through the original UI's body, detection of a shifted decision mix with the
//! original's severities (and none for an unchanged one), no duplicate findings however often
//! and by however many processes detection runs, a schedule that fires by itself, and every
//! `/v1/drift…` route's shapes, parameters and status codes.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::helpers::*;

pub const AGENT: &str = "drift-bot";

fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// `api` runs choosing the API and `cache` runs choosing the cache, of `version`, started one
/// second apart from `from`, each lasting one second, each with a schema signal.
pub fn runs(version: &str, from: OffsetDateTime, api: usize, cache: usize) -> Vec<Value> {
    (0..api + cache)
        .map(|i| {
            let started = from + Duration::from_secs(i as u64);
            let mut run = sample_run(1, "success");
            run["agent_id"] = json!(AGENT);
            run["agent_version"] = json!(version);
            run["environment"] = json!("production");
            run["started_at"] = json!(iso(started));
            run["ended_at"] = json!(iso(started + Duration::from_secs(1)));
            let (selected, reason) = match i < api {
                true => ("api", "fresh_data_required"),
                false => ("cache", "cached_data_sufficient"),
            };
            run["decisions"] = json!([{"decision_type": "tool_selection", "selected": selected,
                "reason_code": reason, "candidates": ["api", "cache"], "confidence": 0.8}]);
            run["quality_signals"] = json!([{"signal_type": "schema_valid",
                "signal_code": "full_match", "value": true}]);
            run
        })
        .collect()
}

pub async fn send(app: &TestApp, runs: Vec<Value>) {
    let res = app.post_batch(&runs).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(batch_statuses(&body).iter().all(|&s| s == 201), "{body}");
}

/// The body the original UI's baseline form posts.
fn baseline_body(version: &str, start: OffsetDateTime, end: OffsetDateTime) -> Value {
    json!({
        "agent_id": AGENT, "agent_version": version, "environment": "production",
        "baseline_type": "version", "window_start": iso(start), "window_end": iso(end),
        "min_sample_size": 100, "approved_by": "oncall@example.com",
        "description": "first week of the release", "auto_activate": true
    })
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let res = app.post_json_with(path, body, |r| r).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(&app.query, path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A baseline of `version` from 200 runs (130 API, 70 cache) three days ago, active; then 200
/// runs (api, cache) in the last hour: the observation window of a detection now. (The UI's
/// tests show it too.)
pub async fn seed(app: &TestApp, version: &str, observed: (usize, usize)) -> Value {
    let now = OffsetDateTime::now_utc();
    let past = now - Duration::from_secs(3 * 86_400);
    send(app, runs(version, past, 130, 70)).await;
    let body = baseline_body(version, past, past + Duration::from_secs(3600));
    let (status, baseline) = post(app, "/v1/drift/baselines", &body).await;
    assert_eq!(status, 201, "{baseline}");
    send(
        app,
        runs(
            version,
            now - Duration::from_secs(3000),
            observed.0,
            observed.1,
        ),
    )
    .await;
    baseline
}

fn stored_drift(app: &TestApp) -> i64 {
    app.db
        .psql("SELECT count(*) FROM behavior_drift")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_shifted_decision_mix_drifts_with_the_originals_severities_once() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let baseline = seed(&app, "2.0.0", (92, 108)).await;
    assert_eq!(baseline["is_active"], true);
    assert_eq!(baseline["approved_by"], "oncall@example.com");
    assert!(baseline["approved_at"].is_string());
    assert_eq!(baseline["baseline_type"], "version");

    // The profile the baseline froze: the original's shares, and our counts.
    let path = format!(
        "/v1/drift/profiles/{}",
        baseline["profile_id"].as_str().unwrap()
    );
    let (status, profile) = get(&app, &path).await;
    assert_eq!(status, 200);
    assert_eq!(profile["sample_size"], 200);
    assert_eq!(
        profile["decision_distributions"],
        json!({"tool_selection": {"api": 0.65, "cache": 0.35}})
    );
    assert_eq!(
        profile["decision_counts"],
        json!({"tool_selection": {"api": 130, "cache": 70}})
    );
    assert_eq!(
        profile["signal_distributions"],
        json!({"schema_valid": {"full_match": 1.0}})
    );
    assert_eq!(profile["latency_stats"]["p95_run_duration_ms"], 1000.0);
    assert_eq!(profile["latency_stats"]["sample_count"], 200);
    // Naive UTC timestamps, as the original prints them.
    assert!(!profile["window_start"].as_str().unwrap().ends_with('Z'));

    // An unchanged mix of another version: no drift.
    seed(&app, "2.0.1", (130, 70)).await;

    let (status, report) = post(&app, "/v1/drift/detect", &Value::Null).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["checked"], 2);
    let found = &report["detected"];
    assert_eq!(found.as_array().unwrap().len(), 2, "{report}");
    let by_metric = |metric: &str| {
        found
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["metric"] == metric)
            .cloned()
            .unwrap_or_else(|| panic!("{metric} in {report}"))
    };
    let api = by_metric("tool_selection.api");
    assert_eq!(api["agent_version"], "2.0.0");
    assert_eq!(api["drift_type"], "decision");
    assert_eq!(api["severity"], "medium");
    assert_eq!(api["test_method"], "chi_square");
    assert!(
        (api["delta_percent"].as_f64().unwrap() + 29.23).abs() < 0.01,
        "{api}"
    );
    assert!((api["baseline_value"].as_f64().unwrap() - 0.65).abs() < 1e-9);
    assert!((api["observed_value"].as_f64().unwrap() - 0.46).abs() < 1e-9);
    // χ² of 130/70 against 92/108 on 1 degree of freedom: 14.62, p = 1.3e-4 (the original's
    // test on shares × 1000 said 2e-36 whatever the number of runs).
    let p = api["significance"].as_f64().unwrap();
    assert!((p - 1.317e-4).abs() < 1e-6, "{p}");
    assert_eq!(api["observation_sample_size"], 200);
    let cache = by_metric("tool_selection.cache");
    assert_eq!(cache["severity"], "high");
    assert!((cache["delta_percent"].as_f64().unwrap() - 54.29).abs() < 0.01);

    // Detecting again (the request's pass, or the command's) stores nothing new.
    let (_, again) = post(&app, "/v1/drift/detect", &Value::Null).await;
    assert_eq!(again["detected"], json!([]));
    assert_eq!(again["still_open"], 2);
    let out = agenttracer_command(&app, &["drift", "detect"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["checked"].as_i64(), report["still_open"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(stored_drift(&app), 2);

    // Resolve: 200, then 400; the finding may then be recorded afresh.
    let id = api["drift_id"].as_str().unwrap();
    let path = format!("/v1/drift/{id}/resolve");
    let (status, resolved) = post(&app, &path, &Value::Null).await;
    assert_eq!(status, 200, "{resolved}");
    assert!(resolved["resolved_at"].is_string());
    let (status, body) = post(&app, &path, &Value::Null).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Drift event is already resolved");
    let (_, third) = post(&app, "/v1/drift/detect", &Value::Null).await;
    assert_eq!(third["detected"].as_array().unwrap().len(), 1, "{third}");
    assert_eq!(stored_drift(&app), 3);
}

#[tokio::test]
async fn detection_runs_on_its_own_and_two_ingest_processes_record_each_finding_once() {
    let app = spawn_app_with(|c| c.drift.interval_s = 1).await;
    // A second ingest process on the same database, on the same schedule.
    let db = TestDb {
        admin: app.db.admin.clone(),
        name: app.db.name.clone(),
    };
    let mut config = test_config(&db);
    config.server.role = agenttracer::role::Role::Ingest;
    config.drift.interval_s = 1;
    let other = spawn_app_on(db, config).await;

    seed(&app, "3.0.0", (92, 108)).await;
    let found = eventually(Duration::from_secs(20), || async {
        stored_drift(&app) >= 2
    })
    .await;
    assert!(found, "no scheduled detection stored the drift");
    // Several more passes of both processes.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(stored_drift(&app), 2);
    let seen: i64 = app
        .db
        .psql("SELECT count(*) FROM behavior_drift WHERE last_detected_at > detected_at")
        .parse()
        .unwrap();
    assert_eq!(seen, 2, "later passes saw the findings again");
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn baseline_routes_answer_the_originals_shapes_and_codes() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let now = OffsetDateTime::now_utc();
    let past = now - Duration::from_secs(86_400);
    send(&app, runs("4.0.0", past, 60, 60)).await;
    let window = (past, past + Duration::from_secs(600));

    // Too few runs for the window: 400 with the original's message.
    let mut body = baseline_body("4.0.0", window.0, window.1);
    body["min_sample_size"] = json!(500);
    let (status, refused) = post(&app, "/v1/drift/baselines", &body).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["error"],
        "Insufficient data: 120 runs found, minimum 500 required"
    );
    // Each bad field a 422 naming it.
    let mut body = baseline_body("4.0.0", window.0, window.1);
    body["baseline_type"] = json!("weekly");
    body["description"] = json!("about the prompt");
    let (status, refused) = post(&app, "/v1/drift/baselines", &body).await;
    assert_eq!(status, 422);
    let locs: Vec<Value> = each(&refused["detail"], |e| e["loc"].clone());
    assert_eq!(
        locs,
        [
            json!(["body", "baseline_type"]),
            json!(["body", "description"])
        ]
    );

    // Two baselines of one agent version: activating the second deactivates the first.
    let mut body = baseline_body("4.0.0", window.0, window.1);
    body["approved_by"] = Value::Null;
    let (status, first) = post(&app, "/v1/drift/baselines", &body).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["approved_at"].clone(), first["is_active"].clone()),
        (Value::Null, json!(true))
    );
    body["auto_activate"] = json!(false);
    body["baseline_type"] = json!("manual");
    let (_, second) = post(&app, "/v1/drift/baselines", &body).await;
    assert_eq!(second["is_active"], false);
    assert_eq!(
        second["profile_id"], first["profile_id"],
        "one profile per window"
    );
    let (first_id, second_id) = (
        first["baseline_id"].as_str().unwrap(),
        second["baseline_id"].as_str().unwrap(),
    );
    let (status, active) = post(
        &app,
        &format!("/v1/drift/baselines/{second_id}/activate"),
        &Value::Null,
    )
    .await;
    assert_eq!((status, active["is_active"].clone()), (200, json!(true)));
    let (_, listed) = get(&app, "/v1/drift/baselines?is_active=true").await;
    assert_eq!(
        each(&listed, |b| b["baseline_id"].clone()),
        [json!(second_id)]
    );
    let (_, listed) = get(
        &app,
        &format!("/v1/drift/baselines?agent_id={AGENT}&baseline_type=version"),
    )
    .await;
    assert_eq!(
        each(&listed, |b| b["baseline_id"].clone()),
        [json!(first_id)]
    );
    let (_, off) = post(
        &app,
        &format!("/v1/drift/baselines/{second_id}/deactivate"),
        &Value::Null,
    )
    .await;
    assert_eq!(off["is_active"], false);

    // Approval, once; the original's trigger keeps the rest immutable.
    let approve = format!("/v1/drift/baselines/{first_id}/approve");
    let (status, approved) =
        post(&app, &approve, &json!({"approved_by": "lead@example.com"})).await;
    assert_eq!(
        (status, approved["approved_by"].clone()),
        (200, json!("lead@example.com"))
    );
    let (status, _) = post(&app, &approve, &json!({"approved_by": "other@example.com"})).await;
    assert_eq!(status, 400);
    let (status, _) = post(&app, &approve, &json!({})).await;
    assert_eq!(status, 422);
    app.db.psql(&format!(
        "DO $$ BEGIN
            UPDATE behavior_baselines SET description = 'changed' WHERE baseline_id = '{first_id}';
            RAISE EXCEPTION 'the update went through';
         EXCEPTION WHEN raise_exception THEN
            IF SQLERRM <> 'Baselines are immutable after creation' THEN RAISE; END IF;
         END $$"
    ));

    // Unknown and malformed ids.
    let unknown = Uuid::new_v4();
    for path in [
        format!("/v1/drift/baselines/{unknown}/activate"),
        format!("/v1/drift/{unknown}/resolve"),
    ] {
        let (status, _) = post(&app, &path, &Value::Null).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = get(&app, &format!("/v1/drift/baselines/{unknown}")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!(format!("Baseline {unknown} not found")))
    );
    let (status, body) = get(&app, &format!("/v1/drift/profiles/{unknown}")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!(format!("Profile {unknown} not found")))
    );
    let (status, body) = get(&app, "/v1/drift/baselines/not-a-uuid").await;
    assert_eq!(
        (status, body["detail"][0]["loc"].clone()),
        (422, json!(["path", "baseline_id"]))
    );

    // Writes are the ingest role's, reads the query role's.
    let res = app.get(&app.ingest, "/v1/drift/baselines").await;
    assert_eq!(res.status(), 405, "the ingest role has only the POST");
    let res = app.get(&app.ingest, "/v1/drift").await;
    assert_eq!(res.status(), 404);
    let res = app
        .send(reqwest::Method::POST, &app.query, "/v1/drift/detect")
        .await;
    assert!(
        matches!(res.status().as_u16(), 404 | 405),
        "{}",
        res.status()
    );
}

#[tokio::test]
async fn drift_list_timeline_and_summary_answer_the_originals_shapes_and_bounds() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    seed(&app, "5.0.0", (92, 108)).await;
    let (_, report) = post(&app, "/v1/drift/detect", &Value::Null).await;
    let ids: Vec<Value> = each(&report["detected"], |d| d["drift_id"].clone());
    assert_eq!(ids.len(), 2);

    let (status, all) = get(&app, "/v1/drift").await;
    assert_eq!(status, 200);
    let keys: Vec<String> = all[0].as_object().unwrap().keys().cloned().collect();
    for key in [
        "drift_id",
        "baseline_id",
        "agent_id",
        "agent_version",
        "environment",
        "drift_type",
        "metric",
        "baseline_value",
        "observed_value",
        "delta",
        "delta_percent",
        "significance",
        "test_method",
        "severity",
        "detected_at",
        "observation_window_start",
        "observation_window_end",
        "observation_sample_size",
        "resolved_at",
        "created_at",
    ] {
        assert!(keys.contains(&key.to_owned()), "{key} in {keys:?}");
    }
    let (_, high) = get(
        &app,
        "/v1/drift?severity=high&drift_type=decision&resolved=false",
    )
    .await;
    assert_eq!(
        each(&high, |d| d["metric"].clone()),
        [json!("tool_selection.cache")]
    );
    let (_, page) = get(&app, "/v1/drift?limit=1&offset=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, none) = get(&app, "/v1/drift?resolved=true").await;
    assert_eq!(none, json!([]));
    let (status, one) = get(&app, &format!("/v1/drift/{}", ids[0].as_str().unwrap())).await;
    assert_eq!((status, one["drift_id"].clone()), (200, ids[0].clone()));

    for (query, loc) in [
        ("/v1/drift?limit=0", "limit"),
        ("/v1/drift?limit=1001", "limit"),
        ("/v1/drift?offset=-1", "offset"),
        ("/v1/drift?resolved=maybe", "resolved"),
        ("/v1/drift/profiles?limit=x", "limit"),
        ("/v1/drift/summary?days=0", "days"),
        ("/v1/drift/summary?days=366", "days"),
        ("/v1/drift/timeline", "agent_id"),
        (
            "/v1/drift/timeline?agent_id=a&start_date=soon",
            "start_date",
        ),
    ] {
        let (status, body) = get(&app, query).await;
        assert_eq!(status, 422, "{query}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", loc]), "{query}");
    }
    let (status, _) = get(&app, "/v1/drift/not-a-uuid").await;
    assert_eq!(status, 422);

    let (status, timeline) = get(&app, &format!("/v1/drift/timeline?agent_id={AGENT}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            timeline["agent_version"].clone(),
            timeline["environment"].clone()
        ),
        (json!("all"), json!("all"))
    );
    let points = timeline["timeline"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["drift_detected"], true);
    assert!(points[0]["timestamp"].as_str() <= points[1]["timestamp"].as_str());
    assert!(
        points
            .iter()
            .all(|p| ids.contains(&p["drift_id"]) && p["value"].is_f64())
    );
    let (_, other) = get(
        &app,
        &format!("/v1/drift/timeline?agent_id={AGENT}&agent_version=9&environment=production"),
    )
    .await;
    assert_eq!(
        other,
        json!({"agent_id": AGENT, "agent_version": "9", "environment": "production", "timeline": []})
    );

    let (status, summary) = get(&app, "/v1/drift/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        summary,
        json!({"total_drift_events": 2, "unresolved_drift_events": 2,
               "drift_by_severity": {"medium": 1, "high": 1}, "drift_by_type": {"decision": 2},
               "agents_with_drift": 1})
    );
    let (_, staging) = get(&app, "/v1/drift/summary?environment=staging&days=1").await;
    assert_eq!(staging["total_drift_events"], 0);
    assert_eq!(staging["drift_by_severity"], json!({}));
}

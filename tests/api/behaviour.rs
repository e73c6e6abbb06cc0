//! Decisions and quality signals on runs (docs/behaviour.md): the original's payloads round-trip
//! through every way in and out, each rule is a 422 naming its field, and the privacy rules
//! apply to their metadata.

use serde_json::{Value, json};

use crate::helpers::*;

/// A run of `sample_run` with decisions and quality signals as the original's SDK sends them
/// (`record_decision`, `record_quality_signal`), one of each tied to the first step.
fn run_with_behaviour() -> Value {
    let mut run = sample_run(2, "success");
    let step = run["steps"][0]["step_id"].clone();
    run["decisions"] = json!([
        {"decision_type": "tool_selection", "selected": "weather_api", "reason_code": "fresh_data_required",
         "candidates": ["weather_api", "cache"], "confidence": 0.85, "step_id": step,
         "metadata": {"latency_budget_ms": 500, "region": "eu"}},
        {"decision_type": "retrieval_strategy", "selected": "hybrid", "reason_code": "hybrid_approach_needed"}
    ]);
    run["quality_signals"] = json!([
        {"signal_type": "schema_valid", "signal_code": "full_match", "value": true, "weight": 0.9,
         "step_id": step},
        {"signal_type": "tool_failure", "signal_code": "timeout", "value": false,
         "metadata": {"attempt": 2}}
    ]);
    run
}

/// What a stored run's decisions and signals say, without the ids and times the server sets.
fn behaviour_of(run: &Value) -> (Vec<Value>, Vec<Value>) {
    let strip = |items: &Value, id: &str| {
        each(items, |item| {
            let mut item = item.clone();
            let obj = item.as_object_mut().unwrap();
            assert!(obj.remove(id).is_some_and(|v| v.is_string()), "{id}");
            assert_eq!(obj.remove("recorded_at"), obj.get("created_at").cloned());
            obj.remove("created_at");
            assert_eq!(obj.remove("run_id"), Some(run["run_id"].clone()));
            item
        })
    };
    (
        strip(&run["decisions"], "decision_id"),
        strip(&run["quality_signals"], "signal_id"),
    )
}

#[tokio::test]
async fn decisions_and_signals_round_trip_through_post_list_by_id_and_batch() {
    let app = spawn_app().await;
    let run = run_with_behaviour();
    let step = run["steps"][0]["step_id"].clone();
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let (decisions, signals) = behaviour_of(&created);
    assert_eq!(
        decisions,
        [
            json!({"step_id": step, "decision_type": "tool_selection", "selected": "weather_api",
                   "reason_code": "fresh_data_required", "confidence": 0.85,
                   "metadata": {"latency_budget_ms": 500, "region": "eu", "candidates": ["weather_api", "cache"]}}),
            json!({"step_id": null, "decision_type": "retrieval_strategy", "selected": "hybrid",
                   "reason_code": "hybrid_approach_needed", "confidence": null, "metadata": {}}),
        ]
    );
    assert_eq!(
        signals,
        [
            json!({"step_id": step, "signal_type": "schema_valid", "signal_code": "full_match",
                   "value": true, "weight": 0.9, "metadata": {}}),
            json!({"step_id": null, "signal_type": "tool_failure", "signal_code": "timeout",
                   "value": false, "weight": null, "metadata": {"attempt": 2}}),
        ]
    );

    let read: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
    assert_eq!(read, created, "the 201 body is the stored run");
    let page = app
        .get_json(&app.query, "/v1/runs?agent_id=support-bot")
        .await;
    assert_eq!(page[0], created, "a list page carries them too");

    // In a batch, beside a run without any (null is an empty list, as the original).
    let mut other = run_with_behaviour();
    other["decisions"][1]["reason_code"] = json!("rerank_required");
    let mut bare = sample_run(1, "success");
    bare["decisions"] = Value::Null;
    bare["quality_signals"] = Value::Null;
    let res = app.post_batch(&[other.clone(), bare.clone()]).await;
    assert_eq!(batch_statuses(&res.json().await.unwrap()), [201, 201]);
    let stored: Value = app.get_run(&run_id_of(&other)).await.json().await.unwrap();
    assert_eq!(stored["decisions"][1]["reason_code"], "rerank_required");
    let mut expected = signals.clone();
    expected[0]["step_id"] = other["steps"][0]["step_id"].clone();
    assert_eq!(behaviour_of(&stored).1, expected);
    let stored: Value = app.get_run(&run_id_of(&bare)).await.json().await.unwrap();
    assert_eq!(
        (&stored["decisions"], &stored["quality_signals"]),
        (&json!([]), &json!([]))
    );
}

/// `(field to change, its new value, the loc of the 422, its type)`: every rule of a decision
/// and a signal, each alone.
#[tokio::test]
async fn each_broken_rule_is_a_422_naming_its_field() {
    let app = spawn_app().await;
    let other_run = sample_run(1, "success");
    assert_eq!(app.post_run(&other_run).await.status(), 201);
    let foreign_step = other_run["steps"][0]["step_id"].clone();
    let cases: Vec<(&str, usize, &str, Value, &str)> = vec![
        (
            "decisions",
            1,
            "decision_type",
            json!("tool_choice"),
            "enum",
        ),
        (
            "decisions",
            1,
            "reason_code",
            json!("cost_optimization"),
            "value_error",
        ),
        ("decisions", 1, "selected", json!(""), "string_too_short"),
        (
            "decisions",
            1,
            "selected",
            json!("x".repeat(201)),
            "string_too_long",
        ),
        ("decisions", 0, "confidence", json!(1.5), "less_than_equal"),
        (
            "decisions",
            0,
            "confidence",
            json!(-0.1),
            "greater_than_equal",
        ),
        (
            "decisions",
            0,
            "step_id",
            foreign_step.clone(),
            "value_error",
        ),
        (
            "decisions",
            0,
            "candidates",
            json!("weather_api"),
            "list_type",
        ),
        ("quality_signals", 0, "signal_type", json!("schema"), "enum"),
        (
            "quality_signals",
            0,
            "signal_code",
            json!("timeout"),
            "value_error",
        ),
        ("quality_signals", 1, "value", Value::Null, "missing"),
        (
            "quality_signals",
            1,
            "value",
            json!("maybe"),
            "bool_parsing",
        ),
        ("quality_signals", 0, "weight", json!(2), "less_than_equal"),
        ("quality_signals", 1, "step_id", foreign_step, "value_error"),
        ("quality_signals", 1, "metadata", json!([1]), "dict_type"),
    ];
    for (list, i, field, value, kind) in cases {
        let mut run = run_with_behaviour();
        run[list][i][field] = value;
        let res = app.post_run(&run).await;
        assert_eq!(res.status(), 422, "{list}[{i}].{field}");
        let body: Value = res.json().await.unwrap();
        let errors: Vec<(Value, Value)> =
            each(&body["detail"], |e| (e["loc"].clone(), e["type"].clone()));
        assert_eq!(
            errors,
            [(json!(["body", list, i, field]), json!(kind))],
            "{list}[{i}].{field}"
        );
        assert_eq!(app.count("agent_runs", &run_id_of(&run)), 0);
    }

    // The batch answers a broken run's 422 and stores the others.
    let mut broken = run_with_behaviour();
    broken["decisions"][0]["decision_type"] = json!("nope");
    let fine = run_with_behaviour();
    let res = app.post_batch(&[broken, fine.clone()]).await;
    assert_eq!(batch_statuses(&res.json().await.unwrap()), [422, 201]);
    assert_eq!(app.count("agent_decisions", &run_id_of(&fine)), 2);
}

#[tokio::test]
async fn their_metadata_is_flat_bounded_and_under_the_privacy_rules() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        // The original's blocked keys, whatever their case.
        (
            json!({"Reasoning": "it was cheaper"}),
            "privacy.content_key",
        ),
        (json!({"chain_of_thought": "first…"}), "privacy.content_key"),
        (json!({"candidates_seen": {"a": 1}}), "value_error"),
        (json!({"tags": ["a"]}), "value_error"),
        (json!({"note": "x".repeat(101)}), "string_too_long"),
    ];
    for (metadata, kind) in cases {
        let mut run = run_with_behaviour();
        run["decisions"][0]["metadata"] = metadata.clone();
        let res = app.post_run(&run).await;
        assert_eq!(res.status(), 422, "{metadata}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["detail"][0]["type"], kind, "{body}");
        let loc = body["detail"][0]["loc"].as_array().unwrap().clone();
        assert_eq!(
            loc[..5],
            [
                json!("body"),
                json!("decisions"),
                json!(0),
                json!("metadata"),
                loc[4].clone()
            ]
        );
        assert!(
            !body.to_string().contains("it was cheaper"),
            "values are never echoed"
        );
    }

    // A credential in a value is redacted under the default mode, refused under `reject`.
    let key = "sk-proj-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut run = run_with_behaviour();
    run["quality_signals"][1]["metadata"] = json!({"auth": format!("Bearer {key}"), "attempt": 2});
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["quality_signals"][1]["metadata"]["attempt"], 2);
    assert!(!stored.to_string().contains(key));
    let dump = app
        .db
        .psql("SELECT metadata::text FROM agent_quality_signals");
    assert!(!dump.contains(key) && dump.contains("REDACTED"), "{dump}");

    let strict =
        spawn_app_with(|c| c.privacy.mode = agenttracer::model::privacy::PrivacyMode::Reject).await;
    let mut run = run_with_behaviour();
    run["quality_signals"][1]["metadata"] = json!({"auth": key});
    let res = strict.post_run(&run).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"][0]["type"], "privacy.secret_value");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "quality_signals", 1, "metadata", "auth"])
    );
}

#[tokio::test]
async fn a_resend_follows_the_runs_rules_and_a_deleted_run_takes_them_along() {
    let app = spawn_app().await;
    // A running run is replaced whole: its decisions and signals are the new payload's.
    let mut run = run_with_behaviour();
    run["status"] = json!("running");
    run["ended_at"] = Value::Null;
    assert_eq!(app.post_run(&run).await.status(), 201);
    run["status"] = json!("success");
    run["ended_at"] = json!("2024-06-01T12:01:30Z");
    run["decisions"].as_array_mut().unwrap().truncate(1);
    run["quality_signals"] = json!([]);
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 200);
    let stored: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
    assert_eq!(stored["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(stored["quality_signals"], json!([]));
    assert_eq!(app.count("agent_decisions", &run_id_of(&run)), 1);
    assert_eq!(app.count("agent_quality_signals", &run_id_of(&run)), 0);

    // A final run is frozen: a resend with other decisions changes nothing.
    run["decisions"] = json!([]);
    assert_eq!(app.post_run(&run).await.status(), 200);
    assert_eq!(app.count("agent_decisions", &run_id_of(&run)), 1);

    // Deleting the run deletes them (the original's cascade, at the database too).
    assert_eq!(app.delete_run(&run_id_of(&run)).await.status(), 204);
    assert_eq!(app.count("agent_decisions", &run_id_of(&run)), 0);
    let other = run_with_behaviour();
    assert_eq!(app.post_run(&other).await.status(), 201);
    app.db.psql(&format!(
        "DELETE FROM agent_runs WHERE run_id = '{}'",
        run_id_of(&other)
    ));
    assert_eq!(app.count("agent_decisions", &run_id_of(&other)), 0);
    assert_eq!(app.count("agent_quality_signals", &run_id_of(&other)), 0);
}

/// The original's database-level tools write rows of `agent_decisions` and
/// `agent_quality_signals` (its SQLAlchemy tests insert `AgentDecisionDB` rows). They are views
/// of the runs' arrays (migration 000011): an insert appends with the old tables' rules, each
/// broken one the SQLSTATE the table gave, a delete removes the item, and the API reads both.
#[tokio::test]
async fn the_original_tools_insert_and_delete_rows_of_the_views_under_the_tables_rules() {
    use agenttracer::db::error::sqlstate;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    let app = spawn_app().await;
    let run = run_with_behaviour();
    assert_eq!(app.post_run(&run).await.status(), 201);
    let id = run_id_of(&run);
    let step = run["steps"][1]["step_id"].as_str().unwrap().to_owned();
    let mut conn = AsyncPgConnection::establish(&app.db.writer_url())
        .await
        .unwrap();

    // Appended after the two the run brought, the view's defaults filled in.
    let seq = app.db.psql(&format!(
        "INSERT INTO agent_decisions (run_id, step_id, decision_type, selected, reason_code, \
         confidence) VALUES ('{id}', '{step}', 'retry_strategy', 'backoff', \
         'rate_limit_encountered', 0.25) RETURNING seq"
    ));
    assert_eq!(seq.lines().next(), Some("2"), "{seq}");
    let stored: Value = app.get_run(&id).await.json().await.unwrap();
    let added = &stored["decisions"][2];
    assert_eq!(
        (
            &added["selected"],
            &added["confidence"],
            &added["step_id"],
            &added["metadata"]
        ),
        (&json!("backoff"), &json!(0.25), &json!(step), &json!({}))
    );
    assert!(added["decision_id"].is_string() && added["recorded_at"].is_string());
    assert_eq!(stored["decisions"][0]["selected"], "weather_api");

    // Each of the tables' rules, as the table answered it.
    let existing = stored["decisions"][0]["decision_id"].as_str().unwrap();
    let unknown = uuid::Uuid::new_v4();
    let cases = [
        (
            format!(
                "(run_id, decision_type, selected, reason_code) VALUES ('{unknown}', 'a', 'b', 'c')"
            ),
            "23503",
        ),
        (
            format!(
                "(run_id, step_id, decision_type, selected, reason_code) VALUES ('{id}', '{unknown}', 'a', 'b', 'c')"
            ),
            "23503",
        ),
        (
            format!(
                "(run_id, decision_type, selected, reason_code, confidence) VALUES ('{id}', 'a', 'b', 'c', 1.5)"
            ),
            "23514",
        ),
        (
            format!("(run_id, decision_type, selected, reason_code) VALUES ('{id}', '', 'b', 'c')"),
            "23514",
        ),
        (
            format!("(run_id, decision_type, selected) VALUES ('{id}', 'a', 'b')"),
            "23502",
        ),
        (
            format!(
                "(decision_id, run_id, decision_type, selected, reason_code) VALUES ('{existing}', '{id}', 'a', 'b', 'c')"
            ),
            "23505",
        ),
    ];
    for (values, code) in cases {
        let sql = format!("INSERT INTO agent_decisions {values}");
        let err = diesel::sql_query(&sql)
            .execute(&mut conn)
            .await
            .expect_err(&sql);
        assert_eq!(sqlstate(&err), Some(code), "{sql}: {err}");
    }
    let err = diesel::sql_query(format!(
        "INSERT INTO agent_quality_signals (run_id, signal_type, signal_code, value, weight) \
         VALUES ('{id}', 'a', 'b', true, -0.1)"
    ))
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err), Some("23514"), "{err}");

    // A delete removes the item, the others keep their order.
    app.db
        .psql("DELETE FROM agent_decisions WHERE selected = 'hybrid'");
    app.db.psql(&format!(
        "DELETE FROM agent_quality_signals WHERE run_id = '{id}'"
    ));
    let stored: Value = app.get_run(&id).await.json().await.unwrap();
    let selected = each(&stored["decisions"], |d| d["selected"].clone());
    assert_eq!(selected, [json!("weather_api"), json!("backoff")]);
    assert_eq!(stored["quality_signals"], json!([]));
    assert_eq!(
        app.db
            .psql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agent_decisions"),
        "0,1"
    );
}

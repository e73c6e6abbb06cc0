//! `POST /v1/runs` and `DELETE /v1/runs/{id}`: every rule and answer in docs/api.md
//! (Ingest listener).

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_new_run_is_201_with_the_stored_run_and_reads_back_the_same() {
    let app = spawn_app().await;
    let run = sample_run(3, "success");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["run_id"], run["run_id"]);
    assert_eq!(created["environment"], "staging");
    assert_eq!(created["steps"].as_array().unwrap().len(), 3);
    assert_eq!(created["steps"][1]["metadata"]["input_tokens"], 101);
    assert_eq!(created["failures"], json!([]));

    let read: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
    assert_eq!(read, created, "the 201 body is the stored run");
    assert_eq!(app.count("agent_steps", &run_id_of(&run)), 3);

    let (client, ingest) = (app.client.clone(), app.ingest.clone());
    app.stop().await;
    assert!(
        client.get(format!("{ingest}/livez")).send().await.is_err(),
        "stopped: no longer listening"
    );
}

#[tokio::test]
async fn a_run_without_run_id_gets_one_and_defaults_apply() {
    let app = spawn_app().await;
    let mut run = sample_run(0, "success");
    let obj = run.as_object_mut().unwrap();
    obj.remove("run_id");
    obj.remove("environment");
    obj.remove("ended_at");
    obj.remove("steps");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let run_id = body["run_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(run_id).is_ok());
    assert_eq!(body["environment"], "production");
    assert_eq!(body["ended_at"], Value::Null);
    assert_eq!(body["steps"], json!([]));
    assert_eq!(app.get_run(run_id).await.status(), 200);
}

#[tokio::test]
async fn python_naive_timestamps_are_read_as_utc() {
    let app = spawn_app().await;
    let mut run = sample_run(1, "success");
    run["started_at"] = json!("2024-06-01T12:00:00.123456");
    run["ended_at"] = json!("2024-06-01 12:00:05");
    let body: Value = app.post_run(&run).await.json().await.unwrap();
    assert_eq!(body["started_at"], "2024-06-01T12:00:00.123456Z");
    assert_eq!(body["ended_at"], "2024-06-01T12:00:05Z");
    let stored = app.db.psql(&format!(
        "SELECT to_char(started_at AT TIME ZONE 'UTC', 'HH24:MI:SS.US') FROM agent_runs WHERE run_id = '{}'",
        run_id_of(&run)
    ));
    assert_eq!(stored, "12:00:00.123456");
}

#[tokio::test]
async fn a_resend_of_a_final_run_is_200_and_changes_nothing() {
    let app = spawn_app().await;
    let run = sample_run(2, "success");
    let first: Value = app.post_run(&run).await.json().await.unwrap();
    let mut changed = run.clone();
    changed["agent_version"] = json!("9.9.9");
    changed["status"] = json!("partial");
    changed["steps"] = json!([]);
    let res = app.post_run(&changed).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second, first, "the stored run, unchanged");
    assert_eq!(app.count("agent_steps", &run_id_of(&run)), 2);
}

#[tokio::test]
async fn a_running_run_is_replaced_by_the_next_send() {
    let app = spawn_app().await;
    let mut run = sample_run(2, "running");
    run.as_object_mut().unwrap().remove("ended_at");
    assert_eq!(app.post_run(&run).await.status(), 201);

    let mut done = sample_run(4, "failure");
    done["run_id"] = run["run_id"].clone();
    done["failure"]["step_id"] = done["steps"][3]["step_id"].clone();
    let res = app.post_run(&done).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "failure");
    assert_eq!(body["steps"].as_array().unwrap().len(), 4);
    assert_eq!(body["failures"][0]["step_id"], done["steps"][3]["step_id"]);
    let read: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
    assert_eq!(read, body);
    assert_eq!(app.count("agent_steps", &run_id_of(&run)), 4);
    assert_eq!(app.count("agent_failures", &run_id_of(&run)), 1);
    // Now final: a third send changes nothing.
    assert_eq!(app.post_run(&run).await.status(), 200);
    assert_eq!(app.count("agent_steps", &run_id_of(&run)), 4);
}

#[tokio::test]
async fn concurrent_sends_of_one_new_run_give_one_201_and_the_rest_200() {
    let app = spawn_app_with(|c| c.server.workers = Some(4)).await;
    let run = sample_run(5, "success");
    let sends = (0..16).map(|_| app.post_run(&run));
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(app.count("agent_steps", &run_id_of(&run)), 5);
}

/// Group commit: runs sent while the writers are busy share transactions, each is answered
/// on its own (201, a resend 200, a clashing step_id 422), and nothing valid is lost.
#[tokio::test]
async fn concurrent_single_runs_share_group_transactions_and_keep_their_own_answers() {
    let app = spawn_app_with(|c| {
        c.ingest.group_commit_writers = 2;
        c.database.lock_timeout_ms = 20_000;
        c.database.statement_timeout_ms = 20_000;
    })
    .await;
    let distinct: Vec<Value> = (0..20).map(|_| sample_run(3, "success")).collect();
    let repeated = sample_run(2, "success");
    let clash_a = sample_run(2, "success");
    let mut clash_b = sample_run(2, "success");
    clash_b["steps"][1]["step_id"] = clash_a["steps"][0]["step_id"].clone();

    let mut lock = app.db.hold_lock(4.0);
    let send = |run: &Value| {
        let (run, app) = (run.clone(), &app);
        async move {
            let res = app.post_run(&run).await;
            (run_id_of(&run), res.status().as_u16())
        }
    };
    // The first run alone occupies one writer; the rest arrive together while it waits, and the
    // other writer takes them as one group (a run_id sent thrice is spread over later groups).
    let first = send(&distinct[0]);
    let rest = async {
        app.db.wait_for_lock_waiters(1).await;
        let mut rest: Vec<&Value> = distinct[1..].iter().collect();
        rest.extend([&repeated, &clash_a, &repeated, &clash_b, &repeated]);
        let sends = futures_util::future::join_all(rest.into_iter().map(send));
        let (answers, ()) = tokio::join!(sends, app.db.wait_for_lock_waiters(2));
        answers
    };
    let (first, rest) = tokio::join!(first, rest);
    lock.wait().unwrap();
    let mut answers = vec![first];
    answers.extend(rest);

    for run in &distinct {
        let id = run_id_of(run);
        assert!(answers.contains(&(id.clone(), 201)), "{answers:?}");
        assert_eq!(app.count("agent_steps", &id), 3);
    }
    let of = |run: &Value| -> Vec<u16> {
        let id = run_id_of(run);
        let mut s: Vec<u16> = answers
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, s)| *s)
            .collect();
        s.sort();
        s
    };
    assert_eq!(of(&repeated), vec![200, 200, 201]);
    let mut clash = [of(&clash_a), of(&clash_b)].concat();
    clash.sort();
    assert_eq!(
        clash,
        vec![201, 422],
        "one of two runs sharing a step_id is refused"
    );

    // Runs written by one transaction share its start time, their created_at (now()): 20
    // requests took far fewer transactions.
    let ids = distinct
        .iter()
        .map(|r| format!("'{}'", run_id_of(r)))
        .collect::<Vec<_>>()
        .join(",");
    let transactions: usize = app
        .db
        .psql(&format!(
            "SELECT count(DISTINCT created_at) FROM agent_runs WHERE run_id IN ({ids})"
        ))
        .parse()
        .unwrap();
    assert!(transactions <= 3, "{transactions} transactions for 20 runs");
}

#[tokio::test]
async fn every_problem_is_listed_in_one_422() {
    let app = spawn_app().await;
    let mut run = sample_run(3, "failure");
    run["agent_id"] = json!("");
    run["status"] = json!("finished");
    run["steps"][2]["seq"] = json!(7);
    run["steps"][1]["step_type"] = json!("thinking");
    run["steps"][0]["ended_at"] = json!("2024-01-01T00:00:00Z");
    run["failure"]["step_id"] = json!(uuid::Uuid::new_v4());
    run["failure"]["failure_type"] = json!("network");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let locs: Vec<String> = each(&body["detail"], |e| e["loc"].to_string());
    for want in [
        r#"["body","agent_id"]"#,
        r#"["body","status"]"#,
        r#"["body","steps",2,"seq"]"#,
        r#"["body","steps",1,"step_type"]"#,
        r#"["body","steps",0,"ended_at"]"#,
        r#"["body","failure","step_id"]"#,
        r#"["body","failure","failure_type"]"#,
    ] {
        assert!(
            locs.contains(&want.to_owned()),
            "{want} missing from {locs:?}"
        );
    }
    for e in body["detail"].as_array().unwrap() {
        assert!(e["msg"].is_string() && e["type"].is_string(), "{e}");
    }
    assert_eq!(app.count("agent_runs", &run_id_of(&run)), 0);
}

#[tokio::test]
async fn failure_status_needs_a_failure_and_failures_may_be_many() {
    let app = spawn_app().await;
    let mut run = sample_run(2, "failure");
    run.as_object_mut().unwrap().remove("failure");
    let body: Value = app.post_run(&run).await.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "status"]));

    run["failures"] = json!([
        {"failure_type": "tool", "failure_code": "timeout", "message": "t", "step_id": run["steps"][0]["step_id"]},
        {"failure_type": "orchestration", "failure_code": "loop_detected", "message": "too many turns"}
    ]);
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["failures"].as_array().unwrap().len(), 2);
    assert_eq!(app.count("agent_failures", &run_id_of(&run)), 2);
}

#[tokio::test]
async fn a_failures_metadata_round_trips_is_an_object_and_is_under_the_privacy_rules() {
    let app = spawn_app_with(|c| c.privacy.mode = agenttracer::config::PrivacyMode::Redact).await;
    let mut run = sample_run(1, "failure");
    let sent = json!({"http_status": 503, "attempt": 2, "provider": {"name": "acme"}});
    run["failure"]["metadata"] = sent.clone();
    run["failures"] = json!([{"failure_type": "model", "failure_code": "refused",
        "message": "no", "metadata": {"prompt": "my very private question"}}]);
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-agenttracer-redacted"], "1");
    let posted: Value = res.json().await.unwrap();
    let id = run_id_of(&run);
    let by_id: Value = app.get_run(&id).await.json().await.unwrap();
    let listed = app.get_json(&app.query, "/v1/runs").await;
    for body in [&posted, &by_id, &listed[0]] {
        let metadata = each(&body["failures"], |f| f["metadata"].clone());
        assert_eq!(
            metadata,
            [sent.clone(), json!({"prompt": "[REDACTED]"})],
            "{body}"
        );
    }
    let stored = app.db.psql("SELECT metadata::text FROM agent_failures");
    assert!(!stored.contains("private"), "{stored}");

    // A batch too; a failure that sends none has `{}`.
    let mut other = sample_run(1, "failure");
    other["failure"]["metadata"] = json!({"attempt": 3});
    let third = sample_run(1, "failure");
    let res = app.post_batch(&[other.clone(), third.clone()]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(each(&body["results"], |r| r["status"].clone()), [201, 201]);
    for (run, metadata) in [(&other, json!({"attempt": 3})), (&third, json!({}))] {
        let body: Value = app.get_run(&run_id_of(run)).await.json().await.unwrap();
        assert_eq!(body["failures"][0]["metadata"], metadata);
    }

    // Not an object: a 422 naming the field, wherever the failure is.
    let mut bad = sample_run(1, "failure");
    bad["failure"]["metadata"] = json!("attempt 2");
    bad["failures"] = json!([{"failure_type": "tool", "failure_code": "x", "message": "m",
        "metadata": [1]}]);
    let res = app.post_run(&bad).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let locs = each(&body["detail"], |d| d["loc"].clone());
    assert_eq!(
        locs,
        [
            json!(["body", "failure", "metadata"]),
            json!(["body", "failures", 0, "metadata"])
        ],
        "{body}"
    );
}

#[tokio::test]
async fn a_step_id_of_another_run_is_422_not_500() {
    let app = spawn_app().await;
    let first = sample_run(2, "success");
    assert_eq!(app.post_run(&first).await.status(), 201);
    let mut second = sample_run(2, "success");
    second["steps"][1]["step_id"] = first["steps"][0]["step_id"].clone();
    let res = app.post_run(&second).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "steps"]));
    assert_eq!(
        app.count("agent_runs", &run_id_of(&second)),
        0,
        "nothing of it is stored"
    );
}

#[tokio::test]
async fn nul_characters_are_422() {
    let app = spawn_app().await;
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"] = json!({"tool\u{0}name": "x"});
    run["agent_version"] = json!("1\u{0}");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let kinds: Vec<&str> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["string_nul", "string_nul"]);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_422() {
    let app = spawn_app().await;
    for body in [&b"{not json"[..], b"", b"[1, 2]", b"\"run\""] {
        let res = app
            .post_raw(
                "/v1/runs",
                body.to_vec(),
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(res.status(), 422, "{}", String::from_utf8_lossy(body));
        let detail: Value = res.json().await.unwrap();
        assert!(detail["detail"][0]["loc"][0] == "body", "{detail}");
    }
}

#[tokio::test]
async fn content_types_415_and_missing_type_is_json() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&sample_run(1, "success")).unwrap();
    let res = app
        .post_raw("/v1/runs", body.clone(), &[("content-type", "text/plain")])
        .await;
    assert_eq!(res.status(), 415);
    let res = app
        .post_raw(
            "/v1/runs",
            body.clone(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(res.status(), 415);
    let res = app.post_raw("/v1/runs", body.clone(), &[]).await;
    assert_eq!(res.status(), 201, "no Content-Type is read as JSON");
    let body = serde_json::to_vec(&sample_run(1, "success")).unwrap();
    let res = app
        .post_raw(
            "/v1/runs",
            body,
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await;
    assert_eq!(res.status(), 201);
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_also_after_decompression() {
    let app = spawn_app_with(|c| c.server.max_body_bytes = 4096).await;
    let mut big = sample_run(1, "success");
    big["steps"][0]["metadata"]["padding"] = json!("x".repeat(5000));
    let raw = serde_json::to_vec(&big).unwrap();
    let res = app
        .post_raw(
            "/v1/runs",
            raw.clone(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(res.status(), 413);
    let detail: Value = res.json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("4096"));

    // Compressed it is small; inflated it is over the limit.
    let packed = gzip(&raw);
    assert!(packed.len() < 4096);
    let res = app
        .post_raw(
            "/v1/runs",
            packed,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
        )
        .await;
    assert_eq!(res.status(), 413);

    let small = serde_json::to_vec(&sample_run(2, "success")).unwrap();
    let res = app
        .post_raw("/v1/runs", gzip(&small), &[("content-encoding", "gzip")])
        .await;
    assert_eq!(
        res.status(),
        201,
        "gzip bodies within the limit are accepted"
    );

    let res = app
        .post_raw("/v1/runs", small.clone(), &[("content-encoding", "br")])
        .await;
    assert_eq!(res.status(), 415);
    let res = app
        .post_raw(
            "/v1/runs",
            b"not gzip".to_vec(),
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn privacy_reject_names_the_key_and_never_echoes_the_value() {
    let app = spawn_app_with(|c| c.privacy.mode = agenttracer::config::PrivacyMode::Reject).await;
    let mut run = sample_run(2, "failure");
    run["steps"][0]["metadata"]["prompt"] = json!("my very private question");
    run["steps"][1]["metadata"]["tool"] =
        json!({"params": {"user_input": "also private"}, "input_tokens": 3});
    run["failure"]["message"] = json!("auth failed with key sk-abcdefghijklmnopqrstuvwxyz123456");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 422);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("private") && !text.contains("sk-abcdef"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let found: Vec<(String, String)> = each(&body["detail"], |e| {
        (e["loc"].to_string(), e["type"].as_str().unwrap().to_owned())
    });
    assert_eq!(
        found,
        [
            (
                r#"["body","steps",0,"metadata","prompt"]"#.to_owned(),
                "privacy.content_key".to_owned()
            ),
            (
                r#"["body","steps",1,"metadata","tool","params","user_input"]"#.to_owned(),
                "privacy.content_key".to_owned()
            ),
            (
                r#"["body","failure","message"]"#.to_owned(),
                "privacy.secret_value".to_owned()
            ),
        ]
    );
    let metrics = app.get_metrics().await;
    assert!(
        metrics.contains(r#"privacy_violations_total{rule="content_key",action="reject"}"#),
        "{metrics}"
    );
}

/// The default `compat` mode never loses a run the original stored: what the original accepted
/// (content words it did not know, nested keys, secret values) is stored redacted, with the
/// header and the counter; what it refused too (a top-level `prompt`) is still a 422.
#[tokio::test]
async fn privacy_compat_stores_what_the_original_stored_redacted_and_rejects_what_it_refused() {
    let app = spawn_app().await;
    let cases = [
        (json!({"query": "refund my order 1234"}), "query"),
        (json!({"answer": "private answer text"}), "answer"),
        (
            json!({"reasoning": "private chain of thought"}),
            "reasoning",
        ),
        (
            json!({"details": {"input": "private nested input"}}),
            "details",
        ),
        (json!({"auth": "Bearer abcdefabcdef0123456789"}), "auth"),
    ];
    for (meta, key) in cases {
        let mut run = sample_run(1, "success");
        for (k, v) in meta.as_object().unwrap() {
            run["steps"][0]["metadata"][k] = v.clone();
        }
        let res = app.post_run(&run).await;
        assert_eq!(res.status(), 201, "{key}");
        assert_eq!(res.headers()["x-agenttracer-redacted"], "1", "{key}");
        let body: Value = res.json().await.unwrap();
        let stored = &body["steps"][0]["metadata"];
        let expected = match key {
            "details" => json!({"input": "[REDACTED]"}),
            "auth" => json!("Bearer [REDACTED]"),
            _ => json!("[REDACTED]"),
        };
        assert_eq!(stored[key], expected, "{key}: {stored}");
        assert_eq!(stored["input_tokens"], 100, "the rest is kept");
        let row = app.db.psql(&format!(
            "SELECT metadata::text FROM agent_steps WHERE run_id = '{}'",
            run_id_of(&run)
        ));
        assert!(
            !row.contains("private") && !row.contains("refund") && !row.contains("abcdefabcdef"),
            "{row}"
        );
        let read: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
        assert_eq!(read["steps"][0]["metadata"][key], expected, "{key}");
    }
    // A failure message with a secret: stored redacted (the original refused some of these; a
    // lost run is worse than a redacted one).
    let mut run = sample_run(1, "failure");
    run["failure"]["message"] = json!("auth failed with key sk-abcdefghijklmnopqrstuvwxyz123456");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["failures"][0]["message"],
        "auth failed with key [REDACTED]"
    );

    // What the original refused too: a top-level key with one of its six substrings that our
    // rule flags. The 422 names the key and never echoes the value; nothing is stored.
    for key in ["prompt", "user_input", "responseText"] {
        let mut run = sample_run(1, "success");
        run["steps"][0]["metadata"][key] = json!("my very private question");
        let res = app.post_run(&run).await;
        assert_eq!(res.status(), 422, "{key}");
        let text = res.text().await.unwrap();
        assert!(!text.contains("private"), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "steps", 0, "metadata", key])
        );
        assert_eq!(body["detail"][0]["type"], "privacy.content_key");
        assert_eq!(app.count("agent_runs", &run_id_of(&run)), 0);
    }
    // Keys the original refused by substring but that are not content stay stored as sent.
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"]["context_length"] = json!(8192);
    run["steps"][0]["metadata"]["prompt"] = json!({"tokens": 5});
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("x-agenttracer-redacted").is_none());

    let metrics = app.get_metrics().await;
    for line in [
        r#"privacy_violations_total{rule="content_key",action="redact"}"#,
        r#"privacy_violations_total{rule="secret_value",action="redact"}"#,
        r#"privacy_violations_total{rule="content_key",action="reject"}"#,
    ] {
        assert!(metrics.contains(line), "{line}");
    }
}

#[tokio::test]
async fn privacy_redact_stores_the_run_with_values_replaced() {
    let app = spawn_app_with(|c| c.privacy.mode = agenttracer::config::PrivacyMode::Redact).await;
    let mut run = sample_run(1, "failure");
    run["steps"][0]["metadata"]["prompt"] = json!("my very private question");
    run["failure"]["message"] = json!("login failed: password=hunter22 at db");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-agenttracer-redacted"], "2");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["steps"][0]["metadata"]["prompt"], "[REDACTED]");
    assert_eq!(body["steps"][0]["metadata"]["input_tokens"], 100);
    assert_eq!(
        body["failures"][0]["message"],
        "login failed: password=[REDACTED] at db"
    );
    let stored = app.db.psql("SELECT metadata::text FROM agent_steps");
    assert!(!stored.contains("private"), "{stored}");
}

#[tokio::test]
async fn privacy_off_stores_everything() {
    let app = spawn_app_with(|c| c.privacy.mode = agenttracer::config::PrivacyMode::Off).await;
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"]["prompt"] = json!("kept as sent");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("x-agenttracer-redacted").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["steps"][0]["metadata"]["prompt"], "kept as sent");
}

#[tokio::test]
async fn too_many_steps_is_422() {
    let app = spawn_app_with(|c| c.ingest.max_steps_per_run = 3).await;
    let res = app.post_run(&sample_run(4, "success")).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "steps"]));
    assert_eq!(app.post_run(&sample_run(3, "success")).await.status(), 201);
}

#[tokio::test]
async fn delete_erases_a_run_with_its_steps_and_failures() {
    let app = spawn_app().await;
    let mut run = sample_run(3, "failure");
    run["failure"]["step_id"] = run["steps"][2]["step_id"].clone();
    let id = run_id_of(&run);
    assert_eq!(app.post_run(&run).await.status(), 201);
    assert_eq!(app.delete_run(&id).await.status(), 204);
    assert_eq!(
        (
            app.count("agent_runs", &id),
            app.count("agent_steps", &id),
            app.count("agent_failures", &id)
        ),
        (0, 0, 0)
    );
    let res = app.delete_run(&id).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], format!("Run {id} not found"));
    assert_eq!(app.delete_run("not-a-uuid").await.status(), 422);
    assert_eq!(app.get_run(&id).await.status(), 404);
}

#[tokio::test]
async fn reading_steps_and_failures_of_a_run() {
    let app = spawn_app().await;
    let mut run = sample_run(3, "failure");
    run["failure"]["step_id"] = run["steps"][1]["step_id"].clone();
    let id = run_id_of(&run);
    app.post_run(&run).await;
    let steps: Value = app
        .get_json(&app.query, &format!("/v1/runs/{id}/steps"))
        .await;
    assert_eq!(seqs(&steps), [0, 1, 2]);
    let failures: Value = app
        .get_json(&app.query, &format!("/v1/runs/{id}/failures"))
        .await;
    assert_eq!(failures[0]["failure_code"], "timeout");
    let unknown = uuid::Uuid::new_v4();
    let res = app
        .get(&app.query, &format!("/v1/runs/{unknown}/steps"))
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.get(&app.query, &format!("/v1/runs/{unknown}/failures"))
            .await
            .status(),
        404
    );
    let res = app.get_run(&unknown.to_string()).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        format!("Run {unknown} not found")
    );
    assert_eq!(app.get_run("nope").await.status(), 422);
}

#[tokio::test]
async fn retention_purges_runs_older_than_its_days_with_their_steps() {
    let db = TestDb::new();
    // Runs already stored before the service starts: 3,000 older than 30 days, one recent.
    for (days_ago, n) in [(40, 1000), (35, 1000), (31, 1000), (2, 1)] {
        db.psql(&format!(
            "WITH r AS (INSERT INTO agent_runs (run_id, agent_id, agent_version, status, started_at) \
             SELECT gen_random_uuid(), 'old', '1', 'success', now() - interval '{days_ago} days' \
             FROM generate_series(1, {n}) RETURNING run_id, started_at) \
             INSERT INTO agent_steps (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at) \
             SELECT gen_random_uuid(), run_id, n, 'llm', 's', 1, started_at, started_at FROM r, generate_series(0, 1) n"
        ));
    }
    let mut config = test_config(&db);
    config.retention.days = Some(30);
    config.retention.batch_size = 50; // many bounded batches
    let app = spawn_app_on(db, config).await;
    // Ingest goes on while the purge runs: every run is answered 201, promptly.
    let mut sent = Vec::new();
    while app
        .db
        .psql("SELECT count(*) FROM agent_runs WHERE agent_id = 'old'")
        != "1"
    {
        let mut run = sample_run(2, "success");
        let now = time::OffsetDateTime::now_utc();
        let rfc = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        run["started_at"] = rfc(now - time::Duration::minutes(1)).into();
        run["ended_at"] = rfc(now).into();
        let started = std::time::Instant::now();
        assert_eq!(app.post_run(&run).await.status(), 201);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        sent.push(run);
        assert!(sent.len() < 2000, "old runs were not purged");
    }
    assert!(!sent.is_empty());
    assert_eq!(
        app.db
            .psql("SELECT count(*) FROM agent_runs WHERE agent_id = 'old'"),
        "1",
        "the recent run stays"
    );
    assert_eq!(
        app.db.psql("SELECT count(*) FROM agent_runs"),
        (sent.len() + 1).to_string(),
        "every run sent during the purge is stored"
    );
    assert_eq!(
        app.db
            .psql("SELECT count(*) FROM agent_steps s JOIN agent_runs r USING (run_id) WHERE r.agent_id = 'old'"),
        "2",
        "old runs' steps went with them"
    );
    assert_eq!(
        app.db.psql("SELECT count(*) FROM agent_steps"),
        (2 + sent.len() * 2).to_string()
    );
    assert!(app.get_metrics().await.contains("runs_purged_total 3000"));
    assert_stats_match_rows(&app, "", "TRUE").await;
}

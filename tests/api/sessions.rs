//! Sessions and users (docs/sessions.md): `session_id` and `user_id` on runs (native and OTLP),
//! the `session_id` / `user_id` filters of the run list, stats and stream, and the sessions
//! routes (`GET /v1/sessions`, `GET /v1/sessions/{session_id}`).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::otlp::{i, kv, request, s, span, trace_id};
use crate::otlp_build;
use crate::stream::Sse;

/// A model only these tests price: 1 USD per million input tokens, 2 per million output.
const MODEL: &str = "sessions-test-model";

/// A run of `agent` in `session` for `user` (either may be absent), started at `minute` past
/// 12:00 on 2024-06-01 and ended 30 s later (not ended when `running`), with one `llm` step of
/// `model` that read 1000 tokens and wrote 500.
fn run(
    session: Option<&str>,
    user: Option<&str>,
    agent: &str,
    minute: u32,
    status: &str,
    model: &str,
) -> Value {
    let start = format!("2024-06-01T12:{minute:02}:00Z");
    let end = format!("2024-06-01T12:{minute:02}:30Z");
    let mut run = json!({
        "run_id": uuid::Uuid::new_v4(),
        "agent_id": agent,
        "agent_version": "1.0.0",
        "status": status,
        "started_at": start,
        "steps": [{"seq": 0, "step_type": "llm", "name": "answer", "latency_ms": 700,
                   "started_at": start, "ended_at": end,
                   "metadata": {"model": model, "input_tokens": 1000, "output_tokens": 500}}],
    });
    if status != "running" {
        run["ended_at"] = json!(end);
    }
    if status == "failure" {
        run["failure"] =
            json!({"failure_type": "model", "failure_code": "rate_limited", "message": "429"});
    }
    if let Some(session) = session {
        run["session_id"] = json!(session);
    }
    if let Some(user) = user {
        run["user_id"] = json!(user);
    }
    run
}

impl TestApp {
    /// Prices [`MODEL`] from 2020 on.
    async fn price_test_model(&self) {
        let url = (self.ingest.as_str(), &*format!("/v1/model-prices/{MODEL}"));
        let body = json!({"input_per_mtok": 1.0, "output_per_mtok": 2.0,
                          "valid_from": "2020-01-01T00:00:00Z"});
        let res = self.request_with(Method::PUT, url, |r| r.json(&body)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    async fn post_all(&self, runs: &[Value]) {
        let res = self.post_batch(runs).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert!(batch_statuses(&body).iter().all(|s| *s == 201), "{body}");
    }

    async fn sessions(&self, query: &str) -> Value {
        let res = self.get(&self.query, &format!("/v1/sessions{query}")).await;
        assert_eq!(res.status(), 200, "/v1/sessions{query}");
        res.json().await.unwrap()
    }
}

fn session_ids(page: &Value) -> Vec<&str> {
    each(&page["sessions"], |s| s["session_id"].as_str().unwrap())
}

#[tokio::test]
async fn session_and_user_ids_round_trip_on_single_runs_and_batches() {
    let app = spawn_app().await;
    let with = run(Some("conv-1"), Some("u-hash-1"), "bot", 1, "success", "m");
    let res = app.post_run(&with).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(
        (&created["session_id"], &created["user_id"]),
        (&json!("conv-1"), &json!("u-hash-1"))
    );
    let stored: Value = app.get_run(&run_id_of(&with)).await.json().await.unwrap();
    assert_eq!(stored, created, "the answer is the stored run");

    // Absent reads as null, the key always there; null is absent.
    let mut without = run(None, None, "bot", 2, "success", "m");
    without["user_id"] = Value::Null;
    let created: Value = app.post_run(&without).await.json().await.unwrap();
    let object = created.as_object().unwrap();
    assert_eq!(
        (object.get("session_id"), object.get("user_id")),
        (Some(&Value::Null), Some(&Value::Null))
    );

    // Batches store them too, and every list answer carries them.
    let batch = [
        run(Some("conv-2"), Some("u-hash-2"), "bot", 3, "success", "m"),
        run(Some("conv-2"), None, "bot", 4, "failure", "m"),
    ];
    app.post_all(&batch).await;
    let list = app.get_json(&app.query, "/v1/runs").await;
    let pairs: Vec<(Value, Value)> =
        each(&list, |r| (r["session_id"].clone(), r["user_id"].clone()));
    assert_eq!(
        pairs,
        [
            (json!("conv-2"), Value::Null),
            (json!("conv-2"), json!("u-hash-2")),
            (Value::Null, Value::Null),
            (json!("conv-1"), json!("u-hash-1")),
        ]
    );

    // A resent final run stays as it was; a running run takes its final payload's values.
    let mut resent = with.clone();
    resent["session_id"] = json!("conv-other");
    let res = app.post_run(&resent).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["session_id"], "conv-1");
    let started = run(Some("conv-3"), None, "bot", 5, "running", "m");
    assert_eq!(app.post_run(&started).await.status(), StatusCode::CREATED);
    let mut finished = started.clone();
    finished["status"] = json!("success");
    finished["ended_at"] = json!("2024-06-01T12:05:30Z");
    finished["session_id"] = json!("conv-3b");
    finished["user_id"] = json!("u-hash-3");
    assert_eq!(app.post_run(&finished).await.status(), StatusCode::OK);
    let stored: Value = app
        .get_run(&run_id_of(&started))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&stored["session_id"], &stored["user_id"]),
        (&json!("conv-3b"), &json!("u-hash-3"))
    );
}

#[tokio::test]
async fn bad_session_and_user_ids_are_422s_naming_the_field() {
    let app = spawn_app().await;
    for field in ["session_id", "user_id"] {
        for (value, kind) in [
            (json!("x".repeat(256)), "string_too_long"),
            (json!(""), "string_too_short"),
            (json!(12345), "string_type"),
            (json!(["a"]), "string_type"),
            (json!("line\nbreak"), "string_control_character"),
            (json!("esc\u{1b}[31m"), "string_control_character"),
        ] {
            let mut body = run(Some("ok"), Some("ok"), "bot", 1, "success", "m");
            body[field] = value.clone();
            let res = app.post_run(&body).await;
            assert_eq!(res.status(), 422, "{field} = {value}");
            let detail = res.json::<Value>().await.unwrap()["detail"].clone();
            assert_eq!(
                detail,
                json!([{"type": kind, "loc": ["body", field], "msg": detail[0]["msg"]}]),
                "{field} = {value}"
            );
            assert_eq!(app.count("agent_runs", &run_id_of(&body)), 0);
        }
        // 255 characters are fine.
        let mut body = run(None, None, "bot", 1, "success", "m");
        body[field] = json!("y".repeat(255));
        assert_eq!(app.post_run(&body).await.status(), StatusCode::CREATED);
    }
    // In a batch, the bad run alone is refused, named where it sits.
    let good = run(Some("s"), None, "bot", 1, "success", "m");
    let mut bad = run(Some("s"), None, "bot", 1, "success", "m");
    bad["user_id"] = json!(7);
    let body: Value = app
        .post_batch(&[good.clone(), bad])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch_statuses(&body), [201, 422]);
    assert_eq!(
        body["results"][1]["detail"][0]["loc"],
        json!(["body", "runs", 1, "user_id"])
    );
}

#[tokio::test]
async fn a_credential_as_a_session_or_user_id_is_redacted_like_an_agent_id() {
    let app = spawn_app().await;
    let mut body = run(None, None, "bot", 1, "success", "m");
    body["session_id"] = json!("sk-aaaaaaaaaaaaaaaaaaaaaaaaaa");
    let res = app.post_run(&body).await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "compat mode stores the run"
    );
    assert_eq!(res.headers()["x-agenttracer-redacted"], "1");
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["session_id"], "[REDACTED]");
}

#[tokio::test]
async fn the_list_stats_and_stream_filter_by_session_and_user() {
    let app = spawn_app_with(|c| c.query.stream_poll_ms = 100).await;
    let runs = [
        run(Some("s1"), Some("u1"), "alpha", 1, "success", "gpt-4o"),
        run(Some("s1"), Some("u1"), "alpha", 2, "failure", "gpt-4o"),
        run(Some("s2"), Some("u1"), "beta", 3, "partial", "other"),
        run(Some("s3"), Some("u2"), "alpha", 4, "success", "gpt-4o"),
        run(None, None, "alpha", 5, "success", "gpt-4o"),
    ];
    app.post_all(&runs).await;
    let ids =
        |which: &[usize]| -> Vec<String> { which.iter().map(|i| run_id_of(&runs[*i])).collect() };
    for (query, want) in [
        ("?session_id=s1", ids(&[1, 0])),
        ("?user_id=u1", ids(&[2, 1, 0])),
        ("?user_id=u1&agent_id=beta", ids(&[2])),
        ("?session_id=nope", ids(&[])),
    ] {
        let list = app.get_json(&app.query, &format!("/v1/runs{query}")).await;
        assert_eq!(each(&list, run_id_of), want, "{query}");
    }
    let res = app.get(&app.query, "/v1/runs?session_id=a%00").await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"][0]["loc"],
        json!(["query", "session_id"])
    );

    // Stats under a session or user filter are computed from the rows, exactly.
    for (query, cond) in [
        ("?session_id=s1", "r.session_id = 's1'"),
        ("?user_id=u1", "r.user_id = 'u1'"),
        (
            "?user_id=u1&agent_id=alpha",
            "r.user_id = 'u1' AND r.agent_id = 'alpha'",
        ),
        (
            "?session_id=s1&start_time=2024-06-01T12:02:00Z&end_time=2024-06-01T13:00:00Z",
            "r.session_id = 's1' AND r.started_at >= '2024-06-01T12:02:00Z'",
        ),
        ("?user_id=nobody", "FALSE"),
    ] {
        assert_stats_match_rows(&app, query, cond).await;
    }
    let stats = app.get_json(&app.query, "/v1/stats?session_id=s1").await;
    assert_eq!(
        (&stats["total_runs"], &stats["total_failures"]),
        (&json!(2), &json!(1))
    );

    // The same runs give the same answer whether read from the rollups (an agent filter) or
    // from the rows (a session filter): agent "solo" ran only in session "s-solo".
    let solo = [
        run(Some("s-solo"), Some("u9"), "solo", 10, "success", "gpt-4o"),
        run(
            Some("s-solo"),
            Some("u9"),
            "solo",
            20,
            "failure",
            "gpt-4o-mini",
        ),
        run(Some("s-solo"), None, "solo", 30, "running", "gpt-4o"),
    ];
    app.post_all(&solo).await;
    for window in [
        "",
        "&start_time=2024-06-01T00:00:00Z&end_time=2024-06-02T00:00:00Z",
    ] {
        let by_agent = app
            .get_json(&app.query, &format!("/v1/stats?agent_id=solo{window}"))
            .await;
        let by_session = app
            .get_json(&app.query, &format!("/v1/stats?session_id=s-solo{window}"))
            .await;
        assert_eq!(by_session, by_agent, "window {window:?}");
        assert_eq!(by_session["total_runs"], 3);
        assert!(by_session["total_cost_usd"].is_number(), "{by_session}");
    }

    // The stream sends only the runs of its session (or user).
    let mut by_session = Sse::open(&app, "?session_id=live-1", None).await;
    let mut by_user = Sse::open(&app, "?user_id=live-u", None).await;
    let wanted = run(Some("live-1"), Some("someone"), "alpha", 6, "success", "m");
    let users = run(Some("live-2"), Some("live-u"), "alpha", 7, "success", "m");
    for r in [
        run(Some("live-2"), None, "alpha", 6, "success", "m"),
        wanted.clone(),
        users.clone(),
    ] {
        assert_eq!(app.post_run(&r).await.status(), StatusCode::CREATED);
    }
    let got = by_session.runs(Duration::from_secs(3)).await;
    let got: Vec<String> = got.iter().map(|(_, r)| run_id_of(r)).collect();
    assert_eq!(got, [run_id_of(&wanted)]);
    let got = by_user.runs(Duration::from_secs(1)).await;
    let got: Vec<String> = got.iter().map(|(_, r)| run_id_of(r)).collect();
    assert_eq!(got, [run_id_of(&users)]);
    assert_eq!(Sse::request(&app, "?user_id=%00", None).await.status(), 422);
}

#[tokio::test]
async fn sessions_are_listed_newest_first_with_their_counts_agents_users_and_costs() {
    let app = spawn_app().await;
    app.price_test_model().await;
    app.post_all(&[
        // s-a: two agents, a failure, two priced runs, the later user wins.
        run(Some("s-a"), Some("u-old"), "zeta", 1, "success", MODEL),
        run(Some("s-a"), Some("u-new"), "alpha", 8, "failure", MODEL),
        run(Some("s-a"), None, "zeta", 9, "success", "unpriced-model"),
        // s-b: nothing priced, nothing ended yet.
        run(Some("s-b"), None, "alpha", 5, "running", "unpriced-model"),
        // s-c: the latest session.
        run(Some("s-c"), Some("u-c"), "beta", 30, "partial", MODEL),
        // Not in a session: not listed.
        run(None, Some("u-c"), "beta", 40, "success", MODEL),
    ])
    .await;
    let page = app.sessions("").await;
    assert_eq!(session_ids(&page), ["s-c", "s-a", "s-b"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let a = &page["sessions"][1];
    assert_eq!(
        *a,
        json!({
            "session_id": "s-a",
            "user_id": "u-new",
            "agent_ids": ["alpha", "zeta"],
            "run_count": 3,
            "failed_run_count": 1,
            "first_started_at": "2024-06-01T12:01:00Z",
            "last_started_at": "2024-06-01T12:09:00Z",
            "last_ended_at": "2024-06-01T12:09:30Z",
            "cost_usd": a["cost_usd"],
        })
    );
    // Two runs of 1000 input tokens at 1 USD/M and 500 output at 2 USD/M: 0.002 each.
    assert_eq!(a["cost_usd"].to_string(), "0.004");
    let b = &page["sessions"][2];
    assert_eq!(
        (
            &b["user_id"],
            &b["last_ended_at"],
            &b["cost_usd"],
            &b["failed_run_count"]
        ),
        (&Value::Null, &Value::Null, &Value::Null, &json!(0))
    );
    assert_eq!(page["sessions"][0]["cost_usd"].to_string(), "0.002");

    // Cursor paging: as many pages as it takes, in the same order, each link a next page.
    let res = app.get(&app.query, "/v1/sessions?limit=2").await;
    let cursor = res.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    let first: Value = res.json().await.unwrap();
    assert_eq!(session_ids(&first), ["s-c", "s-a"]);
    assert_eq!(first["next_cursor"], cursor.as_str());
    assert!(link.starts_with("</v1/sessions?limit=2&cursor="), "{link}");
    let second = app.sessions(&format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(session_ids(&second), ["s-b"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Filters select runs: a session is listed with the runs they select.
    let by_agent = app.sessions("?agent_id=alpha").await;
    assert_eq!(session_ids(&by_agent), ["s-a", "s-b"]);
    assert_eq!(by_agent["sessions"][0]["run_count"], 1);
    assert_eq!(by_agent["sessions"][0]["agent_ids"], json!(["alpha"]));
    assert_eq!(session_ids(&app.sessions("?user_id=u-old").await), ["s-a"]);
    let window = app
        .sessions("?start_time=2024-06-01T12:05:00Z&end_time=2024-06-01T12:08:00Z")
        .await;
    assert_eq!(session_ids(&window), ["s-a", "s-b"]);
    assert_eq!(
        window["sessions"][0]["first_started_at"],
        "2024-06-01T12:08:00Z"
    );

    // Each bad parameter is a 422 naming it.
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=nonsense", "cursor"),
        ("start_time=yesterday", "start_time"),
        ("user_id=%00", "user_id"),
    ] {
        let res = app.get(&app.query, &format!("/v1/sessions?{query}")).await;
        assert_eq!(res.status(), 422, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["detail"][0]["loc"], json!(["query", name]), "{query}");
    }
}

#[tokio::test]
async fn sessions_tied_on_their_latest_start_page_without_loss_or_repeat() {
    let app = spawn_app().await;
    let ids: Vec<String> = (0..7).map(|n| format!("tie-{n}")).collect();
    let runs: Vec<Value> = ids
        .iter()
        .map(|id| run(Some(id), None, "bot", 3, "success", "m"))
        .collect();
    app.post_all(&runs).await;
    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = app.sessions(&query).await;
        seen.extend(session_ids(&page).into_iter().map(str::to_owned));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(seen, want, "ties in session_id order, descending");
}

#[tokio::test]
async fn a_session_by_id_has_its_runs_oldest_first_without_steps_or_is_a_404() {
    let app = spawn_app().await;
    app.price_test_model().await;
    let runs = [
        run(Some("team/42"), Some("u1"), "beta", 7, "success", MODEL),
        run(
            Some("team/42"),
            Some("u2"),
            "alpha",
            2,
            "failure",
            "unpriced-model",
        ),
        run(Some("other"), Some("u1"), "alpha", 3, "success", MODEL),
    ];
    app.post_all(&runs).await;
    let listed = app.sessions("").await;
    for path in ["/v1/sessions/team/42", "/v1/sessions/team%2F42"] {
        let res = app.get(&app.query, path).await;
        assert_eq!(res.status(), 200, "{path}");
        let got: Value = res.json().await.unwrap();
        // The session's row, as the list has it, and its runs.
        let mut row = got.clone();
        let object = row.as_object_mut().unwrap();
        let runs_of = object.remove("runs").unwrap();
        assert_eq!(object.remove("runs_truncated"), Some(json!(false)));
        assert_eq!(row, listed["sessions"][0], "{path}");
        assert_eq!(row["user_id"], "u1", "the latest run's user");
        assert_eq!(
            each(&runs_of, run_id_of),
            [run_id_of(&runs[1]), run_id_of(&runs[0])],
            "oldest first"
        );
        let first = runs_of[0].as_object().unwrap();
        for gone in ["steps", "failures", "decisions", "quality_signals"] {
            assert!(!first.contains_key(gone), "{gone} in {first:?}");
        }
        assert_eq!(
            (
                &runs_of[0]["status"],
                &runs_of[0]["cost_usd"],
                &runs_of[0]["user_id"]
            ),
            (&json!("failure"), &Value::Null, &json!("u2"))
        );
        assert_eq!(runs_of[1]["cost_usd"].to_string(), "0.002");
        assert_eq!(runs_of[1]["session_id"], "team/42");
    }
    let res = app.get(&app.query, "/v1/sessions/nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        "Session nope not found"
    );
    let res = app.get(&app.query, "/v1/sessions/a%00b").await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_session_answers_at_most_a_thousand_runs_and_says_it_cut_them() {
    let app = spawn_app().await;
    let runs: Vec<Value> = (0..1001u32)
        .map(|n| {
            let mut r = run(Some("big"), None, "bot", n % 60, "success", "m");
            r["steps"] = json!([]);
            r["started_at"] = json!(format!("2024-06-01T{:02}:{:02}:00Z", n / 60, n % 60));
            r.as_object_mut().unwrap().remove("ended_at");
            r
        })
        .collect();
    app.post_all(&runs[..1000]).await;
    let got = app.get_json(&app.query, "/v1/sessions/big").await;
    assert_eq!(
        (&got["run_count"], &got["runs_truncated"]),
        (&json!(1000), &json!(false))
    );
    assert_eq!(got["runs"].as_array().unwrap().len(), 1000);
    app.post_all(&runs[1000..]).await;
    let got = app.get_json(&app.query, "/v1/sessions/big").await;
    assert_eq!(
        (&got["run_count"], &got["runs_truncated"]),
        (&json!(1001), &json!(true))
    );
    let listed = got["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 1000);
    assert_eq!(
        run_id_of(&listed[999]),
        run_id_of(&runs[999]),
        "the oldest thousand"
    );
}

// ---- OTLP: one test per convention ----

fn uuid_of(trace: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(trace).to_string()
}

async fn post_spans(app: &TestApp, req: &ExportTraceServiceRequest) {
    let res = app
        .post_raw(
            "/v1/traces",
            req.encode_to_vec(),
            &[("content-type", "application/x-protobuf")],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn otlp_run(app: &TestApp, trace: [u8; 16]) -> Value {
    let res = app.get_run(&uuid_of(trace)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn ids_of(run: &Value) -> (Value, Value) {
    (run["session_id"].clone(), run["user_id"].clone())
}

#[tokio::test]
async fn otlp_semantic_conventions_session_id_and_user_id_name_the_runs_session_and_user() {
    let app = spawn_app().await;
    let trace = trace_id();
    let root = span(
        trace,
        1,
        None,
        "invoke_agent",
        0,
        1000,
        vec![
            kv("session.id", s("otel-sess")),
            kv("user.id", s("otel-user")),
        ],
    );
    let child = span(
        trace,
        2,
        Some(1),
        "chat",
        10,
        100,
        vec![kv("gen_ai.operation.name", s("chat"))],
    );
    post_spans(&app, &request(vec![root, child])).await;
    let run = otlp_run(&app, trace).await;
    assert_eq!(ids_of(&run), (json!("otel-sess"), json!("otel-user")));
    assert_eq!(run["status"], "success");
    // A root naming none takes what a span of its request named.
    let other = trace_id();
    let root = span(other, 1, None, "invoke_agent", 0, 1000, vec![]);
    let child = span(
        other,
        2,
        Some(1),
        "chat",
        10,
        100,
        vec![kv("user.id", s("in-child"))],
    );
    post_spans(&app, &request(vec![root, child])).await;
    assert_eq!(
        ids_of(&otlp_run(&app, other).await),
        (Value::Null, json!("in-child"))
    );
    let listed = app.sessions("").await;
    assert_eq!(listed["sessions"][0]["session_id"], "otel-sess");
    assert_eq!(listed["sessions"][0]["run_count"], 1);
    // The attributes stay in the step metadata as they were (nothing else changes).
    let trace = trace_id();
    let child = span(
        trace,
        2,
        Some(1),
        "chat",
        10,
        100,
        vec![kv("session.id", s("on-a-step"))],
    );
    post_spans(&app, &request(vec![child])).await;
    let run = otlp_run(&app, trace).await;
    assert_eq!(run["session_id"], "on-a-step");
    assert_eq!(run["steps"][0]["metadata"]["session.id"], "on-a-step");
}

#[tokio::test]
async fn otlp_langfuse_attributes_name_them_and_the_root_wins_once_it_arrives() {
    let app = spawn_app().await;
    let trace = trace_id();
    // Before the root: the first span naming them provides them.
    let first = span(
        trace,
        2,
        Some(1),
        "generation",
        10,
        100,
        vec![
            kv("langfuse.session.id", s("lf-sess")),
            kv("langfuse.user.id", s("lf-user")),
        ],
    );
    let second = span(
        trace,
        3,
        Some(1),
        "generation",
        200,
        100,
        vec![kv("langfuse.session.id", s("lf-later"))],
    );
    post_spans(&app, &request(vec![first])).await;
    post_spans(&app, &request(vec![second])).await;
    let run = otlp_run(&app, trace).await;
    assert_eq!(run["status"], "running");
    assert_eq!(ids_of(&run), (json!("lf-sess"), json!("lf-user")));
    // The root's own value wins; where it names none (the user), the spans' stays.
    let root = span(
        trace,
        1,
        None,
        "trace",
        0,
        1000,
        vec![kv("langfuse.session.id", s("lf-root-sess"))],
    );
    post_spans(&app, &request(vec![root])).await;
    let run = otlp_run(&app, trace).await;
    assert_eq!(ids_of(&run), (json!("lf-root-sess"), json!("lf-user")));
    // A late span changes neither.
    let late = span(
        trace,
        4,
        Some(1),
        "generation",
        500,
        10,
        vec![kv("langfuse.user.id", s("x"))],
    );
    post_spans(&app, &request(vec![late])).await;
    assert_eq!(
        ids_of(&otlp_run(&app, trace).await),
        (json!("lf-root-sess"), json!("lf-user"))
    );

    // LiteLLM's Langfuse exporter spells them langfuse.trace.session_id / user_id.
    let trace = trace_id();
    let root = span(
        trace,
        1,
        None,
        "litellm_request",
        0,
        100,
        vec![
            kv("langfuse.trace.session_id", s("litellm-sess")),
            kv("langfuse.trace.user_id", s("litellm-user")),
        ],
    );
    post_spans(&app, &request(vec![root])).await;
    assert_eq!(
        ids_of(&otlp_run(&app, trace).await),
        (json!("litellm-sess"), json!("litellm-user"))
    );
}

#[tokio::test]
async fn otlp_gen_ai_conversation_id_is_the_session_and_a_resource_may_name_the_user() {
    let app = spawn_app().await;
    let trace = trace_id();
    let root = span(
        trace,
        1,
        None,
        "invoke_agent",
        0,
        1000,
        vec![
            kv("gen_ai.operation.name", s("invoke_agent")),
            kv("gen_ai.conversation.id", s("conv_5j66UpCpwteGg4YSxUnt7lPY")),
        ],
    );
    // The root's children in the same request, with tokens: the session carries their cost.
    let chat = span(
        trace,
        2,
        Some(1),
        "chat",
        10,
        100,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.request.model", s("gpt-4o-mini")),
            kv("gen_ai.usage.input_tokens", i(1000)),
            kv("gen_ai.usage.output_tokens", i(500)),
        ],
    );
    let req = otlp_build::export(
        vec![
            kv("service.name", s("conv-svc")),
            kv("user.id", s("resource-user")),
        ],
        "agent-sdk",
        vec![root, chat],
    );
    post_spans(&app, &req).await;
    let run = otlp_run(&app, trace).await;
    assert_eq!(
        ids_of(&run),
        (
            json!("conv_5j66UpCpwteGg4YSxUnt7lPY"),
            json!("resource-user")
        )
    );
    let session = app
        .get_json(&app.query, "/v1/sessions/conv_5j66UpCpwteGg4YSxUnt7lPY")
        .await;
    assert_eq!(session["agent_ids"], json!(["conv-svc"]));
    assert_eq!(session["cost_usd"], run["cost_usd"]);
    // A session.id beats gen_ai.conversation.id on the same span.
    let trace = trace_id();
    let root = span(
        trace,
        1,
        None,
        "invoke_agent",
        0,
        1000,
        vec![
            kv("gen_ai.conversation.id", s("conv-x")),
            kv("session.id", s("explicit")),
        ],
    );
    post_spans(&app, &request(vec![root])).await;
    assert_eq!(otlp_run(&app, trace).await["session_id"], "explicit");
}

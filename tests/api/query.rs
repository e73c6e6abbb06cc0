//! The query listener: listing with filters and paging, one run, stats, agents, OpenAPI.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

/// A run of `agent` that started `minute` minutes into 2024-06-01 12:00, with steps of the given
/// latencies, and a failure of `failure` (type/code) when given.
fn run_at(
    agent: &str,
    env: &str,
    minute: u32,
    status: &str,
    latencies: &[u32],
    failure: Option<(&str, &str)>,
) -> Value {
    let mut run = sample_run(latencies.len(), status);
    run["agent_id"] = json!(agent);
    run["environment"] = json!(env);
    run["started_at"] = json!(format!("2024-06-01T12:{minute:02}:00Z"));
    run["ended_at"] = json!(format!(
        "2024-06-01T12:{minute:02}:{:02}Z",
        10 + minute % 40
    ));
    for (i, latency) in latencies.iter().enumerate() {
        run["steps"][i]["latency_ms"] = json!(latency);
        run["steps"][i]["started_at"] = run["started_at"].clone();
        run["steps"][i]["ended_at"] = run["ended_at"].clone();
    }
    run.as_object_mut().unwrap().remove("failure");
    if let Some((kind, code)) = failure {
        run["failures"] =
            json!([{"failure_type": kind, "failure_code": code, "message": "it broke"}]);
    }
    run
}

async fn list(app: &TestApp, query: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = app.get(&app.query, &format!("/v1/runs{query}")).await;
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.json().await.unwrap(), headers)
}

fn ids(page: &Value) -> Vec<String> {
    each(page, |r| r["run_id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn listing_filters_orders_and_carries_steps_and_failures() {
    let app = spawn_app().await;
    let runs = vec![
        run_at("alpha", "production", 1, "success", &[10, 20], None),
        run_at(
            "alpha",
            "staging",
            2,
            "failure",
            &[30],
            Some(("tool", "timeout")),
        ),
        run_at(
            "beta",
            "production",
            3,
            "partial",
            &[40, 50, 60],
            Some(("model", "refusal")),
        ),
        run_at("beta", "production", 4, "running", &[], None),
    ];
    let body: Value = app.post_batch(&runs).await.json().await.unwrap();
    assert!(batch_statuses(&body).iter().all(|&s| s == 201), "{body}");
    let id = |i: usize| run_id_of(&runs[i]);

    let (status, page, headers) = list(&app, "").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), [id(3), id(2), id(1), id(0)], "newest first");
    assert!(
        headers.get("x-next-cursor").is_none() && headers.get("link").is_none(),
        "one page only"
    );
    assert_eq!(seqs(&page[1]["steps"]), [0, 1, 2]);
    assert_eq!(page[1]["failures"][0]["failure_code"], "refusal");
    assert_eq!(page[0]["steps"], json!([]));
    assert_eq!(page[0]["failures"], json!([]));
    assert!(page[0].get("steps_truncated").is_none());

    for (query, want) in [
        ("?agent_id=alpha", vec![id(1), id(0)]),
        ("?agent_version=1.4.2&agent_id=beta", vec![id(3), id(2)]),
        ("?status=partial", vec![id(2)]),
        ("?environment=staging", vec![id(1)]),
        (
            "?start_time=2024-06-01T12:02:00Z",
            vec![id(3), id(2), id(1)],
        ),
        ("?end_time=2024-06-01T12:02:00Z", vec![id(1), id(0)]),
        (
            "?start_time=2024-06-01T12:02:00&end_time=2024-06-01 12:03:00",
            vec![id(2), id(1)],
        ),
        ("?failure_type=tool", vec![id(1)]),
        ("?failure_code=refusal", vec![id(2)]),
        ("?failure_type=tool&failure_code=refusal", vec![]),
        ("?agent_id=nobody", vec![]),
    ] {
        let (status, page, _) = list(&app, query).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(ids(&page), want, "{query}");
    }
}

#[tokio::test]
async fn invalid_parameters_are_422_naming_them() {
    let app = spawn_app().await;
    for (query, name) in [
        ("?page=0", "page"),
        ("?page=-3", "page"),
        ("?page=two", "page"),
        ("?page_size=0", "page_size"),
        ("?page_size=101", "page_size"),
        ("?status=done", "status"),
        ("?failure_type=network", "failure_type"),
        ("?start_time=yesterday", "start_time"),
        ("?end_time=2024-13-01", "end_time"),
        ("?cursor=not-a-cursor", "cursor"),
    ] {
        let (status, body, _) = list(&app, query).await;
        assert_eq!(status, 422, "{query}");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["query", name]),
            "{query}: {body}"
        );
    }
    let (status, body, _) = list(&app, "?page_size=1").await;
    assert_eq!((status, body), (200, json!([])));
    let res = app.get(&app.query, "/v1/stats?start_time=nope").await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn pages_and_cursors_walk_every_run_once() {
    let app = spawn_app().await;
    // 25 runs, some sharing a start time, so that run_id breaks ties.
    let runs: Vec<Value> = (0..25)
        .map(|i| run_at("pager", "production", i / 2, "success", &[5], None))
        .collect();
    app.post_batch(&runs).await;
    let mut expected: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r["started_at"].as_str().unwrap().to_owned(), run_id_of(r)))
        .collect();
    expected.sort();
    expected.reverse();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    // Offset pages, as the original.
    let mut by_page = Vec::new();
    for page in 1..=3 {
        let (status, body, headers) = list(&app, &format!("?page={page}&page_size=10")).await;
        assert_eq!(status, 200);
        assert_eq!(
            headers.get("x-next-cursor").is_some(),
            page < 3,
            "page {page}"
        );
        by_page.extend(ids(&body));
    }
    assert_eq!(by_page, expected);

    // Cursors, following the Link header.
    let mut by_cursor = Vec::new();
    let mut next = "/v1/runs?page_size=7&agent_id=pager".to_owned();
    loop {
        let res = app.get(&app.query, &next).await;
        assert_eq!(res.status(), 200);
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let cursor = res
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        by_cursor.extend(ids(&res.json().await.unwrap()));
        let Some(link) = link else { break };
        let cursor = cursor.expect("X-Next-Cursor beside Link");
        assert!(
            link.ends_with("; rel=\"next\"") && link.contains(&cursor),
            "{link}"
        );
        assert!(
            link.contains("agent_id=pager") && link.contains("page_size=7"),
            "{link}"
        );
        next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
    }
    assert_eq!(by_cursor, expected);
    let (status, body, _) = list(&app, "?cursor=abc&page=2").await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_list_page_carries_a_bounded_number_of_steps_per_run() {
    let app = spawn_app_with(|c| c.query.list_max_steps_per_run = 3).await;
    let long = run_at(
        "long",
        "production",
        1,
        "success",
        &[1, 2, 3, 4, 5, 6],
        None,
    );
    let short = run_at("short", "production", 2, "success", &[1, 2, 3], None);
    app.post_batch(&[long.clone(), short.clone()]).await;
    let (_, page, headers) = list(&app, "").await;
    assert_eq!(headers["x-agenttracer-steps-truncated"], "1");
    assert_eq!(page[1]["run_id"], long["run_id"]);
    assert_eq!(page[1]["steps"].as_array().unwrap().len(), 3);
    assert_eq!(page[1]["steps_truncated"], true);
    assert_eq!(page[0]["steps"].as_array().unwrap().len(), 3);
    assert!(
        page[0].get("steps_truncated").is_none(),
        "exactly at the cap is not truncated"
    );
    let full: Value = app.get_run(&run_id_of(&long)).await.json().await.unwrap();
    assert_eq!(full["steps"].as_array().unwrap().len(), 6);
    assert!(full.get("steps_truncated").is_none());
}

/// Issue 14 item 4: a list page has a byte budget as it has a step cap. Runs of 200 steps with
/// 10 KB of metadata each: a page of ten would be 20 MB; it carries at most the budget, the runs
/// it cut say `steps_truncated` (with the header), each keeps a prefix of its steps in seq
/// order, and the run by id still has all of them.
#[tokio::test]
async fn a_list_page_carries_a_bounded_number_of_bytes() {
    let budget: i64 = 2 * 1024 * 1024;
    let app = spawn_app_with(|c| c.query.list_max_step_bytes = budget).await;
    let mut runs = Vec::new();
    for minute in 0..10 {
        let mut run = run_at("big", "production", minute, "success", &[5; 200], None);
        for step in run["steps"].as_array_mut().unwrap() {
            step["metadata"]["blob"] = json!("b".repeat(10_000));
        }
        runs.push(run);
    }
    for run in &runs {
        assert_eq!(app.post_run(run).await.status(), 201);
    }
    let res = app.get(&app.query, "/v1/runs?page_size=10").await;
    assert_eq!(res.status(), 200);
    let truncated_header = res.headers().get("x-agenttracer-steps-truncated").cloned();
    let body = res.bytes().await.unwrap();
    assert!(
        (body.len() as i64) < budget + budget / 4,
        "a page of {} bytes over a budget of {budget}",
        body.len()
    );
    let page: Value = serde_json::from_slice(&body).unwrap();
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 10, "every run is listed");
    let cut: Vec<&Value> = page
        .iter()
        .filter(|r| r["steps_truncated"] == true)
        .collect();
    assert!(!cut.is_empty());
    assert_eq!(
        truncated_header.unwrap().to_str().unwrap(),
        cut.len().to_string()
    );
    let mut seen_cut = false;
    for run in page {
        let steps = run["steps"].as_array().unwrap();
        let n = steps.len() as i64;
        assert_eq!(
            seqs(&run["steps"]),
            (0..n).collect::<Vec<i64>>(),
            "a prefix in seq order"
        );
        if run["steps_truncated"] == true {
            seen_cut = true;
            assert!(n < 200);
        } else {
            assert!(
                !seen_cut,
                "a run after the budget was spent claims all its steps"
            );
            assert_eq!(n, 200);
        }
    }
    let id = run_id_of(&runs[0]);
    let full: Value = app.get_run(&id).await.json().await.unwrap();
    assert_eq!(full["steps"].as_array().unwrap().len(), 200);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[tokio::test]
async fn stats_are_computed_as_the_design_defines_them() {
    let app = spawn_app().await;
    let empty: Value = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(empty["total_runs"], 0);
    assert_eq!(empty["success_rate"], 0.0);
    assert_eq!(empty["avg_latency_ms"], 0.0);
    assert_eq!(empty["run_duration_ms"]["p50"], Value::Null);

    let runs = vec![
        run_at("a", "production", 1, "success", &[100, 200], None),
        run_at(
            "a",
            "production",
            2,
            "failure",
            &[300],
            Some(("tool", "timeout")),
        ),
        run_at(
            "a",
            "production",
            3,
            "partial",
            &[400, 500, 600],
            Some(("tool", "timeout")),
        ),
        run_at("b", "staging", 4, "running", &[700], None),
        run_at(
            "b",
            "staging",
            5,
            "failure",
            &[],
            Some(("model", "refusal")),
        ),
    ];
    app.post_batch(&runs).await;
    let stats: Value = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(stats["total_runs"], 5);
    // The original's count: runs whose status is failure; the records are failure_count.
    assert_eq!(stats["total_failures"], 2);
    assert_eq!(stats["failure_count"], 3);
    // Final runs: success, failure, partial, failure; success or partial: 2 of 4.
    assert_eq!(stats["success_rate"], 50.0);
    let latencies = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0];
    assert_eq!(stats["avg_latency_ms"], latencies.iter().sum::<f64>() / 7.0);
    assert_eq!(
        stats["failure_breakdown"],
        json!({"tool/timeout": 2, "model/refusal": 1})
    );
    assert_eq!(
        stats["step_type_breakdown"],
        json!({"plan": 4, "retrieve": 2, "tool": 1})
    );
    assert_eq!(
        stats["status_breakdown"],
        json!({"success": 1, "failure": 2, "partial": 1, "running": 1})
    );
    // Percentiles come from log histograms: within 4 % of the exact percentile_cont.
    for (key, p) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        let got = stats["step_latency_ms"][key].as_f64().unwrap();
        let exact = percentile(&latencies, p);
        assert!(
            (got - exact).abs() <= 0.04 * exact,
            "{key}: {got} vs {exact}"
        );
    }
    // Durations: minute m ends 10 + m seconds after its start.
    let durations: Vec<f64> = (1..=5).map(|m| (10 + m) as f64 * 1000.0).collect();
    let got = stats["run_duration_ms"]["p50"].as_f64().unwrap();
    let exact = percentile(&durations, 0.5);
    assert!((got - exact).abs() <= 0.04 * exact, "{got} vs {exact}");

    // Native steps name their model and tokens in metadata (sample_run: gpt-4o, 100 + i in, 20 out).
    assert_eq!(
        stats["tokens_by_model"],
        json!({"gpt-4o": {"steps": 7, "input_tokens": 704, "output_tokens": 140}})
    );
    let filtered: Value = app
        .get_json(&app.query, "/v1/stats?agent_id=a&status=running")
        .await;
    assert_eq!(filtered["total_runs"], 3, "status is not a stats filter");
    assert_eq!(filtered["success_rate"], 66.67);
    let by_failure: Value = app
        .get_json(&app.query, "/v1/stats?failure_code=refusal")
        .await;
    assert_eq!(by_failure["total_runs"], 1);
    assert_eq!(by_failure["avg_latency_ms"], 0.0);
}

/// A run of `agent` started at `started` (RFC 3339) and ended `seconds` later, with steps of
/// these latencies.
/// The original's UI shows `total_runs - total_failures` as "successful": `total_failures`
/// counts failed runs, however many failure records each has; the records are `failure_count`.
#[tokio::test]
async fn total_failures_counts_failed_runs_and_failure_count_their_records() {
    let app = spawn_app().await;
    let with_failures = |minute: u32, status: &str, n: usize| {
        let mut run = run_at("a", "production", minute, status, &[100], None);
        let failures: Vec<Value> = (0..n)
            .map(|i| json!({"failure_type": "tool", "failure_code": format!("e{i}"), "message": "it broke"}))
            .collect();
        if n > 0 {
            run["failures"] = json!(failures);
        }
        run
    };
    // 0, 1 and 3 failure records: a success, a failure with one, a failure with three, and a
    // partial run with one (a failure record, but not a failed run).
    let runs = vec![
        with_failures(1, "success", 0),
        with_failures(2, "failure", 1),
        with_failures(3, "failure", 3),
        with_failures(4, "partial", 1),
    ];
    let answer: Value = app.post_batch(&runs).await.json().await.unwrap();
    assert!(
        batch_statuses(&answer).iter().all(|&s| s == 201),
        "{answer}"
    );
    let stats: Value = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(stats["total_runs"], 4);
    assert_eq!(
        stats["total_failures"], 2,
        "failed runs, not records: {stats}"
    );
    assert_eq!(stats["failure_count"], 5, "failure records: {stats}");
    assert_eq!(
        stats["failure_breakdown"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_i64().unwrap())
            .sum::<i64>(),
        5
    );
    // Unchanged: final runs that are success or partial, 2 of 4.
    assert_eq!(stats["success_rate"], 50.0);
    let one: Value = app
        .get(
            &app.query,
            "/v1/stats?start_time=2024-06-01T12:03:00Z&end_time=2024-06-01T12:03:59Z",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &one["total_runs"],
            &one["total_failures"],
            &one["failure_count"]
        ),
        (&json!(1), &json!(1), &json!(3)),
        "{one}"
    );
    assert_rollups_are_those_of_the_rows(&app);
}

/// Times at the edges of what the service represents: no panic, no 500. Valid bounds are
/// answered (an end bound at the last representable microsecond is "everything"; an inverted
/// window is empty, as the original answered); what PostgreSQL cannot hold is a 422.
#[tokio::test]
async fn extreme_times_and_tampered_cursors_are_answered_never_a_panic_or_500() {
    use base64::Engine;
    let app = spawn_app().await;
    app.post_batch(&[run_at("a", "production", 1, "success", &[100], None)])
        .await;
    for (query, runs) in [
        ("end_time=9999-12-31T23:59:59.999999Z", 1),
        (
            "start_time=9999-12-31T23:59:59Z&end_time=0000-01-01T00:00:00Z",
            0,
        ),
        (
            "start_time=0000-01-01T00:00:00Z&end_time=9999-12-31T23:59:59.999999Z",
            1,
        ),
        ("start_time=9999-12-31T23:59:59.999999Z", 0),
    ] {
        let res = app.get(&app.query, &format!("/v1/stats?{query}")).await;
        assert_eq!(res.status(), 200, "{query}");
        let stats: Value = res.json().await.unwrap();
        assert_eq!(stats["total_runs"], runs, "{query}");
        let (status, page, _) = list(&app, &format!("?{query}")).await;
        assert_eq!(
            (status, page.as_array().unwrap().len()),
            (200, runs as usize),
            "{query}"
        );
    }
    // A cursor naming a time before 4713 BC (PostgreSQL's first), or past i128 when scaled.
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for raw in [
        format!(
            "v1:{}:{}",
            -250_000_000_000_000_000i64,
            uuid::Uuid::new_v4().simple()
        ),
        format!("v1:{}:{}", i128::MAX, uuid::Uuid::new_v4().simple()),
    ] {
        let cursor = engine.encode(raw);
        let (status, body, _) = list(&app, &format!("?cursor={cursor}")).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "cursor"]));
    }
    for query in [
        "start_time=-5000-01-01T00:00:00",
        "end_time=-4713-06-01T00:00:00Z",
    ] {
        let res = app.get(&app.query, &format!("/v1/stats?{query}")).await;
        assert_eq!(res.status(), 422, "{query}");
    }
    let live = app.get(&app.query, "/livez").await;
    assert_eq!(live.status(), 200, "the service still runs");
}

fn run_started(
    agent: &str,
    started: &str,
    seconds: u32,
    status: &str,
    latencies: &[u32],
    failure: Option<(&str, &str)>,
) -> Value {
    let mut run = run_at(agent, "production", 0, status, latencies, failure);
    let start =
        time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let end = (start + time::Duration::seconds(i64::from(seconds)))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    run["started_at"] = json!(started);
    run["ended_at"] = if status == "running" {
        Value::Null
    } else {
        json!(end)
    };
    for step in run["steps"].as_array_mut().unwrap() {
        step["started_at"] = json!(started);
        step["ended_at"] = json!(end);
    }
    run
}

/// `GET /v1/agents` (read from the rollups) against the same computed from the rows.
async fn assert_agents_match_rows(app: &TestApp) {
    let got: Value = app.get_json(&app.query, "/v1/agents").await;
    let exact: Value = serde_json::from_str(&app.db.psql(
        "SELECT coalesce(json_agg(a ORDER BY a.last_run_at DESC, a.agent_id), '[]') FROM \
         (SELECT r.agent_id, array_agg(DISTINCT r.agent_version) AS versions, \
          array_agg(DISTINCT r.environment) AS environments, count(*) AS run_count, \
          count(*) FILTER (WHERE r.status = 'failure') AS failed_run_count, \
          (SELECT count(*) FROM agent_failures f JOIN agent_runs x ON x.run_id = f.run_id \
           WHERE x.agent_id = r.agent_id) AS failure_count, \
          to_char(max(r.started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS last_run_at \
          FROM agent_runs r GROUP BY r.agent_id) a",
    ))
    .unwrap();
    let (got, exact) = (got.as_array().unwrap(), exact.as_array().unwrap());
    assert_eq!(got.len(), exact.len(), "{got:?} vs {exact:?}");
    for (g, e) in got.iter().zip(exact) {
        for key in [
            "agent_id",
            "versions",
            "environments",
            "run_count",
            "failed_run_count",
            "failure_count",
        ] {
            assert_eq!(g[key], e[key], "{key}: {g} vs {e}");
        }
        let parse = |v: &Value| {
            time::OffsetDateTime::parse(
                v.as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        assert_eq!(
            parse(&g["last_run_at"]),
            parse(&e["last_run_at"]),
            "{g} vs {e}"
        );
    }
}

#[tokio::test]
async fn stats_rollups_agree_with_the_rows_through_every_write_path_and_window() {
    let app = spawn_app().await;
    let mut runs = Vec::new();
    let times = [
        "2024-06-01T10:15:00Z",
        "2024-06-01T10:45:30.25Z",
        "2024-06-01T11:30:00Z",
        "2024-06-01T23:59:59.999999Z",
        "2024-06-02T00:00:00Z",
        "2024-06-02T00:10:00Z",
        "2024-06-03T07:00:00Z",
        "2024-06-05T13:20:00Z",
        "2024-05-31T23:30:00Z",
        "2024-07-01T00:00:00Z",
    ];
    for (i, t) in times.iter().enumerate() {
        let agent = ["a", "b"][i % 2];
        let (status, failure) = match i % 4 {
            0 => ("success", None),
            1 => ("failure", Some(("tool", "timeout"))),
            2 => ("partial", Some(("model", "refusal"))),
            _ => ("success", None),
        };
        let latencies: Vec<u32> = (0..(i as u32 % 5 + 1))
            .map(|j| 7 + 311 * j * (i as u32 + 1))
            .collect();
        runs.push(run_started(
            agent,
            t,
            3 + 17 * i as u32,
            status,
            &latencies,
            failure,
        ));
    }
    // A batch, a single run (the group-commit path), and a running run replaced by its final
    // version in another hour and day.
    assert_eq!(app.post_batch(&runs[..6]).await.status(), 200);
    for run in &runs[6..] {
        assert_eq!(app.post_run(run).await.status(), 201);
    }
    let mut open = run_started("a", "2024-06-01T10:20:00Z", 0, "running", &[40, 50], None);
    assert_eq!(app.post_run(&open).await.status(), 201);
    assert_stats_match_rows(&app, "", "TRUE").await;
    open = {
        let mut done = run_started(
            "a",
            "2024-06-04T02:30:00Z",
            9,
            "failure",
            &[60],
            Some(("retrieval", "empty")),
        );
        done["run_id"] = open["run_id"].clone();
        done
    };
    assert_eq!(app.post_run(&open).await.status(), 200);
    // A deleted run, and several deleted in one statement (as retention does).
    assert_eq!(app.delete_run(&run_id_of(&runs[1])).await.status(), 204);
    app.db.psql(&format!(
        "DELETE FROM agent_runs WHERE run_id IN ('{}', '{}')",
        run_id_of(&runs[2]),
        run_id_of(&runs[7])
    ));

    let windows = [
        ("", "TRUE"),
        ("?agent_id=a", "r.agent_id = 'a'"),
        (
            "?start_time=2024-06-01T10:30:00Z",
            "r.started_at >= '2024-06-01T10:30:00Z'",
        ),
        (
            "?end_time=2024-06-02T00:00:00Z",
            "r.started_at <= '2024-06-02T00:00:00Z'",
        ),
        (
            "?start_time=2024-06-01T00:00:00Z&end_time=2024-06-03T07:00:00Z&agent_id=a",
            "r.started_at BETWEEN '2024-06-01T00:00:00Z' AND '2024-06-03T07:00:00Z' AND r.agent_id = 'a'",
        ),
        (
            "?start_time=2024-06-01T10:16:00Z&end_time=2024-06-01T10:50:00Z",
            "r.started_at BETWEEN '2024-06-01T10:16:00Z' AND '2024-06-01T10:50:00Z'",
        ),
        (
            "?start_time=2024-05-31T23:00:00Z&end_time=2024-07-01T00:00:00Z",
            "r.started_at BETWEEN '2024-05-31T23:00:00Z' AND '2024-07-01T00:00:00Z'",
        ),
        (
            "?failure_type=tool",
            "EXISTS (SELECT 1 FROM agent_failures ff WHERE ff.run_id = r.run_id AND ff.failure_type = 'tool')",
        ),
    ];
    for (query, cond) in windows {
        assert_stats_match_rows(&app, query, cond).await;
    }
    assert_agents_match_rows(&app).await;
    // The same once the deltas are merged, and after a rebuild from the rows.
    app.db.psql("SELECT agenttracer_rollup_compact(1000)");
    assert_eq!(
        app.db
            .psql("SELECT count(*) FROM stats_rollup WHERE NOT compacted"),
        "0"
    );
    for (query, cond) in windows {
        assert_stats_match_rows(&app, query, cond).await;
    }
    assert_agents_match_rows(&app).await;
    let before = app
        .db
        .psql("SELECT grain, bucket, agent_id, c FROM stats_rollup ORDER BY 1, 2, 3");
    app.db.psql("SELECT agenttracer_rollup_rebuild()");
    app.db.psql("SELECT agenttracer_rollup_compact(1000)");
    assert_eq!(
        app.db
            .psql("SELECT grain, bucket, agent_id, c FROM stats_rollup ORDER BY 1, 2, 3"),
        before,
        "rollups kept at ingest are the rollups of the rows"
    );
}

#[tokio::test]
async fn agents_are_listed_with_their_versions_environments_and_counts() {
    let app = spawn_app().await;
    let mut second = run_at("a", "staging", 5, "failure", &[1], Some(("tool", "x")));
    second["agent_version"] = json!("2.0.0");
    second["failures"] = json!([
        {"failure_type": "tool", "failure_code": "x", "message": "m"},
        {"failure_type": "model", "failure_code": "y", "message": "m"}
    ]);
    app.post_batch(&[
        run_at("a", "production", 1, "success", &[1], None),
        second,
        run_at("b", "production", 3, "success", &[], None),
    ])
    .await;
    let agents: Value = app.get_json(&app.query, "/v1/agents").await;
    assert_eq!(
        agents,
        json!([
            {"agent_id": "a", "versions": ["1.4.2", "2.0.0"], "environments": ["production", "staging"],
             "run_count": 2, "failed_run_count": 1, "failure_count": 2, "last_run_at": "2024-06-01T12:05:00Z"},
            {"agent_id": "b", "versions": ["1.4.2"], "environments": ["production"],
             "run_count": 1, "failed_run_count": 0, "failure_count": 0, "last_run_at": "2024-06-01T12:03:00Z"}
        ])
    );
}

/// The paths and methods an OpenAPI document lists.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn each_listener_documents_exactly_the_routes_it_mounts() {
    let app = spawn_app().await;
    let common = [
        ("GET", "/health"),
        ("GET", "/readyz"),
        ("GET", "/livez"),
        ("GET", "/metrics"),
    ];
    let ingest_only = [
        ("POST", "/v1/runs"),
        ("POST", "/v1/runs/batch"),
        ("DELETE", "/v1/runs/{run_id}"),
        ("POST", "/v1/traces"),
        ("POST", "/v1/drift/baselines"),
        ("POST", "/v1/drift/baselines/{baseline_id}/activate"),
        ("POST", "/v1/drift/baselines/{baseline_id}/deactivate"),
        ("POST", "/v1/drift/baselines/{baseline_id}/approve"),
        ("POST", "/v1/drift/{drift_id}/resolve"),
        ("POST", "/v1/drift/detect"),
        ("PUT", "/v1/model-prices/{model}"),
        ("DELETE", "/v1/model-prices/{model}"),
    ];
    let query_only = [
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/stream"),
        ("GET", "/v1/runs/{run_id}"),
        ("GET", "/v1/runs/{run_id}/steps"),
        ("GET", "/v1/runs/{run_id}/failures"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/agents"),
        ("GET", "/v1/sessions"),
        ("GET", "/v1/sessions/{session_id}"),
        ("GET", "/v1/drift/profiles"),
        ("GET", "/v1/drift/profiles/{profile_id}"),
        ("GET", "/v1/drift/baselines"),
        ("GET", "/v1/drift/baselines/{baseline_id}"),
        ("GET", "/v1/drift"),
        ("GET", "/v1/drift/{drift_id}"),
        ("GET", "/v1/drift/timeline"),
        ("GET", "/v1/drift/summary"),
        ("GET", "/v1/model-prices"),
    ];
    for (base, own, other) in [
        (&app.ingest, &ingest_only[..], &query_only[..]),
        (&app.query, &query_only[..], &ingest_only[..]),
    ] {
        let doc: Value = app.get(base, "/openapi.json").await.json().await.unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let want: BTreeSet<(String, String)> = common
            .iter()
            .chain(own)
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented(&doc), want);
        // Every documented route is mounted (the default 404 says "Not Found")…
        for (method, path) in common.iter().chain(own).chain(other) {
            let id = uuid::Uuid::new_v4().to_string();
            let mut url = format!("{base}{path}");
            for name in [
                "{run_id}",
                "{baseline_id}",
                "{profile_id}",
                "{drift_id}",
                "{model}",
                "{session_id}",
            ] {
                url = url.replace(name, &id);
            }
            let res = app
                .client
                .request(method.parse().unwrap(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            // (The stream's body never ends: only a refusal's is read.)
            let body = match status.as_u16() {
                404 | 405 => res.text().await.unwrap(),
                _ => String::new(),
            };
            // (A path the listener knows with another method is 405 "Method Not Allowed".)
            let unmounted = (status == 404 && body.contains("\"Not Found\""))
                || (status == 405 && body.contains("\"Method Not Allowed\""));
            // …and only those: the other listener's routes are not.
            assert_eq!(
                unmounted,
                other.contains(&(method, path)),
                "{method} {path} on {base}: {status} {body}"
            );
        }
        // Request and response schemas are there.
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["Detail", "ValidationErrors"] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }
    let ingest: Value = app.get_json(&app.ingest, "/openapi.json").await;
    assert!(ingest["components"]["schemas"]["RunIn"]["properties"]["steps"].is_object());
    let query: Value = app.get_json(&app.query, "/openapi.json").await;
    assert!(query["components"]["schemas"]["RunOut"]["properties"]["failures"].is_object());
    let params: Vec<&str> = each(&query["paths"]["/v1/runs"]["get"]["parameters"], |p| {
        p["name"].as_str().unwrap()
    });
    for name in [
        "agent_id",
        "agent_version",
        "status",
        "environment",
        "start_time",
        "end_time",
        "failure_type",
        "failure_code",
        "session_id",
        "user_id",
        "page",
        "page_size",
        "cursor",
    ] {
        assert!(params.contains(&name), "{name} undocumented");
    }
}

#[tokio::test]
async fn one_list_request_issues_a_fixed_small_number_of_statements() {
    let cluster = PgCluster::start_new(&["log_statement = 'all'", "log_line_prefix = '%a|'"]);
    let admin = cluster.admin();
    prepare_database(&admin, "statements");
    let db = TestDb {
        admin,
        name: "statements".into(),
    };
    let config = test_config(&db);
    let app = spawn_app_on(db, config).await;
    let runs: Vec<Value> = (0..20)
        .map(|i| {
            run_at(
                "s",
                "production",
                i,
                "failure",
                &[1, 2, 3, 4, 5],
                Some(("tool", "t")),
            )
        })
        .collect();
    app.post_batch(&runs).await;
    list(&app, "?page_size=20&agent_id=s").await; // a pooled connection exists from here on
    let before = cluster.log().lines().count();
    let (status, page, _) = list(&app, "?page_size=20&agent_id=s").await;
    assert_eq!((status, page.as_array().unwrap().len()), (200, 20));
    let log = cluster.log();
    let statements: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|l| {
            l.starts_with("agenttracer-read|LOG:")
                && (l.contains(" statement: ") || l.contains(" execute "))
        })
        .collect();
    // One statement each for the runs, their steps, failures, decisions and quality signals:
    // five, for 20 runs of five steps each (a pooled connection is reused without a check query).
    assert_eq!(statements.len(), 5, "{statements:#?}");
    for (statement, table) in statements.iter().zip([
        "FROM agent_runs r",
        "FROM agent_steps s",
        "FROM \"agent_failures\"",
        "FROM \"agent_decisions\"",
        "FROM \"agent_quality_signals\"",
    ]) {
        assert!(statement.contains(table), "{statement}");
    }
    for statement in statements {
        println!("{statement}");
    }
}

#[tokio::test]
async fn filter_parameters_carrying_sql_are_harmless() {
    let app = spawn_app().await;
    let run = run_at(
        "victim",
        "production",
        1,
        "failure",
        &[1],
        Some(("tool", "t")),
    );
    app.post_run(&run).await;
    let attacks = [
        "' OR '1'='1",
        "x'; DELETE FROM agent_runs; --",
        "x\"); DROP TABLE agent_steps; --",
        "1 UNION SELECT * FROM pg_shadow",
        "%' OR 1=1 --",
    ];
    for attack in attacks {
        let q: String = serde_urlencoded::to_string([
            ("agent_id", attack),
            ("environment", attack),
            ("failure_code", attack),
        ])
        .unwrap();
        let (status, page, _) = list(&app, &format!("?{q}")).await;
        assert_eq!((status, page), (200, json!([])), "{attack}");
        let stats: Value = app.get_json(&app.query, &format!("/v1/stats?{q}")).await;
        assert_eq!(stats["total_runs"], 0, "{attack}");
        let res = app.get_run(attack).await;
        assert_eq!(res.status(), 422, "{attack}");
    }
    // Everything is still there.
    assert_eq!(app.count("agent_runs", &run_id_of(&run)), 1);
    assert_eq!(app.db.psql("SELECT count(*) FROM agent_steps"), "1");
    let (_, page, _) = list(&app, "?agent_id=victim").await;
    assert_eq!(ids(&page), [run_id_of(&run)]);
}

/// The native write path computes its rows' rollup deltas in Rust; the delete triggers take
/// them out again in SQL. Every histogram bucket must agree to the last bit, or deleting a run
/// leaves +1 in one bucket and -1 in its neighbour: latencies 0..4000 ms (every bucket edge in
/// that range) and durations with microsecond fractions, then a rebuild from the rows, then
/// everything deleted and merged must leave no counter at all.
#[tokio::test]
async fn rollups_computed_at_ingest_match_the_sql_bucket_for_bucket() {
    let app = spawn_app().await;
    let mut runs = Vec::new();
    for r in 0..8u32 {
        let latencies: Vec<u32> = (0..500).map(|i| r * 500 + i).collect();
        let start = format!(
            "2024-06-{:02}T{:02}:59:59.{:06}Z",
            1 + r,
            r * 3,
            999_999 - r
        );
        let mut run = run_started(
            ["a", "b"][r as usize % 2],
            &start,
            0,
            ["success", "failure", "partial", "success"][r as usize % 4],
            &latencies,
            (r % 4 == 1 || r % 4 == 2).then_some(("tool", "timeout")),
        );
        // Durations of 0 µs to hours, most with a fraction of a millisecond.
        let micros = [0i64, 1, 999, 1_000, 1_234_567, 59_999_999, 3_600_000_001, 7][r as usize];
        let started =
            time::OffsetDateTime::parse(&start, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let ended = started + time::Duration::microseconds(micros);
        run["ended_at"] = json!(
            ended
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
        let (from, to) = (run["started_at"].clone(), run["ended_at"].clone());
        for (i, step) in run["steps"].as_array_mut().unwrap().iter_mut().enumerate() {
            step["started_at"] = from.clone();
            step["ended_at"] = to.clone();
            if i % 3 == 0 {
                step["metadata"] = json!({"model": format!("m-{}", i % 4), "output_tokens": i});
            }
        }
        runs.push(run);
    }
    assert_eq!(app.post_batch(&runs[..4]).await.status(), 200);
    for run in &runs[4..] {
        assert_eq!(app.post_run(run).await.status(), 201);
    }
    assert_eq!(
        app.db.psql("SELECT count(*) FROM agent_steps"),
        "4000",
        "every step stored"
    );
    assert_rollups_are_those_of_the_rows(&app);
    let rollups = "SELECT grain, bucket, agent_id, agent_version, environment, c \
                   FROM stats_rollup ORDER BY 1, 2, 3, 4, 5";
    let kept = app.db.psql(rollups);
    assert!(kept.contains("\"lat:-32768\": 1"), "a zero latency: {kept}");
    // Deltas from the write path again (the rebuild replaced them), then every run deleted
    // through the triggers: nothing may remain once merged.
    app.db.psql("DELETE FROM agent_runs");
    for run in &runs {
        assert_eq!(app.post_run(run).await.status(), 201);
    }
    app.db.psql("DELETE FROM agent_runs");
    app.db.psql("SELECT agenttracer_rollup_compact(100000)");
    assert_eq!(
        app.db.psql("SELECT count(*) FROM stats_rollup"),
        "0",
        "a counter left over: {}",
        app.db.psql(rollups)
    );
}

/// The SQL names counters too: the triggers and the raw part of a stats query take them from
/// agenttracer_run_entries, agenttracer_step_entries and agenttracer_failure_entries. For the
/// same run, step and failure, those give exactly the keys and counts `rollup::Counter` writes
/// for the write paths' deltas, and every key they give parses back to itself.
#[test]
fn the_sql_and_the_write_paths_name_every_counter_alike() {
    use agenttracer::model::{FailureType, RunStatus, StepType};
    use agenttracer::rollup::Counter;
    use agenttracer::rollup::bucket::{bucket, duration_ms};

    let db = TestDb::new();
    let (model, code) = ("ns:model/v1", "http/503:busy");
    let from_sql = db.psql(&format!(
        "SELECT k || '=' || n FROM (\
         SELECT * FROM agenttracer_run_entries('partial', '2024-06-01 12:00:00+00', '2024-06-01 12:00:01.234567+00') \
         UNION ALL SELECT * FROM agenttracer_step_entries('llm', 1234, '{model}', 7, NULL, 1500) \
         UNION ALL SELECT * FROM agenttracer_step_entries('tool', 5, NULL, NULL, NULL, NULL) \
         UNION ALL SELECT * FROM agenttracer_failure_entries('tool', '{code}')) e ORDER BY 1"
    ));
    let started = time::macros::datetime!(2024-06-01 12:00:00 UTC);
    let ended = started + time::Duration::microseconds(1_234_567);
    let mut from_rust: Vec<String> = [
        (Counter::Runs(RunStatus::Partial), 1),
        (
            Counter::RunDuration(bucket(duration_ms(started, ended)).unwrap()),
            1,
        ),
        (Counter::Steps, 1),
        (Counter::LatencySum, 1234),
        (Counter::StepType(StepType::Llm), 1),
        (Counter::StepLatency(bucket(1234.0).unwrap()), 1),
        (Counter::ModelSteps(model), 1),
        (Counter::ModelInputTokens(model), 7),
        (Counter::ModelOutputTokens(model), 0),
        (Counter::ModelCost(model), 1500),
        (Counter::Steps, 1),
        (Counter::LatencySum, 5),
        (Counter::StepType(StepType::Tool), 1),
        (Counter::StepLatency(bucket(5.0).unwrap()), 1),
        (Counter::Failures(FailureType::Tool, code), 1),
    ]
    .iter()
    .map(|(counter, n)| format!("{}={n}", counter.key()))
    .collect();
    from_rust.sort();
    assert_eq!(from_sql.lines().collect::<Vec<_>>(), from_rust);
    for line in from_sql.lines() {
        let (key, _) = line.rsplit_once('=').unwrap();
        assert_eq!(Counter::parse(key).map(|c| c.key()).as_deref(), Some(key));
    }
}

/// The UI's `/runs?status=failure` at a million runs took 4 times `/runs` (p99 54.5 ms against
/// 50): the newest runs had all succeeded, and the list walked them in time order, dropping each
/// by its status, until it found a page of failures. A status filter reads about a page of
/// rows, however many newer runs have another status.
#[tokio::test]
async fn a_status_filter_reads_a_page_of_runs_not_every_newer_one() {
    let app = spawn_app().await;
    app.db.psql(
        "INSERT INTO agent_runs (run_id, agent_id, agent_version, status, started_at, ended_at) \
         SELECT gen_random_uuid(), 'sparse', '1', CASE WHEN i <= 30 THEN 'failure' ELSE 'success' END, \
                timestamptz '2026-11-01' + i * interval '1 minute', timestamptz '2026-11-01' + i * interval '1 minute' \
         FROM generate_series(1, 5000) i; ANALYZE agent_runs",
    );
    let before = app.reads_of("agent_runs");
    let res = app
        .get(&app.query, "/v1/runs?status=failure&page_size=5")
        .await;
    assert_eq!(res.status(), 200);
    let cursor = res.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(ids(&body).len(), 5);
    let res = app
        .get(
            &app.query,
            &format!("/v1/runs?status=failure&page_size=5&cursor={cursor}"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "failure")
    );
    let res = app
        .get(&app.query, "/v1/runs?status=failure&page_size=5&page=3")
        .await;
    assert_eq!(ids(&res.json().await.unwrap()).len(), 5);
    let after = app.reads_of("agent_runs");
    assert_eq!(
        after.seq_scans, before.seq_scans,
        "sequential scans of agent_runs"
    );
    let fetched = after.index_fetches - before.index_fetches;
    assert!(
        fetched <= 60,
        "three pages of 5 failures fetched {fetched} runs of 5,000 (4,970 newer ones succeeded)"
    );
}

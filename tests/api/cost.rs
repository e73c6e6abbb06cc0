//! Cost (docs/cost.md): every step priced from its model and tokens at the price valid at its
//! start, a run's cost the sum of its priced steps, null where nothing is priced, on every path
//! and in the stats.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::otlp::{get_run as get_otlp_run, i, kv, post_proto, request, s, span, trace_id};

/// Two periods of `acme-1*`: until June 2026 with a cached-input price, from June without (cached
/// input is then priced as input) and with a reasoning price.
async fn acme_prices(app: &TestApp) {
    for body in [
        json!({"input_per_mtok": 2.5, "output_per_mtok": 10, "cached_input_per_mtok": 1.25,
               "valid_from": "2020-01-01T00:00:00Z"}),
        json!({"input_per_mtok": 5, "output_per_mtok": 20, "reasoning_per_mtok": 40,
               "valid_from": "2026-06-01T00:00:00Z"}),
    ] {
        assert_eq!(app.put_price("acme-1*", &body).await.status(), 201);
    }
}

fn step(seq: usize, at: &str, metadata: Value) -> Value {
    json!({"seq": seq, "step_type": "llm", "name": format!("call-{seq}"), "latency_ms": 5,
           "started_at": at, "ended_at": at, "metadata": metadata})
}

/// A run with a step on each side of the price change, an unknown model and a tool step.
fn priced_run() -> Value {
    let tokens = |model: &str| {
        json!({"model": model, "input_tokens": 1_000_000, "output_tokens": 200_000,
               "cached_input_tokens": 400_000, "reasoning_tokens": 50_000})
    };
    let mut run = sample_run(0, "success");
    run["started_at"] = json!("2026-05-31T23:00:00Z");
    run["ended_at"] = json!("2026-06-01T01:00:00Z");
    run["steps"] = json!([
        step(0, "2026-05-31T23:59:59Z", tokens("acme-1-mini")),
        step(1, "2026-06-01T00:00:00Z", tokens("acme-1-mini")),
        step(2, "2026-06-01T00:00:01Z", tokens("unpriced-model-9")),
        step(3, "2026-06-01T00:00:02Z", json!({"tool_name": "search"})),
    ]);
    run
}

/// The costs `priced_run` must carry: by hand from the periods.
/// - Before June: 600k input × 2.5 + 400k cached × 1.25 + 200k output × 10 per million
///   (reasoning priced as output) = 1.5 + 0.5 + 2 = 4 USD.
/// - From June: 1M input × 5 (cached as input) + 150k output × 20 + 50k reasoning × 40
///   = 5 + 3 + 2 = 10 USD.
const STEP_COSTS: [Option<f64>; 4] = [Some(4.0), Some(10.0), None, None];

fn costs(run: &Value) -> Vec<Option<f64>> {
    each(&run["steps"], |s| s["cost_usd"].as_f64())
}

#[tokio::test]
async fn steps_are_priced_at_their_start_across_a_price_change_and_runs_sum_them() {
    let app = spawn_app().await;
    acme_prices(&app).await;
    let run = priced_run();
    let id = run_id_of(&run);

    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let answered: Value = res.json().await.unwrap();
    assert_eq!(costs(&answered), STEP_COSTS);
    assert_eq!(answered["cost_usd"].as_f64(), Some(14.0));

    let stored: Value = app.get_run(&id).await.json().await.unwrap();
    assert_eq!(costs(&stored), STEP_COSTS);
    assert_eq!(stored["cost_usd"].as_f64(), Some(14.0));
    let list = app.get_json(&app.query, "/v1/runs?page_size=5").await;
    assert_eq!(list[0]["cost_usd"].as_f64(), Some(14.0));
    assert_eq!(costs(&list[0]), STEP_COSTS);

    // The same run through the batch route.
    let mut again = priced_run();
    again["agent_id"] = json!("batch-bot");
    let res = app.post_batch(&[again.clone()]).await;
    assert_eq!(res.status(), 200);
    let stored: Value = app.get_run(&run_id_of(&again)).await.json().await.unwrap();
    assert_eq!(costs(&stored), STEP_COSTS);
    assert_eq!(stored["cost_usd"].as_f64(), Some(14.0));

    // In the stats: the total and each model's, exact.
    let stats = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(stats["total_cost_usd"].as_f64(), Some(28.0));
    assert_eq!(stats["cost_by_model"]["acme-1-mini"].as_f64(), Some(28.0));
    assert_eq!(stats["cost_by_model"].as_object().unwrap().len(), 1);
    let one = app
        .get_json(&app.query, "/v1/stats?agent_id=batch-bot")
        .await;
    assert_eq!(one["total_cost_usd"].as_f64(), Some(14.0));
    assert_stats_match_rows(&app, "", "true").await;
    assert_rollups_are_those_of_the_rows(&app);
}

#[tokio::test]
async fn small_costs_are_exact_decimals_and_cents_add_up() {
    let app = spawn_app().await;
    // gpt-4o-mini* ships at 0.15 / 0.60 per million (cached 0.075).
    let mut run = sample_run(0, "success");
    let meta = json!({"model": "gpt-4o-mini-2024-07-18", "input_tokens": 1234, "output_tokens": 567,
                      "cached_input_tokens": 1000});
    run["steps"] = json!(
        (0..3)
            .map(|i| step(i, "2024-06-01T12:00:00Z", meta.clone()))
            .collect::<Vec<_>>()
    );
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.unwrap();
    // 234 × 0.15 + 1000 × 0.075 + 567 × 0.60 = 35.1 + 75 + 340.2 = 450.3 per million tokens
    // = 0.0004503 USD a step, exactly, and 0.0013509 for three: no float noise in the answer.
    assert!(text.contains(r#""cost_usd":0.0004503"#), "{text}");
    assert!(text.contains(r#""cost_usd":0.0013509"#), "{text}");
}

#[tokio::test]
async fn without_a_price_or_tokens_the_cost_is_null_never_zero() {
    let app = spawn_app().await;
    let mut run = sample_run(2, "success");
    for s in run["steps"].as_array_mut().unwrap() {
        s["metadata"] = json!({"model": "in-house-llm", "input_tokens": 10, "output_tokens": 5});
    }
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(costs(&body), [None, None]);
    assert!(body["cost_usd"].is_null() && body.get("cost_usd").is_some());
    let stats = app.get_json(&app.query, "/v1/stats").await;
    assert!(stats["total_cost_usd"].is_null(), "{stats}");
    assert_eq!(stats["cost_by_model"], json!({}));

    // A priced model without token counts costs nothing known either.
    let mut run = sample_run(1, "success");
    run["steps"][0]["metadata"] = json!({"model": "gpt-4o"});
    let body: Value = app.post_run(&run).await.json().await.unwrap();
    assert_eq!(costs(&body), [None]);
    assert!(body["cost_usd"].is_null());
}

#[tokio::test]
async fn a_price_put_applies_to_new_data_at_once_and_stored_costs_stay() {
    let app = spawn_app().await;
    let post = async |model: &str| -> Value {
        let mut run = sample_run(1, "success");
        run["steps"][0]["metadata"] =
            json!({"model": model, "input_tokens": 1_000_000, "output_tokens": 0});
        app.post_run(&run).await.json().await.unwrap()
    };
    assert!(post("house-7").await["cost_usd"].is_null());
    let price =
        json!({"input_per_mtok": 3, "output_per_mtok": 4, "valid_from": "2020-01-01T00:00:00Z"});
    assert_eq!(app.put_price("house-7", &price).await.status(), 201);
    let priced = post("house-7").await;
    assert_eq!(priced["cost_usd"].as_f64(), Some(3.0));
    // Deleting it: new data is unpriced again; what was priced keeps its cost until repriced.
    let url = (app.ingest.as_str(), "/v1/model-prices/house-7");
    let res = app.request_with(reqwest::Method::DELETE, url, |r| r).await;
    assert_eq!(res.status(), 204);
    assert!(post("house-7").await["cost_usd"].is_null());
    let stored: Value = app.get_run(&run_id_of(&priced)).await.json().await.unwrap();
    assert_eq!(stored["cost_usd"].as_f64(), Some(3.0));
}

#[tokio::test]
async fn otlp_steps_are_priced_and_their_run_sums_them_across_requests_once() {
    let app = spawn_app().await;
    acme_prices(&app).await;
    let trace = trace_id();
    let chat = |n: u8, attrs: Vec<_>| span(trace, n, Some(1), "chat acme", 10 * n as u64, 5, attrs);
    // 2024: the first period. 1000 input (400 cached) × 2.5 / 1.25, 100 output × 10.
    let genai = chat(
        2,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.request.model", s("acme-1")),
            kv("gen_ai.usage.input_tokens", i(1000)),
            kv("gen_ai.usage.output_tokens", i(100)),
            kv("gen_ai.usage.cache_read.input_tokens", i(400)),
        ],
    );
    // OpenInference: 2000 prompt (1000 cached), 10 completion of which 5 reasoning.
    let openinference = chat(
        3,
        vec![
            kv("openinference.span.kind", s("LLM")),
            kv("llm.model_name", s("acme-1-large")),
            kv("llm.token_count.prompt", i(2000)),
            kv("llm.token_count.completion", i(10)),
            kv("llm.token_count.prompt_details.cache_read", i(1000)),
            kv("llm.token_count.completion_details.reasoning", i(5)),
        ],
    );
    let res = post_proto(&app, &request(vec![genai.clone()])).await;
    assert_eq!(res.status(), 200);
    let res = post_proto(&app, &request(vec![openinference, genai])).await;
    assert_eq!(res.status(), 200);
    let root = span(trace, 1, None, "agent", 0, 100, vec![]);
    assert_eq!(post_proto(&app, &request(vec![root])).await.status(), 200);

    let run = get_otlp_run(&app, trace).await;
    // 600 × 2.5 + 400 × 1.25 + 100 × 10 = 3000 per million = 0.003;
    // 1000 × 2.5 + 1000 × 1.25 + 10 × 10 = 3850 per million = 0.00385.
    let by_name: Vec<(String, Option<f64>)> = each(&run["steps"], |s| {
        (
            s["model"].as_str().unwrap_or("").to_owned(),
            s["cost_usd"].as_f64(),
        )
    });
    assert!(
        by_name.contains(&("acme-1".into(), Some(0.003))),
        "{by_name:?}"
    );
    assert!(
        by_name.contains(&("acme-1-large".into(), Some(0.00385))),
        "{by_name:?}"
    );
    // The resent span was not counted twice.
    assert_eq!(run["cost_usd"].as_f64(), Some(0.00685));
    let stats = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(stats["total_cost_usd"].as_f64(), Some(0.00685));
    assert_rollups_are_those_of_the_rows(&app);
}

/// A run of `late-model` steps (unpriced when sent) that started at `at`.
fn late_run(at: &str, steps: usize) -> Value {
    let mut run = sample_run(0, "success");
    run["started_at"] = json!(at);
    run["ended_at"] = json!(at);
    run["steps"] = json!(
        (0..steps)
            .map(|i| {
                let meta =
                    json!({"model": "late-model", "input_tokens": 100 + i, "output_tokens": 7 * i});
                step(i, at, meta)
            })
            .collect::<Vec<_>>()
    );
    run
}

/// Steps in the period whose cost is not what the new price gives (1 and 2 USD per million:
/// 1000 and 2000 nano-dollars a token), and runs whose cost is not their steps' sum.
fn wrong_costs(app: &TestApp, since: &str) -> (i64, i64, i64) {
    let n = |sql: &str| app.db.psql(sql).trim().parse::<i64>().unwrap();
    (
        n(&format!(
            "SELECT count(*) FROM agent_steps WHERE model = 'late-model' AND started_at >= '{since}' \
             AND cost_nanos IS DISTINCT FROM input_tokens * 1000::int8 + output_tokens * 2000::int8"
        )),
        n(&format!(
            "SELECT count(*) FROM agent_steps WHERE model = 'late-model' AND started_at < '{since}' \
             AND cost_nanos IS NOT NULL"
        )),
        n(
            "SELECT count(*) FROM agent_runs r WHERE r.cost_nanos IS DISTINCT FROM \
           (SELECT sum(s.cost_nanos) FROM agent_steps s WHERE s.run_id = r.run_id)",
        ),
    )
}

#[tokio::test]
async fn reprice_recomputes_a_period_in_batches_while_ingest_goes_on() {
    let app = spawn_app().await;
    let since = "2026-03-01T00:00:00Z";
    // Before the price exists: 300 runs in the period over two days, 30 before it, and 40 OTLP
    // traces in the period (a root and one chat span each).
    for day in ["2026-02-20", "2026-03-01", "2026-03-02"] {
        let n = if day == "2026-02-20" { 30 } else { 150 };
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let runs: Vec<Value> = chunk
                .iter()
                .map(|i| late_run(&format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60), 3))
                .collect();
            assert_eq!(app.post_batch(&runs).await.status(), 200);
        }
    }
    let chat = |trace, n: u8, tokens: i64| {
        let mut span = span(
            trace,
            n,
            Some(1),
            "chat",
            10 * n as u64,
            5,
            vec![
                kv("gen_ai.operation.name", s("chat")),
                kv("gen_ai.request.model", s("late-model")),
                kv("gen_ai.usage.input_tokens", i(tokens)),
                kv("gen_ai.usage.output_tokens", i(3)),
            ],
        );
        // 2026-03-01T06:00:00Z.
        let shift = 1_772_344_800_000_000_000u64 - 1_717_243_200_000_000_000u64;
        span.start_time_unix_nano += shift;
        span.end_time_unix_nano += shift;
        span
    };
    let traces: Vec<[u8; 16]> = (0..40).map(|_| trace_id()).collect();
    for &t in &traces {
        let mut root = chat(t, 1, 0);
        root.parent_span_id = Vec::new();
        root.attributes.clear();
        let res = post_proto(&app, &request(vec![root, chat(t, 2, 50)])).await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(wrong_costs(&app, since).0, 900 + 40);

    let price =
        json!({"input_per_mtok": 1, "output_per_mtok": 2, "valid_from": "2020-01-01T00:00:00Z"});
    assert_eq!(app.put_price("late-model", &price).await.status(), 201);

    // The reprice, in batches of 25 runs, while new runs arrive in the period and the OTLP
    // traces gain steps.
    let url = app.db.writer_url();
    let args = ["reprice", "--since", since, "--batch", "25"];
    let reprice = tokio::task::spawn_blocking(move || agenttracer_command_on(&url, &args));
    // Rounds of writes until the reprice ends: each round is sent while it is still running.
    let mut round = 0usize;
    while !reprice.is_finished() || round == 0 {
        let runs: Vec<Value> = (0..20)
            .map(|i| late_run(&format!("2026-03-01T{:02}:30:00Z", i), 2))
            .collect();
        assert_eq!(app.post_batch(&runs).await.status(), 200);
        let t = traces[round % traces.len()];
        let n = 3 + (round / traces.len()) as u8;
        let res = post_proto(&app, &request(vec![chat(t, n, 70)])).await;
        assert_eq!(res.status(), 200);
        round += 1;
    }
    let report: Value = serde_json::from_str(&reprice.await.unwrap()).unwrap();
    assert!(report["batches"].as_i64().unwrap() >= 14, "{report}");
    assert!(
        report["steps_changed"].as_i64().unwrap() >= 900 + 40,
        "{report}"
    );

    assert_eq!(wrong_costs(&app, since), (0, 0, 0));
    // The first trace has its first chat span and at least one more, all priced; its run sums
    // them: (50 + 70) × 1 + 2 × 3 × 2 = 132 per million for two.
    let run = get_otlp_run(&app, traces[0]).await;
    let spans = run["steps"].as_array().unwrap().len() as f64;
    let want = (50.0 + 70.0 * (spans - 1.0) + 2.0 * 3.0 * spans) / 1e6;
    assert!(
        (run["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12,
        "{run}"
    );
    eprintln!("{round} rounds of writes during the reprice: {report}");
    assert_stats_match_rows(&app, "", "true").await;
    assert_rollups_are_those_of_the_rows(&app);
}

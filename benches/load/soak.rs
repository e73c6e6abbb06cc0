//! The soak: mixed ingest and query at a steady rate for a long time, RSS watched per window.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{Value, json};

use crate::data::{Rng, Template, gen_run, rand_seed, run_json};
use crate::driver::{check, created, percentile_ms, pooled_client};
use crate::otlp::otlp_request;
use crate::pg::PgCluster;
use crate::report::machine;
use crate::server::Server;
use crate::{PG_SETTINGS, THIS_BIN, create_database};

/// What the soak sends, and how often (requests per second, open loop: a slow answer does not
/// slow the rate down).
const SOAK_MIX: &[(&str, f64)] = &[
    ("POST /v1/runs", 40.0),
    ("POST /v1/runs/batch", 1.0),
    ("POST /v1/traces", 4.0),
    ("GET /v1/runs", 10.0),
    ("GET /v1/runs/{id}", 10.0),
    ("GET /v1/stats", 1.0),
];

/// One answered (or failed) request of the soak.
struct Sample {
    class: usize,
    window: usize,
    latency_us: u32,
    error: Option<String>,
}

/// `SOAK_SECS=600 cargo bench --bench load`: mixed ingest and query at a steady rate for that
/// long, against a fresh PostgreSQL and the release server; prints per window (`SOAK_WINDOW_SECS`,
/// default 60) the requests, errors, latency percentiles and server RSS, then RSS at start and
/// end. Writes the same to target/soak.json.
pub async fn soak(secs: f64, window_secs: f64) {
    eprintln!("soak: starting PostgreSQL (durability defaults)");
    let cluster = PgCluster::start_with(PG_SETTINGS);
    let admin = cluster.admin();
    create_database(&admin, "bench", THIS_BIN);
    let server = Server::start(&admin.url("bench"), &cluster.root);
    let client = pooled_client();
    server.wait_ready(&client).await;

    let mut rng = Rng(rand_seed() | 1);
    let single_run = run_json(&gen_run(&mut rng, true));
    let agent = single_run["agent_id"].as_str().unwrap().to_owned();
    let single = Template::new(&single_run);
    let batch_runs: Vec<Value> = (0..100)
        .map(|_| run_json(&gen_run(&mut rng, true)))
        .collect();
    let batch = Template::new(&json!({ "runs": batch_runs }));
    // Runs to read back by id: the first of each single POST's answers.
    let ids: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let samples: Arc<std::sync::Mutex<Vec<Sample>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let last_window = ((secs / window_secs).ceil() as usize).max(1) - 1;
    let window_of =
        move |t: Instant| (((t - started).as_secs_f64() / window_secs) as usize).min(last_window);
    let rss_start = server.rss_mib().0;
    eprintln!("soak: {secs} s, windows of {window_secs} s, server RSS at start {rss_start:.1} MiB");

    let mut pacers = Vec::new();
    for (class, &(_, rate)) in SOAK_MIX.iter().enumerate() {
        let (client, ids, samples) = (client.clone(), ids.clone(), samples.clone());
        let (single, batch, agent) = (single.clone(), batch.clone(), agent.clone());
        let (ingest, query) = (server.ingest.clone(), server.query.clone());
        pacers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let (client, ids, samples) = (client.clone(), ids.clone(), samples.clone());
                let req = match class {
                    0 => client
                        .post(format!("{ingest}/v1/runs"))
                        .body(single.fresh()),
                    1 => client
                        .post(format!("{ingest}/v1/runs/batch"))
                        .body(batch.fresh()),
                    2 => client
                        .post(format!("{ingest}/v1/traces"))
                        .header("content-type", "application/x-protobuf")
                        .body(otlp_request(2).encode_to_vec()),
                    3 if n.is_multiple_of(2) => {
                        client.get(format!("{query}/v1/runs?page_size=20&agent_id={agent}"))
                    }
                    3 => client.get(format!("{query}/v1/runs?page_size=20")),
                    4 => {
                        let id = {
                            let ids = ids.lock().unwrap();
                            ids.get((n as usize * 7919) % ids.len().max(1)).cloned()
                        };
                        let Some(id) = id else { continue };
                        client.get(format!("{query}/v1/runs/{id}"))
                    }
                    _ => client.get(format!("{query}/v1/stats")),
                };
                let req = if class <= 1 {
                    req.header("content-type", "application/json")
                } else {
                    req
                };
                inflight.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let want = if class == 0 { 201 } else { 200 };
                    let result =
                        check(req.timeout(Duration::from_secs(30)).send().await, want).await;
                    let latency_us = t.elapsed().as_micros() as u32;
                    let result = result.and_then(|body| {
                        let created = created(&body);
                        match class == 1 && created != 100 {
                            true => Err(format!("{created} of 100 runs created")),
                            false => Ok(body),
                        }
                    });
                    let error = match result {
                        Ok(body) => {
                            if class == 0 && n.is_multiple_of(10) {
                                let run: Value = serde_json::from_slice(&body).unwrap_or_default();
                                if let Some(id) = run["run_id"].as_str() {
                                    ids.lock().unwrap().push(id.to_owned());
                                }
                            }
                            None
                        }
                        Err(e) => Some(e),
                    };
                    samples.lock().unwrap().push(Sample {
                        class,
                        window: window_of(t),
                        latency_us,
                        error,
                    });
                }));
                inflight.retain(|t| !t.is_finished());
            }
            for t in inflight {
                let _ = t.await;
            }
        }));
    }
    // Server RSS at the end of every window.
    let mut rss: Vec<f64> = Vec::new();
    while Instant::now() < deadline {
        let next = started + Duration::from_secs_f64(window_secs * (rss.len() + 1) as f64);
        tokio::time::sleep_until(next.min(deadline).into()).await;
        rss.push(server.rss_mib().0);
        let done = samples.lock().unwrap().len();
        eprintln!(
            "soak:   {:>5.0} s, {done} requests, RSS {:.1} MiB",
            started.elapsed().as_secs_f64(),
            rss.last().unwrap()
        );
    }
    for p in pacers {
        p.await.unwrap();
    }
    let rss_end = server.rss_mib().0;
    let samples = std::mem::take(&mut *samples.lock().unwrap());

    let windows = samples.iter().map(|s| s.window).max().map_or(0, |w| w + 1);
    let mut out = String::new();
    let mut json_windows = Vec::new();
    writeln!(
        out,
        "\n| window | requests | errors | p50 ms | p95 ms | p99 ms | server RSS MiB |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|").unwrap();
    for w in 0..windows {
        let lat = latencies(&samples, |s| s.window == w);
        let errors = samples
            .iter()
            .filter(|s| s.window == w && s.error.is_some())
            .count();
        let (p50, p95, p99) = (
            percentile_ms(&lat, 0.50),
            percentile_ms(&lat, 0.95),
            percentile_ms(&lat, 0.99),
        );
        let window_rss = rss.get(w).copied().unwrap_or(rss_end);
        writeln!(
            out,
            "| {:.0}–{:.0} s | {} | {errors} | {p50:.1} | {p95:.1} | {p99:.1} | {window_rss:.1} |",
            w as f64 * window_secs,
            (w + 1) as f64 * window_secs,
            lat.len()
        )
        .unwrap();
        json_windows.push(json!({"window": w, "requests": lat.len(), "errors": errors,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "rss_mib": window_rss}));
    }
    writeln!(
        out,
        "\n| request | rate/s | requests | errors | p50 ms | p99 ms |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|").unwrap();
    let mut json_classes = Vec::new();
    for (class, &(name, rate)) in SOAK_MIX.iter().enumerate() {
        let lat = latencies(&samples, |s| s.class == class);
        let errors: Vec<&String> = samples
            .iter()
            .filter(|s| s.class == class)
            .filter_map(|s| s.error.as_ref())
            .collect();
        let (p50, p99) = (percentile_ms(&lat, 0.5), percentile_ms(&lat, 0.99));
        writeln!(
            out,
            "| {name} | {rate} | {} | {} | {p50:.1} | {p99:.1} |",
            lat.len(),
            errors.len()
        )
        .unwrap();
        if let Some(first) = errors.first() {
            writeln!(out, "|   first error: {first} | | | | | |").unwrap();
        }
        json_classes.push(
            json!({"request": name, "rate_per_s": rate, "requests": lat.len(),
            "errors": errors.len(), "p50_ms": p50, "p99_ms": p99}),
        );
    }
    let errors = samples.iter().filter(|s| s.error.is_some()).count();
    // Growth is judged after the first window: that one includes warming up (pools, caches).
    let rss_warm = rss.first().copied().unwrap_or(rss_end);
    writeln!(
        out,
        "\nsoak: {} requests, {errors} errors; server RSS {rss_start:.1} MiB idle at start, {rss_warm:.1} MiB after the first window, {rss_end:.1} MiB at end ({:+.1} MiB since the first window); runs stored: {}",
        samples.len(),
        rss_end - rss_warm,
        admin.psql("bench", "SELECT count(*) FROM agent_runs")
    )
    .unwrap();
    println!("{out}");
    let report = json!({"machine": machine(), "secs": secs, "window_secs": window_secs,
        "mix": json_classes, "windows": json_windows, "errors": errors,
        "rss_start_mib": rss_start, "rss_after_first_window_mib": rss_warm, "rss_end_mib": rss_end});
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/soak.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    eprintln!("soak: wrote {}", path.display());
}

/// The latencies of the samples `which` picks, in microseconds, sorted.
fn latencies(samples: &[Sample], which: impl Fn(&Sample) -> bool) -> Vec<u32> {
    let mut lat: Vec<u32> = samples
        .iter()
        .filter(|s| which(s))
        .map(|s| s.latency_us)
        .collect();
    lat.sort_unstable();
    lat
}

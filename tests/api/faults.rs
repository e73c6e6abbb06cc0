//! A database that goes away or stalls: 503 with Retry-After within the configured timeouts,
//! never a hung request, and recovery without a restart.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

async fn assert_503_soon(res: reqwest::Response, started: Instant, within: Duration) {
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 503, "{:?}", res.text().await);
    assert!(elapsed < within, "answered after {elapsed:?}");
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert!(body["detail"].is_string());
}

/// The service on database `name` of `cluster` (a cluster of the test's own, to stop or kill),
/// with an acquire timeout of `acquire_timeout_ms`.
async fn app_on_cluster(cluster: &PgCluster, name: &str, acquire_timeout_ms: u64) -> TestApp {
    let admin = cluster.admin();
    prepare_database(&admin, name);
    let db = TestDb {
        admin,
        name: name.into(),
    };
    let mut config = test_config(&db);
    config.database.acquire_timeout_ms = acquire_timeout_ms;
    spawn_app_on(db, config).await
}

/// Whether a run of `steps` steps is stored (201) within `within`, trying again and again.
async fn stores_a_run_within(app: &TestApp, steps: usize, within: Duration) -> bool {
    eventually(within, || async {
        app.post_run(&sample_run(steps, "success")).await.status() == 201
    })
    .await
}

#[tokio::test]
async fn a_database_outage_gives_503s_then_recovers_without_a_restart() {
    let mut cluster = PgCluster::start_new(&[]);
    let app = app_on_cluster(&cluster, "outage", 500).await;

    // Up before the outage (a fresh cluster on a loaded machine may first need a moment).
    let up = stores_a_run_within(&app, 2, Duration::from_secs(10)).await;
    assert!(up, "the service stores runs before the outage");
    cluster.stop();

    for _ in 0..3 {
        let started = Instant::now();
        let res = app.post_run(&sample_run(2, "success")).await;
        assert_503_soon(res, started, Duration::from_secs(3)).await;
    }
    let started = Instant::now();
    let res = app.get_run(&uuid::Uuid::new_v4().to_string()).await;
    assert_503_soon(res, started, Duration::from_secs(3)).await;
    for base in [&app.ingest, &app.query] {
        let res = app.get(base, "/health").await;
        let detail = unavailable_detail(res).await;
        assert!(
            detail.starts_with("Database connection failed: "),
            "{detail}"
        );
        assert!(
            !detail.contains(ADMIN_PASSWORD) && !detail.contains(READER_PASSWORD),
            "{detail}"
        );
        assert_eq!(
            app.get(base, "/livez").await.status(),
            200,
            "liveness does not touch the database"
        );
    }

    cluster.start();
    let recovered = stores_a_run_within(&app, 1, Duration::from_secs(15)).await;
    assert!(recovered, "ingest did not recover");
    assert_eq!(app.get(&app.query, "/health").await.status(), 200);
    assert_eq!(
        app.db
            .psql("SELECT count(*) FROM agent_runs")
            .parse::<i64>()
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_held_lock_gives_503_at_the_lock_timeout() {
    let app = spawn_app_with(|c| c.database.lock_timeout_ms = 300).await;
    let mut lock = app.db.hold_lock(3.0);
    let started = Instant::now();
    let res = app.post_run(&sample_run(1, "success")).await;
    assert_503_soon(res, started, Duration::from_secs(2)).await;
    lock.wait().unwrap();
    assert_eq!(app.post_run(&sample_run(1, "success")).await.status(), 201);
}

#[tokio::test]
async fn a_slow_statement_gives_503_at_the_statement_timeout() {
    let app = spawn_app_with(|c| {
        c.database.lock_timeout_ms = 0;
        c.database.statement_timeout_ms = 300;
    })
    .await;
    // Held far longer than the request may take (on a loaded CI machine a 3 s lock was gone
    // before the request ran), and ended with its session once the answer is in.
    let mut lock = app.db.hold_lock(30.0);
    let started = Instant::now();
    let res = app.post_run(&sample_run(1, "success")).await;
    assert_503_soon(res, started, Duration::from_secs(2)).await;
    app.db.psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_locks {HELD_LOCK}"
    ));
    lock.wait().unwrap();
}

#[tokio::test]
async fn an_exhausted_pool_gives_503_at_the_acquire_timeout_and_readyz_says_so() {
    let app = spawn_app_with(|c| {
        c.server.workers = Some(2);
        c.database.pool_size = 1;
        c.database.max_overflow = 0;
        c.database.acquire_timeout_ms = 300;
        c.database.lock_timeout_ms = 10_000;
        c.database.statement_timeout_ms = 10_000;
    })
    .await;
    let mut lock = app.db.hold_lock(4.0);
    let blocked_run = sample_run(1, "success");
    let blocked = {
        let (client, url, body) = (
            app.client.clone(),
            format!("{}/v1/runs", app.ingest),
            blocked_run.clone(),
        );
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
    };
    // The pool's one connection is now waiting for the lock.
    app.db.wait_for_lock_waiters(1).await;
    let started = Instant::now();
    let res = app.post_run(&sample_run(1, "success")).await;
    assert_503_soon(res, started, Duration::from_secs(2)).await;
    let res = app.get(&app.ingest, "/readyz").await;
    let detail = unavailable_detail(res).await;
    assert!(detail.contains("exhausted"), "{detail}");
    lock.wait().unwrap();
    assert_eq!(
        blocked.await.unwrap(),
        201,
        "the waiting request completes once the lock is gone"
    );
    assert_eq!(app.count("agent_runs", &run_id_of(&blocked_run)), 1);
}

/// What became of one request sent during the crash test.
enum Outcome {
    Stored(Value),
    Unavailable,
}

/// PostgreSQL killed with SIGKILL under sustained ingest (eight clients, single runs and
/// batches), then restarted: every run answered 2xx is there with all its steps; requests in
/// the outage get 503 with Retry-After within the acquire timeout; the service recovers alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_load_loses_no_acknowledged_run() {
    // PostgreSQL's durability defaults (fsync on): a crash, not a clean stop.
    let mut cluster = PgCluster::start_with(&[]);
    let app = app_on_cluster(&cluster, "crash", 1000).await;
    let up = stores_a_run_within(&app, 1, Duration::from_secs(10)).await;
    assert!(up, "the service stores runs before the crash");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (http, ingest, stop) = (app.client.clone(), app.ingest.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut slowest = Duration::ZERO;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch = client % 4 == 0;
                    let runs: Vec<Value> = (0..if batch { 20 } else { 1 })
                        .map(|_| sample_run(4, "success"))
                        .collect();
                    let started = Instant::now();
                    let res = if batch {
                        http.post(format!("{ingest}/v1/runs/batch"))
                            .json(&serde_json::json!({ "runs": runs }))
                    } else {
                        http.post(format!("{ingest}/v1/runs")).json(&runs[0])
                    }
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await
                    .expect("every request is answered");
                    slowest = slowest.max(started.elapsed());
                    match res.status().as_u16() {
                        200 | 201 if batch => {
                            let body: Value = res.json().await.unwrap();
                            for (run, result) in
                                runs.into_iter().zip(body["results"].as_array().unwrap())
                            {
                                assert!(
                                    matches!(result["status"].as_u64(), Some(200 | 201)),
                                    "{result}"
                                );
                                outcomes.push(Outcome::Stored(run));
                            }
                        }
                        200 | 201 => {
                            outcomes.push(Outcome::Stored(runs.into_iter().next().unwrap()))
                        }
                        503 => {
                            assert!(res.headers().contains_key("retry-after"));
                            outcomes.push(Outcome::Unavailable);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("status {other}: {:?}", res.text().await),
                    }
                }
                (outcomes, slowest)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| cluster.kill());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // During the outage: a request is answered 503 within the acquire timeout (plus slack).
    let started = Instant::now();
    let res = app.post_run(&sample_run(1, "success")).await;
    assert_503_soon(res, started, Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.start());
    let recovered = stores_a_run_within(&app, 1, Duration::from_secs(20)).await;
    assert!(recovered, "ingest did not recover after the restart");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut stored = Vec::new();
    let mut unavailable = 0;
    for client in clients {
        let (outcomes, slowest) = client.await.unwrap();
        assert!(
            slowest < Duration::from_secs(5),
            "a request took {slowest:?}"
        );
        for outcome in outcomes {
            match outcome {
                Outcome::Stored(run) => stored.push(run),
                Outcome::Unavailable => unavailable += 1,
            }
        }
    }
    eprintln!(
        "crash test: {} runs acknowledged, {unavailable} answers 503",
        stored.len()
    );
    assert!(unavailable > 0, "no request met the outage");
    assert!(stored.len() > 100, "too little load: {} runs", stored.len());
    // Every acknowledged run, with every step.
    let ids: Vec<String> = stored
        .iter()
        .map(|r| format!("'{}'", run_id_of(r)))
        .collect();
    let found = app.db.psql(&format!(
        "SELECT count(DISTINCT r.run_id) || ' ' || count(s.step_id) FROM agent_runs r \
         JOIN agent_steps s USING (run_id) WHERE r.run_id IN ({})",
        ids.join(",")
    ));
    assert_eq!(found, format!("{} {}", stored.len(), stored.len() * 4));
}

//! The binary itself: --version, --help, config, migrate, healthcheck, and serving until SIGTERM.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_agenttracer");

/// The binary, run in an empty directory with none of our variables inherited.
fn agenttracer(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        let ours = key.starts_with("AGENTTRACER_")
            || [
                "DATABASE_URL",
                "DATABASE_READ_URL",
                "API_KEY",
                "LOG_LEVEL",
                "LOG_FORMAT",
                "RUST_LOG",
            ]
            .contains(&key.as_str())
            || key.starts_with("INGEST_API_")
            || key.starts_with("QUERY_API_")
            || key.starts_with("DATABASE_");
        if ours {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The binary with the environment of an ingest server on `port` over `db` (loopback only; the
/// gRPC listener on a free port); the caller adds the command and the rest.
pub fn ingest_server(dir: &std::path::Path, db: &TestDb, port: u16) -> Command {
    let mut cmd = agenttracer(dir);
    cmd.env("DATABASE_URL", db.writer_url())
        .env("INGEST_API_HOST", "127.0.0.1")
        .env("INGEST_API_PORT", port.to_string())
        .env(
            "AGENTTRACER_SERVER__OTLP_GRPC_ADDR",
            format!("127.0.0.1:{}", free_port()),
        );
    cmd
}

#[test]
fn version_and_help_for_every_command() {
    let dir = temp_dir();
    let out = agenttracer(&dir).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("agenttracer {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["config", "--help"],
        &["healthcheck", "--help"],
        &["drift", "detect", "--help"],
        &["reprice", "--help"],
    ] {
        let out = agenttracer(&dir).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = agenttracer(&dir)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for role in ["- ingest:", "- query:", "- all:"] {
        assert!(help.contains(role), "{help}");
    }
    // A malformed time is refused before anything is read or written, naming the format.
    let out = agenttracer(&dir)
        .args(["reprice", "--since", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}

#[test]
fn config_prints_the_effective_configuration_with_secrets_masked() {
    let dir = temp_dir();
    let out = agenttracer(&dir)
        .arg("config")
        .env(
            "DATABASE_URL",
            format!(
                "postgresql://writer:{}@db:5432/agent_observability",
                secret("topsecret")
            ),
        )
        .env("API_KEY", secret("key-0123456789"))
        .env("AGENTTRACER_SERVER__QUERY_PORT", "9901")
        // The original's alert variables: the URL's token and the routing key are secrets too.
        .env("PHASE3_SLACK_ENABLED", "True")
        .env(
            "PHASE3_SLACK_WEBHOOK_URL",
            format!(
                "https://hooks.slack.com/services/T0/B0/{}",
                secret("slack-token-4f1d")
            ),
        )
        .env("PHASE3_PAGERDUTY_ENABLED", "true")
        .env("PHASE3_PAGERDUTY_ROUTING_KEY", secret("routing-key-8c2e"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut log = session_log("config");
    std::io::Write::write_all(&mut log, &out.stdout).unwrap();
    std::io::Write::write_all(&mut log, &out.stderr).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("postgresql://writer:***@db:5432/agent_observability"),
        "{text}"
    );
    assert!(
        !text.contains("topsecret") && !text.contains("key-0123456789"),
        "{text}"
    );
    assert!(text.contains("query_port = 9901"), "{text}");
    assert!(text.contains(r#"ingest_keys = ["***"]"#), "{text}");
    assert!(
        text.contains(r#"slack_webhook_url = "https://hooks.slack.com/***""#)
            && text.contains(r#"pagerduty_routing_key = "***""#),
        "{text}"
    );
    assert!(
        !text.contains("slack-token-4f1d") && !text.contains("routing-key-8c2e"),
        "{text}"
    );
}

#[test]
fn unknown_configuration_keys_fail_naming_the_key() {
    let dir = temp_dir();
    std::fs::write(dir.join("custom.toml"), "[server]\ningest_prot = 8000\n").unwrap();
    let out = agenttracer(&dir)
        .args(["--config", "custom.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest_prot"));
    let out = agenttracer(&dir)
        .args(["--config", "missing.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn migrate_applies_the_schema_and_is_idempotent() {
    let db = TestDb::new();
    db.unmigrate();
    let dir = temp_dir();
    for _ in 0..2 {
        let out = agenttracer(&dir)
            .arg("migrate")
            .env("DATABASE_URL", db.writer_url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        db.psql("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'agent_%'"),
        "5"
    );
    let indexes = db.psql("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename LIKE 'agent_%'");
    for index in [
        "ix_agent_runs_agent_id_started_at",
        "ix_agent_runs_started_at_run_id",
        "ix_agent_failures_type_code",
        "ix_agent_failures_run_id",
        "uq_agent_steps_run_id_seq",
    ] {
        assert!(indexes.contains(index), "{index} missing from {indexes}");
    }
}

#[tokio::test]
async fn serve_until_sigterm_commits_in_flight_runs_and_exits_zero() {
    let db = TestDb::new();
    let dir = temp_dir();
    let port = free_port();
    let log_path = dir.join("server.log");
    let mut server = ingest_server(&dir, &db, port)
        .arg("serve")
        .env("AGENTTRACER_ROLE", "ingest")
        .env("API_KEY", secret("cli-test-key-123456"))
        .env("LOG_FORMAT", "json")
        .env("AGENTTRACER_DATABASE__LOCK_TIMEOUT_MS", "20000")
        .env("AGENTTRACER_DATABASE__STATEMENT_TIMEOUT_MS", "20000")
        // A group transaction per run, so that each in-flight run shows as a session waiting.
        .env("AGENTTRACER_INGEST__GROUP_COMMIT_WRITERS", "8")
        .env("AGENTTRACER_INGEST__GROUP_COMMIT_MAX_RUNS", "1")
        .stdout(Stdio::null())
        .stderr(File::create(&log_path).unwrap())
        .spawn()
        .unwrap();

    // `healthcheck` with the same environment probes the ingest listener only.
    let healthcheck = || {
        agenttracer(&dir)
            .arg("healthcheck")
            .env("AGENTTRACER_ROLE", "ingest")
            .env("INGEST_API_PORT", port.to_string())
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthcheck().status.success() {
        assert!(
            Instant::now() < deadline,
            "server did not become ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = healthcheck();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port}/readyz: ready"))
    );

    // Hold the table so that the runs below are in flight when SIGTERM arrives.
    let mut lock = db.hold_lock(3.0);
    let client = reqwest::Client::new();
    let runs: Vec<Value> = (0..8).map(|_| sample_run(3, "success")).collect();
    let sends: Vec<_> = runs
        .iter()
        .map(|run| {
            let req = client
                .post(format!("http://127.0.0.1:{port}/v1/runs"))
                .header("X-API-Key", "cli-test-key-123456")
                .json(run);
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // All eight are waiting on the lock, each on its own pooled connection.
    db.wait_for_lock_waiters(8).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());

    for send in sends {
        assert_eq!(
            send.await.unwrap().unwrap(),
            201,
            "an in-flight run is answered after commit"
        );
    }
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    lock.wait().unwrap();
    for run in &runs {
        assert_eq!(
            db.psql(&format!(
                "SELECT count(*) FROM agent_steps WHERE run_id = '{}'",
                run_id_of(run)
            )),
            "3"
        );
    }
    assert!(
        !healthcheck().status.success(),
        "healthcheck fails once the server is gone"
    );

    // Logs: one JSON object per line, with request fields, and never a key or a password.
    let logs = std::fs::read_to_string(&log_path).unwrap();
    std::io::Write::write_all(&mut session_log("sigterm-server"), logs.as_bytes()).unwrap();
    let mut completed = 0;
    for line in logs.lines() {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["timestamp"].is_string() && entry["level"].is_string(),
            "{line}"
        );
        if entry["message"] == "request completed" {
            completed += 1;
            assert!(
                entry["route"].is_string()
                    && entry["status"].is_number()
                    && entry["latency_ms"].is_number(),
                "{line}"
            );
        }
    }
    assert!(completed >= 8, "{logs}");
    assert!(!logs.contains("cli-test-key-123456"), "API key logged");
    assert!(!logs.contains(ADMIN_PASSWORD), "database password logged");
}

/// 201 is sent only after commit: runs answered 201 are all stored, with every step, when the
/// server is killed (SIGKILL, no graceful anything) while sixteen clients keep sending.
#[tokio::test]
async fn every_run_answered_201_is_stored_when_the_server_is_killed() {
    signal_under_load("KILL").await;
}

/// SIGTERM under the same load: the server drains in-flight requests, exits 0, and every run it
/// answered 201 is stored.
#[tokio::test]
async fn sigterm_under_load_exits_zero_and_keeps_every_acknowledged_run() {
    let status = signal_under_load("TERM").await;
    assert!(status.success(), "exit status {status:?}");
}

/// Sixteen clients send runs of ten steps; once 200 are stored the server gets `signal`.
/// Checks that every run answered 201 is stored with all its steps; returns the exit status.
async fn signal_under_load(signal: &str) -> std::process::ExitStatus {
    let db = TestDb::new();
    let dir = temp_dir();
    let port = free_port();
    let mut server = ingest_server(&dir, &db, port)
        .args(["serve", "--role", "ingest"])
        .env("LOG_LEVEL", "warn")
        .stdout(session_log("server-stdout"))
        .stderr(session_log("server-stderr"))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/runs");
    let ready = eventually(Duration::from_secs(20), || async {
        client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "server did not become ready");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let run = sample_run(10, "success");
                    match client.post(&url).json(&run).send().await {
                        Ok(res) if res.status() == 201 => acknowledged.push(run_id_of(&run)),
                        Ok(res) => assert_eq!(res.status(), 201, "before the signal"),
                        Err(_) => break, // the server is gone
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Signal once runs are flowing, while requests are certainly in flight.
    let flowing = eventually(Duration::from_secs(20), || async {
        db.psql("SELECT count(*) FROM agent_runs")
            .parse::<i64>()
            .unwrap()
            >= 200
    })
    .await;
    assert!(flowing, "runs did not flow");
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(acknowledged.len() >= 200, "{}", acknowledged.len());
    let ids = acknowledged
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        db.psql(&format!(
            "SELECT count(*) FROM agent_runs WHERE run_id IN ({ids})"
        )),
        acknowledged.len().to_string(),
        "a run answered 201 is missing"
    );
    assert_eq!(
        db.psql(&format!(
            "SELECT count(*) FROM agent_steps WHERE run_id IN ({ids})"
        )),
        (acknowledged.len() * 10).to_string(),
        "a run answered 201 lacks steps"
    );
    status
}

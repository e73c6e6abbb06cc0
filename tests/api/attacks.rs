//! What an adversarial review found, replayed against the release-shaped binary (`serve`, as a
//! process of its own, on loopback): each test mounts one attack, bounded, and asserts the fixed
//! behaviour — bounded memory (the process's RSS), bounded `/metrics`, a small valid request
//! still fast while the attack runs.

use std::fs::File;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::ingest_server;
use crate::helpers::*;

const KEY: &str = "attacks-ingest-key-0123456789";

/// The binary serving the ingest role with keys on; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub grpc: String,
    pub log: std::path::PathBuf,
    _db: TestDb,
}

impl Server {
    /// Starts `serve --role ingest` with `env` added, and waits until it is ready.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let db = TestDb::new();
        let dir = temp_dir();
        let port = free_port();
        let grpc_port = free_port();
        let log = dir.join("server.log");
        let mut cmd = ingest_server(&dir, &db, port);
        cmd.arg("serve")
            .env("AGENTTRACER_ROLE", "ingest")
            .env(
                "AGENTTRACER_SERVER__OTLP_GRPC_ADDR",
                format!("127.0.0.1:{grpc_port}"),
            )
            .env("API_KEY", secret(KEY))
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            log,
            _db: db,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/readyz", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not become ready: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Resident memory of the server process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    pub fn key(&self) -> &'static str {
        KEY
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a valid single-run POST takes, end to end.
pub async fn small_post_takes(server: &Server, client: &reqwest::Client) -> Duration {
    let started = Instant::now();
    let res = client
        .post(format!("{}/v1/runs", server.base))
        .header("X-API-Key", server.key())
        .json(&sample_run(1, "success"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    started.elapsed()
}

/// Item 2: unauthenticated requests with made-up methods are counted under `method="other"`:
/// `/metrics` does not grow with what clients send.
#[tokio::test]
async fn made_up_methods_do_not_grow_metrics() {
    let server = Server::start(&[]).await;
    let client = reqwest::Client::new();
    let metrics = || async {
        client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Warm up every label a normal request creates.
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("WARM{i}").as_bytes()).unwrap();
        let res = client
            .request(method, format!("{}/v1/runs/warm{i}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    metrics().await; // (the scrape's own series)
    let before_text = metrics().await;
    let before = before_text.len();
    for i in 0..2000 {
        let method = reqwest::Method::from_bytes(format!("X{i:05}ATTACK").as_bytes()).unwrap();
        let res = client
            .request(method, format!("{}/v1/runs/{i}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let after = metrics().await;
    assert!(
        !after.contains("X00001ATTACK"),
        "a made-up method became a label"
    );
    assert!(
        after.contains(r#"method="other""#),
        "made-up methods are counted as other"
    );
    // Counter values may gain digits; no new series.
    assert!(
        after.len() < before + 512,
        "/metrics grew from {before} to {} bytes; new lines: {:?}",
        after.len(),
        after
            .lines()
            .filter(|l| !before_text.contains(l.split(' ').next().unwrap_or("")))
            .collect::<Vec<_>>()
    );
}

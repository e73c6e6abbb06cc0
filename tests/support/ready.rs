//! Waiting for a server process under test to be ready. Shared by the integration tests
//! (`tests/api`) and the load benchmark (`benches/load/`), which include this file by path.

use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until `GET <base>/readyz` answers 200 for every one of `bases`, `within` in all; past
/// that, panics with the server's log (`log`).
pub async fn wait_ready(client: &reqwest::Client, bases: &[&str], within: Duration, log: &Path) {
    let deadline = Instant::now() + within;
    for base in bases {
        loop {
            let ready = client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not become ready: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

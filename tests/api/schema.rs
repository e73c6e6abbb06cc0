//! Generated bad input: schemathesis (from PyPI, `.venv-schemathesis`, made by scripts/venvs.sh)
//! against each role's `/openapi.json`, with a fixed seed and a bounded number of cases per
//! operation: no answer is a 5xx, and every answer (status, content type, headers, body) is
//! one the document describes. API keys are configured, so that authentication is exercised too.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::*;

const INGEST_KEY: &str = "schemathesis-ingest-key-1";
const QUERY_KEY: &str = "schemathesis-query-key-1";
/// Cases per operation and phase; the whole run takes well under a minute on two cores.
const EXAMPLES: &str = "40";
const SEED: &str = "20261123";

fn schemathesis() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-schemathesis/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/venvs.sh (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs schemathesis against `base`'s document with `key`; panics with its report on failure.
async fn check(base: String, key: &'static str) {
    let dir = temp_dir();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis())
            .current_dir(&dir)
            .args(["run", &format!("{base}/openapi.json")])
            .args(["--seed", SEED, "--max-examples", EXAMPLES, "--workers", "1"])
            .args(["--generation-database", "none", "--no-color"])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
            ])
            .args(["--header", &format!("X-API-Key: {key}")])
            .args(["--request-timeout", "10"])
            // A stream's body never ends, so no response can be checked whole: its filters and
            // refusals are tested in tests/api/stream.rs.
            .args(["--exclude-path", "/v1/runs/stream"])
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran cases, and they all passed (not a vacuous success).
    let generated = report
        .lines()
        .find_map(|l| {
            let (generated, passed) = l
                .trim()
                .strip_suffix(" passed")?
                .split_once(" generated, ")?;
            (generated == passed).then(|| passed.parse::<u32>().ok())?
        })
        .unwrap_or(0);
    assert!(generated >= 100, "too few cases ran:\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_5xx_and_only_documented_answers() {
    let app = spawn_app_with_keys(&[INGEST_KEY], &[QUERY_KEY]).await;
    check(app.ingest.clone(), INGEST_KEY).await;
    check(app.query.clone(), QUERY_KEY).await;
}

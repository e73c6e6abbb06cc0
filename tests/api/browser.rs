//! The web UI in a real browser: tests/browser/ui_test.py (Playwright from PyPI, in
//! .venv-browser made by scripts/venvs.sh) drives Debian's chromium against the service.
//! Screenshots of every page, at 1280x800 and 390x844, light and dark, are kept in
//! target/ui-screenshots/ for review.

use std::path::PathBuf;
use std::process::Command;

use agenttracer::config::SecretList;

use crate::helpers::*;

const QUERY_KEY: &str = "browser-query-key-0123456789";
const INGEST_KEY: &str = "browser-ingest-key-0123456789";

fn run_script(mode: &str, app: &TestApp) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-browser/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/venvs.sh (scripts/test.sh does)",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("tests/browser/ui_test.py"))
        .arg(mode)
        .env("QUERY_URL", &app.query)
        .env("INGEST_URL", &app.ingest)
        .env("SHOTS_DIR", root.join("target/ui-screenshots"))
        .env("QUERY_KEY", QUERY_KEY)
        .env("INGEST_KEY", INGEST_KEY)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks ({mode}) failed:\n{stdout}\n{stderr}"
    );
}

// Run alone, after the other tests, by scripts/test.sh (`-- --ignored`): chromium on the two
// cores would slow the timing-sensitive tests running beside it.
#[tokio::test]
#[ignore = "run alone by scripts/test.sh after the rest"]
async fn every_page_in_a_real_browser() {
    // Paired: the UI's writes go to this process's ingest listener (ui.ingest_url), as
    // `serve --role all` runs without a proxy.
    let app = spawn_app_paired(|c| {
        c.query.stream_poll_ms = 200;
        c.drift.enabled = false;
    })
    .await;
    // The service runs in a thread of its own: blocking here in the script is fine.
    run_script("open", &app);
    app.stop().await;
}

#[tokio::test]
#[ignore = "run alone by scripts/test.sh after the rest"]
async fn login_and_logout_in_a_real_browser() {
    let app = spawn_app_paired(|c| {
        c.auth.query_keys = SecretList::new(vec![QUERY_KEY.into()]);
        c.auth.ingest_keys = SecretList::new(vec![INGEST_KEY.into()]);
        c.drift.enabled = false;
    })
    .await;
    run_script("keys", &app);
    app.stop().await;
}

//! The web UI's pages in the load benchmark: each page's server time under two clients (targets:
//! p99 <= 50 ms, the overview <= 100 ms, at a million runs), and the bytes of JavaScript and CSS
//! each page loads, gzipped as served (target: <= 100 KB).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::report::{OVERVIEW_TARGET, PAGE_TARGET, Target};

/// The pages as read scenarios: `(name, path, clients, target)`; `{id}` is a stored run's id.
/// Targets apply at a million runs.
pub fn pages(
    label: &str,
    size: usize,
    has_ui: bool,
) -> Vec<(String, String, usize, Option<Target>)> {
    if !has_ui {
        return Vec::new();
    }
    let at_scale = size >= 1_000_000;
    // The read dataset's runs start in the 30 days before 2026-11-01 (data.rs): the windowed
    // pages are read over all of them, the heaviest window an operator can pick.
    const ALL: &str = "window=custom&from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z";
    [
        ("/ (30 d)", format!("/?{ALL}"), OVERVIEW_TARGET),
        ("/runs", "/runs".to_owned(), PAGE_TARGET),
        (
            "/runs?status=failure",
            "/runs?status=failure".to_owned(),
            PAGE_TARGET,
        ),
        ("/runs/{id}", "/runs/{id}".to_owned(), PAGE_TARGET),
        ("/failures (30 d)", format!("/failures?{ALL}"), PAGE_TARGET),
        ("/agents", "/agents".to_owned(), PAGE_TARGET),
        (
            "/agents/{agent} (30 d)",
            format!("/agents/agent-07?{ALL}"),
            PAGE_TARGET,
        ),
        ("/live", "/live".to_owned(), PAGE_TARGET),
        (
            "/behaviour (30 d)",
            format!("/behaviour?agent_id=agent-07&{ALL}"),
            PAGE_TARGET,
        ),
        ("/baselines", "/baselines".to_owned(), PAGE_TARGET),
        ("/drift", "/drift".to_owned(), PAGE_TARGET),
        (
            "/drift/timeline (30 d)",
            format!("/drift/timeline?agent_id=agent-07&{ALL}"),
            PAGE_TARGET,
        ),
    ]
    .into_iter()
    .map(|(name, path, target)| {
        (
            format!("UI {name} @{label}"),
            path,
            2,
            at_scale.then_some(target),
        )
    })
    .collect()
}

/// Whether the server under test serves the web UI.
pub async fn served(client: &reqwest::Client, base: &str) -> bool {
    match client.get(format!("{base}/")).send().await {
        Ok(res) => {
            res.status() == 200
                && res
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
        }
        Err(_) => false,
    }
}

/// Per page: the gzipped bytes of the scripts and stylesheets it links to.
pub async fn asset_bytes(
    client: &reqwest::Client,
    base: &str,
    run: Option<Uuid>,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let run = run.map(|id| format!("/runs/{id}")).unwrap_or_default();
    let pages = [
        "/",
        "/runs",
        run.as_str(),
        "/failures",
        "/agents",
        "/live",
        "/behaviour?agent_id=agent-07",
        "/baselines",
        "/drift",
    ];
    for path in pages {
        if path.is_empty() {
            continue;
        }
        let html = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut total = 0;
        for asset in html.split("/assets/").skip(1) {
            let name = asset.split('"').next().unwrap_or_default();
            let res = client
                .get(format!("{base}/assets/{name}"))
                .header("Accept-Encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.headers().get("content-encoding").map(|v| v.as_bytes()),
                Some(&b"gzip"[..]),
                "{name} is served gzipped"
            );
            total += res.bytes().await.unwrap().len() as u64;
        }
        out.push((path.to_owned(), total));
    }
    out
}

pub fn asset_table(assets: &[(String, u64)]) -> String {
    let mut out =
        String::from("UI page                                     JS + CSS gzipped   target\n");
    for (page, bytes) in assets {
        let page = if page.starts_with("/runs/") {
            "/runs/{id}"
        } else {
            page
        };
        out.push_str(&format!(
            "{page:<43} {:>9.1} KB        <= 100 KB: {}\n",
            *bytes as f64 / 1000.0,
            if *bytes <= 100_000 { "met" } else { "MISSED" }
        ));
    }
    out
}

pub fn asset_json(assets: &[(String, u64)]) -> Value {
    json!(assets
        .iter()
        .map(|(page, bytes)| json!({"page": page, "bytes": bytes, "target_met": *bytes <= 100_000}))
        .collect::<Vec<_>>())
}

//! The web UI's behaviour and drift pages at the HTML level (docs/ui.md): `/behaviour`,
//! `/baselines`, `/drift`, `/drift/{id}`, `/drift/timeline` and the overview's unresolved-drift
//! banner answer with their key elements from a real detection; their filters (in the URL) change
//! the rows; stored values are escaped; the write actions name the ingest role (its origin in the
//! CSP and CORS when `ui.ingest_url` is set, a curl command without JavaScript); and with query
//! keys the pages ask for a login. (tests/api/browser.rs clicks the buttons in a real browser.)

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::drift::{AGENT, runs, seed, send};
use crate::helpers::*;

async fn html(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", app.query))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

/// The page's body, which must be a 200.
async fn ok(app: &TestApp, path: &str) -> String {
    let (status, body) = html(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// The page at `path` is a 422 naming the parameter `name`.
async fn invalid(app: &TestApp, path: &str, name: &str) {
    let (status, body) = html(app, path).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    assert!(body.contains(&format!("{name}:")), "{body}");
}

/// How many times `marker` occurs in the page at `path`.
async fn count(app: &TestApp, path: &str, marker: &str) -> usize {
    ok(app, path).await.matches(marker).count()
}

/// Two versions of the drift tests' agent with active baselines: 2.0.0's decision mix moved
/// (two drift events: `tool_selection.api` medium, `tool_selection.cache` high), 2.0.1's did not.
/// Returns the drift events, newest first.
async fn detected(app: &TestApp) -> Vec<Value> {
    seed(app, "2.0.0", (92, 108)).await;
    seed(app, "2.0.1", (130, 70)).await;
    let res = app
        .post_json_with("/v1/drift/detect", &json!({}), |r| r)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let events = app.get_json(&app.query, "/v1/drift").await;
    let events = events.as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    events
}

#[tokio::test]
async fn behaviour_shows_each_options_share_over_the_window_chosen_by_the_url() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    detected(&app).await;
    let of = |version: &str, window: &str| {
        format!("/behaviour?agent_id={AGENT}&agent_version={version}&window={window}")
    };
    // Over 7 days: the baseline's window (130 api, 70 cache) and the last hour's (92, 108).
    let body = ok(&app, &of("2.0.0", "7d")).await;
    for marker in [
        "<h1>Behaviour",
        "<code>tool_selection</code>",
        "<code>schema_valid</code>",
        "<td class=\"num\">55.5 %</td><td class=\"num\">222</td>",
        "<td class=\"num\">44.5 %</td><td class=\"num\">178</td>",
        ">400 runs in this window",
        "id=\"chart-data\"",
        "data-chart=\"lines\" data-key=\"d:tool_selection\"",
        "\"d:tool_selection\":{",
    ] {
        assert!(body.contains(marker), "7d lacks {marker}");
    }
    // The window and the version come from the URL, and change the shares.
    let hour = ok(&app, &of("2.0.0", "1h")).await;
    assert!(hour.contains("<td class=\"num\">54.0 %</td><td class=\"num\">108</td>"));
    assert!(!hour.contains("55.5 %"));
    let other = ok(&app, &of("2.0.1", "1h")).await;
    assert!(other.contains("<td class=\"num\">65.0 %</td><td class=\"num\">130</td>"));
    // Its links: a baseline of this window, the agent's drift, the runs behind it.
    assert!(
        body.contains("/baselines?agent_id=drift-bot&#38;agent_version=2.0.0&#38;window_start=")
    );
    assert!(body.contains("/runs?agent_id=drift-bot&#38;agent_version=2.0.0&#38;start_time="));
    // Without an agent: the agents to choose from.
    let choose = ok(&app, "/behaviour").await;
    assert!(choose.contains("Choose an agent"));
    assert!(choose.contains("href=\"/behaviour?agent_id=drift-bot&#38;window=24h\""));
    // Reached from an agent's versions, and from the navigation.
    let agent = ok(&app, &format!("/agents/{AGENT}")).await;
    assert!(agent.contains("/behaviour?agent_id=drift-bot&#38;agent_version=2.0.0&#38;window=7d"));
    assert!(agent.contains("href=\"/behaviour\""));
    invalid(&app, "/behaviour?agent_id=x&window=2y", "window").await;

    // A window with more runs than a page reads: its latest 1,000, and it says so.
    let from = time::OffsetDateTime::now_utc() - std::time::Duration::from_secs(1800);
    let mut many = runs("9.0.0", from, 600, 401);
    let rest = many.split_off(1000);
    send(&app, many).await;
    send(&app, rest).await;
    let body = ok(&app, &of("9.0.0", "1h")).await;
    assert!(
        body.contains("these are the window's latest 1,000 runs, since"),
        "{body}"
    );
    assert!(body.contains(">1,000 runs →</a>"));
    // The earliest run (choosing the API) is the one left out.
    assert!(body.contains("<td class=\"num\">59.9 %</td><td class=\"num\">599</td>"));
    assert!(body.contains("<td class=\"num\">40.1 %</td><td class=\"num\">401</td>"));
    assert!(!ok(&app, &of("2.0.0", "1h")).await.contains("latest 1,000"));
    app.stop().await;
}

/// `n` runs of `version`, one every `every_s` seconds from `from`, choosing the API and the cache
/// in turn.
fn spread(version: &str, from: time::OffsetDateTime, n: usize, every_s: u64) -> Vec<Value> {
    let mut all = runs(version, from, n, 0);
    for (i, run) in all.iter_mut().enumerate() {
        let started = from + std::time::Duration::from_secs(i as u64 * every_s);
        let at = |t: time::OffsetDateTime| {
            json!(
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            )
        };
        run["started_at"] = at(started);
        run["ended_at"] = at(started + std::time::Duration::from_secs(1));
        if i % 2 == 1 {
            run["decisions"][0]["selected"] = json!("cache");
            run["decisions"][0]["reason_code"] = json!("cached_data_sufficient");
        }
    }
    all
}

/// The page's chart data: its time axis, and per chart (`d:tool_selection`) its shares and the
/// count each bin's share is of.
fn chart_data(body: &str) -> Value {
    let start = body.find("id=\"chart-data\">").expect("chart data") + 16;
    let end = start + body[start..].find("</script>").unwrap();
    serde_json::from_str(&body[start..end]).unwrap()
}

/// The bins' width in seconds: every step of the chart data's time axis.
fn width(data: &Value) -> i64 {
    let t: Vec<i64> = serde_json::from_value(data["t"].clone()).unwrap();
    let steps: Vec<i64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        !steps.is_empty() && steps.iter().all(|&s| s == steps[0]),
        "{t:?}"
    );
    steps[0]
}

/// Per bin of the chart `key`: the count its share is of, and whether a share is drawn.
fn binned(data: &Value, key: &str) -> Vec<(i64, bool)> {
    let chart = &data["lines"][key];
    let n = chart["n"]
        .as_array()
        .unwrap_or_else(|| panic!("{key} has no counts: {chart}"));
    assert_eq!(Some(n.len()), data["t"].as_array().map(Vec::len));
    let series = chart["series"].as_object().unwrap();
    (0..n.len())
        .map(|i| {
            (
                n[i].as_i64().unwrap(),
                series.values().any(|s| !s[i].is_null()),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_sparse_windows_shares_are_drawn_in_wider_bins_and_never_of_a_run_or_two() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let now = time::OffsetDateTime::now_utc();
    // Sparse: 24 runs over the last day, one an hour, choosing the API and the cache in turn
    // (in hourly bins, shares of 0 % and 100 % by turns).
    send(
        &app,
        spread(
            "3.0.0",
            now - time::Duration::minutes(23 * 60 + 30),
            24,
            3600,
        ),
    )
    .await;
    let path = format!("/behaviour?agent_id={AGENT}&agent_version=3.0.0&window=24h");
    let body = ok(&app, &path).await;
    let data = chart_data(&body);
    let step_s = width(&data);
    assert!(
        step_s > 3600,
        "a sparse day is drawn in hourly bins: {data}"
    );
    let bins = binned(&data, "d:tool_selection");
    assert_eq!(bins.iter().map(|b| b.0).sum::<i64>(), 24, "{bins:?}");
    assert!(bins.iter().any(|b| b.1), "no share drawn at all: {bins:?}");
    for (n, drawn) in &bins {
        assert!(
            !drawn || *n >= 10,
            "a share of {n} decisions is drawn: {bins:?}"
        );
    }
    // The page says what a bin is, and when a share is left out; the table still counts all.
    assert!(body.contains("daily bins (UTC)"), "{body}");
    assert!(body.contains("fewer than 10"), "{body}");
    assert!(body.contains("<td class=\"num\">50.0 %</td><td class=\"num\">12</td>"));

    // Dense: 25 runs an hour over the day keep hourly bins, each drawn.
    let from = now - time::Duration::minutes(23 * 60 + 30);
    send(&app, spread("3.1.0", from, 575, 144)).await;
    let path = format!("/behaviour?agent_id={AGENT}&agent_version=3.1.0&window=24h");
    let body = ok(&app, &path).await;
    let data = chart_data(&body);
    assert_eq!(
        width(&data),
        3600,
        "a busy day is drawn in hourly bins: {data}"
    );
    let bins = binned(&data, "d:tool_selection");
    assert!(body.contains("hourly bins (UTC)"));
    let full: Vec<_> = bins.iter().filter(|b| b.0 >= 20).collect();
    assert!(full.len() >= 22 && full.iter().all(|b| b.1), "{bins:?}");
    app.stop().await;
}

#[tokio::test]
async fn baselines_list_with_their_profile_filters_and_the_form_that_makes_one() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    detected(&app).await;
    let body = ok(&app, "/baselines").await;
    assert_eq!(body.matches("<tr data-baseline=").count(), 2);
    for marker in [
        "<span class=\"status active\">active</span>",
        "200 runs · p95 1.00 s",
        "<code>tool_selection: api 65.0 %</code>",
        "<code>schema_valid: full_match 100.0 %</code>",
        "first week of the release",
        "oncall@example.com, ",
        "data-post=\"/v1/drift/baselines/",
        ">Deactivate</button>",
        // The form that makes one: the body of POST /v1/drift/baselines; without JavaScript a
        // curl command to the ingest role.
        "<form id=\"baseline-form\" class=\"filters create\" data-post=\"/v1/drift/baselines\" hidden>",
        "name=\"window_start\"",
        "name=\"min_sample_size\"",
        "name=\"auto_activate\"",
        "<noscript><p>Without JavaScript",
        "curl -X POST &#39;http://127.0.0.1:",
    ] {
        assert!(body.contains(marker), "/baselines lacks {marker}");
    }
    // The filters are the API's, in the URL.
    let rows = |q: &'static str| {
        let app = &app;
        async move { count(app, &format!("/baselines?{q}"), "<tr data-baseline=").await }
    };
    assert_eq!(rows("agent_version=2.0.1").await, 1);
    assert_eq!(rows("is_active=true").await, 2);
    assert_eq!(rows("is_active=false").await, 0);
    assert_eq!(rows("baseline_type=manual").await, 0);
    assert_eq!(rows("agent_id=nobody").await, 0);
    assert_eq!(rows("limit=1").await, 1);
    // A deactivated baseline says so, and offers to activate it.
    let id = app
        .get_json(&app.query, "/v1/drift/baselines?agent_version=2.0.1")
        .await[0]["baseline_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/drift/baselines/{id}/deactivate");
    let res = app.post_json_with(&path, &json!({}), |r| r).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = ok(&app, "/baselines?is_active=false").await;
    assert!(body.contains("<span class=\"status inactive\">inactive</span>"));
    assert!(body.contains(&format!("data-post=\"/v1/drift/baselines/{id}/activate\"")));
    // A window from the behaviour page fills the form.
    let body = ok(
        &app,
        "/baselines?agent_id=drift-bot&agent_version=2.0.0&window_start=2026-11-01T00:00:00Z",
    )
    .await;
    assert!(body.contains("name=\"window_start\" value=\"2026-11-01T00:00:00Z\""));
    assert!(body.contains("name=\"agent_version\" list=\"agent-versions\" value=\"2.0.0\""));
    invalid(&app, "/baselines?is_active=perhaps", "is_active").await;
    app.stop().await;
}

#[tokio::test]
async fn drift_events_list_page_and_resolve_with_their_filters() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let events = detected(&app).await;
    let body = ok(&app, "/drift").await;
    assert_eq!(body.matches("<tr data-drift=").count(), 2);
    for marker in [
        "<span class=\"sev high\">high</span>",
        "<span class=\"sev medium\">medium</span>",
        "<code>tool_selection.cache</code>",
        "35.0 % → 54.0 %",
        "65.0 % → 46.0 %",
        "+54.3 %",
        "-29.2 %",
        "1.3e-4",
        "<span class=\"status open\">open</span>",
        ">Resolve</button>",
        "last seen",
    ] {
        assert!(body.contains(marker), "/drift lacks {marker}");
    }
    for e in &events {
        let id = e["drift_id"].as_str().unwrap();
        assert!(body.contains(&format!("data-post=\"/v1/drift/{id}/resolve\"")));
    }
    // Filters and paging, in the URL.
    let rows = |q: String| {
        let app = &app;
        async move { count(app, &format!("/drift?{q}"), "<tr data-drift=").await }
    };
    assert_eq!(rows("severity=high".into()).await, 1);
    assert_eq!(rows("drift_type=decision".into()).await, 2);
    assert_eq!(rows("drift_type=latency".into()).await, 0);
    assert_eq!(rows("agent_version=2.0.1".into()).await, 0);
    assert_eq!(rows("resolved=false".into()).await, 2);
    assert_eq!(rows("resolved=true".into()).await, 0);
    let first = ok(&app, "/drift?limit=1").await;
    assert_eq!(first.matches("<tr data-drift=").count(), 1);
    assert!(first.contains("href=\"/drift?limit=1&#38;offset=1\" rel=\"next\""));
    let second = ok(&app, "/drift?limit=1&offset=1").await;
    assert_eq!(second.matches("<tr data-drift=").count(), 1);
    assert!(second.contains("« Newer") && second.contains("End of the list"));
    let newest = events[0]["drift_id"].as_str().unwrap();
    assert!(first.contains(newest) != second.contains(newest));

    // One event whole; resolved, it says so and offers nothing to do.
    let id = events[0]["drift_id"].as_str().unwrap();
    let body = ok(&app, &format!("/drift/{id}")).await;
    for marker in [
        "p-value",
        "chi_square",
        "200 runs",
        "Last seen",
        ">Resolve</button>",
    ] {
        assert!(body.contains(marker), "/drift/{{id}} lacks {marker}");
    }
    let path = format!("/v1/drift/{id}/resolve");
    let res = app.post_json_with(&path, &json!({}), |r| r).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = ok(&app, &format!("/drift/{id}")).await;
    assert!(body.contains("<span class=\"status resolved\">resolved</span>"));
    assert!(!body.contains(">Resolve</button>"));
    assert_eq!(rows("resolved=true".into()).await, 1);
    assert_eq!(rows("resolved=false".into()).await, 1);
    let (status, _) = html(&app, "/drift/not-a-uuid").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = html(&app, &format!("/drift/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not found"), "{body}");
    invalid(&app, "/drift?limit=0", "limit").await;

    // The agent's timeline: each event's observed value, by metric.
    let body = ok(&app, &format!("/drift/timeline?agent_id={AGENT}")).await;
    assert_eq!(body.matches("<tr data-drift=").count(), 2);
    assert!(body.contains("data-key=\"shares\""));
    assert!(body.contains("\"tool_selection.api\":[46.0]"), "{body}");
    assert!(!body.contains("data-key=\"latency\""), "no latency drifted");
    let none = ok(
        &app,
        &format!("/drift/timeline?agent_id={AGENT}&agent_version=2.0.1"),
    )
    .await;
    assert_eq!(none.matches("<tr data-drift=").count(), 0);
    let choose = ok(&app, "/drift/timeline").await;
    assert!(choose.contains("Choose an agent") && choose.contains("agent_id=drift-bot"));
    app.stop().await;
}

#[tokio::test]
async fn the_overview_counts_unresolved_drift_and_links_to_it() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let body = ok(&app, "/").await;
    assert!(
        body.contains("No unresolved drift."),
        "nothing detected yet"
    );
    let events = detected(&app).await;
    let body = ok(&app, "/").await;
    assert!(
        body.contains("2 unresolved drift events, 1 high →"),
        "{body}"
    );
    assert!(
        body.contains(
            "<p class=\"banner warn\" id=\"open-drift\"><a href=\"/drift?resolved=false\">"
        )
    );
    // The overview's agent filters apply to it.
    let other = ok(&app, "/?agent_id=support-bot").await;
    assert!(other.contains("No unresolved drift."));
    let mine = ok(&app, &format!("/?agent_id={AGENT}")).await;
    assert!(mine.contains("href=\"/drift?agent_id=drift-bot&#38;resolved=false\""));
    // Resolving one counts it out; the link leads to exactly the open ones.
    let path = format!(
        "/v1/drift/{}/resolve",
        events[1]["drift_id"].as_str().unwrap()
    );
    let res = app.post_json_with(&path, &json!({}), |r| r).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = ok(&app, "/").await;
    assert!(body.contains("1 unresolved drift event"), "{body}");
    assert_eq!(
        count(&app, "/drift?resolved=false", "<tr data-drift=").await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn stored_values_on_the_behaviour_and_drift_pages_are_escaped() {
    let app = spawn_app_with(|c| c.drift.enabled = false).await;
    let evil = "<script>alert('x')</script>";
    let mut run = sample_run(2, "success");
    let now = time::OffsetDateTime::now_utc();
    let iso = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    run["agent_id"] = json!("<b>bold-agent</b>");
    run["started_at"] = json!(iso(now - time::Duration::minutes(5)));
    run["ended_at"] = json!(iso(now - time::Duration::minutes(4)));
    for (i, step) in run["steps"].as_array_mut().unwrap().iter_mut().enumerate() {
        let start = now - time::Duration::minutes(5) + time::Duration::seconds(i as i64);
        step["started_at"] = json!(iso(start));
        step["ended_at"] = json!(iso(start + time::Duration::milliseconds(500)));
    }
    run["decisions"] = json!([{"decision_type": "tool_selection", "selected": evil,
        "reason_code": "fresh_data_required"}]);
    assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    let body = json!({
        "agent_id": "<b>bold-agent</b>", "agent_version": run["agent_version"],
        "environment": run["environment"], "baseline_type": "manual",
        "window_start": iso(now - time::Duration::hours(1)), "window_end": iso(now),
        "min_sample_size": 1, "approved_by": "<i>ops</i>", "description": "<img src=x onerror=alert(1)>"
    });
    let res = app
        .post_json_with("/v1/drift/baselines", &body, |r| r)
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let agent = "%3Cb%3Ebold-agent%3C%2Fb%3E";
    for path in [
        format!("/behaviour?agent_id={agent}"),
        "/behaviour".to_owned(),
        "/baselines".to_owned(),
        format!("/drift/timeline?agent_id={agent}"),
    ] {
        let body = ok(&app, &path).await;
        for raw in ["<script>alert", "<b>bold-agent", "<i>ops", "<img src"] {
            assert!(!body.contains(raw), "{path} carries {raw} as markup");
        }
        assert!(body.contains("&#60;b&#62;bold-agent&#60;/b&#62;"), "{path}");
    }
    let body = ok(&app, &format!("/behaviour?agent_id={agent}")).await;
    assert!(
        body.contains("<td class=\"trunc\">&#60;script&#62;alert("),
        "as text"
    );
    // In the chart's data too, which no value can close.
    assert!(body.contains("\\u003cscript\\u003e"), "{body}");
    let body = ok(&app, "/baselines").await;
    assert!(body.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(body.contains("&#60;i&#62;ops&#60;/i&#62;"));
    app.stop().await;
}

#[tokio::test]
async fn writes_go_to_the_ingest_origin_allowed_by_csp_and_cors() {
    // Role `all` without a proxy: ui.ingest_url is the ingest listener.
    let app = spawn_app_paired(|c| c.drift.enabled = false).await;
    let res = app.get(&app.query, "/drift").await;
    let csp = res.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("connect-src 'self' {};", app.ingest)),
        "{csp}"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!(
        "<div id=\"writes\" data-ingest=\"{}\" hidden>",
        app.ingest
    )));
    // The ingest listener answers the UI's preflight (its origin: that host, the query port),
    // and no other origin's.
    let preflight = |origin: String| {
        let app = &app;
        async move {
            app.request_with(
                reqwest::Method::OPTIONS,
                (&app.ingest, "/v1/drift/baselines"),
                |r| {
                    r.header("Origin", origin)
                        .header("Access-Control-Request-Method", "POST")
                        .header("Access-Control-Request-Headers", "content-type,x-api-key")
                },
            )
            .await
        }
    };
    let res = preflight(app.query.clone()).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        app.query.as_str()
    );
    // The same UI by another loopback name.
    let by_name = app.query.replace("127.0.0.1", "localhost");
    let res = preflight(by_name.clone()).await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        by_name.as_str()
    );
    let res = preflight("http://evil.example".into()).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    // The page's write, as the script sends it: it creates the baseline the list then shows.
    seed(&app, "3.0.0", (100, 100)).await;
    let before = count(&app, "/baselines", "<tr data-baseline=").await;
    let now = time::OffsetDateTime::now_utc();
    let iso = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = app
        .request_with(
            reqwest::Method::POST,
            (&app.ingest, "/v1/drift/baselines"),
            |r| {
                r.header("Origin", app.query.as_str()).json(&json!({
                "agent_id": AGENT, "agent_version": "3.0.0", "environment": "production",
                "baseline_type": "time_window", "window_start": iso(now - time::Duration::hours(1)),
                "window_end": iso(now), "min_sample_size": 100, "auto_activate": false
            }))
            },
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        app.query.as_str()
    );
    assert_eq!(
        count(&app, "/baselines", "<tr data-baseline=").await,
        before + 1
    );
    app.stop().await;

    // Behind a proxy (the default): the UI's own origin, and nothing more in the CSP.
    let app = spawn_app().await;
    let res = app.get(&app.query, "/baselines").await;
    let csp = res.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    let body = res.text().await.unwrap();
    assert!(body.contains("<div id=\"writes\" data-ingest=\"\" hidden>"));
    // The curl commands name this origin, where a proxy routes POST /v1/* to the ingest role.
    assert!(body.contains(&format!(
        "curl -X POST &#39;{}/v1/drift/baselines&#39;",
        app.query
    )));
    app.stop().await;
}

#[tokio::test]
async fn with_query_keys_the_drift_pages_ask_for_a_login() {
    const QUERY_KEY: &str = "ui-drift-query-key-0123456789";
    let app = spawn_app_with_keys(&["ui-drift-ingest-key-0123456789"], &[QUERY_KEY]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", app.query);
    let pages = ["/behaviour", "/baselines", "/drift", "/drift/timeline"];
    for path in pages {
        let res = client.get(url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            res.headers()[LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/login?next=")
        );
    }
    let res = client
        .post(url("/login"))
        .form(&[("key", QUERY_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for path in pages {
        let res = client
            .get(url(path))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.text().await.unwrap().contains("Log out"), "{path}");
    }
    // A session is no ingest key: the writes the pages send still need one.
    let res = app
        .post_json_with("/v1/drift/detect", &json!({}), |r| {
            r.header("Cookie", &cookie)
        })
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

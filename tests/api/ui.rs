//! The web UI at the HTML level: each page answers 200 with its key elements, stored values are
//! escaped, the headers (CSP and the others) are on every answer, assets are content-hashed and
//! immutable, bad parameters are 422 pages naming them, and with query keys the pages ask for a
//! login and keep a signed session. (tests/api/browser.rs drives a real browser.)

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::*;

const QUERY_KEY: &str = "ui-query-key-0123456789";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = no_redirects()
        .get(format!("{}{path}", app.query))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

/// A run of `steps` steps started now, with a failure at its last step.
fn recent_run(steps: usize, note: &str) -> Value {
    let mut run = sample_run(steps, "failure");
    let now = time::OffsetDateTime::now_utc();
    let iso = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    run["started_at"] = json!(iso(now - time::Duration::seconds(60)));
    run["ended_at"] = json!(iso(now));
    for (i, step) in run["steps"].as_array_mut().unwrap().iter_mut().enumerate() {
        let start =
            now - time::Duration::seconds(60) + time::Duration::milliseconds(i as i64 * 100);
        step["started_at"] = json!(iso(start));
        step["ended_at"] = json!(iso(start + time::Duration::milliseconds(80)));
        step["metadata"]["note"] = json!(note);
    }
    let last = run["steps"][steps - 1]["step_id"].clone();
    run["failure"]["step_id"] = last;
    run
}

#[tokio::test]
async fn every_page_answers_with_its_key_elements() {
    let app = spawn_app().await;
    let mut run = recent_run(5, "plain");
    run["decisions"] = json!([{"decision_type": "retry_strategy", "selected": "backoff",
        "reason_code": "rate_limit_encountered", "confidence": 0.5, "candidates": ["backoff", "give_up"],
        "step_id": run["steps"][2]["step_id"]}]);
    run["quality_signals"] =
        json!([{"signal_type": "retry_occurred", "signal_code": "single_retry", "value": true}]);
    assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    let id = run_id_of(&run);
    let pages: [(&str, &[&str]); 8] = [
        (
            "/",
            &[
                "<h1>Overview</h1>",
                "id=\"chart-data\"",
                "Success rate",
                "id=\"recent-runs\"",
                "support-bot",
            ],
        ),
        (
            "/runs",
            &[
                "<h1>Runs</h1>",
                "id=\"run-table\"",
                &format!("/runs/{id}"),
                "tool/timeout",
            ],
        ),
        (
            &format!("/runs/{id}"),
            &[
                "id=\"waterfall\"",
                "Failure analysis",
                "search tool timed out",
                "class=\"wf-row\"",
                "Decisions and signals",
                "<code>rate_limit_encountered</code>",
                "give_up",
                "#2 step-2",
                "<code>single_retry</code>",
            ],
        ),
        (
            &format!("/runs/{id}?step=4"),
            &[
                "id=\"detail\"",
                "#4 step-4",
                "&#34;note&#34;: &#34;plain&#34;",
            ],
        ),
        ("/failures", &["<h1>Failures", "timeout", "Latest failures"]),
        ("/agents", &["<h1>Agents</h1>", "/agents/support-bot"]),
        (
            "/agents/support-bot",
            &["Versions side by side", "1.4.2", "Success rate"],
        ),
        (
            "/live",
            &[
                "<h1>Live</h1>",
                "id=\"live-table\"",
                "data-stream=\"/live/stream\"",
            ],
        ),
    ];
    for (path, markers) in pages {
        let (status, headers, body) = page(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        for marker in markers {
            assert!(body.contains(marker), "{path} lacks {marker}");
        }
    }
    // The waterfall has a bar per step, and the failed step is marked.
    let (_, _, body) = page(&app, &format!("/runs/{id}")).await;
    assert_eq!(body.matches("class=\"wf-row\"").count(), 5);
    assert_eq!(body.matches("class=\"failed\"").count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn cost_shows_on_the_overview_the_explorer_the_live_tail_and_the_run() {
    let app = spawn_app().await;
    // Five gpt-4o steps (2.50 / 10.00 per million shipped): (100 + i) input and 20 output
    // tokens each, 450 + 2.5 i per million, $0.002275 for the run.
    let run = recent_run(5, "plain");
    assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    let id = run_id_of(&run);
    // Another agent's run on a model without a price.
    let mut unpriced = recent_run(2, "plain");
    unpriced["agent_id"] = json!("house-bot");
    for s in unpriced["steps"].as_array_mut().unwrap() {
        s["metadata"]["model"] = json!("house-llm");
    }
    assert_eq!(app.post_run(&unpriced).await.status(), StatusCode::CREATED);

    let (_, _, body) = page(&app, "/").await;
    for marker in [
        r#"<div class="label">Cost</div><div class="value">$0.002275</div><div class="sub">1 priced model</div>"#,
        "<h2>Cost over time</h2>",
        r#"data-chart="lines" data-key="cost""#,
        "<h2>Cost by agent</h2>",
        r#"agent_id=support-bot">support-bot</a></td><td class="num">$0.002275</td>"#,
        // Tokens by model: the priced model's cost, the other's dash.
        r#"<td class="num">$0.002275</td></tr>"#,
        r#"<td class="trunc">house-llm</td>"#,
    ] {
        assert!(body.contains(marker), "/ lacks {marker}");
    }
    assert!(!body.contains("agent_id=house-bot\">house-bot</a></td><td class=\"num\">"));
    let chart = body.split("id=\"chart-data\">").nth(1).unwrap();
    let chart: Value = serde_json::from_str(chart.split("</script>").next().unwrap()).unwrap();
    let cost = &chart["lines"]["cost"];
    assert_eq!(cost["unit"], "$");
    let bins: f64 = each(&cost["series"]["support-bot"], |v| v.as_f64().unwrap())
        .iter()
        .sum();
    assert!((bins - 0.002275).abs() < 1e-12, "{cost}");
    assert!(cost["series"].get("house-bot").is_none(), "{cost}");

    let (_, _, body) = page(&app, "/runs").await;
    assert!(body.contains(r#"<td class="num hide-narrow">$0.002275</td>"#));
    assert!(body.contains(r#"<td class="num hide-narrow">—</td>"#));
    let (_, _, body) = page(&app, "/live").await;
    assert!(body.contains(r#"<td class="num hide-narrow">$0.002275</td>"#));
    let (_, _, body) = page(&app, &format!("/runs/{id}")).await;
    assert!(body.contains("<dt>Cost</dt><dd>$0.002275</dd>"), "{body}");
    let (_, _, body) = page(&app, &format!("/runs/{id}?step=0")).await;
    assert!(body.contains("<dt>Cost</dt><dd>$0.0004500</dd>"), "{body}");
    let (_, _, body) = page(&app, &format!("/runs/{}?step=0", run_id_of(&unpriced))).await;
    assert!(body.contains("<dt>Cost</dt><dd>—</dd>"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_and_a_session_shows_its_runs_on_a_timeline() {
    let app = spawn_app().await;
    // A conversation of three runs (one failed), a `/` in its id; another of one run.
    let mut ids = Vec::new();
    for (k, status) in ["success", "failure", "success"].iter().enumerate() {
        let mut run = recent_run(2, "plain");
        run["status"] = json!(status);
        if *status == "success" {
            run.as_object_mut().unwrap().remove("failure");
        }
        run["session_id"] = json!("chat/7");
        run["user_id"] = json!("u-1f2e");
        run["agent_id"] = json!(["support-bot", "research-agent", "support-bot"][k]);
        let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(30 - 10 * k as i64);
        let iso = started
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        run["started_at"] = json!(iso);
        run["ended_at"] = json!(iso);
        for s in run["steps"].as_array_mut().unwrap() {
            s["started_at"] = json!(iso);
            s["ended_at"] = json!(iso);
        }
        assert_eq!(
            app.post_run(&run).await.status(),
            StatusCode::CREATED,
            "{run}"
        );
        ids.push(run_id_of(&run));
    }
    let mut other = recent_run(1, "plain");
    other["session_id"] = json!("solo");
    assert_eq!(app.post_run(&other).await.status(), StatusCode::CREATED);

    let (status, _, body) = page(&app, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    for marker in [
        "<h1>Sessions</h1>",
        r#"href="/sessions" aria-current="page">Sessions</a>"#,
        r#"<a href="/sessions/chat%2F7">chat/7</a>"#,
        "u-1f2e",
        r#"<a href="/runs?session_id=chat%2F7&#38;agent_id=research-agent">research-agent</a>"#,
        r#"<a href="/sessions/solo">solo</a>"#,
    ] {
        assert!(body.contains(marker), "/sessions lacks {marker}: {body}");
    }
    // Most recent first: the solo session's run started now.
    assert!(body.find("solo").unwrap() < body.find("chat/7").unwrap());
    let (_, _, body) = page(&app, "/sessions?user_id=u-1f2e").await;
    assert!(body.contains("chat/7") && !body.contains(">solo<"));

    let (status, _, body) = page(&app, "/sessions/chat%2F7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for marker in [
        "Session <span class=\"mono\">chat/7</span>",
        "<dt>Runs</dt><dd><a href=\"/runs?session_id=chat%2F7\">3</a></dd>",
        "<dt>Failed runs</dt><dd>1</dd>",
        "id=\"session-timeline\"",
        "class=\"wf-bar s-failure\"",
    ] {
        assert!(body.contains(marker), "the session lacks {marker}: {body}");
    }
    // Its runs oldest first, each a link.
    let at: Vec<usize> = ids
        .iter()
        .map(|id| body.find(&format!("/runs/{id}")).unwrap())
        .collect();
    assert!(at[0] < at[1] && at[1] < at[2], "{at:?}");
    // The explorer filters by session.
    let (_, _, body) = page(&app, "/runs?session_id=chat%2F7").await;
    assert_eq!(body.matches("data-run=").count(), 3);

    let (status, _, body) = page(&app, "/sessions/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Session nobody not found"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_failure_shows_what_was_sent_and_advice_for_its_code() {
    let app = spawn_app().await;
    let mut run = recent_run(3, "plain");
    run["failure"] = json!({"failure_type": "model", "failure_code": "rate_limited",
        "message": "Error code: 429", "step_id": run["steps"][2]["step_id"],
        "metadata": {"error.type": "openai.RateLimitError", "http.response.status_code": 429}});
    assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    let (status, _, body) = page(&app, &format!("/runs/{}", run_id_of(&run))).await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "<dt>error.type</dt><dd><code>openai.RateLimitError</code></dd>",
        "<dt>http.response.status_code</dt><dd><code>429</code></dd>",
        "The provider is rate limiting",
    ] {
        assert!(body.contains(text), "{text}");
    }
    // Another code: the advice of its type.
    let mut other = recent_run(2, "plain");
    other["failure"]["failure_code"] = json!("search_down");
    assert_eq!(app.post_run(&other).await.status(), StatusCode::CREATED);
    let (_, _, body) = page(&app, &format!("/runs/{}", run_id_of(&other))).await;
    assert!(
        body.contains("Check the tool&#39;s inputs") || body.contains("Check the tool's inputs")
    );
    assert!(
        !body.contains("class=\"sent\""),
        "nothing sent, nothing shown"
    );
    app.stop().await;
}

#[tokio::test]
async fn stored_values_are_escaped() {
    let app = spawn_app().await;
    let evil = "<script>alert('x')</script>";
    let mut run = recent_run(2, evil);
    run["agent_id"] = json!("<b>bold-agent</b>");
    run["failure"]["metadata"] = json!({"error.type": evil});
    assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    let id = run_id_of(&run);
    for path in [
        format!("/runs/{id}?step=0"),
        "/runs".to_owned(),
        "/".to_owned(),
        "/agents".to_owned(),
    ] {
        let (status, _, body) = page(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !body.contains("<script>alert"),
            "{path} carries the script as markup"
        );
        assert!(
            !body.contains("<b>bold-agent"),
            "{path} carries the agent id as markup"
        );
        assert!(body.contains("&#60;b&#62;bold-agent&#60;/b&#62;"), "{path}");
    }
    let (_, _, body) = page(&app, &format!("/runs/{id}?step=0")).await;
    assert!(body.contains("&#60;script&#62;alert("), "shown as text");
    app.stop().await;
}

#[tokio::test]
async fn headers_assets_and_errors() {
    let app = spawn_app().await;
    let (_, headers, body) = page(&app, "/").await;
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    for part in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(!body.contains("<script>"), "no inline script");
    assert!(!body.contains(" style=\""), "no inline style");

    // Every asset a page names is served, hashed and immutable; others are 404.
    let assets: Vec<&str> = body
        .split("/assets/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets {
        let res = app
            .client
            .get(format!("{}/assets/{asset}", app.query))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert!(
            res.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(res.headers().contains_key(CONTENT_SECURITY_POLICY));
    }
    let (status, _, _) = page(&app, "/assets/app.000000000000.css").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A bad parameter is a 422 page naming it; an unknown run a 404 page.
    let (status, headers, body) = page(&app, "/?window=2y").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        headers.contains_key(CONTENT_SECURITY_POLICY),
        "error pages too"
    );
    assert!(body.contains("window:"), "{body}");
    let (status, _, body) = page(&app, "/runs?status=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("status:"), "{body}");
    let (status, _, body) = page(&app, "/runs/not-a-uuid").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, body) = page(&app, &format!("/runs/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not found"), "{body}");
    let (status, _, _) = page(&app, "/agents/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The JSON API is unchanged beside it.
    let (status, headers, _) = page(&app, "/v1/runs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    app.stop().await;
}

/// The session cookie's `name=value` from a login answer.
fn session_cookie(res: &reqwest::Response) -> String {
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains(QUERY_KEY),
        "the cookie does not carry the key"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// `req`, sent with `cookie`.
async fn send_with(req: reqwest::RequestBuilder, cookie: &str) -> reqwest::Response {
    req.header("Cookie", cookie).send().await.unwrap()
}

#[tokio::test]
async fn with_query_keys_pages_ask_for_a_login_and_keep_a_session() {
    let app = spawn_app_with(|c| {
        c.auth.query_keys = agenttracer::config::SecretList::new(vec![QUERY_KEY.into()])
    })
    .await;
    let client = no_redirects();
    let url = |p: &str| format!("{}{p}", app.query);

    // No session: pages redirect to the login page, keeping where they were going.
    let res = client
        .get(url("/runs?status=failure"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[LOCATION],
        "/login?next=%2Fruns%3Fstatus%3Dfailure"
    );
    // An htmx request is told to load the login page whole.
    let res = client
        .get(url("/runs"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()["hx-redirect"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    // The stream too; the API still wants a key, and a cookie is no key.
    let res = client.get(url("/live/stream")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = client.get(url("/v1/runs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The login page and the assets need no session.
    let res = client.get(url("/login?next=/runs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("type=\"password\""));

    // A wrong key is refused; the right one gives a session and goes where it was going.
    let res = client
        .post(url("/login"))
        .form(&[("key", "wrong"), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!res.headers().contains_key(SET_COOKIE));
    let res = client
        .post(url("/login"))
        .form(&[("key", QUERY_KEY), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/", "never off-site");
    let cookie = session_cookie(&res);
    for path in ["/", "/runs", "/failures", "/agents", "/live"] {
        let res = send_with(client.get(url(path)), &cookie).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.text().await.unwrap().contains("Log out"), "{path}");
    }
    let res = send_with(client.get(url("/live/stream")), &cookie).await;
    assert_eq!(res.status(), StatusCode::OK);
    drop(res);
    // A forged or altered cookie is no session.
    let forged = format!("{}x", cookie);
    let res = send_with(client.get(url("/")), &forged).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // Logging out removes the cookie.
    let res = send_with(client.post(url("/logout")), &cookie).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/login");
    let removal = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        removal.contains("Max-Age=0") || removal.contains("expires"),
        "{removal}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_ui_lives_under_its_base_path() {
    let app = spawn_app_with(|c| c.ui.base_path = "/agenttracer".into()).await;
    let (status, headers, _) = page(&app, "/agenttracer").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[LOCATION], "/agenttracer/");
    let (status, _, body) = page(&app, "/agenttracer/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("href=\"/agenttracer/runs\""));
    assert!(body.contains("/agenttracer/assets/app."));
    let (status, _, _) = page(&app, "/agenttracer/runs").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = page(&app, "/runs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And it can be turned off: the query role then serves the JSON API alone.
    app.stop().await;
    let app = spawn_app_with(|c| c.ui.enabled = false).await;
    let (status, _, _) = page(&app, "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = page(&app, "/v1/runs").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_configured_session_secret_keeps_sessions_across_processes() {
    const SECRET: &str = "a-session-secret-of-at-least-32-characters";
    secret(SECRET); // the session's log check looks for it too
    let with_secret = |c: &mut agenttracer::config::Config| {
        c.auth.query_keys = agenttracer::config::SecretList::new(vec![QUERY_KEY.into()]);
        c.ui.session_secret = Some(agenttracer::config::Secret::new(SECRET.into()));
    };
    let first = spawn_app_with(with_secret).await;
    let client = no_redirects();
    let res = client
        .post(format!("{}/login", first.query))
        .form(&[("key", QUERY_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&res);
    first.stop().await;
    // Another process with the same secret (a restart, or another replica) accepts it...
    let second = spawn_app_with(with_secret).await;
    let res = send_with(client.get(format!("{}/", second.query)), &cookie).await;
    assert_eq!(res.status(), StatusCode::OK);
    second.stop().await;
    // ...and one with a generated secret does not.
    let third = spawn_app_with(|c| {
        c.auth.query_keys = agenttracer::config::SecretList::new(vec![QUERY_KEY.into()])
    })
    .await;
    let res = send_with(client.get(format!("{}/", third.query)), &cookie).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The secret never shows in the printed configuration.
    let mut config = agenttracer::config::Config::default();
    with_secret(&mut config);
    let printed = config.to_masked_toml();
    assert!(
        !printed.contains(SECRET) && printed.contains("session_secret = \"***\""),
        "{printed}"
    );
    third.stop().await;
}
